//! The preprocessing ops skl2onnx writes for tables: `Imputer` (SimpleImputer),
//! `OneHotEncoder` and `LabelEncoder` (OneHotEncoder, OrdinalEncoder, label columns), as
//! onnxruntime computes them. Each maps one tensor to one of the same shape (`OneHotEncoder`
//! adds a trailing axis of its categories), element by element, on float32, int64 or string
//! tensors.

use super::{floats, ints};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::ArrayD;

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert("Imputer", imputer);
    reg.insert("OneHotEncoder", one_hot_encoder);
    reg.insert("LabelEncoder", label_encoder);
}

/// The computation of a [`MapOp`]: one tensor in, one out.
trait Map: Debug + Send + Sync + 'static {
    /// The ONNX op type, for dumps and errors.
    const NAME: &'static str;
    /// The output's type for an input of type `input`; an error says which types it takes.
    fn output_type(&self, input: DatumType) -> TractResult<DatumType>;
    /// The length of a trailing axis the output adds, if any.
    fn extra_axis(&self) -> Option<usize> {
        None
    }
    /// Computes the output.
    fn eval(&self, input: &Tensor) -> TractResult<Tensor>;
}

/// A stateless op evaluating `M`; the same value is the inference-time expansion and (as
/// [`MapEval`]) the typed op it wires.
#[derive(Debug)]
struct MapOp<M>(Arc<M>);

impl<M> Clone for MapOp<M> {
    fn clone(&self) -> Self {
        MapOp(self.0.clone())
    }
}

#[derive(Debug)]
struct MapEval<M>(Arc<M>);

impl<M> Clone for MapEval<M> {
    fn clone(&self) -> Self {
        MapEval(self.0.clone())
    }
}

// Two ops are the same op when they share a map (float attributes are not `Eq`).
impl<M> PartialEq for MapEval<M> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl<M> Eq for MapEval<M> {}

fn map_op<M: Map>(map: M) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(MapOp(Arc::new(map))), vec![]))
}

impl<M: Map> Expansion for MapOp<M> {
    fn name(&self) -> StaticName {
        M::NAME.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        let extra = self.0.extra_axis();
        s.given(&inputs[0].datum_type, move |s, dt| {
            s.equals(&outputs[0].datum_type, self.0.output_type(dt)?)
        })?;
        s.given(&inputs[0].rank, move |s, rank| {
            s.equals(&outputs[0].rank, rank + extra.is_some() as i64)
        })?;
        s.given(&inputs[0].shape, move |s, shape| {
            let mut shape = shape.clone();
            shape.extend(extra.map(|n| n.to_dim()));
            s.equals(&outputs[0].shape, shape)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, MapEval(self.0.clone()), inputs)
    }
}

impl<M: Map> Op for MapEval<M> {
    fn name(&self) -> StaticName {
        M::NAME.into()
    }

    op_as_typed_op!();
}

impl<M: Map> EvalOp for MapEval<M> {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        Ok(tvec!(self.0.eval(&input)?.into_tvalue()))
    }
}

impl<M: Map> TypedOp for MapEval<M> {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dt = self.0.output_type(inputs[0].datum_type)?;
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        shape.extend(self.0.extra_axis().map(|n| n.to_dim()));
        Ok(tvec!(dt.fact(shape)))
    }

    as_op!();
}

/// A key of a float, int64 or string table: floats by their bits, with -0.0 as 0.0 and every
/// NaN as one NaN, so that a lookup finds what `==` would (NaN aside, which onnxruntime's
/// newer LabelEncoder matches too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Float(u32),
    Int(i64),
    Str(String),
}

impl Key {
    fn float(v: f32) -> Key {
        Key::Float(if v == 0.0 {
            0
        } else if v.is_nan() {
            f32::NAN.to_bits()
        } else {
            v.to_bits()
        })
    }
}

