//! Tensors as they cross the runtime's boundary: plain vectors, one variant per element type.

use serde::{Deserialize, Serialize};

/// Element types the runtime accepts and returns, named as in the Open Inference Protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DataType {
    /// Boolean.
    Bool,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit float.
    Fp32,
    /// 64-bit float.
    Fp64,
    /// Strings (OIP `BYTES`).
    Bytes,
}

impl DataType {
    /// The protocol's name: `FP32`, `INT64`, `BYTES`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Parses a protocol name.
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name {
            "BOOL" => DataType::Bool,
            "INT32" => DataType::Int32,
            "INT64" => DataType::Int64,
            "FP32" => DataType::Fp32,
            "FP64" => DataType::Fp64,
            "BYTES" => DataType::Bytes,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tensor's elements, row-major; serialises as a flat list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TensorData {
    /// Booleans.
    Bool(Vec<bool>),
    /// 32-bit integers.
    Int32(Vec<i32>),
    /// 64-bit integers.
    Int64(Vec<i64>),
    /// 32-bit floats.
    Fp32(Vec<f32>),
    /// 64-bit floats.
    Fp64(Vec<f64>),
    /// Strings.
    Bytes(Vec<String>),
}

impl TensorData {
    /// The element type.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Fp64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named shape and its elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements, row-major; `shape`'s product of them.
    pub data: TensorData,
}

impl Tensor {
    /// A tensor, checking that the data fills the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> crate::Result<Tensor> {
        let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if expected != Some(data.len()) {
            return Err(crate::Error::BadInput(format!(
                "shape {shape:?} holds {} elements but {} were given",
                expected.map_or("too many".to_string(), |n| n.to_string()),
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }
}

macro_rules! for_each_variant {
    ($macro:ident!($($args:tt)*)) => {
        $macro!(Bool, $($args)*);
        $macro!(Int32, $($args)*);
        $macro!(Int64, $($args)*);
        $macro!(Fp32, $($args)*);
        $macro!(Fp64, $($args)*);
        $macro!(Bytes, $($args)*);
    };
}

impl Tensor {
    /// Elements per row: the product of every dimension but the first.
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Stacks tensors of one type and one row shape along the first axis; `None` when their
    /// types or row shapes differ.
    pub fn concat_rows(parts: Vec<Tensor>) -> Option<Tensor> {
        let first = parts.first()?;
        let (datatype, inner) = (first.data.datatype(), first.shape.get(1..)?.to_vec());
        if parts
            .iter()
            .any(|t| t.data.datatype() != datatype || t.shape.get(1..) != Some(&inner[..]))
        {
            return None;
        }
        let rows = parts.iter().map(|t| t.shape[0]).sum();
        let mut shape = vec![rows];
        shape.extend(inner);
        macro_rules! concat {
            ($variant:ident, $parts:expr, $datatype:expr) => {
                if $datatype == TensorData::$variant(Vec::new()).datatype() {
                    let data = $parts
                        .into_iter()
                        .flat_map(|t| match t.data {
                            TensorData::$variant(v) => v,
                            _ => unreachable!("types checked above"),
                        })
                        .collect();
                    return Some(Tensor {
                        shape,
                        data: TensorData::$variant(data),
                    });
                }
            };
        }
        for_each_variant!(concat!(parts, datatype));
        unreachable!("every datatype has a variant")
    }

    /// Splits along the first axis into tensors of `rows[i]` rows each; `rows` must add up to
    /// the first dimension.
    pub fn split_rows(self, rows: &[usize]) -> Vec<Tensor> {
        let row_len = self.row_len();
        let inner = self.shape[1..].to_vec();
        let shape = |n: usize| {
            std::iter::once(n)
                .chain(inner.iter().copied())
                .collect::<Vec<_>>()
        };
        macro_rules! split {
            ($variant:ident, $data:expr, $rows:expr) => {
                if let TensorData::$variant(v) = $data {
                    let mut elements = v.into_iter();
                    return $rows
                        .iter()
                        .map(|&n| Tensor {
                            shape: shape(n),
                            data: TensorData::$variant(
                                elements.by_ref().take(n * row_len).collect(),
                            ),
                        })
                        .collect();
                }
            };
        }
        let data = self.data;
        for_each_variant!(split!(data, rows));
        unreachable!("every datatype has a variant")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_then_split_gives_the_parts_back() {
        let a = Tensor::new(vec![1, 2], TensorData::Fp32(vec![1.0, 2.0])).unwrap();
        let b = Tensor::new(vec![2, 2], TensorData::Fp32(vec![3.0, 4.0, 5.0, 6.0])).unwrap();
        let both = Tensor::concat_rows(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(both.shape, [3, 2]);
        assert_eq!(both.split_rows(&[1, 2]), vec![a, b]);
        let labels = Tensor::new(
            vec![3],
            TensorData::Bytes(vec!["x".into(), "y".into(), "z".into()]),
        )
        .unwrap();
        let parts = labels.split_rows(&[2, 1]);
        assert_eq!(parts[1].data, TensorData::Bytes(vec!["z".into()]));
    }

    #[test]
    fn concat_refuses_mixed_types_and_row_shapes() {
        let a = Tensor::new(vec![1, 2], TensorData::Fp32(vec![1.0, 2.0])).unwrap();
        let b = Tensor::new(vec![1, 2], TensorData::Fp64(vec![1.0, 2.0])).unwrap();
        let c = Tensor::new(vec![1, 1], TensorData::Fp32(vec![1.0])).unwrap();
        assert!(Tensor::concat_rows(vec![a.clone(), b]).is_none());
        assert!(Tensor::concat_rows(vec![a, c]).is_none());
    }
}
