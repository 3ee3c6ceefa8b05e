//! Growing one tree on binned features from gradients and hessians, as scikit-learn's
//! `TreeGrower` does: best-first (the leaf whose split gains most is split next) up to
//! `max_leaf_nodes`, histograms of gradients per feature and bin (the larger child's as its
//! parent's minus its sibling's), and for each feature the best bin threshold with missing
//! values tried on either side, or the best set of categories.

use super::bins::FeatureBins;
use super::trees::{Node, Rule, Tree};
use rayon::prelude::*;
/// Fewest hessian-weighted rows a category needs to be a candidate for the left side, and
/// the smoothing of its value (scikit-learn's `MIN_CAT_SUPPORT`).
const MIN_CAT_SUPPORT: f64 = 10.0;
/// A child whose hessians sum to less is not made (scikit-learn's `min_hessian_to_split`).
const MIN_HESSIAN_TO_SPLIT: f64 = 1e-3;
/// Rows a thread partitions at once when a node splits.
const PARTITION_CHUNK: usize = 16_384;

/// How a tree grows.
pub(crate) struct GrowOptions {
    pub max_leaf_nodes: Option<usize>,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2_regularization: f64,
    pub shrinkage: f64,
    /// The bin of missing values (`max_bins`); histograms have one more bin than this.
    pub missing: u8,
}

/// Buffers that growing trees reuse, so that a fit allocates (and the system zeroes) a few
/// of them rather than some for every node of every tree: histograms (a node's go back here
/// when it becomes a leaf, and the next node's are taken from here), the rows a split
/// sends right, held while its rows are partitioned, a node's gathered gradients and
/// hessians, and the row indices of a tree (given back with [`Scratch::give_rows`]).
#[derive(Default)]
pub(crate) struct Scratch {
    free: Vec<Vec<Bin>>,
    spill: Vec<u32>,
    gathered: (Vec<f32>, Vec<f32>),
    rows: Vec<u32>,
}

impl Scratch {
    /// A histogram buffer of `len` empty bins.
    fn take(&mut self, len: usize) -> Vec<Bin> {
        match self.free.pop() {
            Some(mut hist) => {
                hist.clear();
                hist.resize(len, Bin::default());
                hist
            }
            None => vec![Bin::default(); len],
        }
    }

    fn give(&mut self, hist: Vec<Bin>) {
        if hist.capacity() > 0 {
            self.free.push(hist);
        }
    }

    /// Takes back a grown tree's row indices ([`Grown::rows`]) for the next tree.
    pub(crate) fn give_rows(&mut self, rows: Vec<u32>) {
        self.rows = rows;
    }
}

/// One bin's sums.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

/// A node's split: where rows go, and what it gains.
#[derive(Debug, Clone)]
struct Split {
    gain: f64,
    feature: usize,
    /// Numeric: rows in bins up to this one go left.
    bin: usize,
    /// Categorical: the bins that go left (the missing bin included where missing go left).
    left_bins: Option<Vec<bool>>,
    missing_left: bool,
    /// The left child's sums of gradients and hessians.
    left_sums: (f64, f64),
}

/// A node still open to splitting.
struct Open {
    id: usize,
    start: usize,
    end: usize,
    depth: usize,
    sum_g: f64,
    sum_h: f64,
    hist: Vec<Bin>,
    split: Option<Split>,
}

/// A grown tree, and which training rows each leaf holds.
pub(crate) struct Grown {
    pub tree: Tree,
    /// Row indices, grouped by leaf.
    pub rows: Vec<u32>,
    /// Each leaf: its node and its range in `rows`.
    pub leaves: Vec<(usize, usize, usize)>,
}

/// Grows a tree on `binned` (feature-major bins of the training rows) fitting `gradients`
/// and `hessians` (None where they are all 1), in buffers of `scratch`.
pub(crate) fn grow(
    binned: &[Vec<u8>],
    bins: &[FeatureBins],
    gradients: &[f32],
    hessians: Option<&[f32]>,
    options: &GrowOptions,
    scratch: &mut Scratch,
) -> Grown {
    let grower = Grower {
        binned,
        bins,
        gradients,
        hessians,
        options,
        width: options.missing as usize + 1,
    };
    grower.grow(scratch)
}

