//! Growing one CART tree, and the fitted tree.

use ndarray::ArrayView2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// The fitted tree
// ---------------------------------------------------------------------------------------------

/// A fitted binary tree, its nodes in depth-first order (node 0 is the root; a branch's left
/// child follows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Per node, the feature it splits on (0 for leaves).
    pub feature: Vec<u32>,
    /// Per node, the float32 threshold: a row goes left when `x as f32 <= threshold`.
    pub threshold: Vec<f32>,
    /// Per node, its left child, or 0 for a leaf.
    pub left: Vec<u32>,
    /// Per node, its right child, or 0 for a leaf.
    pub right: Vec<u32>,
    /// Number of values per node: classes for a classifier, 1 for a regressor.
    pub n_outputs: usize,
    /// Per node, `n_outputs` values: class probabilities or the mean target.
    pub value: Vec<f64>,
}

impl Tree {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.feature.len()
    }

    /// True when node `i` is a leaf.
    pub fn is_leaf(&self, i: usize) -> bool {
        self.left[i] == 0
    }

    /// Depth of the deepest leaf (a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.node_count()];
        let mut max = 0;
        for i in 0..self.node_count() {
            if !self.is_leaf(i) {
                for c in [self.left[i], self.right[i]] {
                    depth[c as usize] = depth[i] + 1;
                    max = max.max(depth[i] + 1);
                }
            }
        }
        max
    }

    /// The leaf a row reaches; `row` must have every feature the tree uses.
    pub fn leaf(&self, row: impl Fn(usize) -> f64) -> usize {
        let mut i = 0;
        while !self.is_leaf(i) {
            let x = row(self.feature[i] as usize) as f32;
            i = if x <= self.threshold[i] {
                self.left[i]
            } else {
                self.right[i]
            } as usize;
        }
        i
    }

    /// The values of node `i`.
    pub fn values(&self, i: usize) -> &[f64] {
        &self.value[i * self.n_outputs..(i + 1) * self.n_outputs]
    }
}

// ---------------------------------------------------------------------------------------------
// Growing a tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    Gini,
    Entropy,
    SquaredError,
}

/// How to grow one tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Growth {
    pub criterion: Criterion,
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Features to look at per node (non-constant ones; more when none of them splits).
    pub max_features: usize,
}

/// Training data in the layout the split search reads: float32 features column by column.
pub(crate) struct Data<'a> {
    /// `n_features` columns of `n_rows` values.
    pub columns: Vec<f32>,
    pub n_rows: usize,
    pub n_features: usize,
    pub target: Target<'a>,
}

pub(crate) enum Target<'a> {
    Classes {
        indices: &'a [usize],
        n_classes: usize,
    },
    Values(&'a [f64]),
}

impl<'a> Data<'a> {
    pub(crate) fn new(x: ArrayView2<'_, f64>, target: Target<'a>) -> Self {
        let (n_rows, n_features) = x.dim();
        let mut columns = Vec::with_capacity(n_rows * n_features);
        for f in 0..n_features {
            // `+ 0.0` turns -0.0 into 0.0, so equal values have equal sort keys.
            columns.extend(x.column(f).iter().map(|&v| v as f32 + 0.0));
        }
        Data {
            columns,
            n_rows,
            n_features,
            target,
        }
    }

    fn column(&self, f: usize) -> &[f32] {
        &self.columns[f * self.n_rows..(f + 1) * self.n_rows]
    }

    /// Number of statistics a node keeps: class weights, or weight, sum and sum of squares.
    fn n_stats(&self) -> usize {
        match self.target {
            Target::Classes { n_classes, .. } => n_classes,
            Target::Values(_) => 3,
        }
    }

    #[inline]
    fn add(&self, stats: &mut [f64], sample: usize, w: f64) {
        match self.target {
            Target::Classes { indices, .. } => stats[indices[sample]] += w,
            Target::Values(y) => {
                let v = y[sample];
                stats[0] += w;
                stats[1] += w * v;
                stats[2] += w * v * v;
            }
        }
    }
}

