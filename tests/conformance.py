"""The Python side of the conformance suite (tests/all/conformance.rs).

Reads a JSON list of cases on stdin; for each, runs the exported model in ONNX Runtime on
the test rows (the case's `inputs`, as skiff fed them to its own engines; null for a missing
number) and fits scikit-learn's estimator (the case's `sklearn` expression) on the same
training rows, then prints, as one JSON object keyed by case id, ONNX Runtime's outputs and
scikit-learn's test metric (accuracy, R2, or the adjusted Rand index).

Tables of numbers are read as a matrix; tables with text or gaps as pandas reads them, rows
without a target left out, for a ColumnTransformer pipeline.
"""
import csv
import json
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn import cluster, linear_model, mixture, naive_bayes, neighbors, neural_network, svm, tree, ensemble
from sklearn import compose, impute, pipeline, preprocessing
from sklearn.metrics import accuracy_score, adjusted_rand_score, r2_score

NAMESPACE = {}
for module in (cluster, linear_model, mixture, naive_bayes, neighbors, neural_network, svm, tree, ensemble, compose, impute,
               pipeline, preprocessing):
    NAMESPACE.update({k: getattr(module, k) for k in dir(module) if not k.startswith("_")})


def read_frame(path, target, drop):
    frame = pd.read_csv(path)
    frame = frame[frame[target].notna()]
    return frame.drop(columns=[target] + drop), [str(v) for v in frame[target]]


def read(path, target):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    features = [c for c in rows[0] if c != target]
    x = np.array([[float(r[c]) for c in features] for r in rows])
    y = [r[target] for r in rows]
    return x, y


def main():
    results = {}
    for case in json.load(sys.stdin):
        if "ColumnTransformer" in case["sklearn"]:
            x_train, y_train = read_frame(case["train"], case["target"], case["drop"])
            x_test, y_test = read_frame(case["test"], case["target"], case["drop"])
        else:
            x_train, y_train = read(case["train"], case["target"])
            x_test, y_test = read(case["test"], case["target"])
        session = ort.InferenceSession(case["model"], providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        types = {"FP32": np.float32, "BYTES": object}
        feeds = {i["name"]: np.array(i["data"], dtype=types[i["datatype"]]).reshape(i["shape"])
                 for i in case["inputs"]}
        outputs = session.run(None, feeds)
        onnx = {name: np.asarray(value).tolist() for name, value in zip(names, outputs)}
        model = eval(case["sklearn"], NAMESPACE)
        task = case["task"]
        if task == "regression":
            model.fit(x_train, [float(v) for v in y_train])
            metric = r2_score([float(v) for v in y_test], model.predict(x_test))
        elif task == "classification":
            model.fit(x_train, y_train)
            metric = accuracy_score(y_test, model.predict(x_test))
        else:
            model.fit(x_train)
            metric = adjusted_rand_score(y_test, model.predict(x_test))
        results[case["id"]] = {"onnx": onnx, "sklearn_metric": float(metric)}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
