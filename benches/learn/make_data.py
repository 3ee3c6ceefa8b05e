"""Synthetic data for the fit-time benchmark: ROWS x 20 features, written as CSV to OUT_DIR.

classification.csv: 3 classes (make_classification, 10 informative features), target `label`
regression.csv:     make_regression (10 informative features, noise 10), target `y`
blobs.csv:          make_blobs with 8 centres, target `blob` (ignored by the clusterers)

usage: python make_data.py OUT_DIR [ROWS]
"""
import pathlib
import sys

import numpy as np
from sklearn import datasets

out = pathlib.Path(sys.argv[1])
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
out.mkdir(parents=True, exist_ok=True)
columns = [f"x{i}" for i in range(20)]


def write(name, x, y, target, fmt):
    header = ",".join(columns + [target])
    data = np.column_stack([x, y])
    np.savetxt(out / f"{name}.csv", data, delimiter=",", header=header, comments="", fmt=["%.6f"] * 20 + [fmt])


x, y = datasets.make_classification(n_samples=rows, n_features=20, n_informative=10, n_classes=3, random_state=0)
write("classification", x, y, "label", "%d")
x, y = datasets.make_regression(n_samples=rows, n_features=20, n_informative=10, noise=10.0, random_state=0)
write("regression", x, y, "y", "%.6f")
x, y = datasets.make_blobs(n_samples=rows, n_features=20, centers=8, random_state=0)
write("blobs", x, y, "blob", "%d")
