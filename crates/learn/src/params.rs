//! Hyperparameters: set from text, listed and validated the same way for every estimator.
//!
//! A hyperparameter struct serialises to a JSON object keyed by scikit-learn's names; that
//! object is what `skiff algorithms` lists, what the model's metadata records, and what
//! `set` edits: it parses the text into the JSON value, deserialises the struct again (type
//! errors name the expected type) and then runs the estimator's [`Params::check`] (range
//! errors name the valid range).

use crate::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// An estimator's hyperparameters, named as in scikit-learn.
pub trait Params: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// The estimator's CLI name, e.g. `ridge`.
    const ALGORITHM: &'static str;

    /// Checks every value's range; `fit` and `set` call it.
    fn check(&self) -> Result<()>;

    /// The hyperparameters as a JSON object.
    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("hyperparameters serialise")
    }

    /// Names accepted by [`Params::set`], sorted.
    fn names() -> Vec<String> {
        object(&Self::default()).keys().cloned().collect()
    }

    /// Sets a hyperparameter from text, as `skiff fit --set name=value` does: `None` for an
    /// optional value, `true`/`false`, numbers, or text. Unknown names and invalid values are
    /// errors that list what is valid; on error nothing changes.
    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let mut map = object(self);
        if !map.contains_key(name) {
            return Err(Error::UnknownParam {
                algorithm: Self::ALGORITHM,
                name: name.into(),
                valid: Self::names().join(", "),
            });
        }
        map.insert(name.into(), parse(value));
        let updated: Self =
            serde_json::from_value(Value::Object(map)).map_err(|e| Error::InvalidParam {
                name: name.into(),
                value: value.into(),
                expected: expected(&e.to_string()),
            })?;
        updated.check()?;
        *self = updated;
        Ok(())
    }
}

fn object<P: Serialize>(params: &P) -> Map<String, Value> {
    match serde_json::to_value(params) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("hyperparameters serialise to a JSON object"),
    }
}

/// Text as the JSON value it most likely means.
pub(crate) fn parse(text: &str) -> Value {
    let text = text.trim();
    match text {
        "None" | "none" | "null" => return Value::Null,
        "true" | "True" => return Value::Bool(true),
        "false" | "False" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Some(n) = text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.into())
}

/// serde's "invalid type: string \"x\", expected f64" in a user's words.
fn expected(serde_message: &str) -> String {
    let wanted = serde_message
        .rsplit_once("expected ")
        .map_or(serde_message, |(_, wanted)| wanted);
    match wanted {
        "f64" | "f32" => "a number".into(),
        "u64" | "u32" | "usize" => "a whole number, 0 or more".into(),
        "i64" | "i32" => "a whole number".into(),
        "a boolean" => "true or false".into(),
        // serde lists an enum's variants as "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
        other if other.starts_with('`') => {
            format!("one of {}", other.replace(" or ", ", ").replace('`', "\""))
        }
        other => other.replace('`', "\""),
    }
}

/// A seed for `random_state = None`: the process's hasher keys, which the OS randomises,
/// mixed with the time.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// The error for a value out of range.
pub(crate) fn invalid(name: &str, value: impl ToString, expected: &str) -> Error {
    Error::InvalidParam {
        name: name.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Checks that `value` is finite and positive.
pub(crate) fn positive(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "a positive finite number"))
    }
}

/// Checks that `value` is finite and 0 or more.
pub(crate) fn non_negative(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, value, "a finite number, 0 or more"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Demo {
        alpha: f64,
        max_iter: u64,
        max_depth: Option<u64>,
        fit_intercept: bool,
        criterion: Criterion,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Criterion {
        Gini,
        Entropy,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                alpha: 1.0,
                max_iter: 100,
                max_depth: None,
                fit_intercept: true,
                criterion: Criterion::Gini,
            }
        }
    }

    impl Params for Demo {
        const ALGORITHM: &'static str = "demo";
        fn check(&self) -> Result<()> {
            positive("alpha", self.alpha)
        }
    }

    #[test]
    fn set_parses_each_kind_of_value() {
        let mut p = Demo::default();
        p.set("alpha", "0.5").unwrap();
        p.set("max_iter", "7").unwrap();
        p.set("max_depth", "3").unwrap();
        p.set("fit_intercept", "false").unwrap();
        p.set("criterion", "entropy").unwrap();
        assert_eq!(
            p,
            Demo {
                alpha: 0.5,
                max_iter: 7,
                max_depth: Some(3),
                fit_intercept: false,
                criterion: Criterion::Entropy
            }
        );
        p.set("max_depth", "None").unwrap();
        assert_eq!(p.max_depth, None);
        p.set("alpha", "2").unwrap();
        assert_eq!(p.alpha, 2.0);
    }

    #[test]
    fn errors_name_what_is_valid_and_change_nothing() {
        let mut p = Demo::default();
        let cases = [
            (
                "beta",
                "1",
                "demo has no hyperparameter \"beta\" (valid: alpha, criterion, fit_intercept, max_depth, max_iter)",
            ),
            ("alpha", "abc", "invalid hyperparameter alpha=abc: a number"),
            (
                "alpha",
                "-1",
                "invalid hyperparameter alpha=-1: a positive finite number",
            ),
            (
                "max_iter",
                "-3",
                "invalid hyperparameter max_iter=-3: a whole number, 0 or more",
            ),
            (
                "max_iter",
                "1.5",
                "invalid hyperparameter max_iter=1.5: a whole number, 0 or more",
            ),
            (
                "fit_intercept",
                "yes",
                "invalid hyperparameter fit_intercept=yes: true or false",
            ),
            (
                "criterion",
                "gain",
                "invalid hyperparameter criterion=gain: one of \"gini\", \"entropy\"",
            ),
        ];
        for (name, value, message) in cases {
            let err = p.set(name, value).unwrap_err().to_string();
            assert_eq!(err, message);
        }
        assert_eq!(p, Demo::default());
    }
}
