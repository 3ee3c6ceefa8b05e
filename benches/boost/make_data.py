"""Synthetic data for the boosting and MLP fit benchmarks, written as CSV (train and test, 80/20).

classification: 2 classes (make_classification, 10 informative features), target `label`
regression:     make_regression (10 informative features, noise 10), target `y`

usage: python make_data.py OUT_DIR ROWS NAME...   (NAME: classification, regression)
"""
import pathlib
import sys

import numpy as np
from sklearn import datasets

out, rows, names = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
out.mkdir(parents=True, exist_ok=True)
columns = [f"x{i}" for i in range(20)]
n_train = rows * 4 // 5


def write(name, x, y, target, fmt):
    header = ",".join(columns + [target])
    data = np.column_stack([x, y])
    fmts = ["%.6f"] * 20 + [fmt]
    for part, rows_ in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        np.savetxt(out / f"{name}_{part}.csv", data[rows_], delimiter=",", header=header, comments="", fmt=fmts)


for name in names:
    if name == "classification":
        x, y = datasets.make_classification(n_samples=rows, n_features=20, n_informative=10, random_state=0)
        write(name, x, y, "label", "%d")
    else:
        x, y = datasets.make_regression(n_samples=rows, n_features=20, n_informative=10, noise=10.0,
                                        random_state=0)
        write(name, x, y, "y", "%.6f")
