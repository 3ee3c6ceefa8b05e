"""Writes the conformance suite's datasets: train.csv and test.csv per folder.

Each comes from scikit-learn's copy (or generator), split 75/25 with train_test_split
(random_state 0; stratified for class targets). Run with scikit-learn 1.9:
    python tests/data/make.py
"""
import csv
import pathlib

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

here = pathlib.Path(__file__).parent


def write(name, frame_x, y, columns, target, stratify):
    x_train, x_test, y_train, y_test = train_test_split(
        frame_x, y, test_size=0.25, random_state=0, stratify=y if stratify else None
    )
    folder = here / name
    folder.mkdir(exist_ok=True)
    for part, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        with open(folder / f"{part}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(columns) + [target])
            for row, label in zip(xs, ys):
                w.writerow([repr(float(v)) for v in row] + [label])


def clean(names):
    return [n.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "") for n in names]


wine = datasets.load_wine()
write("wine", wine.data, [wine.target_names[t] for t in wine.target], clean(wine.feature_names), "cultivar", True)

cancer = datasets.load_breast_cancer()
write("breast_cancer", cancer.data, [cancer.target_names[t] for t in cancer.target], clean(cancer.feature_names), "diagnosis", True)

diabetes = datasets.load_diabetes()
write("diabetes", diabetes.data, [repr(float(v)) for v in diabetes.target], clean(diabetes.feature_names), "progression", False)

x, y = datasets.make_blobs(n_samples=600, centers=4, n_features=5, cluster_std=1.5, random_state=0)
write("blobs", np.round(x, 6), [int(v) for v in y], [f"x{i}" for i in range(5)], "blob", True)


# Tables with text columns and gaps, written as their packages ship them (gaps as NA in
# palmerpenguins' CSV, empty cells for vega_datasets' cars, whose Name column names rows).
import palmerpenguins  # noqa: E402  (PyPI palmerpenguins 0.1.6)
import vega_datasets  # noqa: E402  (PyPI vega_datasets 0.9.0)


def write_frame(name, frame, stratify, na_rep):
    train, test = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[stratify])
    folder = here / name
    folder.mkdir(exist_ok=True)
    for part, rows in (("train", train), ("test", test)):
        rows.to_csv(folder / f"{part}.csv", index=False, na_rep=na_rep)


write_frame("penguins", palmerpenguins.load_penguins(), "species", "NA")
cars = vega_datasets.data.cars()
cars["Year"] = cars["Year"].dt.year
write_frame("cars", cars, "Origin", "")
