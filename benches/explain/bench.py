"""Explanations and fairness beside the libraries people use for them, on the same models.

usage: bench.py DIR SKIFF ROWS REPEAT

Writes DIR/train.csv and DIR/test.csv (make_classification: 20 features, 2 classes) and
DIR/groups.csv (the test rows with a `group` column of 3 values, for fairness), fits a random forest and a logistic
regression with scikit-learn and converts them with skl2onnx, then times, best of REPEAT:
- SHAP values of the test rows: `skiff explain shap` (the whole command: CSV reads, covers
  from the training rows, values, JSON out) beside shap's TreeExplainer and LinearExplainer
  (pandas' read_csv, the explainer, its values);
- permutation importance (5 repeats): `skiff explain importance` beside scikit-learn's
  permutation_importance on the scikit-learn model (n_jobs=2);
- fairness: `skiff fairness` beside Fairlearn's MetricFrame over the model's predictions.
Prints one markdown table row per case.
"""
import subprocess, sys, time
import numpy as np, pandas as pd, shap
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

out, skiff, rows, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, random_state=0)
X = np.round(X, 4).astype(np.float32)
columns = [f"f{i}" for i in range(20)]
frame = pd.DataFrame(X, columns=columns)
frame["y"] = y
n_test = 1000
train, test = frame[:-n_test], frame[-n_test:]
train.to_csv(f"{out}/train.csv", index=False)
test.to_csv(f"{out}/test.csv", index=False)
groups = test.assign(group=np.random.default_rng(0).choice(["a", "b", "c"], size=n_test))
groups.to_csv(f"{out}/groups.csv", index=False)
models = {
    "forest": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=2),
    "logistic": LogisticRegression(max_iter=1000),
}
for name, model in models.items():
    model.fit(train[columns].to_numpy(), train["y"].to_numpy())
    onx = to_onnx(model, X[:1], options={"zipmap": False})
    open(f"{out}/{name}.onnx", "wb").write(onx.SerializeToString())


def best(run):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def skiff_run(*args):
    subprocess.run([skiff, *args], check=True, stdout=subprocess.DEVNULL)


def shap_tree():
    rows = pd.read_csv(f"{out}/test.csv")[columns].to_numpy(np.float32)
    shap.TreeExplainer(models["forest"]).shap_values(rows)


def shap_linear():
    background = pd.read_csv(f"{out}/train.csv")[columns].to_numpy()
    rows = pd.read_csv(f"{out}/test.csv")[columns].to_numpy()
    masker = shap.maskers.Independent(background, max_samples=len(background))
    shap.LinearExplainer(models["logistic"], masker).shap_values(rows)


def importance():
    data = pd.read_csv(f"{out}/test.csv")
    permutation_importance(models["forest"], data[columns].to_numpy(np.float32), data["y"].to_numpy(),
                           n_repeats=5, random_state=0, n_jobs=2)


def fairness():
    data = pd.read_csv(f"{out}/groups.csv")
    predicted = models["logistic"].predict(data[columns].to_numpy())
    metrics = {"accuracy": accuracy_score, "selection_rate": selection_rate,
               "tpr": true_positive_rate, "fpr": false_positive_rate}
    frame = MetricFrame(metrics=metrics, y_true=data["y"], y_pred=predicted, sensitive_features=data["group"])
    frame.by_group, frame.difference(), frame.ratio()


shap_args = ["--data", f"{out}/test.csv", "--background", f"{out}/train.csv", "--target", "y", "--json"]
cases = [
    ("SHAP values, forest (TreeSHAP)", "shap TreeExplainer",
     lambda: skiff_run("explain", "shap", f"{out}/forest.onnx", *shap_args), shap_tree),
    ("SHAP values, logistic regression (linear)", "shap LinearExplainer",
     lambda: skiff_run("explain", "shap", f"{out}/logistic.onnx", *shap_args), shap_linear),
    ("permutation importance, forest, 5 repeats", "scikit-learn",
     lambda: skiff_run("explain", "importance", f"{out}/forest.onnx", "--data", f"{out}/test.csv",
                       "--target", "y", "--n-repeats", "5", "--json"), importance),
    ("fairness, 4 metrics by group", "Fairlearn",
     lambda: skiff_run("fairness", f"{out}/logistic.onnx", "--data", f"{out}/groups.csv", "--target", "y",
                       "--sensitive", "group", "--metrics", "accuracy,selection_rate,tpr,fpr", "--pos-label", "1",
                       "--json"), fairness),
]
for case, peer, ours, theirs in cases:
    skiff_s, peer_s = best(ours), best(theirs)
    print(f"| {case} | {skiff_s:.2f} s | {peer} | {peer_s:.2f} s | {skiff_s / peer_s:.2f}x |", flush=True)
