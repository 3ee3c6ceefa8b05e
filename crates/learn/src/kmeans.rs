//! k-means clustering as scikit-learn fits it (greedy k-means++ seeding, Lloyd iterations),
//! with distances through one matrix product per chunk of rows and the chunks in parallel.

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};
use std::ops::Range;

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

    /// Clusters rows `x`: `n_init` runs of k-means++ seeding and Lloyd iterations as
    /// scikit-learn runs them (on rows centred by their mean, tolerance scaled by the mean
    /// feature variance, empty clusters moved to the farthest rows), the run of least inertia
    /// kept. Rows go through the distances in parallel blocks, one matrix product per chunk;
    /// the blocks are fixed by the row count, so a seed gives the same model on any machine.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<FittedKMeans> {
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
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mean = x.mean_axis(Axis(0)).expect("rows were checked");
        let mut centred = x.to_owned();
        Zip::from(centred.rows_mut()).par_for_each(|mut row| row -= &mean);
        let rows = Rows::new(centred.view());
        // scikit-learn's tolerance: `tol` times the mean of the features' variances.
        let tol = self.tol * rows.norms.sum() / centred.len() as f64;
        let mut best: Option<Run> = None;
        for _ in 0..self.n_init {
            let seeds = rows.kmeans_plusplus(self.n_clusters, &mut rng);
            let run = rows.lloyd(seeds, self.max_iter, tol);
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let best = best.expect("n_init is positive");
        Ok(FittedKMeans {
            centres: best.centres + &mean,
            inertia: best.inertia,
            n_iter: best.inertia_curve.len() as u64,
            inertia_curve: best.inertia_curve,
            params: self.clone(),
        })
    }
}

/// Rows per matrix product in the assignment step (scikit-learn's chunk size).
const CHUNK: usize = 256;

/// Centred rows with their squared norms, split into blocks (summed on their own, then in
/// order, so sums do not depend on how many threads ran).
struct Rows<'a> {
    x: ArrayView2<'a, f64>,
    norms: Array1<f64>,
    blocks: Vec<Range<usize>>,
}

/// One k-means run: final centres (of the centred rows), their inertia, and the inertia seen
/// at each iteration.
struct Run {
    centres: Array2<f64>,
    inertia: f64,
    inertia_curve: Vec<f64>,
}

/// What one block's rows add up to in an assignment step.
struct Assigned {
    sums: Array2<f64>,
    counts: Vec<usize>,
    inertia: f64,
}

