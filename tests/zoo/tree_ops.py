"""Writes small random TreeEnsembleClassifier and TreeEnsembleRegressor graphs covering every
layout onnxruntime reads (two classes with one score or two, every post_transform, base_values
of each length, class_ids, int64 and string labels, every nodes_mode, NaN tracking), runs each
in onnxruntime, and writes what it answered.

    python tests/zoo/tree_ops.py OUTDIR

OUTDIR gets <name>.onnx per case and cases.json: [{"name", "model", "rows", "outputs"}], rows
and outputs as lists, NaN and infinities as "nan", "inf" and "-inf". Seeded: the same versions
write the same files.
"""

import itertools
import json
import math
import pathlib
import random
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

FEATURES = 5
ROWS = 64
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
# Feature values are drawn from this grid, thresholds too, so EQ/NEQ and the boundaries of
# LEQ/LT/GTE/GT are all hit.
GRID = [-2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0]


def tree_nodes(rng, tree_id, modes, nan_tracks, depth):
    """One random tree: node attributes and its leaves' ids."""
    nodes = []  # (tree, node, feature, value, mode, true, false, nan_tracks)
    leaves = []

    def grow(node_id, level):
        if level == depth or (level > 0 and rng.random() < 0.25):
            nodes.append((tree_id, node_id, 0, 0.0, "LEAF", 0, 0, 0))
            leaves.append(node_id)
            return node_id + 1
        entry = [tree_id, node_id, rng.randrange(FEATURES), rng.choice(GRID), rng.choice(modes), 0, 0,
                 int(nan_tracks and rng.random() < 0.5)]
        nodes.append(entry)
        entry[5] = node_id + 1
        next_id = grow(node_id + 1, level + 1)
        entry[6] = next_id
        return grow(next_id, level + 1)

    grow(0, 0)
    return [tuple(n) for n in nodes], leaves


def forest(rng, trees, modes, nan_tracks, depth=3):
    attrs = {k: [] for k in ["treeids", "nodeids", "featureids", "values", "modes", "true", "false", "nan"]}
    leaves = []
    for t in range(trees):
        nodes, tree_leaves = tree_nodes(rng, t, modes, nan_tracks, depth)
        for n in nodes:
            for key, v in zip(attrs, n):
                attrs[key].append(v)
        leaves += [(t, leaf) for leaf in tree_leaves]
    node_attrs = dict(
        nodes_treeids=attrs["treeids"], nodes_nodeids=attrs["nodeids"],
        nodes_featureids=attrs["featureids"], nodes_values=attrs["values"],
        nodes_modes=attrs["modes"], nodes_truenodeids=attrs["true"],
        nodes_falsenodeids=attrs["false"])
    if nan_tracks:
        node_attrs["nodes_missing_value_tracks_true"] = attrs["nan"]
    return node_attrs, leaves


def weights(rng, leaves, targets, positive):
    """Weights for `targets` on every leaf: probabilities-like when positive, margins else."""
    tree_ids, node_ids, ids, values = [], [], [], []
    for tree, leaf in leaves:
        for k in targets:
            tree_ids.append(tree)
            node_ids.append(leaf)
            ids.append(k)
            values.append(round(rng.uniform(0.0, 1.0) if positive else rng.uniform(-1.5, 1.5), 4))
    return tree_ids, node_ids, ids, values


def rows(rng):
    x = np.array([[rng.choice(GRID) for _ in range(FEATURES)] for _ in range(ROWS)], dtype=np.float32)
    # Off-grid values and missing cells too.
    x[::3, 1] += np.float32(0.1)
    x[::5, 2] = np.nan
    x[1::7, 0] = np.nan
    return x


