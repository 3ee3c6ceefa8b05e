"""Whole-command fit times: `skiff fit` (CSV read, fit, ONNX written) beside pandas'
`read_csv` plus scikit-learn's fit, in the same run, as JSON lines.

The estimators and their `--set` hyperparameters are the lines `fit.rs` printed (FIT_JSONL);
scikit-learn's estimators are `fit_sklearn.py`'s. Best of REPEAT (default 3) each.

usage: python cli_wall.py DATA_DIR SKIFF FIT_JSONL
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from fit_sklearn import ESTIMATORS


def best_of(repeat, run):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    data_dir, skiff, fit_jsonl = sys.argv[1:4]
    repeat = int(os.environ.get("REPEAT", "3"))
    sklearn = {name: (data, make) for name, data, make in ESTIMATORS}
    with open(fit_jsonl) as f, tempfile.TemporaryDirectory() as out:
        for line in f:
            case = json.loads(line)
            name, data = case["estimator"], case["data"]
            path = os.path.join(data_dir, f"{data}.csv")
            # Clusterers too: the target column is then left out of the features.
            command = [skiff, "fit", name, "--data", path, "--target", case["target"], "-o",
                       os.path.join(out, "model.onnx")]
            for setting in case["settings"]:
                command += ["--set", setting]
            skiff_seconds = best_of(repeat, lambda: subprocess.run(command, check=True, capture_output=True))
            _, make = sklearn[name]

            def python():
                table = pd.read_csv(path).to_numpy(dtype=np.float64)
                x, y = table[:, :20], table[:, 20]
                make().fit(x) if data == "blobs" else make().fit(x, y)

            print(json.dumps({"estimator": name, "skiff": skiff_seconds, "sklearn": best_of(repeat, python)}),
                  flush=True)


if __name__ == "__main__":
    main()