impl<'a> Rows<'a> {
    fn new(x: ArrayView2<'a, f64>) -> Rows<'a> {
        let blocks = crate::blocks::rows(x.nrows(), CHUNK);
        let mut norms = Array1::zeros(x.nrows());
        Zip::from(&mut norms)
            .and(x.rows())
            .par_for_each(|norm, row| *norm = row.dot(&row));
        Rows { x, norms, blocks }
    }

    /// scikit-learn's greedy k-means++: each new centre is the best, by the potential it
    /// leaves, of `2 + ln k` rows drawn with probability proportional to their squared
    /// distance to the nearest centre so far.
    fn kmeans_plusplus(&self, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
        let (n, d) = self.x.dim();
        let trials = 2 + (k as f64).ln() as usize;
        let mut centres = Array2::zeros((k, d));
        let first = rng.random_range(0..n);
        centres.row_mut(0).assign(&self.x.row(first));
        let mut closest = self.distances_to(self.x.slice(s![first..=first, ..]));
        let mut closest = closest.remove(0);
        let mut potential = closest.iter().sum::<f64>();
        for c in 1..k {
            let cumulative: Vec<f64> = closest
                .iter()
                .scan(0.0, |acc, &v| {
                    *acc += v;
                    Some(*acc)
                })
                .collect();
            let candidates: Vec<usize> = (0..trials)
                .map(|_| {
                    let target = rng.random::<f64>() * potential;
                    cumulative.partition_point(|&v| v < target).min(n - 1)
                })
                .collect();
            let picked = self.x.select(Axis(0), &candidates);
            let mut best: Option<(f64, Vec<f64>, usize)> = None;
            for (distances, &candidate) in self
                .distances_to(picked.view())
                .into_iter()
                .zip(&candidates)
            {
                let merged: Vec<f64> = distances
                    .iter()
                    .zip(&closest)
                    .map(|(a, b)| a.min(*b))
                    .collect();
                let pot = merged.iter().sum::<f64>();
                if best.as_ref().is_none_or(|b| pot < b.0) {
                    best = Some((pot, merged, candidate));
                }
            }
            let (pot, merged, candidate) = best.expect("at least two trials");
            potential = pot;
            closest = merged;
            centres.row_mut(c).assign(&self.x.row(candidate));
        }
        centres
    }

    /// Squared distances of every row to each of `points`, one vector per point.
    fn distances_to(&self, points: ArrayView2<'_, f64>) -> Vec<Vec<f64>> {
        let point_norms: Vec<f64> = points.rows().into_iter().map(|r| r.dot(&r)).collect();
        let parts: Vec<Array2<f64>> = self
            .blocks
            .par_iter()
            .map(|block| {
                let rows = self.x.slice(s![block.clone(), ..]);
                let mut d = rows.dot(&points.t());
                for (i, mut row) in d.rows_mut().into_iter().enumerate() {
                    let norm = self.norms[block.start + i];
                    for (v, pn) in row.iter_mut().zip(&point_norms) {
                        *v = (norm - 2.0 * *v + pn).max(0.0);
                    }
                }
                d
            })
            .collect();
        (0..points.nrows())
            .map(|p| {
                parts
                    .iter()
                    .flat_map(|part| part.column(p).to_vec())
                    .collect()
            })
            .collect()
    }

    /// Assigns every row to its nearest centre, writing `labels` (and each row's squared
    /// distance to it into `distances`), and sums the rows of each cluster.
    fn assign(
        &self,
        centres: &Array2<f64>,
        labels: &mut [usize],
        distances: &mut [f64],
    ) -> Assigned {
        let (k, d) = centres.dim();
        let centre_norms: Vec<f64> = centres.rows().into_iter().map(|r| r.dot(&r)).collect();
        let mut label_parts = split_mut(labels, &self.blocks);
        let mut distance_parts = split_mut(distances, &self.blocks);
        let parts: Vec<Assigned> = self
            .blocks
            .par_iter()
            .zip(label_parts.par_iter_mut())
            .zip(distance_parts.par_iter_mut())
            .map(|((block, labels), distances)| {
                let mut out = Assigned {
                    sums: Array2::zeros((k, d)),
                    counts: vec![0; k],
                    inertia: 0.0,
                };
                for start in (block.start..block.end).step_by(CHUNK) {
                    let end = (start + CHUNK).min(block.end);
                    let rows = self.x.slice(s![start..end, ..]);
                    let dots = rows.dot(&centres.t());
                    for (i, (row, dots)) in rows.rows().into_iter().zip(dots.rows()).enumerate() {
                        let mut best = (0, f64::INFINITY);
                        for (j, (dot, norm)) in dots.iter().zip(&centre_norms).enumerate() {
                            let value = norm - 2.0 * dot;
                            if value < best.1 {
                                best = (j, value);
                            }
                        }
                        let at = start - block.start + i;
                        let distance = (self.norms[start + i] + best.1).max(0.0);
                        labels[at] = best.0;
                        distances[at] = distance;
                        out.counts[best.0] += 1;
                        out.inertia += distance;
                        out.sums.row_mut(best.0).scaled_add(1.0, &row);
                    }
                }
                out
            })
            .collect();
        let mut total = Assigned {
            sums: Array2::zeros((k, d)),
            counts: vec![0; k],
            inertia: 0.0,
        };
        for part in parts {
            total.sums += &part.sums;
            for (t, c) in total.counts.iter_mut().zip(&part.counts) {
                *t += c;
            }
            total.inertia += part.inertia;
        }
        total
    }

    /// Lloyd iterations from `centres` until the labels stop changing, the centres move less
    /// than `tol` in all (squared), or `max_iter`.
    fn lloyd(&self, mut centres: Array2<f64>, max_iter: u64, tol: f64) -> Run {
        let n = self.x.nrows();
        let mut labels = vec![usize::MAX; n];
        let mut previous = vec![usize::MAX; n];
        let mut distances = vec![0.0; n];
        let mut inertia_curve = Vec::new();
        let mut strict = false;
        for _ in 0..max_iter {
            let mut step = self.assign(&centres, &mut labels, &mut distances);
            inertia_curve.push(step.inertia);
            self.relocate_empty(&mut step, &labels, &distances);
            let mut new = step.sums;
            for (mut row, &count) in new.rows_mut().into_iter().zip(&step.counts) {
                if count > 0 {
                    row /= count as f64;
                }
            }
            let shift = (&new - &centres).pow2().sum();
            centres = new;
            if labels == previous {
                strict = true;
                break;
            }
            if shift <= tol {
                break;
            }
            previous.copy_from_slice(&labels);
        }
        if !strict {
            self.assign(&centres, &mut labels, &mut distances);
        }
        // The inertia to the final centres, summed by block as the assignment sums are.
        let inertia = crate::blocks::fold(
            n,
            CHUNK,
            |block| {
                block
                    .map(|i| squared_distance(self.x.row(i), centres.row(labels[i])))
                    .sum::<f64>()
            },
            0.0,
            |total, part| total + part,
        );
        Run {
            centres,
            inertia,
            inertia_curve,
        }
    }

    /// scikit-learn's handling of empty clusters: each takes one of the rows farthest from
    /// their centres, which leaves its old cluster.
    fn relocate_empty(&self, step: &mut Assigned, labels: &[usize], distances: &[f64]) {
        let empty: Vec<usize> = (0..step.counts.len())
            .filter(|&j| step.counts[j] == 0)
            .collect();
        if empty.is_empty() {
            return;
        }
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| distances[b].total_cmp(&distances[a]).then(a.cmp(&b)));
        for (&cluster, &far) in empty.iter().zip(&order) {
            let row = self.x.row(far);
            let old = labels[far];
            step.sums.row_mut(old).scaled_add(-1.0, &row);
            step.sums.row_mut(cluster).assign(&row);
            step.counts[old] -= 1;
            step.counts[cluster] = 1;
        }
    }
}

