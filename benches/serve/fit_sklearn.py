"""Fit scikit-learn's LogisticRegression (default hyperparameters) on the CSV skiff fits,
and lay out an MLServer model directory: model.joblib + model-settings.json.

usage: fit_sklearn.py TRAIN_CSV TARGET_COLUMN OUT_DIR
"""

import csv
import json
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

train, target, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
with open(train, newline="") as f:
    rows = list(csv.DictReader(f))
features = [c for c in rows[0] if c != target]
X = np.array([[float(r[c]) for c in features] for r in rows], dtype=np.float32)
y = np.array([r[target] for r in rows])

model = LogisticRegression().fit(X, y)
out.mkdir(parents=True, exist_ok=True)
joblib.dump(model, out / "model.joblib")
(out / "model-settings.json").write_text(
    json.dumps(
        {
            "name": "iris",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
        },
        indent=2,
    )
)
print(f"sklearn LogisticRegression: {len(rows)} rows, training accuracy {model.score(X, y):.3f}")