struct Grower<'a> {
    binned: &'a [Vec<u8>],
    bins: &'a [FeatureBins],
    gradients: &'a [f32],
    hessians: Option<&'a [f32]>,
    options: &'a GrowOptions,
    /// Bins per feature in a histogram, the missing bin included.
    width: usize,
}

impl Grower<'_> {
    fn grow(&self, scratch: &mut Scratch) -> Grown {
        let n = self.gradients.len();
        let mut rows = std::mem::take(&mut scratch.rows);
        rows.clear();
        rows.extend(0..n as u32);
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut leaves = Vec::new();
        let hist = self.root_histogram(scratch.take(self.binned.len() * self.width));
        let (sum_g, sum_h) = self.sums(&rows);
        let mut open = vec![Open {
            id: 0,
            start: 0,
            end: n,
            depth: 0,
            sum_g,
            sum_h,
            hist,
            split: None,
        }];
        if self.splittable(n, 0, sum_h) {
            open[0].split = self.best_split(&open[0]);
        }
        let mut n_leaves = 1;
        loop {
            // The open node whose split gains most, the first of equals.
            let best = open
                .iter()
                .enumerate()
                .filter_map(|(i, o)| o.split.as_ref().map(|s| (i, s.gain)))
                .fold(None, |best: Option<(usize, f64)>, (i, gain)| match best {
                    Some((_, g)) if g >= gain => best,
                    _ => Some((i, gain)),
                });
            let Some((at, _)) = best else { break };
            let node = open.swap_remove(at);
            let split = node.split.clone().expect("chosen for its split");
            let (left, right) = self.apply(&node, &split, &mut rows, &mut nodes, scratch);
            n_leaves += 1;
            if self.options.max_leaf_nodes == Some(n_leaves) {
                scratch.give(node.hist);
                open.push(left);
                open.push(right);
                break;
            }
            for child in self.open_children(node, left, right, &rows, scratch) {
                open.push(child);
            }
            // Children that cannot split become leaves now.
            let (keep, done): (Vec<Open>, Vec<Open>) =
                open.into_iter().partition(|o| o.split.is_some());
            for leaf in done {
                self.finish_leaf(leaf, &mut nodes, &mut leaves, scratch);
            }
            open = keep;
        }
        for leaf in open {
            self.finish_leaf(leaf, &mut nodes, &mut leaves, scratch);
        }
        Grown {
            tree: Tree { nodes },
            rows,
            leaves,
        }
    }

    fn finish_leaf(
        &self,
        node: Open,
        nodes: &mut [Node],
        leaves: &mut Vec<(usize, usize, usize)>,
        scratch: &mut Scratch,
    ) {
        let value = self.value(node.sum_g, node.sum_h) * self.options.shrinkage;
        nodes[node.id] = Node::Leaf { value };
        leaves.push((node.id, node.start, node.end));
        scratch.give(node.hist);
    }

    fn value(&self, g: f64, h: f64) -> f64 {
        -g / (h + self.options.l2_regularization + 1e-15)
    }

    fn splittable(&self, n: usize, depth: usize, sum_h: f64) -> bool {
        n >= 2 * self.options.min_samples_leaf
            && self.options.max_depth.is_none_or(|d| depth < d)
            && sum_h >= MIN_HESSIAN_TO_SPLIT
    }

    fn sums(&self, rows: &[u32]) -> (f64, f64) {
        let g = rows
            .iter()
            .map(|&i| self.gradients[i as usize] as f64)
            .sum();
        let h = match self.hessians {
            Some(h) => rows.iter().map(|&i| h[i as usize] as f64).sum(),
            None => rows.len() as f64,
        };
        (g, h)
    }

    /// Every feature's histogram over every row, feature-major, in `hist` (empty bins): the
    /// rows in order, so their gradients are read as they are.
    fn root_histogram(&self, mut hist: Vec<Bin>) -> Vec<Bin> {
        let n = self.gradients.len();
        hist.par_chunks_mut(self.width)
            .enumerate()
            .with_min_len(self.min_len(n))
            .for_each(|(j, hist)| {
                self.fill_histogram(j, None, self.gradients, self.hessians, hist)
            });
        hist
    }

    /// The gradients (and hessians, unless constant) of `rows`, gathered once into the
    /// scratch's buffers so that each feature's pass reads them in order.
    fn gather(&self, rows: &[u32], gathered: &mut (Vec<f32>, Vec<f32>)) {
        let gather = |v: &[f32], out: &mut Vec<f32>| {
            out.clear();
            out.extend(rows.iter().map(|&i| v[i as usize]));
        };
        gather(self.gradients, &mut gathered.0);
        if let Some(h) = self.hessians {
            gather(h, &mut gathered.1);
        }
    }

    /// Features a thread takes at once: all of them for a node too small to be worth
    /// sharing out.
    fn min_len(&self, n_rows: usize) -> usize {
        if n_rows * self.binned.len() < 100_000 {
            self.binned.len().max(1)
        } else {
            1
        }
    }

    /// Adds feature `j`'s histogram over `rows` (None: every row, in order), whose gradients
    /// `g` and hessians `h` are gathered, into `out` (zeros on entry).
    fn fill_histogram(
        &self,
        j: usize,
        rows: Option<&[u32]>,
        g: &[f32],
        h: Option<&[f32]>,
        out: &mut [Bin],
    ) {
        let column = &self.binned[j];
        let mut hist = [Bin::default(); 256];
        let g = g.iter().copied();
        if let Some(rows) = rows {
            let bins = rows.iter().map(|&i| column[i as usize]);
            match h {
                Some(h) => accumulate(&mut hist, bins.zip(g.zip(h.iter().copied()))),
                None => count(&mut hist, bins.zip(g)),
            }
        } else {
            let bins = column.iter().copied();
            match h {
                Some(h) => accumulate(&mut hist, bins.zip(g.zip(h.iter().copied()))),
                None => count(&mut hist, bins.zip(g)),
            }
        }
        out.copy_from_slice(&hist[..self.width]);
    }

    /// Splits `node`'s rows by `split` (left first) and makes its two children.
    fn apply(
        &self,
        node: &Open,
        split: &Split,
        rows: &mut [u32],
        nodes: &mut Vec<Node>,
        scratch: &mut Scratch,
    ) -> (Open, Open) {
        let column = &self.binned[split.feature];
        let missing = self.options.missing;
        // Which bins go left, looked up by bin.
        let mut goes_left = [false; 256];
        for (bin, left) in goes_left.iter_mut().enumerate() {
            *left = match &split.left_bins {
                Some(left_bins) => left_bins[bin],
                None if bin == missing as usize => split.missing_left,
                None => bin <= split.bin,
            };
        }
        // Rows are partitioned in parallel chunks, each keeping its order (its left rows moved
        // to its front, its right ones to the spill), then laid out left then right, chunk by
        // chunk: the same order whatever the thread count.
        let slice = &mut rows[node.start..node.end];
        if scratch.spill.len() < slice.len() {
            scratch.spill.resize(slice.len(), 0);
        }
        let spill = &mut scratch.spill[..slice.len()];
        let lefts: Vec<usize> = slice
            .par_chunks_mut(PARTITION_CHUNK)
            .zip(spill.par_chunks_mut(PARTITION_CHUNK))
            .map(|(chunk, spill)| {
                // Without a branch: each row is written to both sides and only its own side's
                // end moves on. `chunk[left]` was read already (`left <= k`), and a right
                // row written there is overwritten by the next left one or left beyond the
                // left rows.
                let (mut left, mut right) = (0, 0);
                for k in 0..chunk.len() {
                    let i = chunk[k];
                    let l = goes_left[column[i as usize] as usize] as usize;
                    chunk[left] = i;
                    spill[right] = i;
                    left += l;
                    right += 1 - l;
                }
                left
            })
            .collect();
        // Each chunk's left rows move down (never past the next chunk's), then the right
        // rows follow from the spill.
        let mut at = 0;
        for (c, &left) in lefts.iter().enumerate() {
            let start = c * PARTITION_CHUNK;
            slice.copy_within(start..start + left, at);
            at += left;
        }
        let n_left = at;
        let n_right = slice.len() - n_left;
        for (c, &left) in lefts.iter().enumerate() {
            let start = c * PARTITION_CHUNK;
            let right = (slice.len() - start).min(PARTITION_CHUNK) - left;
            slice[at..at + right].copy_from_slice(&spill[start..start + right]);
            at += right;
        }
        let feature_bins = &self.bins[split.feature];
        // Missing values not seen in training go where most rows went.
        let missing_left = if feature_bins.has_missing {
            split.missing_left
        } else {
            n_left > n_right
        };
        let rule = match &split.left_bins {
            Some(left_bins) => Rule::OneOf(
                feature_bins
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(b, _)| left_bins[*b])
                    .map(|(_, &code)| code)
                    .collect(),
            ),
            None if split.bin + 1 >= feature_bins.n_bins() => Rule::AtMost(f32::INFINITY),
            None => Rule::AtMost(feature_bins.edges[split.bin]),
        };
        let (left_id, right_id) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf { value: 0.0 });
        nodes.push(Node::Leaf { value: 0.0 });
        nodes[node.id] = Node::Split {
            feature: split.feature,
            rule,
            missing_left,
            left: left_id,
            right: right_id,
        };
        let mid = node.start + n_left;
        let (lg, lh) = split.left_sums;
        let (rg, rh) = (node.sum_g - lg, node.sum_h - lh);
        let child = |id, start, end, sum_g, sum_h| Open {
            id,
            start,
            end,
            depth: node.depth + 1,
            sum_g,
            sum_h,
            hist: Vec::new(),
            split: None,
        };
        (
            child(left_id, node.start, mid, lg, lh),
            child(right_id, mid, node.end, rg, rh),
        )
    }

    /// The children with their histograms and best splits, where they can split: in one
    /// pass over the features, each building the smaller child's histogram, taking the
    /// larger's as the parent's minus it, and searching both for their best split.
    fn open_children(
        &self,
        parent: Open,
        mut left: Open,
        mut right: Open,
        rows: &[u32],
        scratch: &mut Scratch,
    ) -> [Open; 2] {
        let can = |o: &Open| self.splittable(o.end - o.start, o.depth, o.sum_h);
        let (can_left, can_right) = (can(&left), can(&right));
        if !(can_left || can_right) {
            scratch.give(parent.hist);
            return [left, right];
        }
        let left_is_small = left.end - left.start <= right.end - right.start;
        let small_rows = if left_is_small {
            &rows[left.start..left.end]
        } else {
            &rows[right.start..right.end]
        };
        // The parent's histograms become the larger child's, less the smaller's.
        let mut small_hist = scratch.take(self.binned.len() * self.width);
        self.gather(small_rows, &mut scratch.gathered);
        let g = &scratch.gathered.0;
        let h = self.hessians.map(|_| scratch.gathered.1.as_slice());
        let mut large_hist = parent.hist;
        let (small_node, large_node) = if left_is_small {
            (&left, &right)
        } else {
            (&right, &left)
        };
        let (can_small, can_large) = if left_is_small {
            (can_left, can_right)
        } else {
            (can_right, can_left)
        };
        let (small_sums, large_sums) = (sums_of(small_node), sums_of(large_node));
        let splits: Vec<(Option<Split>, Option<Split>)> = small_hist
            .par_chunks_mut(self.width)
            .zip(large_hist.par_chunks_mut(self.width))
            .enumerate()
            .with_min_len(self.min_len(parent.end - parent.start))
            .map(|(j, (small, large))| {
                self.fill_histogram(j, Some(small_rows), g, h, small);
                for (l, s) in large.iter_mut().zip(small.iter()) {
                    l.g -= s.g;
                    l.h -= s.h;
                    l.n -= s.n;
                }
                let split =
                    |hist: &[Bin], (n, sum_g, sum_h)| self.feature_split(j, hist, n, sum_g, sum_h);
                (
                    can_small.then(|| split(small, small_sums)).flatten(),
                    can_large.then(|| split(large, large_sums)).flatten(),
                )
            })
            .collect();
        let (small_splits, large_splits): (Vec<_>, Vec<_>) = splits.into_iter().unzip();
        let (small_split, large_split) = (best_of(small_splits), best_of(large_splits));
        if left_is_small {
            (left.hist, left.split, right.hist, right.split) =
                (small_hist, small_split, large_hist, large_split);
        } else {
            (right.hist, right.split, left.hist, left.split) =
                (small_hist, small_split, large_hist, large_split);
        }
        [left, right]
    }

    /// Feature `j`'s best split of a node of `n` rows whose sums are `g` and `h`, given its
    /// histogram there.
    fn feature_split(&self, j: usize, hist: &[Bin], n: usize, g: f64, h: f64) -> Option<Split> {
        if self.bins[j].categorical {
            self.best_categories(j, hist, n, g, h)
        } else {
            self.best_threshold(j, hist, n, g, h)
        }
    }

    /// The best split of `node` over all features.
    fn best_split(&self, node: &Open) -> Option<Split> {
        let (n, g, h) = sums_of(node);
        let candidates: Vec<Option<Split>> = node
            .hist
            .par_chunks(self.width)
            .enumerate()
            .with_min_len(self.min_len(n))
            .map(|(j, hist)| self.feature_split(j, hist, n, g, h))
            .collect();
        best_of(candidates)
    }

    /// The gain of a split into sums (gl, hl) and (gr, hr) of a node whose sums are (g, h).
    fn gain(&self, (gl, hl): (f64, f64), (gr, hr): (f64, f64), (g, h): (f64, f64)) -> f64 {
        let loss = |g: f64, h: f64| g * self.value(g, h);
        loss(g, h) - loss(gl, hl) - loss(gr, hr)
    }

    fn allowed(&self, n_left: usize, n_right: usize, hl: f64, hr: f64) -> Constraint {
        let min = self.options.min_samples_leaf;
        if n_left < min || hl < MIN_HESSIAN_TO_SPLIT {
            Constraint::TooFewLeft
        } else if n_right < min || hr < MIN_HESSIAN_TO_SPLIT {
            Constraint::TooFewRight
        } else {
            Constraint::Ok
        }
    }

    /// The best threshold of numeric feature `j`: bins scanned left to right with missing
    /// values on the right, then (where training had missing values) right to left with them
    /// on the left.
    fn best_threshold(&self, j: usize, hist: &[Bin], n: usize, g: f64, h: f64) -> Option<Split> {
        let fb = &self.bins[j];
        let n_bins = fb.n_bins();
        let has_missing = fb.has_missing;
        let mut best: Option<Split> = None;
        let mut consider = |gain: f64, bin: usize, missing_left: bool, left_sums| {
            if gain > 0.0 && best.as_ref().is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    gain,
                    feature: j,
                    bin,
                    left_bins: None,
                    missing_left,
                    left_sums,
                });
            }
        };
        let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
        let end = (n_bins - 1 + usize::from(has_missing)).min(n_bins);
        for (bin, b) in hist.iter().enumerate().take(end) {
            gl += b.g;
            hl += b.h;
            nl += b.n as usize;
            match self.allowed(nl, n - nl, hl, h - hl) {
                Constraint::TooFewLeft => continue,
                Constraint::TooFewRight => break,
                Constraint::Ok => {}
            }
            consider(
                self.gain((gl, hl), (g - gl, h - hl), (g, h)),
                bin,
                false,
                (gl, hl),
            );
        }
        if has_missing && n_bins >= 2 {
            let (mut gr, mut hr, mut nr) = (0.0, 0.0, 0usize);
            for bin in (0..n_bins - 1).rev() {
                let b = &hist[bin + 1];
                gr += b.g;
                hr += b.h;
                nr += b.n as usize;
                match self.allowed(n - nr, nr, h - hr, hr) {
                    Constraint::TooFewRight => continue,
                    Constraint::TooFewLeft => break,
                    Constraint::Ok => {}
                }
                consider(
                    self.gain((g - gr, h - hr), (gr, hr), (g, h)),
                    bin,
                    true,
                    (g - gr, h - hr),
                );
            }
        }
        best
    }

    /// The best set of categories of feature `j` to send left: categories (and missing
    /// values) with enough support, sorted by their smoothed mean gradient, taken from
    /// either end up to half of them.
    fn best_categories(&self, j: usize, hist: &[Bin], n: usize, g: f64, h: f64) -> Option<Split> {
        let fb = &self.bins[j];
        let missing = self.options.missing as usize;
        let support = n as f64 / h;
        let mut used: Vec<(usize, f64)> = (0..fb.n_bins())
            .chain(fb.has_missing.then_some(missing))
            .filter(|&b| hist[b].h * support >= MIN_CAT_SUPPORT)
            .map(|b| (b, hist[b].g / (hist[b].h + MIN_CAT_SUPPORT)))
            .collect();
        if used.len() <= 1 {
            return None;
        }
        used.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut best: Option<(f64, usize, bool, (f64, f64))> = None; // gain, how many, from the end, sums
        for from_end in [false, true] {
            let middle = used.len().div_ceil(2) - usize::from(from_end);
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
            for i in 0..middle {
                let (bin, _) = used[if from_end { used.len() - 1 - i } else { i }];
                gl += hist[bin].g;
                hl += hist[bin].h;
                nl += hist[bin].n as usize;
                match self.allowed(nl, n - nl, hl, h - hl) {
                    Constraint::TooFewLeft => continue,
                    Constraint::TooFewRight => break,
                    Constraint::Ok => {}
                }
                let gain = self.gain((gl, hl), (g - gl, h - hl), (g, h));
                if gain > 0.0 && best.is_none_or(|b| gain > b.0) {
                    best = Some((gain, i + 1, from_end, (gl, hl)));
                }
            }
        }
        let (gain, count, from_end, left_sums) = best?;
        let mut left_bins = vec![false; self.width];
        let chosen: Box<dyn Iterator<Item = &(usize, f64)>> = if from_end {
            Box::new(used.iter().rev().take(count))
        } else {
            Box::new(used.iter().take(count))
        };
        for &(bin, _) in chosen {
            left_bins[bin] = true;
        }
        Some(Split {
            gain,
            feature: j,
            bin: 0,
            missing_left: left_bins[missing],
            left_bins: Some(left_bins),
            left_sums,
        })
    }
}