/// The squared Euclidean distance between `a` and `b`.
fn squared_distance(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// `values` split at the blocks' bounds.
fn split_mut<'v, T>(mut values: &'v mut [T], blocks: &[Range<usize>]) -> Vec<&'v mut [T]> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (head, tail) = values.split_at_mut(block.len());
        parts.push(head);
        values = tail;
    }
    parts
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
    /// Lloyd iterations run (`n_iter_`).
    #[serde(default)]
    pub n_iter: u64,
    /// The inertia at each iteration's assignment step (to the centres it started from).
    #[serde(default)]
    pub inertia_curve: Vec<f64>,
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
        Zip::from(d.rows_mut())
            .and(x.rows())
            .par_for_each(|mut out, row| {
                for (centre, value) in self.centres.rows().into_iter().zip(out.iter_mut()) {
                    *value = squared_distance(row, centre);
                }
            });
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

    /// The inertia at each Lloyd iteration, as scikit-learn's `verbose` prints it.
    fn curves(&self) -> Vec<Curve> {
        vec![Curve::from_values("inertia", &self.inertia_curve)]
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
        // Centres (0, 1) and (10, 2): 1 + 1 + 4 + 4.
        assert!((model.inertia - 10.0).abs() < 1e-6, "{}", model.inertia);
        let curves = Fitted::curves(&model);
        assert_eq!(curves.len(), 1);
        let points = &curves[0].points;
        assert_eq!(points.len() as u64, model.n_iter);
        assert!(points.windows(2).all(|w| w[1].1 <= w[0].1), "{points:?}");
        assert!(
            points.last().unwrap().1 >= model.inertia - 1e-9,
            "{points:?}"
        );
    }
}

#[cfg(test)]
mod solver_tests {
    use super::*;

    /// Three well separated blobs of 2,000 rows, far from the origin.
    fn blobs() -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let centres = [
            [1000.0, 0.0, 5.0],
            [1010.0, 10.0, 5.0],
            [1000.0, 10.0, -5.0],
        ];
        Array2::from_shape_fn((6000, 3), |(i, j)| {
            centres[i % 3][j] + rng.random::<f64>() - 0.5
        })
    }

    #[test]
    fn finds_separated_blobs_far_from_the_origin() {
        let x = blobs();
        let model = KMeans::params()
            .n_clusters(3)
            .random_state(Some(1))
            .fit(x.view())
            .unwrap();
        let labels = model.predict(x.view());
        for i in 3..x.nrows() {
            assert_eq!(labels[i], labels[i % 3], "row {i}");
        }
        // Uniform noise of width 1 in 3 features: 1/12 per feature and row.
        let expected = 6000.0 * 3.0 / 12.0;
        assert!(
            (model.inertia / expected - 1.0).abs() < 0.05,
            "{}",
            model.inertia
        );
    }

    #[test]
    fn a_seed_gives_the_same_model_whatever_the_threads() {
        let x = blobs();
        let params = KMeans::params().n_clusters(5).random_state(Some(3));
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| params.fit(x.view()).unwrap());
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| params.fit(x.view()).unwrap());
        assert_eq!(one, many);
    }

    #[test]
    fn an_empty_cluster_takes_the_row_farthest_from_its_centre() {
        let x = ndarray::array![[0.0], [1.0], [2.0], [9.0]];
        let rows = Rows::new(x.view());
        // The centre at 100 gets no row; it takes 9, the row farthest from centre 0.
        let run = rows.lloyd(ndarray::array![[0.0], [100.0]], 300, 0.0);
        assert_eq!(run.centres, ndarray::array![[1.0], [9.0]]);
        assert_eq!(run.inertia, 2.0);
    }
}
