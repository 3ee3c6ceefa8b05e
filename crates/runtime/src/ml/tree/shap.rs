//! Exact path-dependent TreeSHAP (Lundberg et al., "Consistent individualized feature
//! attribution for tree ensembles", algorithm 2), as `shap.TreeExplainer` computes it with
//! `feature_perturbation="tree_path_dependent"`.
//!
//! An ensemble's op writes one score per class or target, then finishes them (base values,
//! onnxruntime's two-class layouts, a post transform). [`TreeScores`] holds the trees' leaf
//! values as sums per class or target ("raw" scores) and the finish up to its post transform
//! as an affine map from raw scores to the explained scores, so attributions of the raw
//! scores carry over exactly. The post transform (logistic, softmax) is not linear: the
//! explained scores are the ones it is applied to, as shap explains a boosted model's margin.
//!
//! Each node's cover (how much of the data passes through it) comes from the file's
//! `nodes_hitrates` where they are counts that add up, and otherwise from background rows
//! routed through the trees. A node no background row reaches splits its weight evenly
//! between its children; the game stays a proper average and additivity holds.

use super::{AnyMode, Compare, Forest, Node};
use crate::ml::{PostTransform, floats};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// Trees deeper than this are refused: the path buffer grows with the square of the depth.
const MAX_DEPTH: usize = 1_000;

/// An ensemble's scores as sums of its trees' leaves, and how they become the scores the op's
/// post transform is applied to.
#[derive(Debug)]
pub(crate) struct TreeScores {
    forest: Forest,
    /// Raw scores each tree adds (classes or targets).
    n_raw: usize,
    /// `n_raw` values per node, zero for branches.
    leaf_values: Vec<f64>,
    /// Explained score `o` is `sum_k map[o * n_raw + k] * raw_k + offset[o]`.
    map: Vec<f64>,
    offset: Vec<f64>,
    /// What the model applies to the explained scores next.
    pub(crate) transform: PostTransform,
    /// Covers from the file's hit counts, where they add up.
    hitrates: Option<Vec<f64>>,
    depth: usize,
}

/// An affine map of raw scores: `n_outputs x n_raw` coefficients, row by row, and
/// `n_outputs` offsets.
pub(crate) type Affine = (Vec<f64>, Vec<f64>);

/// Whether every row's walk gives a class (or target) a weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Always,
    Never,
    Sometimes,
}

impl TreeScores {
    /// `leaf_values` from [`leaf_sums`]; `map` and `offset` as the op finishes its scores.
    pub(crate) fn new(
        node: &NodeProto,
        forest: Forest,
        n_raw: usize,
        leaf_values: Vec<f64>,
        (map, offset): Affine,
        transform: PostTransform,
    ) -> TractResult<TreeScores> {
        debug_assert_eq!(map.len(), offset.len() * n_raw);
        let depth = forest.depth();
        if depth > MAX_DEPTH {
            bail!("a tree is {depth} levels deep; TreeSHAP here explains trees up to {MAX_DEPTH}");
        }
        let hitrates = hit_counts(node, &forest)?;
        Ok(TreeScores {
            forest,
            n_raw,
            leaf_values,
            map,
            offset,
            transform,
            hitrates,
            depth,
        })
    }

    /// How many scores are explained.
    pub(crate) fn n_outputs(&self) -> usize {
        self.offset.len()
    }

    /// One past the highest feature a split reads.
    pub(crate) fn n_features(&self) -> usize {
        self.forest.n_features()
    }

    /// The file's own covers, where it has hit counts that add up.
    pub(crate) fn hitrates(&self) -> Option<&[f64]> {
        self.hitrates.as_deref()
    }

    /// Each node's cover: how many of `rows` (`width` values a row) pass through it.
    pub(crate) fn covers(&self, rows: &[f32], width: usize) -> Vec<f64> {
        let mut covers = vec![0.0; self.forest.nodes.len()];
        for row in rows.chunks_exact(width) {
            for &root in &self.forest.roots {
                let mut at = root as usize;
                loop {
                    covers[at] += 1.0;
                    let node = &self.forest.nodes[at];
                    if node.is_leaf() {
                        break;
                    }
                    at = node.child(row[node.feature()]) as usize;
                }
            }
        }
        covers
    }

