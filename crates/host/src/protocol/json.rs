//! Tensor data in JSON: nested lists parsed flat, then typed by the input's datatype.

use super::ApiError;
use super::tensor::{Elements, Wire};
use serde::Deserialize;

/// A request's `data`, flattened while it is parsed: nested lists cost no tree of values.
#[derive(Debug, Default)]
pub struct FlatData(Vec<Scalar>);

impl FlatData {
    /// Booleans, as the gRPC form's typed contents carry them.
    #[cfg(feature = "server")]
    pub(crate) fn bools(v: impl IntoIterator<Item = bool>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Bool).collect())
    }

    /// Signed integers.
    #[cfg(feature = "server")]
    pub(crate) fn ints(v: impl IntoIterator<Item = i64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Int).collect())
    }

    /// Unsigned integers.
    #[cfg(feature = "server")]
    pub(crate) fn uints(v: impl IntoIterator<Item = u64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::UInt).collect())
    }

    /// Floats.
    #[cfg(feature = "server")]
    pub(crate) fn floats(v: impl IntoIterator<Item = f64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Float).collect())
    }

    /// Strings.
    #[cfg(feature = "server")]
    pub(crate) fn strings(v: impl IntoIterator<Item = String>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Str).collect())
    }
}

/// One element of [`FlatData`].
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// `null`: a missing value, NaN in a float tensor (JSON has no NaN).
    Null,
    /// An object: never a valid element.
    Other,
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut elements = Vec::new();
        deserializer.deserialize_any(Flatten(&mut elements))?;
        Ok(FlatData(elements))
    }
}

struct Flatten<'a>(&'a mut Vec<Scalar>);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tensor data: numbers, booleans or strings, in a flat or nested list")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Scalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Scalar::Int(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Scalar::UInt(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Scalar::Float(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(Scalar::Str(v.to_string()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(Scalar::Str(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Scalar::Null);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.push(Scalar::Other);
        Ok(())
    }
}

pub(super) fn decode_json(name: &str, wire: Wire, data: FlatData) -> Result<Elements, ApiError> {
    let bad =
        |what: &str| ApiError::bad_request(format!("input {name:?}: every element must be {what}"));
    let flat = data.0;
    Ok(match wire {
        Wire::Bool => Elements::Bool(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Bool(b) => Some(b),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("true or false"))?,
        ),
        Wire::Bytes => Elements::Str(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Str(s) => Some(s),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a string"))?,
        ),
        Wire::F32 | Wire::F64 => Elements::Float(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Float(f) => Some(f),
                    Scalar::Int(i) => Some(i as f64),
                    Scalar::UInt(u) => Some(u as f64),
                    Scalar::Null => Some(f64::NAN),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a number (or null for a missing value)"))?,
        ),
        _ => Elements::Int(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Int(i) => Some(i128::from(i)),
                    Scalar::UInt(u) => Some(i128::from(u)),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("an integer"))?,
        ),
    })
}