/// The elements of `input` as keys, for the key type `dt` (float32 keys also read float64
/// inputs, int64 keys every integer and float input, as onnxruntime's casts do).
fn keys(input: &Tensor, dt: DatumType) -> TractResult<Vec<Key>> {
    Ok(match dt {
        DatumType::String => input
            .to_plain_array_view::<String>()?
            .iter()
            .map(|s| Key::Str(s.clone()))
            .collect(),
        DatumType::I64 => input
            .cast_to::<i64>()?
            .to_plain_array_view::<i64>()?
            .iter()
            .map(|&v| Key::Int(v))
            .collect(),
        _ => input
            .cast_to::<f32>()?
            .to_plain_array_view::<f32>()?
            .iter()
            .map(|&v| Key::float(v))
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Imputer
// ---------------------------------------------------------------------------------------------

/// `Imputer`: each element equal to `replaced` (or NaN, where `replaced` is NaN) becomes the
/// imputed value of its column (the last axis), or the one imputed value for every column.
#[derive(Debug)]
enum Imputer {
    Float { replaced: f32, imputed: Vec<f32> },
    Int { replaced: i64, imputed: Vec<i64> },
}

fn imputer(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let float_values = floats(node, "imputed_value_floats")?;
    let int_values = ints(node, "imputed_value_int64s")?;
    let op = match (float_values.is_empty(), int_values.is_empty()) {
        (false, true) => Imputer::Float {
            replaced: node.get_attr_opt("replaced_value_float")?.unwrap_or(0.0),
            imputed: float_values,
        },
        (true, false) => Imputer::Int {
            replaced: node.get_attr_opt("replaced_value_int64")?.unwrap_or(0),
            imputed: int_values,
        },
        _ => node.bail_attr(
            "imputed_value_floats",
            "exactly one of imputed_value_floats and imputed_value_int64s must be given",
        )?,
    };
    map_op(op)
}

/// The imputed value for flat index `i` of a tensor whose last axis has `columns` elements.
fn imputed_at<T: Copy>(imputed: &[T], columns: usize, i: usize) -> T {
    if imputed.len() == 1 {
        imputed[0]
    } else {
        imputed[i % columns]
    }
}

impl Map for Imputer {
    const NAME: &'static str = "Imputer";

    fn output_type(&self, input: DatumType) -> TractResult<DatumType> {
        match (self, input) {
            (Imputer::Float { .. }, DatumType::F32) => Ok(DatumType::F32),
            (Imputer::Int { .. }, DatumType::I64) => Ok(DatumType::I64),
            (Imputer::Float { .. }, other) => {
                bail!("Imputer with float values takes float, not {other:?}")
            }
            (Imputer::Int { .. }, other) => {
                bail!("Imputer with int64 values takes int64, not {other:?}")
            }
        }
    }

    fn eval(&self, input: &Tensor) -> TractResult<Tensor> {
        let columns = input.shape().last().copied().unwrap_or(1).max(1);
        let imputed_len = match self {
            Imputer::Float { imputed, .. } => imputed.len(),
            Imputer::Int { imputed, .. } => imputed.len(),
        };
        ensure!(
            imputed_len == 1 || imputed_len == columns,
            "Imputer has {imputed_len} imputed values for {columns} columns: give one, or one per column"
        );
        let mut output = input.clone();
        match self {
            Imputer::Float { replaced, imputed } => {
                let replaced = *replaced;
                for (i, v) in output
                    .to_plain_array_view_mut::<f32>()?
                    .iter_mut()
                    .enumerate()
                {
                    if (replaced.is_nan() && v.is_nan()) || *v == replaced {
                        *v = imputed_at(imputed, columns, i);
                    }
                }
            }
            Imputer::Int { replaced, imputed } => {
                for (i, v) in output
                    .to_plain_array_view_mut::<i64>()?
                    .iter_mut()
                    .enumerate()
                {
                    if *v == *replaced {
                        *v = imputed_at(imputed, columns, i);
                    }
                }
            }
        }
        Ok(output)
    }
}

// ---------------------------------------------------------------------------------------------
// OneHotEncoder
// ---------------------------------------------------------------------------------------------

/// `OneHotEncoder`: each element becomes a float row with 1 at its category's position.
/// Numbers are truncated to int64 and looked up in `cats_int64s`; an element of no category
/// is a row of zeros, or an error where `zeros` is 0.
#[derive(Debug)]
struct OneHotEncoder {
    /// The categories' type: string or int64.
    key_type: DatumType,
    positions: HashMap<Key, usize>,
    n_categories: usize,
    zeros: bool,
}

fn one_hot_encoder(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let strings: Vec<String> = node.get_attr_opt_vec("cats_strings")?.unwrap_or_default();
    let int64s = ints(node, "cats_int64s")?;
    let (key_type, keys): (DatumType, Vec<Key>) = match (strings.is_empty(), int64s.is_empty()) {
        (false, true) => (
            DatumType::String,
            strings.into_iter().map(Key::Str).collect(),
        ),
        (true, false) => (DatumType::I64, int64s.into_iter().map(Key::Int).collect()),
        _ => node.bail_attr(
            "cats_strings",
            "exactly one of cats_strings and cats_int64s must be given",
        )?,
    };
    let n_categories = keys.len();
    let mut positions = HashMap::with_capacity(n_categories);
    for (i, key) in keys.into_iter().enumerate() {
        positions.entry(key).or_insert(i);
    }
    map_op(OneHotEncoder {
        key_type,
        positions,
        n_categories,
        zeros: node.get_attr_opt::<i64>("zeros")?.unwrap_or(1) != 0,
    })
}

impl Map for OneHotEncoder {
    const NAME: &'static str = "OneHotEncoder";

    fn output_type(&self, input: DatumType) -> TractResult<DatumType> {
        let fits = match self.key_type {
            DatumType::String => input == DatumType::String,
            _ => input.is_integer() || input.is_float(),
        };
        ensure!(
            fits,
            "OneHotEncoder with {} categories takes {}, not {input:?}",
            if self.key_type == DatumType::String {
                "string"
            } else {
                "int64"
            },
            if self.key_type == DatumType::String {
                "strings"
            } else {
                "numbers"
            },
        );
        Ok(DatumType::F32)
    }

    fn extra_axis(&self) -> Option<usize> {
        Some(self.n_categories)
    }

    fn eval(&self, input: &Tensor) -> TractResult<Tensor> {
        let keys = if self.key_type == DatumType::String {
            keys(input, DatumType::String)?
        } else {
            // onnxruntime truncates floats to int64 before the lookup.
            let ints = input.cast_to::<f64>()?;
            let ints = ints.to_plain_array_view::<f64>()?;
            ints.iter().map(|&v| Key::Int(v as i64)).collect()
        };
        let k = self.n_categories;
        let mut data = vec![0f32; keys.len() * k];
        for (row, key) in data.chunks_mut(k.max(1)).zip(&keys) {
            match self.positions.get(key) {
                Some(&i) => row[i] = 1.0,
                None if self.zeros => {}
                None => bail!("OneHotEncoder: unknown category {key:?} and zeros = 0"),
            }
        }
        let mut shape: Vec<usize> = input.shape().to_vec();
        shape.push(k);
        Ok(ArrayD::from_shape_vec(shape, data)?.into_tensor())
    }
}

// ---------------------------------------------------------------------------------------------
// LabelEncoder
// ---------------------------------------------------------------------------------------------

/// `LabelEncoder`: each element is looked up in `keys_*` and becomes the `values_*` at the
/// same position, or the default. Version 1's `classes_strings` maps strings to their
/// position and positions back to strings.
#[derive(Debug)]
struct LabelEncoder {
    key_type: DatumType,
    table: HashMap<Key, usize>,
    values: Values,
}

/// A LabelEncoder's values and default, by type.
#[derive(Debug)]
enum Values {
    Str(Vec<String>, String),
    Int(Vec<i64>, i64),
    Float(Vec<f32>, f32),
}

fn label_encoder(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let strs = |name: &str| -> TractResult<Vec<String>> {
        Ok(node.get_attr_opt_vec(name)?.unwrap_or_default())
    };
    let default_string: String = node
        .get_attr_opt::<&str>("default_string")?
        .unwrap_or("_Unused")
        .to_string();
    let default_int: i64 = node.get_attr_opt("default_int64")?.unwrap_or(-1);
    let default_float: f32 = node.get_attr_opt("default_float")?.unwrap_or(-0.0);
    let classes = strs("classes_strings")?;
    if !classes.is_empty() {
        // Version 1: strings to positions (and int64 inputs to strings, which skl2onnx does
        // not write; refused rather than guessed).
        let table = classes
            .iter()
            .enumerate()
            .map(|(i, s)| (Key::Str(s.clone()), i))
            .collect();
        let n = classes.len() as i64;
        return map_op(LabelEncoder {
            key_type: DatumType::String,
            table,
            values: Values::Int((0..n).collect(), default_int),
        });
    }
    let (key_type, keys): (DatumType, Vec<Key>) = {
        let key_strings = strs("keys_strings")?;
        let key_ints = ints(node, "keys_int64s")?;
        let key_floats = floats(node, "keys_floats")?;
        match (key_strings.len(), key_ints.len(), key_floats.len()) {
            (_, 0, 0) if !key_strings.is_empty() => {
                (DatumType::String, key_strings.into_iter().map(Key::Str).collect())
            }
            (0, _, 0) if !key_ints.is_empty() => {
                (DatumType::I64, key_ints.into_iter().map(Key::Int).collect())
            }
            (0, 0, _) if !key_floats.is_empty() => {
                (DatumType::F32, key_floats.into_iter().map(Key::float).collect())
            }
            _ => node.bail_attr(
                "keys_strings",
                "exactly one of keys_strings, keys_int64s and keys_floats must be given (keys_tensor is not supported)",
            )?,
        }
    };
    let values = {
        let value_strings = strs("values_strings")?;
        let value_ints = ints(node, "values_int64s")?;
        let value_floats = floats(node, "values_floats")?;
        match (value_strings.len(), value_ints.len(), value_floats.len()) {
            (_, 0, 0) if !value_strings.is_empty() => Values::Str(value_strings, default_string),
            (0, _, 0) if !value_ints.is_empty() => Values::Int(value_ints, default_int),
            (0, 0, _) if !value_floats.is_empty() => Values::Float(value_floats, default_float),
            _ => node.bail_attr(
                "values_strings",
                "exactly one of values_strings, values_int64s and values_floats must be given (values_tensor is not supported)",
            )?,
        }
    };
    let n_values = match &values {
        Values::Str(v, _) => v.len(),
        Values::Int(v, _) => v.len(),
        Values::Float(v, _) => v.len(),
    };
    if n_values != keys.len() {
        node.bail_attr(
            "values_strings",
            &format!("{} keys but {n_values} values", keys.len()),
        )?;
    }
    // The first of equal keys wins, as in onnxruntime's map built in order.
    let mut table = HashMap::with_capacity(keys.len());
    for (i, key) in keys.into_iter().enumerate() {
        table.entry(key).or_insert(i);
    }
    map_op(LabelEncoder {
        key_type,
        table,
        values,
    })
}

impl Map for LabelEncoder {
    const NAME: &'static str = "LabelEncoder";

    fn output_type(&self, input: DatumType) -> TractResult<DatumType> {
        ensure!(
            input == self.key_type,
            "LabelEncoder with {:?} keys takes {:?}, not {input:?}",
            self.key_type,
            self.key_type
        );
        Ok(match self.values {
            Values::Str(..) => DatumType::String,
            Values::Int(..) => DatumType::I64,
            Values::Float(..) => DatumType::F32,
        })
    }

    fn eval(&self, input: &Tensor) -> TractResult<Tensor> {
        let found: Vec<Option<usize>> = keys(input, self.key_type)?
            .iter()
            .map(|k| self.table.get(k).copied())
            .collect();
        let shape = input.shape().to_vec();
        Ok(match &self.values {
            Values::Str(values, default) => {
                let out: Vec<String> = found
                    .iter()
                    .map(|i| i.map_or(default, |i| &values[i]).clone())
                    .collect();
                ArrayD::from_shape_vec(shape, out)?.into_tensor()
            }
            Values::Int(values, default) => {
                let out: Vec<i64> = found
                    .iter()
                    .map(|i| i.map_or(*default, |i| values[i]))
                    .collect();
                ArrayD::from_shape_vec(shape, out)?.into_tensor()
            }
            Values::Float(values, default) => {
                let out: Vec<f32> = found
                    .iter()
                    .map(|i| i.map_or(*default, |i| values[i]))
                    .collect();
                ArrayD::from_shape_vec(shape, out)?.into_tensor()
            }
        })
    }
}