    /// The explained scores' expected values under `covers`: what the attributions of a row
    /// add to, with the row's scores.
    pub(crate) fn base_values(&self, covers: &[f64]) -> Vec<f64> {
        let mut raw = vec![0.0; self.n_raw];
        let mut stack = Vec::new();
        for &root in &self.forest.roots {
            stack.push((root as usize, 1.0));
            while let Some((at, weight)) = stack.pop() {
                let node = &self.forest.nodes[at];
                if node.is_leaf() {
                    for (r, v) in raw.iter_mut().zip(self.leaf(at)) {
                        *r += weight * v;
                    }
                    continue;
                }
                for child in [node.a, node.b] {
                    let f = fraction(covers, child as usize, at);
                    if f > 0.0 {
                        stack.push((child as usize, weight * f));
                    }
                }
            }
        }
        self.finish(&raw, true)
    }

    /// The attributions of one row (`width` values, `width >= n_features`) to each explained
    /// score: `width * n_outputs` values, feature by feature.
    pub(crate) fn explain_row(&self, covers: &[f64], row: &[f32]) -> Vec<f64> {
        let width = row.len();
        let mut phi = vec![0.0; width * self.n_raw];
        // Paths of 1, 2, ... depth + 1 elements, one after the other.
        let d = self.depth + 2;
        let mut buf = vec![PathElement::default(); d * (d + 1) / 2];
        let mut walk = Walk {
            scores: self,
            covers,
            row,
            phi: &mut phi,
        };
        for &root in &self.forest.roots {
            walk.recurse(root as usize, &mut buf, 0, 1.0, 1.0, usize::MAX);
        }
        let mut out = vec![0.0; width * self.n_outputs()];
        for (raw, out) in phi.chunks(self.n_raw).zip(out.chunks_mut(self.n_outputs())) {
            out.copy_from_slice(&self.finish(raw, false));
        }
        out
    }

    fn leaf(&self, at: usize) -> &[f64] {
        &self.leaf_values[at * self.n_raw..(at + 1) * self.n_raw]
    }

    /// The affine map of raw scores; its offset only for values, not for differences.
    fn finish(&self, raw: &[f64], with_offset: bool) -> Vec<f64> {
        (self.map.chunks(self.n_raw).zip(&self.offset))
            .map(|(row, &c)| {
                let linear: f64 = row.iter().zip(raw).map(|(a, r)| a * r).sum();
                if with_offset { linear + c } else { linear }
            })
            .collect()
    }
}

/// The share of `node`'s cover that goes to `child`; half where nothing reaches `node`.
fn fraction(covers: &[f64], child: usize, node: usize) -> f64 {
    if covers[node] > 0.0 {
        covers[child] / covers[node]
    } else {
        0.5
    }
}

/// The sum of each leaf's weights per raw score, `n_raw` values per node, times `scale`
/// (`1 / trees` for an average). `first_only`: only a leaf's first weight counts, as
/// onnxruntime reads a one-target regressor.
pub(crate) fn leaf_sums(forest: &Forest, n_raw: usize, first_only: bool, scale: f64) -> Vec<f64> {
    let mut values = vec![0.0; forest.nodes.len() * n_raw];
    for (i, node) in forest.nodes.iter().enumerate() {
        if !node.is_leaf() {
            continue;
        }
        let weights = &forest.weights[node.a as usize..node.b as usize];
        let weights = if first_only { &weights[..1] } else { weights };
        for w in weights {
            let target = if first_only { 0 } else { w.target as usize };
            values[i * n_raw + target] += f64::from(w.value) * scale;
        }
    }
    values
}

/// For each of `n_raw` scores: whether every walk weights it (some tree weights it at every
/// leaf), none does, or it depends on the row.
pub(crate) fn seen(forest: &Forest, n_raw: usize) -> Vec<Seen> {
    let mut named = vec![false; n_raw];
    let mut always = vec![false; n_raw];
    let tree_of = forest.tree_of_nodes();
    let mut at_every_leaf = vec![vec![true; n_raw]; forest.roots.len()];
    for (i, node) in forest.nodes.iter().enumerate() {
        if !node.is_leaf() || tree_of[i] == usize::MAX {
            continue;
        }
        let mut here = vec![false; n_raw];
        for w in &forest.weights[node.a as usize..node.b as usize] {
            here[w.target as usize] = true;
            named[w.target as usize] = true;
        }
        for (every, here) in at_every_leaf[tree_of[i]].iter_mut().zip(here) {
            *every &= here;
        }
    }
    for tree in at_every_leaf {
        for (a, every) in always.iter_mut().zip(tree) {
            *a |= every;
        }
    }
    (named.iter().zip(always))
        .map(|(&named, always)| match (named, always) {
            (_, true) => Seen::Always,
            (false, _) => Seen::Never,
            _ => Seen::Sometimes,
        })
        .collect()
}

