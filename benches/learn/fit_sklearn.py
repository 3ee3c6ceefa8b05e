"""Fit times of scikit-learn's estimators on the benchmark data, as JSON lines.

Each estimator is fitted REPEAT times (default 3) on the same rows skiff's bench reads; the
best time counts. Hyperparameters are the ones `benches/learn/fit.rs` gives skiff.

Also the time pandas takes to read each CSV (`read_csv`, then a float64 matrix; best of REPEAT).

usage: python fit_sklearn.py DATA_DIR
env:   REPEAT (3), ONLY (comma-separated estimator names: just those)
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn import cluster, ensemble, linear_model, mixture, naive_bayes, neighbors, svm, tree

ESTIMATORS = [
    ("logistic-regression", "classification", lambda: linear_model.LogisticRegression()),
    ("linear-svc", "classification", lambda: svm.LinearSVC(random_state=0)),
    ("gaussian-nb", "classification", lambda: naive_bayes.GaussianNB()),
    ("knn-classifier", "classification", lambda: neighbors.KNeighborsClassifier()),
    ("decision-tree-classifier", "classification", lambda: tree.DecisionTreeClassifier(random_state=0)),
    ("random-forest-classifier", "classification", lambda: ensemble.RandomForestClassifier(random_state=0)),
    ("linear-regression", "regression", lambda: linear_model.LinearRegression()),
    ("ridge", "regression", lambda: linear_model.Ridge()),
    ("lasso", "regression", lambda: linear_model.Lasso(alpha=0.1)),
    ("elastic-net", "regression", lambda: linear_model.ElasticNet(alpha=0.1)),
    ("knn-regressor", "regression", lambda: neighbors.KNeighborsRegressor()),
    ("decision-tree-regressor", "regression", lambda: tree.DecisionTreeRegressor(random_state=0)),
    ("random-forest-regressor", "regression", lambda: ensemble.RandomForestRegressor(random_state=0)),
    ("kmeans", "blobs", lambda: cluster.KMeans(n_clusters=8, n_init=1, random_state=0)),
    ("gaussian-mixture", "blobs", lambda: mixture.GaussianMixture(n_components=8, random_state=0)),
]



def main():
    data_dir = sys.argv[1]
    repeat = int(os.environ.get("REPEAT", "3"))
    only = os.environ.get("ONLY")
    cache = {}
    for name, data, make in ESTIMATORS:
        if only and name not in only.split(","):
            continue
        if data not in cache:
            read_seconds = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                frame = pd.read_csv(os.path.join(data_dir, f"{data}.csv"))
                table = frame.to_numpy(dtype=np.float64)
                read_seconds = min(read_seconds, time.perf_counter() - start)
            cache[data] = (table[:, :20], table[:, 20], read_seconds)
        x, y, read_seconds = cache[data]
        best = float("inf")
        for _ in range(repeat):
            model = make()
            start = time.perf_counter()
            if data == "blobs":
                model.fit(x)
            else:
                model.fit(x, y)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({"estimator": name, "seconds": best, "read_seconds": read_seconds}), flush=True)


if __name__ == "__main__":
    main()
