//! k-means clustering, fitted by `linfa-clustering` (k-means++ seeding, Lloyd iterations).

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use linfa::prelude::*;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// k-means clustering (scikit-learn's `KMeans`).
///
/// ```
/// use skiff_learn::KMeans;
/// use ndarray::array;
///
/// let x = array![[0.0, 0.0], [0.1, 0.2], [5.0, 5.0], [5.1, 4.9]];
/// let model = KMeans::params().n_clusters(2).random_state(Some(0)).fit(x.view()).unwrap();
/// let labels = model.predict(x.view());
/// assert_eq!(labels[0], labels[1]);
/// assert_ne!(labels[0], labels[2]);
/// ```
pub struct KMeans;

/// Hyperparameters of [`KMeans`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KMeansParams {
    /// Number of clusters (default 8).
    pub n_clusters: usize,
    /// Runs from different seeds; the one with the least inertia is kept (default 1, which is
    /// what scikit-learn's `"auto"` means for k-means++).
    pub n_init: usize,
    /// Most iterations of one run (default 300).
    pub max_iter: u64,
    /// Stop when centres move less than this (default 1e-4).
    pub tol: f64,
    /// Seed for the k-means++ seeding; `None` draws one, a number makes runs reproducible.
    pub random_state: Option<u64>,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            n_clusters: 8,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            random_state: None,
        }
    }
}

impl KMeans {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> KMeansParams {
        KMeansParams::default()
    }
}

impl KMeansParams {
    /// Sets `n_clusters`.
    pub fn n_clusters(mut self, n_clusters: usize) -> Self {
        self.n_clusters = n_clusters;
        self
    }

    /// Sets `random_state`.
    pub fn random_state(mut self, random_state: Option<u64>) -> Self {
        self.random_state = random_state;
        self
    }

    /// Clusters rows `x`.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<FittedKMeans> {
        use rand_xoshiro::Xoshiro256Plus;
        use rand_xoshiro::rand_core::SeedableRng;
        self.check()?;
        check_data(x, x.nrows())?;
        if self.n_clusters > x.nrows() {
            return Err(Error::TooFewRows(format!(
                "n_clusters={} but there are only {} rows: ask for at most {} clusters",
                self.n_clusters,
                x.nrows(),
                x.nrows()
            )));
        }
        let seed = self.random_state.unwrap_or_else(params::random_seed);
        let dataset = DatasetBase::from(x.to_owned());
        let fitted = linfa_clustering::KMeans::params_with_rng(
            self.n_clusters,
            Xoshiro256Plus::seed_from_u64(seed),
        )
        .n_runs(self.n_init)
        .max_n_iterations(self.max_iter)
        .tolerance(self.tol)
        .fit(&dataset)
        .map_err(|e| Error::Fit(e.to_string()))?;
        let mut model = FittedKMeans {
            centres: fitted.centroids().to_owned(),
            inertia: 0.0,
            params: self.clone(),
        };
        // linfa's inertia is a mean, and of the distances to the centres before their last
        // update; scikit-learn's is the sum to the final centres.
        model.inertia = model
            .squared_distances(x)
            .rows()
            .into_iter()
            .map(|row| row.fold(f64::INFINITY, |m, &d| m.min(d)))
            .sum();
        Ok(model)
    }
}

impl Params for KMeansParams {
    const ALGORITHM: &'static str = "kmeans";
    fn check(&self) -> Result<()> {
        if self.n_clusters == 0 {
            return Err(params::invalid("n_clusters", 0, "a positive integer"));
        }
        if self.n_init == 0 {
            return Err(params::invalid("n_init", 0, "a positive integer"));
        }
        if self.max_iter == 0 {
            return Err(params::invalid("max_iter", 0, "a positive integer"));
        }
        params::positive("tol", self.tol)
    }
}

impl Estimator for KMeansParams {
    const TASK: Task = Task::Clustering;
    const SUMMARY: &'static str = "k-means clustering (k-means++ seeding)";
    const NEEDS_SCALING: bool = true;
    type Model = FittedKMeans;
    fn fit_rows(&self, x: ArrayView2<'_, f64>) -> Result<FittedKMeans> {
        self.fit(x)
    }
}

/// A fitted [`KMeans`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedKMeans {
    /// Cluster centres, clusters × features (scikit-learn `cluster_centers_`).
    pub centres: Array2<f64>,
    /// Sum of squared distances of the training rows to their centres (`inertia_`).
    pub inertia: f64,
    /// The hyperparameters it was fitted with.
    pub params: KMeansParams,
}

impl FittedKMeans {
    /// Euclidean distance of each row to each centre, rows × clusters (scikit-learn's
    /// `transform`).
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.squared_distances(x).mapv_into(f64::sqrt)
    }

    /// Squared Euclidean distance of each row to each centre, rows × clusters.
    fn squared_distances(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut d = Array2::zeros((x.nrows(), self.centres.nrows()));
        for (row, mut out) in x.rows().into_iter().zip(d.rows_mut()) {
            for (centre, value) in self.centres.rows().into_iter().zip(out.iter_mut()) {
                *value = row
                    .iter()
                    .zip(centre)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>();
            }
        }
        d
    }

    /// The nearest centre of each row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        let negated = -self.transform(x);
        crate::classifier::argmax_rows(&negated)
    }
}

impl Fitted for FittedKMeans {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Clusters(self.predict(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.transform(x)
    }

    /// `inertia`, once, at step 0: linfa's Lloyd iterations neither report their values nor
    /// say how many ran.
    fn curves(&self) -> Vec<Curve> {
        vec![Curve {
            name: "inertia".into(),
            points: vec![(0, self.inertia)],
        }]
    }
}

impl Export for FittedKMeans {
    fn algorithm(&self) -> &str {
        KMeansParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Clustering
    }

    fn n_features(&self) -> usize {
        self.centres.ncols()
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let k = self.centres.nrows() as u64;
        crate::graph::squared_distances(g, x, &self.centres, None, "squared");
        g.node("Sqrt", &["squared"], &["scores"], vec![]);
        g.node(
            "ArgMin",
            &["scores"],
            &["label"],
            vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
        );
        g.output("label", ElemType::Int64, &[Dim::batch()]);
        g.output("scores", ElemType::Float, &[Dim::batch(), Dim::Fixed(k)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inertia_is_the_sum_of_squared_distances_to_the_nearest_centre() {
        let x = ndarray::array![[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 4.0]];
        let model = KMeans::params()
            .n_clusters(2)
            .random_state(Some(0))
            .fit(x.view())
            .unwrap();
        // Centres (0, 1) and (10, 2): 1 + 1 + 4 + 4 (linfa's mean would be 2.5).
        assert!((model.inertia - 10.0).abs() < 1e-6, "{}", model.inertia);
        let curves = Fitted::curves(&model);
        assert_eq!(curves.len(), 1);
        assert_eq!(
            (curves[0].name.as_str(), &curves[0].points[..]),
            ("inertia", &[(0, model.inertia)][..])
        );
    }
}