/// `nodes_hitrates` as covers, where they are counts: none negative, every branch's the sum
/// of its children's, every root's positive. skl2onnx writes 1 for every node, which is not.
fn hit_counts(node: &NodeProto, forest: &Forest) -> TractResult<Option<Vec<f64>>> {
    let rates = floats(node, "nodes_hitrates")?;
    if rates.len() != forest.nodes.len() {
        return Ok(None);
    }
    let rates: Vec<f64> = rates.into_iter().map(f64::from).collect();
    let adds_up = forest.nodes.iter().enumerate().all(|(i, n)| {
        rates[i] >= 0.0
            && (n.is_leaf() || {
                let sum = rates[n.a as usize] + rates[n.b as usize];
                (sum - rates[i]).abs() <= 1e-6 * rates[i].max(1.0)
            })
    }) && forest.roots.iter().all(|&r| rates[r as usize] > 0.0);
    Ok(adds_up.then_some(rates))
}

impl Node {
    /// The child a value goes to.
    #[inline]
    fn child(&self, x: f32) -> u32 {
        if AnyMode::holds(self, x) || self.nan_is_true() && x.is_nan() {
            self.a
        } else {
            self.b
        }
    }
}

impl Forest {
    /// The most branches on any root-to-leaf path.
    fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = Vec::new();
        for &root in &self.roots {
            stack.push((root, 0));
            while let Some((at, depth)) = stack.pop() {
                let node = &self.nodes[at as usize];
                if node.is_leaf() {
                    deepest = deepest.max(depth);
                } else {
                    stack.push((node.a, depth + 1));
                    stack.push((node.b, depth + 1));
                }
            }
        }
        deepest
    }

    /// The tree each node belongs to (`usize::MAX` for a node no root reaches).
    fn tree_of_nodes(&self) -> Vec<usize> {
        let mut tree = vec![usize::MAX; self.nodes.len()];
        let mut stack = Vec::new();
        for (t, &root) in self.roots.iter().enumerate() {
            stack.push(root);
            while let Some(at) = stack.pop() {
                tree[at as usize] = t;
                let node = &self.nodes[at as usize];
                if !node.is_leaf() {
                    stack.extend([node.a, node.b]);
                }
            }
        }
        tree
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The split's feature; `usize::MAX` for the root's element.
    feature: usize,
    zero: f64,
    one: f64,
    weight: f64,
}

/// One row's walk of one tree, adding to its raw attributions.
struct Walk<'a> {
    scores: &'a TreeScores,
    covers: &'a [f64],
    row: &'a [f32],
    phi: &'a mut [f64],
}

impl Walk<'_> {
    /// Visits node `at`, reached with the path `buf[..parent]` and this split's fractions.
    /// The node's own path goes right after its parent's, in `buf[parent..]`, and its
    /// children's after that (shap's layout: one buffer, a segment per level).
    fn recurse(
        &mut self,
        at: usize,
        buf: &mut [PathElement],
        parent: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let (above, rest) = buf.split_at_mut(parent);
        rest[..parent].copy_from_slice(above);
        let mut depth = parent;
        extend(&mut rest[..=depth], depth, zero, one, feature);
        let node = &self.scores.forest.nodes[at];
        if node.is_leaf() {
            let n_raw = self.scores.n_raw;
            let values = self.scores.leaf(at);
            let path = &rest[..=depth];
            for i in 1..=depth {
                let el = path[i];
                let scale = unwound_sum(path, depth, i) * (el.one - el.zero);
                let phi = &mut self.phi[el.feature * n_raw..(el.feature + 1) * n_raw];
                for (p, v) in phi.iter_mut().zip(values) {
                    *p += scale * v;
                }
            }
            return;
        }
        let split = node.feature();
        let hot = node.child(self.row[split]) as usize;
        let cold = if hot == node.a as usize {
            node.b
        } else {
            node.a
        } as usize;
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        // A feature split on before: undo that split, to redo it here with both fractions.
        if let Some(k) = (1..=depth).find(|&k| rest[k].feature == split) {
            incoming_zero = rest[k].zero;
            incoming_one = rest[k].one;
            unwind(&mut rest[..=depth], depth, k);
            depth -= 1;
        }
        for (child, one) in [(hot, incoming_one), (cold, 0.0)] {
            let zero = incoming_zero * fraction(self.covers, child, at);
            if zero == 0.0 && one == 0.0 {
                // Every coalition's weight through this child is zero.
                continue;
            }
            self.recurse(child, rest, depth + 1, zero, one, split);
        }
    }
}

