"""The differential-privacy anchors skiff is checked against, run in the venv of
tests/requirements-dp.txt (diffprivlib needs scikit-learn before 1.8).

  data OUT_DIR                      writes binary.csv / multi.csv train and test splits
  maps REPORT.json FIRST_COLUMN     OpenDP's own privacy map of each release skiff reported
  ks VALUES.json                    Kolmogorov-Smirnov test of standardised noise
  coef TRAIN.csv TARGET DATA_NORM C MODEL.onnx
                                    diffprivlib's coefficients at epsilon=inf beside skiff's
  accuracy MODEL TRAIN.csv TEST.csv TARGET SEEDS EPSILONS PARAM
                                    diffprivlib's test accuracy per epsilon and seed
  budget LEDGER.json                diffprivlib's accountant after the ledger's spends
"""

import json
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")


def data(out):
    from sklearn.datasets import make_classification

    for name, classes in [("binary", 2), ("multi", 3)]:
        x, y = make_classification(n_samples=3000, n_features=4, n_informative=3, n_redundant=0,
                                   n_classes=classes, n_clusters_per_class=1, class_sep=1.2,
                                   random_state=0)
        # Features scaled into [-1, 1]: the bounds and the row norm (2) are known beforehand.
        x = np.clip(np.round(x / 4, 4), -1, 1)
        for split, rows in [("train", slice(0, 2000)), ("test", slice(2000, 3000))]:
            with open(f"{out}/{name}_{split}.csv", "w") as f:
                f.write("a,b,c,d,y\n")
                for row, label in zip(x[rows], y[rows]):
                    f.write(",".join(f"{v:.4f}" for v in row) + f",{label}\n")


def maps(report_path, first):
    import opendp.prelude as dp

    dp.enable_features("contrib")
    report = json.load(open(report_path))
    measurements, epsilons = [], []
    for r in report["releases"]:
        stat, scale = r["statistic"], r["scale"]
        if stat == "count":
            m = dp.t.make_select_column(key=first, TOA=str) >> dp.t.then_count() >> dp.m.then_laplace(scale)
        elif stat == "hist":
            m = (dp.t.make_select_column(key=r["column"], TOA=str)
                 >> dp.t.then_count_by_categories(categories=r["categories"]) >> dp.m.then_laplace(scale))
        else:
            lower, upper = r["bounds"]
            middle = (lower + upper) / 2
            t = (dp.t.make_select_column(key=r["column"], TOA=str) >> dp.t.then_cast_inherent(TOA=float)
                 >> dp.t.then_impute_constant(middle) >> dp.t.then_clamp((float(lower), float(upper))))
            if stat == "sum":
                t = t >> dp.t.then_sum()
            else:
                t = t >> dp.t.then_resize(size=r["size"], constant=middle)
                t = t >> (dp.t.then_mean() if stat == "mean" else dp.t.then_variance())
            m = t >> dp.m.then_laplace(scale)
        measurements.append(m)
        epsilons.append(m.map(1))
    total = dp.c.make_composition(measurements).map(1)
    print(json.dumps({"epsilons": epsilons, "total": total}))


def ks(values_path):
    from scipy import stats

    z = np.array(json.load(open(values_path)))
    honest = stats.kstest(z, "laplace")
    # The same test must reject the noise read as 1.5 times narrower than it is.
    wide = stats.kstest(z / 1.5, "laplace")
    print(json.dumps({"n": len(z), "statistic": honest.statistic, "pvalue": honest.pvalue,
                      "wide_pvalue": wide.pvalue}))


def read_csv(path, target):
    import csv

    with open(path) as f:
        rows = list(csv.DictReader(f))
    features = [c for c in rows[0] if c != target]
    x = np.array([[float(r[c]) for c in features] for r in rows])
    y = np.array([r[target] for r in rows])
    return x, y


def coef(train, target, data_norm, c, model_path):
    import onnx
    from onnx import numpy_helper
    from diffprivlib.models import LogisticRegression

    x, y = read_csv(train, target)
    model = LogisticRegression(epsilon=float("inf"), data_norm=float(data_norm), C=float(c))
    model.fit(x, y)
    graph = onnx.load(model_path).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    ours, our_intercept = weights["coef"].astype(float), weights["intercept"].astype(float)
    if len(model.classes_) == 2:  # skiff writes the rows -w/2 and w/2
        ours, our_intercept = ours[1:] * 2, our_intercept[1:] * 2
    metadata = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    print(json.dumps({"diffprivlib": {"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist()},
                      "skiff": {"coef": ours.tolist(), "intercept": our_intercept.tolist()},
                      "metadata": metadata}))


def accuracy(which, train, test, target, seeds, epsilons, param):
    from diffprivlib.models import GaussianNB, LogisticRegression

    x, y = read_csv(train, target)
    x_test, y_test = read_csv(test, target)
    out = {}
    for epsilon in epsilons.split(","):
        scores = []
        for seed in range(int(seeds)):
            if which == "dp-logistic-regression":
                model = LogisticRegression(epsilon=float(epsilon), data_norm=float(param), random_state=seed)
            else:
                lower, upper = (float(v) for v in param.split(":"))
                model = GaussianNB(epsilon=float(epsilon), bounds=(lower, upper), random_state=seed)
            model.fit(x, y)
            scores.append(float(np.mean(model.predict(x_test) == y_test)))
        out[epsilon] = scores
    print(json.dumps(out))


def budget(path):
    from diffprivlib import BudgetAccountant

    ledger = json.load(open(path))
    accountant = BudgetAccountant(epsilon=ledger["epsilon"], delta=ledger["delta"], slack=ledger["slack"])
    for spend in ledger["spent"]:
        accountant.spend(spend["epsilon"], spend["delta"])
    epsilon, delta = accountant.total()
    print(json.dumps({"epsilon": epsilon, "delta": delta, "remaining": accountant.remaining()[0]}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"data": data, "maps": maps, "ks": ks, "coef": coef, "accuracy": accuracy, "budget": budget}[command](*args)
