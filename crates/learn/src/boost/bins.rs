//! Binning: each feature's values mapped to at most `max_bins` integer bins, as scikit-learn's
//! `_BinMapper` does, with one more bin for missing values.
//!
//! Numeric features are binned on their float32 values, so that a split's threshold compares
//! the same way natively and in the exported graph (which reads float32): with at most
//! `max_bins` distinct values each gets a bin and thresholds lie between neighbours; with more,
//! thresholds are the values' quantiles (numpy's `averaged_inverted_cdf`, on at most 200,000
//! rows drawn with the seed). A value goes to the first bin whose threshold is not below it.
//! Categorical features hold category codes (whole numbers, 0 or more); each code seen in
//! training is a bin.

use crate::tree::split_threshold;
use crate::{Error, Result};
use ndarray::ArrayView2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows the quantiles of a numeric feature are taken from, at most (scikit-learn's
/// `subsample`).
const SUBSAMPLE: usize = 200_000;

/// How one feature's values map to bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    /// Whether the feature holds category codes.
    pub categorical: bool,
    /// Numeric: the upper bound of each bin but the last, increasing. Categorical: the codes
    /// seen in training, increasing, one a bin.
    pub edges: Vec<f32>,
    /// Whether training had missing values in this feature.
    pub has_missing: bool,
}

impl FeatureBins {
    /// How many bins non-missing values fall in.
    pub fn n_bins(&self) -> usize {
        if self.categorical {
            self.edges.len()
        } else {
            self.edges.len() + 1
        }
    }

    /// The bin of `value`; `missing` for NaN (and, for categories, codes not seen in
    /// training, which are then treated as missing, as scikit-learn does).
    pub fn bin(&self, value: f64, missing: u8) -> u8 {
        if value.is_nan() {
            return missing;
        }
        let v = value as f32;
        if self.categorical {
            return self
                .edges
                .binary_search_by(|c| c.total_cmp(&v))
                .map_or(missing, |i| i as u8);
        }
        self.edges.partition_point(|&t| t < v) as u8
    }
}

/// Learns every feature's bins from `x`; `categorical[j]` says which hold category codes.
pub(crate) fn fit_bins(
    x: ArrayView2<'_, f64>,
    categorical: &[bool],
    max_bins: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<FeatureBins>> {
    let rows: Option<Vec<usize>> = (x.nrows() > SUBSAMPLE).then(|| {
        (0..SUBSAMPLE)
            .map(|_| rng.random_range(0..x.nrows()))
            .collect()
    });
    (0..x.ncols())
        .into_par_iter()
        .map(|j| {
            let column = x.column(j);
            let has_missing = column.iter().any(|v| v.is_nan());
            if categorical[j] {
                let mut codes: Vec<f32> = Vec::new();
                for &v in column.iter().filter(|v| !v.is_nan()) {
                    if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
                        return Err(Error::Column(format!(
                            "categorical feature {j} holds {v}, not a category code (a whole number, 0 or more): encode the column's categories as codes, or leave it out of categorical_features"
                        )));
                    }
                    codes.push(v as f32);
                }
                codes.sort_by(f32::total_cmp);
                codes.dedup();
                if codes.len() > max_bins {
                    return Err(Error::Column(format!(
                        "categorical feature {j} has {} categories, more than max_bins={max_bins}: group the rare ones, or treat the column as numbers",
                        codes.len()
                    )));
                }
                return Ok(FeatureBins {
                    categorical: true,
                    edges: codes,
                    has_missing,
                });
            }
            let mut values: Vec<f32> = match &rows {
                Some(rows) => rows.iter().map(|&i| column[i] as f32).collect(),
                None => column.iter().map(|&v| v as f32).collect(),
            };
            values.retain(|v| !v.is_nan());
            values.sort_by(f32::total_cmp);
            Ok(FeatureBins {
                categorical: false,
                edges: thresholds(&values, max_bins),
                has_missing,
            })
        })
        .collect()
}

/// The bin thresholds of sorted float32 `values`: between distinct neighbours where there are
/// at most `max_bins` of them, else quantiles.
fn thresholds(values: &[f32], max_bins: usize) -> Vec<f32> {
    let mut distinct = values.to_vec();
    distinct.dedup();
    if distinct.len() <= 1 {
        return Vec::new();
    }
    if distinct.len() <= max_bins {
        return distinct
            .windows(2)
            .map(|w| split_threshold(w[0], w[1]))
            .collect();
    }
    let n = values.len();
    let mut edges: Vec<f32> = (1..max_bins)
        .map(|k| {
            // numpy's averaged_inverted_cdf at k / max_bins.
            let g = n as f64 * k as f64 / max_bins as f64;
            let j = g.floor() as usize;
            if g == j as f64 && j > 0 {
                (values[j - 1] as f64 / 2.0 + values[j] as f64 / 2.0) as f32
            } else {
                values[j.min(n - 1)]
            }
        })
        .collect();
    edges.dedup();
    edges
}

/// Every feature of `x` binned, feature-major: `binned[j][i]` is row i's bin of feature j.
pub(crate) fn bin_columns(
    x: ArrayView2<'_, f64>,
    bins: &[FeatureBins],
    missing: u8,
) -> Vec<Vec<u8>> {
    bins.par_iter()
        .enumerate()
        .map(|(j, b)| x.column(j).iter().map(|&v| b.bin(v, missing)).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn few_values_get_a_bin_each_and_missing_the_last() {
        let x = array![
            [1.0, 0.0],
            [2.0, 2.0],
            [f64::NAN, 5.0],
            [2.0, f64::NAN],
            [4.0, 2.0]
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let bins = fit_bins(x.view(), &[false, true], 255, &mut rng).unwrap();
        assert_eq!(bins[0].edges, vec![1.5, 3.0]);
        assert!(bins[0].has_missing);
        assert_eq!(bins[1].edges, vec![0.0, 2.0, 5.0]);
        let binned = bin_columns(x.view(), &bins, 255);
        assert_eq!(binned[0], vec![0, 1, 255, 1, 2]);
        assert_eq!(binned[1], vec![0, 1, 2, 255, 1]);
        // An unseen category is missing.
        assert_eq!(bins[1].bin(3.0, 255), 255);
    }

    #[test]
    fn many_values_are_binned_by_quantiles() {
        let values: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        let edges = thresholds(&values, 10);
        assert_eq!(edges.len(), 9);
        assert_eq!(edges[0], 99.5);
        assert_eq!(edges[8], 899.5);
    }

    #[test]
    fn category_codes_must_be_whole_numbers() {
        let x = array![[0.5], [1.0]];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = fit_bins(x.view(), &[true], 255, &mut rng).unwrap_err();
        assert!(err.to_string().contains("not a category code"), "{err}");
    }
}