/// Adds an element to `path[..depth]`, updating the weights of the subsets it extends.
fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement {
        feature,
        zero,
        one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / d;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / d;
    }
}

/// Removes element `k` of `path[..=depth]`, undoing its [`extend`].
fn unwind(path: &mut [PathElement], depth: usize, k: usize) {
    let PathElement { zero, one, .. } = path[k];
    let d = (depth + 1) as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * d / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (depth - i) as f64 / d;
        } else {
            path[i].weight = path[i].weight * d / (zero * (depth - i) as f64);
        }
    }
    for i in k..depth {
        let PathElement {
            feature, zero, one, ..
        } = path[i + 1];
        path[i].feature = feature;
        path[i].zero = zero;
        path[i].one = one;
    }
}

/// The total weight of `path[..=depth]` with element `k` unwound, without changing it.
fn unwound_sum(path: &[PathElement], depth: usize, k: usize) -> f64 {
    let PathElement { zero, one, .. } = path[k];
    let mut next = path[depth].weight;
    let mut total = 0.0;
    if one != 0.0 {
        for i in (0..depth).rev() {
            let tmp = next / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (depth - i) as f64;
        }
    } else {
        for i in (0..depth).rev() {
            total += path[i].weight / (zero * (depth - i) as f64);
        }
    }
    total * (depth + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::super::tree_scores;
    use crate::rewrite::tests::{attr_floats, attr_ints, attr_string, attr_strings, ml_node};

    /// A small deterministic generator (xorshift), enough for test trees.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn unit(&mut self) -> f32 {
            (self.next() % 1000) as f32 / 1000.0
        }
    }

    const FEATURES: usize = 4;

    fn attr_int(name: &str, i: i64) -> tract_onnx::pb::AttributeProto {
        tract_onnx::pb::AttributeProto {
            name: name.into(),
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
            i,
            ..Default::default()
        }
    }

    /// A tree node for the brute force: a split (feature, threshold, left, right) or a leaf.
    enum Plain {
        Split(usize, f32, usize, usize),
        Leaf(f32),
    }

    /// A random tree of depth up to `depth`, features repeating along paths.
    fn grow(g: &mut Gen, depth: usize, nodes: &mut Vec<Plain>) -> usize {
        let at = nodes.len();
        nodes.push(Plain::Leaf(0.0));
        if depth == 0 || g.below(5) == 0 {
            nodes[at] = Plain::Leaf(g.unit() * 10.0 - 5.0);
        } else {
            let (feature, threshold) = (g.below(FEATURES as u64) as usize, g.unit());
            let left = grow(g, depth - 1, nodes);
            let right = grow(g, depth - 1, nodes);
            nodes[at] = Plain::Split(feature, threshold, left, right);
        }
        at
    }

    /// The path-dependent game's value of coalition `set` (a bit mask) for `x`.
    fn value(nodes: &[Plain], covers: &[f64], at: usize, x: &[f32], set: usize) -> f64 {
        match nodes[at] {
            Plain::Leaf(v) => f64::from(v),
            Plain::Split(f, t, l, r) if set & (1 << f) != 0 => {
                value(nodes, covers, if x[f] <= t { l } else { r }, x, set)
            }
            Plain::Split(_, _, l, r) => [l, r]
                .into_iter()
                .map(|c| {
                    let share = if covers[at] > 0.0 {
                        covers[c] / covers[at]
                    } else {
                        0.5
                    };
                    share * value(nodes, covers, c, x, set)
                })
                .sum(),
        }
    }

    fn factorial(n: usize) -> f64 {
        (1..=n).map(|k| k as f64).product()
    }

    #[test]
    fn tree_shap_is_the_exact_shapley_value_of_the_path_dependent_game() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for case in 0..200 {
            let mut nodes = Vec::new();
            grow(&mut g, 5, &mut nodes);
            let leaf = |n: &Plain| matches!(n, Plain::Leaf(_));
            let node = ml_node(
                "TreeEnsembleRegressor",
                &["x"],
                &["y"],
                vec![
                    attr_ints("nodes_treeids", &vec![0; nodes.len()]),
                    attr_ints(
                        "nodes_nodeids",
                        &(0..nodes.len() as i64).collect::<Vec<_>>(),
                    ),
                    attr_ints(
                        "nodes_featureids",
                        &(nodes.iter())
                            .map(|n| match n {
                                Plain::Split(f, ..) => *f as i64,
                                Plain::Leaf(_) => 0,
                            })
                            .collect::<Vec<_>>(),
                    ),
                    attr_strings(
                        "nodes_modes",
                        &(nodes.iter())
                            .map(|n| if leaf(n) { "LEAF" } else { "BRANCH_LEQ" })
                            .collect::<Vec<_>>(),
                    ),
                    attr_floats(
                        "nodes_values",
                        &(nodes.iter())
                            .map(|n| match n {
                                Plain::Split(_, t, ..) => *t,
                                Plain::Leaf(_) => 0.0,
                            })
                            .collect::<Vec<_>>(),
                    ),
                    attr_ints(
                        "nodes_truenodeids",
                        &(nodes.iter())
                            .map(|n| match n {
                                Plain::Split(_, _, l, _) => *l as i64,
                                Plain::Leaf(_) => 0,
                            })
                            .collect::<Vec<_>>(),
                    ),
                    attr_ints(
                        "nodes_falsenodeids",
                        &(nodes.iter())
                            .map(|n| match n {
                                Plain::Split(_, _, _, r) => *r as i64,
                                Plain::Leaf(_) => 0,
                            })
                            .collect::<Vec<_>>(),
                    ),
                    attr_ints(
                        "target_treeids",
                        &vec![0; nodes.iter().filter(|n| leaf(n)).count()],
                    ),
                    attr_ints(
                        "target_nodeids",
                        &(0..nodes.len() as i64)
                            .filter(|&i| leaf(&nodes[i as usize]))
                            .collect::<Vec<_>>(),
                    ),
                    attr_ints(
                        "target_ids",
                        &vec![0; nodes.iter().filter(|n| leaf(n)).count()],
                    ),
                    attr_floats(
                        "target_weights",
                        &(nodes.iter())
                            .filter_map(|n| match n {
                                Plain::Leaf(v) => Some(*v),
                                Plain::Split(..) => None,
                            })
                            .collect::<Vec<_>>(),
                    ),
                    attr_int("n_targets", 1),
                    attr_string("aggregate_function", "SUM"),
                ],
            );
            let scores = tree_scores(&node).unwrap().unwrap();
            // Few background rows, so that some nodes are reached by none.
            let background: Vec<f32> = (0..FEATURES * (1 + case % 6)).map(|_| g.unit()).collect();
            let covers = scores.covers(&background, FEATURES);
            let x: Vec<f32> = (0..FEATURES).map(|_| g.unit()).collect();
            let phi = scores.explain_row(&covers, &x);
            let base = scores.base_values(&covers)[0];
            assert!(
                (base - value(&nodes, &covers, 0, &x, 0)).abs() < 1e-9,
                "case {case}"
            );
            for (i, &phi) in phi.iter().enumerate() {
                let mut exact = 0.0;
                for set in (0..1usize << FEATURES).filter(|s| s & (1 << i) == 0) {
                    let size = set.count_ones() as usize;
                    let weight =
                        factorial(size) * factorial(FEATURES - size - 1) / factorial(FEATURES);
                    exact += weight
                        * (value(&nodes, &covers, 0, &x, set | 1 << i)
                            - value(&nodes, &covers, 0, &x, set));
                }
                assert!(
                    (phi - exact).abs() < 1e-9,
                    "case {case} feature {i}: {phi} against {exact}"
                );
            }
            let leaf_value = value(&nodes, &covers, 0, &x, (1 << FEATURES) - 1);
            assert!((base + phi.iter().sum::<f64>() - leaf_value).abs() < 1e-9);
        }
    }
}
