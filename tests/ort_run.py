"""Runs an ONNX model with ONNX Runtime on the feature columns of a CSV file.

Usage: ort_run.py MODEL.onnx DATA.csv
Prints JSON: the session's inputs and outputs, the model's metadata, and every output's values.
Feature columns are picked by the names the model records in its metadata (skiff.feature_names).
"""
import csv
import json
import sys

import numpy as np
import onnxruntime as ort

model_path, data_path = sys.argv[1:3]
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
features = json.loads(meta["skiff.feature_names"])
with open(data_path, newline="") as f:
    rows = list(csv.DictReader(f))
x = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
outputs = session.run(None, {session.get_inputs()[0].name: x})
print(json.dumps({
    "inputs": [{"name": i.name, "type": i.type, "shape": [d if isinstance(d, int) else None for d in i.shape]}
               for i in session.get_inputs()],
    "outputs": {o.name: {"type": o.type, "values": v.tolist()} for o, v in zip(session.get_outputs(), outputs)},
    "metadata": meta,
}))