/// A key whose unsigned order is the order of finite float32 values.
#[inline]
fn sort_key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

#[inline]
fn unpack(packed: u64) -> (f32, u32) {
    let key = (packed >> 32) as u32;
    let bits = if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    };
    (f32::from_bits(bits), packed as u32)
}

/// The threshold between consecutive distinct float32 values `a < b`, as scikit-learn takes
/// it: their midpoint, or `a` where the midpoint rounds up to `b`.
pub fn split_threshold(a: f32, b: f32) -> f32 {
    let t = (a as f64 / 2.0 + b as f64 / 2.0) as f32;
    if t == b || !t.is_finite() { a } else { t }
}

fn total_weight(criterion: Criterion, stats: &[f64]) -> f64 {
    match criterion {
        Criterion::SquaredError => stats[0],
        _ => stats.iter().sum(),
    }
}

fn impurity(criterion: Criterion, stats: &[f64]) -> f64 {
    let w = total_weight(criterion, stats);
    if w <= 0.0 {
        return 0.0;
    }
    match criterion {
        Criterion::Gini => 1.0 - stats.iter().map(|c| (c / w) * (c / w)).sum::<f64>(),
        Criterion::Entropy => -stats
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| (c / w) * (c / w).ln())
            .sum::<f64>(),
        Criterion::SquaredError => stats[2] / w - (stats[1] / w) * (stats[1] / w),
    }
}

/// A quantity whose maximum over a node's splits is the split of largest impurity decrease:
/// minus the children's impurities weighted by their weights, up to a constant.
fn proxy(criterion: Criterion, left: &[f64], right: &[f64], wl: f64, wr: f64) -> f64 {
    match criterion {
        Criterion::Gini => {
            left.iter().map(|c| c * c).sum::<f64>() / wl
                + right.iter().map(|c| c * c).sum::<f64>() / wr
        }
        Criterion::Entropy => {
            let plogp = |s: &[f64], w: f64| {
                s.iter()
                    .filter(|&&c| c > 0.0)
                    .map(|&c| c * c.ln())
                    .sum::<f64>()
                    - w * w.ln()
            };
            plogp(left, wl) + plogp(right, wr)
        }
        Criterion::SquaredError => left[1] * left[1] / wl + right[1] * right[1] / wr,
    }
}

/// A node still to grow: its rows `samples[start..end]`, its depth, and its parent with whether
/// it is that parent's right child.
type Pending = (usize, usize, usize, Option<(usize, bool)>);

struct Split {
    feature: usize,
    threshold: f32,
    proxy: f64,
}