def model(node, outputs, output_types, shapes):
    graph = helper.make_graph(
        [node], "trees",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, FEATURES])],
        [helper.make_tensor_value_info(o, t, shape) for o, t, shape in zip(outputs, output_types, shapes)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def classifiers(rng):
    for c, ids_kind, positive, base, transform, modes, nan, labels in itertools.product(
            [2, 3], ["one", "other", "all"], [True, False], ["none", "one", "all"],
            ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"], ["leq", "lt", "mixed"],
            [False, True], ["int", "string"]):
        # onnxruntime wants 0 or C base values for more than two classes.
        if c > 2 and (ids_kind == "other" or base == "one"):
            continue
        # Two classes scored by class 0 alone under PROBIT: onnxruntime writes the first
        # probability column only, and the second holds whatever its memory held.
        if c == 2 and ids_kind == "one" and transform == "PROBIT":
            continue
        # Trim the product: every value of every axis still appears many times.
        if rng.random() > 0.35:
            continue
        mode_set = {"leq": ["BRANCH_LEQ"], "lt": ["BRANCH_LT"], "mixed": MODES}[modes]
        node_attrs, leaves = forest(rng, 4, mode_set, nan)
        targets = {"one": [0], "other": [c - 1], "all": list(range(c))}[ids_kind]
        t_ids, n_ids, ids, values = weights(rng, leaves, targets, positive)
        attrs = dict(node_attrs, class_treeids=t_ids, class_nodeids=n_ids, class_ids=ids,
                     class_weights=values, post_transform=transform)
        if base == "one":
            attrs["base_values"] = [0.3]
        elif base == "all":
            attrs["base_values"] = [round(rng.uniform(-0.5, 0.5), 3) for _ in range(c)]
        if labels == "int":
            # onnxruntime answers 0/1 rather than the labels when both classes have weights;
            # labels 0 and 1 keep that case comparable.
            attrs["classlabels_int64s"] = [0, 1] if c == 2 else [3, 5, 8]
            label_type = TensorProto.INT64
        else:
            attrs["classlabels_strings"] = ["no", "yes"] if c == 2 else ["a", "b", "c"]
            label_type = TensorProto.STRING
        name = f"clf_c{c}_{ids_kind}_{'pos' if positive else 'mixed'}_base{base}_{transform.lower()}_{modes}_{'nan' if nan else 'nonan'}_{labels}"
        node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml", **attrs)
        yield name, model(node, ["label", "probabilities"], [label_type, TensorProto.FLOAT], [[None], [None, c]])


def regressors(rng):
    for n_targets, aggregate, base, transform, modes, nan in itertools.product(
            [1, 3], ["SUM", "AVERAGE", "MIN", "MAX"], [False, True],
            ["NONE", "PROBIT", "SOFTMAX", "LOGISTIC"], ["leq", "lt", "mixed"], [False, True]):
        if rng.random() > 0.35:
            continue
        mode_set = {"leq": ["BRANCH_LEQ"], "lt": ["BRANCH_LT"], "mixed": MODES}[modes]
        node_attrs, leaves = forest(rng, 4, mode_set, nan)
        t_ids, n_ids, ids, values = [], [], [], []
        for leaf in leaves:
            # Some leaves leave some targets untouched.
            targets = [k for k in range(n_targets) if rng.random() < 0.7] or [0]
            a, b, c_, d = weights(rng, [leaf], targets, positive=False)
            t_ids += a; n_ids += b; ids += c_; values += d
        attrs = dict(node_attrs, target_treeids=t_ids, target_nodeids=n_ids, target_ids=ids,
                     target_weights=values, n_targets=n_targets, aggregate_function=aggregate,
                     post_transform=transform)
        if base:
            attrs["base_values"] = [round(rng.uniform(-0.5, 0.5), 3) for _ in range(n_targets)]
        name = f"reg_t{n_targets}_{aggregate.lower()}_base{int(base)}_{transform.lower()}_{modes}_{'nan' if nan else 'nonan'}"
        node = helper.make_node("TreeEnsembleRegressor", ["X"], ["variable"], domain="ai.onnx.ml", **attrs)
        yield name, model(node, ["variable"], [TensorProto.FLOAT], [[None, n_targets]])


def finite_or_name(v):
    """JSON has no NaN or infinity: they become "nan", "inf" and "-inf"."""
    if isinstance(v, dict):
        return {k: finite_or_name(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite_or_name(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    x = rows(rng)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    cases = []
    for name, m in itertools.chain(classifiers(rng), regressors(rng)):
        path = out / f"{name}.onnx"
        onnx.save(m, path)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        results = session.run(None, {"X": x})
        outputs = {}
        for o, v in zip(session.get_outputs(), results):
            v = np.asarray(v)
            outputs[o.name] = [s.decode() if isinstance(s, bytes) else s for s in v.tolist()] \
                if v.dtype.kind in "OSU" else v.tolist()
        cases.append({"name": name, "model": path.name, "rows": finite_or_name(x.tolist()),
                      "outputs": finite_or_name(outputs)})
    (out / "cases.json").write_text(json.dumps(cases, allow_nan=False))
    print(f"{len(cases)} tree ensembles", file=sys.stderr)


if __name__ == "__main__":
    main()
