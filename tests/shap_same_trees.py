"""shap's TreeSHAP on the trees of an ONNX file skiff wrote: MODEL TRAIN.csv TEST.csv.

The file's tree ensemble becomes shap's own tree format, each node's cover the training rows
that reach it (routed here with numpy), and shap's values of the test rows are printed as JSON
with the ensemble's scores as onnxruntime computes them (values plus base values add up to
them).
"""
import json, sys
import numpy as np, onnx, onnxruntime as ort, pandas as pd, shap
from onnx import helper

path, train_csv, test_csv = sys.argv[1:4]
model = onnx.load(path)
names = json.loads({p.key: p.value for p in model.metadata_props}["skiff.feature_names"])
train = pd.read_csv(train_csv)[names].to_numpy(np.float32)
test = pd.read_csv(test_csv)[names].to_numpy(np.float32)
(node,) = [n for n in model.graph.node if n.op_type.startswith("TreeEnsemble")]
a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
n_out = a["n_targets"]

# The ensemble as shap's own tree format, each node's cover the training rows reaching it.
trees = []
for t in sorted(set(a["nodes_treeids"])):
    at = [i for i, tid in enumerate(a["nodes_treeids"]) if tid == t]
    index = {a["nodes_nodeids"][i]: k for k, i in enumerate(at)}
    n = len(at)
    left, right, default = (np.full(n, -1) for _ in range(3))
    features, thresholds = np.zeros(n, dtype=np.int64), np.zeros(n)
    values = np.zeros((n, n_out))
    missing = a.get("nodes_missing_value_tracks_true", [0] * len(a["nodes_treeids"]))
    for k, i in enumerate(at):
        if a["nodes_modes"][i] != b"LEAF":
            assert a["nodes_modes"][i] == b"BRANCH_LEQ", a["nodes_modes"][i]
            left[k] = index[a["nodes_truenodeids"][i]]
            right[k] = index[a["nodes_falsenodeids"][i]]
            default[k] = left[k] if missing[i] else right[k]
            features[k] = a["nodes_featureids"][i]
            thresholds[k] = a["nodes_values"][i]
    for tid, nid, target, w in zip(a["target_treeids"], a["target_nodeids"], a["target_ids"], a["target_weights"]):
        if tid == t:
            values[index[nid], target] += w
    cover = np.zeros(n)
    for row in train:
        k = 0
        while True:
            cover[k] += 1
            if left[k] < 0:
                break
            x = row[features[k]]
            k = default[k] if np.isnan(x) else (left[k] if x <= np.float32(thresholds[k]) else right[k])
    trees.append({"children_left": left, "children_right": right, "children_default": default,
                  "features": features, "thresholds": thresholds, "values": values,
                  "node_sample_weight": cover})
explainer = shap.TreeExplainer({"trees": trees})
values = np.asarray(explainer.shap_values(test), dtype=np.float64).reshape(len(test), len(names), n_out)

# The scores the ensemble writes, as onnxruntime computes them: values plus base add up to them.
model.graph.output.append(helper.make_empty_tensor_value_info(node.output[0]))
session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
scores = session.run([node.output[0]], {model.graph.input[0].name: test})[0]
print(json.dumps({"features": names, "values": values.tolist(), "scores": scores.astype(np.float64).tolist()}))
