"""Writes the benchmark's forests: scikit-learn RandomForestClassifier(n_estimators=100) on
20 features, two classes and four, converted by skl2onnx (zipmap off), and 4,096 rows each.

    python make_forests.py OUTDIR
"""
import pathlib
import sys

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for name, classes in [("binary", 2), ("multiclass", 4)]:
    x, y = make_classification(n_samples=5000, n_features=20, n_informative=10, n_classes=classes, random_state=0)
    x = x.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(x, y)
    onx = to_onnx(forest, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3})
    (out / f"forest_{name}.onnx").write_bytes(onx.SerializeToString())
    header = ",".join(f"f{i}" for i in range(x.shape[1]))
    np.savetxt(out / f"rows_{name}.csv", x[:4096], delimiter=",", header=header, comments="")