/// Grows a tree on the rows with nonzero `weights` (bootstrap counts; all ones for a tree).
/// `rng` orders the features looked at per node; `None` looks at them in column order.
pub(crate) fn grow(
    data: &Data<'_>,
    weights: &[f64],
    growth: &Growth,
    mut rng: Option<&mut ChaCha8Rng>,
) -> Tree {
    let k = data.n_stats();
    let criterion = growth.criterion;
    let mut samples: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&s| weights[s as usize] > 0.0)
        .collect();
    let mut tree = Tree {
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        n_outputs: if criterion == Criterion::SquaredError {
            1
        } else {
            k
        },
        value: Vec::new(),
    };
    let mut features: Vec<usize> = (0..data.n_features).collect();
    // Per feature, the node's rows as `sort_key(value) << 32 | row`: sorting plain integers is
    // much faster than sorting pairs by a float comparison.
    let mut sorted: Vec<u64> = Vec::with_capacity(samples.len());
    let mut node_stats = vec![0.0; k];
    let mut left = vec![0.0; k];
    let mut right = vec![0.0; k];
    let mut stack: Vec<Pending> = vec![(0, samples.len(), 0, None)];
    while let Some((start, end, depth, parent)) = stack.pop() {
        let id = tree.feature.len();
        if let Some((p, is_right)) = parent {
            if is_right {
                tree.right[p] = id as u32;
            } else {
                tree.left[p] = id as u32;
            }
        }
        node_stats.iter_mut().for_each(|s| *s = 0.0);
        for &s in &samples[start..end] {
            data.add(&mut node_stats, s as usize, weights[s as usize]);
        }
        let w_node = total_weight(criterion, &node_stats);
        match criterion {
            Criterion::SquaredError => tree.value.push(node_stats[1] / w_node),
            _ => tree.value.extend(node_stats.iter().map(|c| c / w_node)),
        }
        tree.feature.push(0);
        tree.threshold.push(0.0);
        tree.left.push(0);
        tree.right.push(0);

        let n = end - start;
        let is_leaf = n < growth.min_samples_split
            || n < 2 * growth.min_samples_leaf
            || growth.max_depth.is_some_and(|d| depth >= d)
            || impurity(criterion, &node_stats) <= f64::EPSILON;
        if is_leaf {
            continue;
        }

        // Look at features in a random order (Fisher-Yates as the search goes), until
        // `max_features` non-constant ones have been seen and at least one split was found.
        let mut best: Option<Split> = None;
        let mut visited = 0;
        for j in 0..features.len() {
            if visited >= growth.max_features && best.is_some() {
                break;
            }
            if let Some(rng) = rng.as_deref_mut() {
                let pick = rng.random_range(j..features.len());
                features.swap(j, pick);
            }
            let f = features[j];
            let column = data.column(f);
            sorted.clear();
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &s in &samples[start..end] {
                let v = column[s as usize];
                lo = lo.min(v);
                hi = hi.max(v);
                sorted.push((sort_key(v) as u64) << 32 | s as u64);
            }
            if lo >= hi {
                continue;
            }
            visited += 1;
            sorted.sort_unstable();
            left.iter_mut().for_each(|s| *s = 0.0);
            right.copy_from_slice(&node_stats);
            let mut wl = 0.0;
            for i in 0..n - 1 {
                let (v, s) = unpack(sorted[i]);
                let w = weights[s as usize];
                data.add(&mut left, s as usize, w);
                data.add(&mut right, s as usize, -w);
                wl += w;
                let next = unpack(sorted[i + 1]).0;
                if v == next {
                    continue;
                }
                let n_left = i + 1;
                if n_left < growth.min_samples_leaf {
                    continue;
                }
                if n - n_left < growth.min_samples_leaf {
                    break;
                }
                let wr = w_node - wl;
                let p = proxy(criterion, &left, &right, wl, wr);
                if best.as_ref().is_none_or(|b| p > b.proxy) {
                    best = Some(Split {
                        feature: f,
                        threshold: split_threshold(v, next),
                        proxy: p,
                    });
                }
            }
        }
        let Some(split) = best else { continue };

        let column = data.column(split.feature);
        let part = &mut samples[start..end];
        let mut mid = 0;
        for i in 0..part.len() {
            if column[part[i] as usize] <= split.threshold {
                part.swap(i, mid);
                mid += 1;
            }
        }
        if mid == 0 || mid == n {
            continue;
        }
        tree.feature[id] = split.feature as u32;
        tree.threshold[id] = split.threshold;
        // The left child is popped first, so it is numbered next: id + 1.
        stack.push((start + mid, end, depth + 1, Some((id, true))));
        stack.push((start, start + mid, depth + 1, Some((id, false))));
    }
    tree
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_floats() {
        let values = [-3.5f32, -1e-30, 0.0, 1e-30, 1.0, 2.5e9, f32::MAX, f32::MIN];
        let mut keys: Vec<u64> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (sort_key(v) as u64) << 32 | i as u64)
            .collect();
        keys.sort_unstable();
        let sorted: Vec<f32> = keys.iter().map(|&k| unpack(k).0).collect();
        let mut expected = values.to_vec();
        expected.sort_by(f32::total_cmp);
        assert_eq!(sorted, expected);
    }
}
