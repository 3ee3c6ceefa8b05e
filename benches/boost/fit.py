"""One fit of benches/boost/run.sh, timed: prints one JSON line with the wall seconds (best of
REPEAT) and the metric on the test rows (accuracy or R²).

skiff: the whole `skiff fit` command (CSV read, fit, training metric, export), then `skiff
eval` of the model for the metric. scikit-learn and LightGBM: pandas read_csv + fit, with the
hyperparameters skiff is given (scikit-learn's HistGradientBoosting defaults, no early
stopping; MLPs behind a StandardScaler, as `--scale standard` puts one in skiff's model).

usage: python fit.py LIBRARY ESTIMATOR TRAIN TEST TARGET [SKIFF FIT ARGUMENTS...]
  LIBRARY:   skiff | sklearn | lightgbm (skiff's binary in $SKIFF)
  ESTIMATOR: hgb-classifier | hgb-regressor | mlp-classifier | mlp-regressor
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
from sklearn.metrics import accuracy_score, r2_score

library, estimator, train, test, target = sys.argv[1:6]
skiff_args = sys.argv[6:]
repeat = int(os.environ.get("REPEAT", "1"))
classifier = estimator.endswith("classifier")


def model():
    if library == "lightgbm":
        import lightgbm
        cls = lightgbm.LGBMClassifier if classifier else lightgbm.LGBMRegressor
        # scikit-learn's HistGradientBoosting defaults in LightGBM's names.
        return cls(n_estimators=100, learning_rate=0.1, num_leaves=31, max_depth=-1, min_child_samples=20,
                   min_child_weight=1e-3, reg_lambda=0.0, max_bin=255, verbose=-1)
    if estimator.startswith("hgb"):
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        cls = HistGradientBoostingClassifier if classifier else HistGradientBoostingRegressor
        return cls(early_stopping=False, random_state=0)
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    cls = MLPClassifier if classifier else MLPRegressor
    return make_pipeline(StandardScaler(), cls(random_state=0))


def skiff():
    algorithm = estimator.replace("hgb-", "hist-gradient-boosting-")
    binary = os.environ["SKIFF"]
    best = None
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.onnx")
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([binary, "fit", algorithm, "--data", train, "--target", target, "-o", model_path,
                            *skiff_args], check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            best = seconds if best is None else min(best, seconds)
        out = subprocess.run([binary, "eval", model_path, "--data", test, "--target", target, "--json"],
                             check=True, capture_output=True, text=True).stdout
    metrics = json.loads(out)["metrics"]
    return best, metrics["accuracy"] if classifier else metrics["r2"]


def peer():
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        frame = pd.read_csv(train)
        x, y = frame.drop(columns=[target]), frame[target]
        m = model().fit(x, y)
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    frame = pd.read_csv(test)
    predicted = m.predict(frame.drop(columns=[target]))
    truth = frame[target]
    return best, accuracy_score(truth, predicted) if classifier else r2_score(truth, predicted)


seconds, metric = skiff() if library == "skiff" else peer()
print(json.dumps({"library": library, "estimator": estimator, "seconds": seconds, "metric": metric}))
