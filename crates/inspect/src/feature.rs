//! A feature: where one column of a table lives in a model's input tensors.

use crate::{Error, Result};
use skiff_runtime::{Tensor, TensorData};

/// One feature of a model's inputs: a column of a `[rows, features]` input, or a whole
/// `[rows]` / `[rows, 1]` input (skl2onnx's input per data-frame column).
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    /// The column's name.
    pub name: String,
    /// Which input tensor holds it.
    pub input: usize,
    /// Its column within that input; `None` where the input holds only this feature.
    pub column: Option<usize>,
}

/// A value a feature can take: a number, or text for a text input.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A number (any numeric input).
    Number(f64),
    /// Text (a string input).
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(v) => write!(f, "{v}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

macro_rules! each_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Fp32($v) => $body,
            TensorData::Fp64($v) => $body,
            TensorData::Bytes($v) => $body,
        }
    };
}

/// Element `at[i]` of `values` takes the value element `at[order[i]]` had.
fn reorder<T: Clone>(values: &mut [T], at: &[usize], order: &[usize]) {
    let old: Vec<T> = at.iter().map(|&i| values[i].clone()).collect();
    for (&i, &from) in at.iter().zip(order) {
        values[i] = old[from].clone();
    }
}

impl Feature {
    /// This feature's element of row `row` in `tensor`.
    fn index(&self, tensor: &Tensor, row: usize) -> usize {
        row * tensor.row_len() + self.column.unwrap_or(0)
    }

    fn tensor<'a>(&self, inputs: &'a mut [Tensor]) -> Result<&'a mut Tensor> {
        let name = &self.name;
        inputs
            .get_mut(self.input)
            .ok_or_else(|| Error::Invalid(format!("feature {name:?} names a missing input")))
    }

    /// Moves this feature's values between rows: row `i` takes the value row `order[i]` had.
    pub fn permute(&self, inputs: &mut [Tensor], order: &[usize]) -> Result<()> {
        let tensor = self.tensor(inputs)?;
        let at: Vec<usize> = (0..order.len()).map(|r| self.index(tensor, r)).collect();
        each_vec!(&mut tensor.data, v => reorder(v, &at, order));
        Ok(())
    }

    /// Gives every row of `rows` this feature's value `value`, as its input's type.
    pub fn set(&self, inputs: &mut [Tensor], rows: usize, value: &Value) -> Result<()> {
        let tensor = self.tensor(inputs)?;
        let at: Vec<usize> = (0..rows).map(|r| self.index(tensor, r)).collect();
        let mismatch = |kind: &str| {
            Error::Invalid(format!(
                "feature {:?} takes {kind}, not {value:?}",
                self.name
            ))
        };
        match (&mut tensor.data, value) {
            (TensorData::Fp32(v), Value::Number(x)) => at.iter().for_each(|&i| v[i] = *x as f32),
            (TensorData::Fp64(v), Value::Number(x)) => at.iter().for_each(|&i| v[i] = *x),
            (TensorData::Int64(v), Value::Number(x)) if x.fract() == 0.0 => {
                at.iter().for_each(|&i| v[i] = *x as i64)
            }
            (TensorData::Int32(v), Value::Number(x)) if x.fract() == 0.0 => {
                at.iter().for_each(|&i| v[i] = *x as i32)
            }
            (TensorData::Bytes(v), Value::Text(t)) => at.iter().for_each(|&i| v[i].clone_from(t)),
            (TensorData::Bytes(_), _) => return Err(mismatch("text")),
            (TensorData::Bool(_), _) => return Err(mismatch("booleans")),
            (TensorData::Int32(_) | TensorData::Int64(_), _) => return Err(mismatch("integers")),
            (TensorData::Fp32(_) | TensorData::Fp64(_), _) => return Err(mismatch("numbers")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<Tensor> {
        vec![
            Tensor::new(
                vec![3, 2],
                TensorData::Fp32(vec![1., 10., 2., 20., 3., 30.]),
            )
            .unwrap(),
            Tensor::new(
                vec![3, 1],
                TensorData::Bytes(vec!["a".into(), "b".into(), "c".into()]),
            )
            .unwrap(),
        ]
    }

    #[test]
    fn permuting_a_column_moves_only_its_values() {
        let mut x = inputs();
        let second = Feature {
            name: "b".into(),
            input: 0,
            column: Some(1),
        };
        second.permute(&mut x, &[2, 0, 1]).unwrap();
        assert_eq!(x[0].data, TensorData::Fp32(vec![1., 30., 2., 10., 3., 20.]));
        let text = Feature {
            name: "t".into(),
            input: 1,
            column: None,
        };
        text.permute(&mut x, &[1, 2, 0]).unwrap();
        assert_eq!(
            x[1].data,
            TensorData::Bytes(vec!["b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn setting_a_value_fills_the_column_and_refuses_the_wrong_kind() {
        let mut x = inputs();
        let first = Feature {
            name: "a".into(),
            input: 0,
            column: Some(0),
        };
        first.set(&mut x, 3, &Value::Number(7.5)).unwrap();
        assert_eq!(
            x[0].data,
            TensorData::Fp32(vec![7.5, 10., 7.5, 20., 7.5, 30.])
        );
        let text = Feature {
            name: "t".into(),
            input: 1,
            column: None,
        };
        let error = text.set(&mut x, 3, &Value::Number(1.0)).unwrap_err();
        assert!(error.to_string().contains("takes text"), "{error}");
    }
}