/// A node's rows and sums of gradients and hessians.
fn sums_of(node: &Open) -> (usize, f64, f64) {
    (node.end - node.start, node.sum_g, node.sum_h)
}

/// Adds each row's gradient and hessian to its bin.
#[inline(always)]
fn accumulate(hist: &mut [Bin; 256], rows: impl Iterator<Item = (u8, (f32, f32))>) {
    for (b, (g, h)) in rows {
        let bin = &mut hist[b as usize];
        bin.g += g as f64;
        bin.h += h as f64;
        bin.n += 1;
    }
}

/// Adds each row's gradient to its bin, and counts the rows: hessians that are all 1 sum
/// to the count, set once per bin rather than added per row.
#[inline(always)]
fn count(hist: &mut [Bin; 256], rows: impl Iterator<Item = (u8, f32)>) {
    for (b, g) in rows {
        let bin = &mut hist[b as usize];
        bin.g += g as f64;
        bin.n += 1;
    }
    for bin in hist.iter_mut() {
        bin.h = bin.n as f64;
    }
}

/// The split that gains most, the first feature's of equals; None where none gains.
fn best_of(candidates: Vec<Option<Split>>) -> Option<Split> {
    candidates
        .into_iter()
        .flatten()
        .fold(None, |best: Option<Split>, s| match best {
            Some(b) if b.gain >= s.gain => Some(b),
            _ => Some(s),
        })
}

enum Constraint {
    Ok,
    TooFewLeft,
    TooFewRight,
}
