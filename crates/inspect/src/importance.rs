//! Permutation importance, as `sklearn.inspection.permutation_importance` computes it: the
//! score on the rows as they are, less the score with one feature's values shuffled across the
//! rows, `n_repeats` times per feature.

use crate::{Feature, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use skiff_runtime::Tensor;

/// How much one feature matters: the score lost when its values are shuffled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Importance {
    /// The feature.
    pub feature: String,
    /// The mean loss over the repeats (`importances_mean`).
    pub mean: f64,
    /// Their standard deviation, of the population as numpy's `std` (`importances_std`).
    pub std: f64,
    /// Each repeat's loss (`importances`).
    pub raw: Vec<f64>,
}

/// Every feature's importance, and the score they are taken from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Importances {
    /// The score on the rows as they are.
    pub baseline: f64,
    /// One per feature, in the order given.
    pub features: Vec<Importance>,
}

/// The permutation importance of each of `features` in `inputs` (`rows` rows), where `score`
/// is the model's score on the inputs it is given, greater being better (scikit-learn's
/// scorers: errors negated). Every feature is shuffled by the same `n_repeats` permutations of
/// the rows drawn from `seed`, as scikit-learn shuffles every column from one seed; features
/// are scored in parallel.
pub fn permutation_importance<S>(
    inputs: &[Tensor],
    rows: usize,
    features: &[Feature],
    n_repeats: usize,
    seed: u64,
    score: S,
) -> Result<Importances>
where
    S: Fn(&[Tensor]) -> Result<f64> + Sync,
{
    let baseline = score(inputs)?;
    let orders: Vec<Vec<usize>> = {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order: Vec<usize> = (0..rows).collect();
        (0..n_repeats)
            .map(|_| {
                order.shuffle(&mut rng);
                order.clone()
            })
            .collect()
    };
    let features = features
        .par_iter()
        .map(|feature| {
            let raw = orders
                .iter()
                .map(|order| {
                    let mut shuffled = inputs.to_vec();
                    feature.permute(&mut shuffled, order)?;
                    Ok(baseline - score(&shuffled)?)
                })
                .collect::<Result<Vec<f64>>>()?;
            let (mean, std) = mean_std(&raw);
            Ok(Importance {
                feature: feature.name.clone(),
                mean,
                std,
                raw,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Importances { baseline, features })
}

/// The mean and the population standard deviation (numpy's `std`, `ddof=0`).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_runtime::TensorData;

    /// A "model" whose score is the share of rows where column 0 still equals the row index:
    /// column 1 is ignored, so only column 0 matters.
    fn score(x: &[Tensor]) -> Result<f64> {
        let TensorData::Fp32(v) = &x[0].data else {
            unreachable!()
        };
        let rows = v.len() / 2;
        let kept = (0..rows).filter(|&r| v[2 * r] == r as f32).count();
        Ok(kept as f64 / rows as f64)
    }

    #[test]
    fn a_feature_the_model_ignores_has_no_importance() {
        let rows = 200;
        let data = (0..rows).flat_map(|r| [r as f32, (r % 7) as f32]).collect();
        let x = vec![Tensor::new(vec![rows, 2], TensorData::Fp32(data)).unwrap()];
        let features = [
            Feature {
                name: "used".into(),
                input: 0,
                column: Some(0),
            },
            Feature {
                name: "ignored".into(),
                input: 0,
                column: Some(1),
            },
        ];
        let result = permutation_importance(&x, rows, &features, 5, 0, score).unwrap();
        assert_eq!(result.baseline, 1.0);
        let [used, ignored] = &result.features[..] else {
            panic!("two features")
        };
        assert!(used.mean > 0.9, "{used:?}");
        assert_eq!(used.raw.len(), 5);
        assert_eq!((ignored.mean, ignored.std), (0.0, 0.0));
        // The same seed draws the same permutations.
        let again = permutation_importance(&x, rows, &features, 5, 0, score).unwrap();
        assert_eq!(again.features[0].raw, used.raw);
    }
}
