//! Differentially private estimators, as IBM's diffprivlib fits them: `dp-gaussian-nb`
//! ([`DpGaussianNb`]) and `dp-logistic-regression` ([`DpLogisticRegression`]).
//!
//! Each fit is `epsilon`-differentially private for one row added or removed, provided the
//! features' bounds (or the rows' norm bound) are known without looking at the data: skiff
//! refuses to read them from it, where diffprivlib warns and does. The exported model is an
//! ordinary ONNX graph; its `skiff.dp.*` metadata records the guarantee. Noise comes from a
//! ChaCha20 generator seeded by the operating system, or by `random_state` for repeatable
//! experiments (which then are not private).

mod logistic;
mod mechanisms;
mod naive_bayes;

pub use logistic::{DpLogisticRegression, DpLogisticRegressionParams, FittedDpLogisticRegression};
pub use naive_bayes::{DpGaussianNb, DpGaussianNbParams, FittedDpGaussianNb};

use crate::params;
use crate::{Error, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The noise generator: seeded by `random_state`, or by the operating system.
fn rng(random_state: Option<u64>) -> ChaCha20Rng {
    match random_state {
        Some(seed) => ChaCha20Rng::seed_from_u64(seed),
        None => ChaCha20Rng::from_os_rng(),
    }
}

/// Checks a privacy budget: positive, or infinite (no privacy, for comparisons).
fn check_epsilon(epsilon: f64) -> Result<()> {
    if epsilon > 0.0 && !epsilon.is_nan() {
        Ok(())
    } else {
        Err(params::invalid(
            "epsilon",
            epsilon,
            "a positive number, or inf",
        ))
    }
}

/// The `skiff.dp.*` metadata of a private model.
fn metadata(epsilon: f64, mechanism: &str, knowledge: (&str, String)) -> Vec<(String, String)> {
    vec![
        ("skiff.dp.epsilon".into(), epsilon_text(epsilon)),
        ("skiff.dp.delta".into(), "0".into()),
        (
            "skiff.dp.neighbours".into(),
            "one row added or removed".into(),
        ),
        ("skiff.dp.mechanism".into(), mechanism.into()),
        (format!("skiff.dp.{}", knowledge.0), knowledge.1),
    ]
}

fn epsilon_text(epsilon: f64) -> String {
    if epsilon.is_infinite() {
        "inf".into()
    } else {
        epsilon.to_string()
    }
}

/// `LOWER:UPPER` pairs, comma-separated.
fn parse_pairs(text: &str) -> Result<Vec<(f64, f64)>> {
    text.split(',')
        .map(|pair| {
            let parsed = pair.split_once(':').and_then(|(l, u)| {
                Some((l.trim().parse::<f64>().ok()?, u.trim().parse::<f64>().ok()?))
            });
            match parsed {
                Some((l, u)) if l.is_finite() && u.is_finite() && l < u => Ok((l, u)),
                _ => Err(params::invalid(
                    "bounds",
                    text,
                    "LOWER:UPPER pairs of finite numbers, lower below upper, comma-separated",
                )),
            }
        })
        .collect()
}

/// Feature bounds from text: `LOWER:UPPER` for every feature, or one pair per feature,
/// comma-separated, in column order.
fn parse_bounds(text: Option<&str>, algorithm: &str, n_features: usize) -> Result<Vec<(f64, f64)>> {
    let Some(text) = text else {
        return Err(Error::Fit(format!(
            "{algorithm} needs the features' bounds, known beforehand: --set bounds=LOWER:UPPER \
             (every feature) or --set bounds=L1:U1,L2:U2,... (one pair per feature); reading \
             them from the data would not be private"
        )));
    };
    let pairs = parse_pairs(text)?;
    match pairs.len() {
        1 => Ok(vec![pairs[0]; n_features]),
        n if n == n_features => Ok(pairs),
        n => Err(Error::Fit(format!(
            "bounds names {n} LOWER:UPPER pairs but the data has {n_features} features: give one \
             pair for all, or one per feature"
        ))),
    }
}

/// `epsilon` in hyperparameter JSON: a number, or `"inf"`.
mod epsilon_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(epsilon: &f64, s: S) -> Result<S::Ok, S::Error> {
        if epsilon.is_infinite() {
            s.serialize_str("inf")
        } else {
            s.serialize_f64(*epsilon)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Epsilon {
            Number(f64),
            Text(String),
        }
        match Epsilon::deserialize(d)? {
            Epsilon::Number(v) => Ok(v),
            Epsilon::Text(t) if matches!(t.as_str(), "inf" | "infinity" | "Infinity") => {
                Ok(f64::INFINITY)
            }
            Epsilon::Text(_) => Err(serde::de::Error::custom(
                "expected a positive number, or inf",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_one_pair_for_all_or_one_per_feature() {
        assert_eq!(
            parse_bounds(Some("0:1"), "x", 2).unwrap(),
            vec![(0.0, 1.0); 2]
        );
        assert_eq!(
            parse_bounds(Some("0:1, -2:2"), "x", 2).unwrap(),
            vec![(0.0, 1.0), (-2.0, 2.0)]
        );
        for bad in ["1:0", "a:b", "0:1,0:1,0:1", "0"] {
            assert!(parse_bounds(Some(bad), "x", 2).is_err(), "{bad}");
        }
        let err = parse_bounds(None, "dp-gaussian-nb", 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--set bounds=LOWER:UPPER"), "{err}");
    }
}
