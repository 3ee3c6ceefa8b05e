"""SHAP values from the shap package for scikit-learn models, and the models as skiff reads them.

Fits trees, forests, boosting and linear models on synthetic data, writes each through skl2onnx
(NAME.onnx) with its training rows (NAME-train.csv, the background) and rows to explain
(NAME-test.csv) into the folder given, and prints shap's values (rows x features x outputs) and
expected values as JSON: TreeExplainer's path-dependent TreeSHAP on the scikit-learn model
itself (its covers are the training rows), LinearExplainer over every training row.
"""
import json, sys
import numpy as np, pandas as pd, shap
from skl2onnx import to_onnx
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

out = sys.argv[1]
columns = [f"f{i}" for i in range(6)]

def data(kind, classes=2):
    if kind == "regression":
        X, y = make_regression(n_samples=400, n_features=6, n_informative=4, noise=3.0, random_state=1)
    else:
        X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_redundant=0,
                                   n_classes=classes, random_state=1)
    return np.round(X, 3).astype(np.float32), y

def as_3d(values, n_rows):
    """shap's values as rows x features x outputs."""
    return np.asarray(values, dtype=np.float64).reshape(n_rows, len(columns), -1)

report = {}
models = {
    "tree-binary": (DecisionTreeClassifier(max_depth=6, random_state=0), "classification", 2),
    "forest-3": (RandomForestClassifier(n_estimators=15, max_depth=6, bootstrap=False, max_features=3, random_state=0), "classification", 3),
    "forest-regressor": (RandomForestRegressor(n_estimators=10, max_depth=6, bootstrap=False, max_features=0.5, random_state=0), "regression", 0),
    "boosting-binary": (GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0), "classification", 2),
    "logistic-3": (LogisticRegression(max_iter=1000), "classification", 3),
    "logistic-binary-scaled": (make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), "classification", 2),
    "linear-regression": (LinearRegression(), "regression", 0),
}
for name, (est, task, classes) in models.items():
    X, y = data(task, classes)
    train, test = X[:300], X[300:340]
    est.fit(train, y[:300])
    options = {"zipmap": False} if task == "classification" else None
    onx = to_onnx(est, train[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    open(f"{out}/{name}.onnx", "wb").write(onx.SerializeToString())
    for part, rows in [("train", train), ("test", test)]:
        pd.DataFrame(rows, columns=columns).to_csv(f"{out}/{name}-{part}.csv", index=False)
    if name.startswith(("logistic", "linear")):
        final = est[-1] if hasattr(est, "steps") else est
        prep = (lambda a: est[:-1].transform(a)) if hasattr(est, "steps") else (lambda a: a)
        background = prep(train.astype(np.float64))
        # Every background row: shap samples 100 of them by default.
        explainer = shap.LinearExplainer(final, shap.maskers.Independent(background, max_samples=len(background)))
        values = explainer.shap_values(prep(test.astype(np.float64)))
    else:
        explainer = shap.TreeExplainer(est)
        values = explainer.shap_values(test)
    report[name] = {
        "values": as_3d(values, len(test)).tolist(),
        "base": np.atleast_1d(explainer.expected_value).astype(np.float64).tolist(),
    }
print(json.dumps(report))
