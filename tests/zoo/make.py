"""Builds the model zoo: third-party models written by the real converters, with ONNX Runtime's answers.

Usage: make.py OUTDIR
Trains small scikit-learn, XGBoost and LightGBM models on the datasets bundled with scikit-learn,
converts each with skl2onnx or onnxmltools, runs it in ONNX Runtime on its test rows, and writes
OUTDIR/<id>.onnx, OUTDIR/<id>.csv (the NaN-free test rows) and OUTDIR/manifest.json (every test
row, NaN as null, and every output ONNX Runtime gave, ZipMap outputs as [N, C] matrices in class
order). A case the converter cannot write is recorded as {"id", "unsupported": reason}.
Also the PyTorch policy network of tests/zoo/torch_policy.onnx (see torch_policy.py), with
random observations as its rows, and scikit-learn pipelines on a real table (palmerpenguins: text
columns, missing cells) converted with skl2onnx's data-frame convention, one input per column:
their cases list "inputs" (name, datatype, the test rows' values, null for NaN) instead of
"input"/"features"/"rows", their CSV holds every test row (missing cells empty) and "json_rows"
the rows without NaN. Prints one line per case to stderr. Deterministic: everything
is seeded with 0.
"""
import json
import os
import sys
import warnings

import lightgbm
import numpy as np
import onnxmltools
import onnxruntime as ort
import palmerpenguins
import pandas as pd
import skl2onnx
import xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as MLFloatTensorType
from skl2onnx.common.data_types import FloatTensorType
from sklearn import datasets, ensemble, linear_model, neighbors, neural_network, svm, tree
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

INPUT = "input"
MAX_TEST_ROWS = 60
SKL2ONNX = f"skl2onnx {skl2onnx.__version__}"
ONNXMLTOOLS = f"onnxmltools {onnxmltools.__version__}"
# Tried in order; a converter that refuses one (or writes a model ONNX Runtime rejects) gets the next.
SKL_OPSETS = [{"": 17, "ai.onnx.ml": 3}, {"": 17, "ai.onnx.ml": 2}, {"": 17, "ai.onnx.ml": 1}]
# onnxmltools takes only the main opset (at most 15) and picks the ai.onnx.ml version itself.
ML_OPSETS = [15, 13]


def dataset(name, labels="int", nan=False):
    """Train/test split of a bundled dataset; labels "int" (its own targets) or "str" (its target_names)."""
    bunch = getattr(datasets, f"load_{name}")()
    x = bunch.data.astype(np.float32)
    y = bunch.target
    if labels == "str":
        y = np.array([str(bunch.target_names[i]) for i in y])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    x_test, y_test = x_test[:MAX_TEST_ROWS], y_test[:MAX_TEST_ROWS]
    if nan:
        rng = np.random.default_rng(0)
        x_train = x_train.copy()
        x_train[rng.random(x_train.shape) < 0.1] = np.nan
        # Even test rows stay complete (they go to the CSV); odd ones lose ~20% of their cells, at least one.
        x_test = x_test.copy()
        for i in range(1, len(x_test), 2):
            mask = rng.random(x_test.shape[1]) < 0.2
            mask[rng.integers(x_test.shape[1])] = True
            x_test[i, mask] = np.nan
    return x_train, x_test, y_train, y_test


def convert_skl(name, model, features, zipmap, opset):
    options = None
    if zipmap is not None:
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        options = {id(final): {"zipmap": zipmap}}
    return skl2onnx.convert_sklearn(model, initial_types=[(INPUT, FloatTensorType([None, features]))],
                                    target_opset=opset, options=options, name=name)


def convert_ml(name, model, features, zipmap, opset):
    types = [(INPUT, MLFloatTensorType([None, features]))]
    if isinstance(model, xgboost.XGBModel):
        return onnxmltools.convert_xgboost(model, name=name, initial_types=types, target_opset=opset)
    kwargs = {} if zipmap is None else {"zipmap": zipmap}
    return onnxmltools.convert_lightgbm(model, name=name, initial_types=types, target_opset=opset, **kwargs)


def session(model_bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: some converters declare a label shape of [1] (ORT warns per run)
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def f32(v):
    """A float32 as the shortest decimal that reads back to it (None for NaN)."""
    v = np.float32(v)
    if np.isnan(v):
        return None
    short = float(str(v))
    assert np.float32(short) == v
    return short


def tolist(value):
    """An ORT tensor output as JSON-ready nested lists (float32 as shortest decimals, NaN as None)."""
    value = np.asarray(value)
    if value.dtype == np.float32:
        return np.vectorize(f32, otypes=[object])(value).tolist()
    if value.dtype.kind == "f":
        return np.vectorize(lambda v: None if np.isnan(v) else float(v), otypes=[object])(value).tolist()
    if value.dtype.kind in "iu":
        return value.tolist()
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(value).tolist()


def zipmap_labels(model_proto):
    """ZipMap output name -> its class labels, in the order its columns should take."""
    result = {}
    for node in model_proto.graph.node:
        if node.op_type == "ZipMap":
            attr = {a.name: a for a in node.attribute}
            labels = [s.decode() for s in attr["classlabels_strings"].strings] if "classlabels_strings" in attr \
                else list(attr["classlabels_int64s"].ints)
            result[node.output[0]] = labels
    return result


def native_check(model, x, task, outputs, label_name, proba_name):
    """A note where ONNX Runtime disagrees with the model's own predictions (empty when it agrees)."""
    if task == "regressor":
        want = np.asarray(model.predict(x), dtype=np.float64).reshape(-1)
        got = np.asarray(outputs[next(iter(outputs))], dtype=np.float64).reshape(-1)
        diff = np.max(np.abs(want - got) / (1 + np.abs(want)))
        return f"max rel diff vs native {diff:.2g}" if diff > 1e-4 else ""
    notes = []
    want = [str(v) for v in model.predict(x)]
    got = [str(v) for v in outputs[label_name]]
    wrong = sum(a != b for a, b in zip(want, got))
    if wrong:
        notes.append(f"{wrong}/{len(want)} labels differ from native")
    if proba_name and hasattr(model, "predict_proba"):
        diff = np.max(np.abs(model.predict_proba(x) - np.array(outputs[proba_name], dtype=np.float64)))
        if diff > 1e-4:
            notes.append(f"max proba diff vs native {diff:.2g}")
    return "; ".join(notes)


def describe(error):
    """One short line: the root cause first, then what wrapped it (converters wrap errors in huge messages)."""
    chain = []
    while error is not None and len(chain) < 5:
        text = str(error).splitlines()[0] if str(error) else ""
        chain.append(f"{type(error).__name__}: {text[:120]}")
        error = error.__cause__ or error.__context__
    return chain[-1] + (f" (raised as {chain[0]})" if len(chain) > 1 else "")


def build(outdir, case_id, model, converter, data, zipmap=None):
    x_train, x_test, y_train, _ = data
    model.fit(x_train, y_train)
    features = x_train.shape[1]
    convert, opsets, converter_name = {
        "skl2onnx": (convert_skl, SKL_OPSETS, SKL2ONNX),
        "onnxmltools": (convert_ml, ML_OPSETS, ONNXMLTOOLS)}[converter]
    errors = []
    for opset in opsets:
        try:
            proto = convert(case_id, model, features, zipmap, opset)  # named, else the graph gets a random uuid
            # The converters list opset imports in set order, which varies between runs; sort for stable files.
            imports = sorted((imp.domain, imp.version) for imp in proto.opset_import)
            del proto.opset_import[:]
            for domain, version in imports:
                proto.opset_import.add(domain=domain, version=version)
            model_bytes = proto.SerializeToString()
            sess = session(model_bytes)
            raw = sess.run(None, {INPUT: x_test})
            break
        except Exception as e:  # the converter refused, or wrote something ONNX Runtime rejects
            errors.append((opset, describe(e)))
    else:
        if len({e for _, e in errors}) == 1:
            reason = f"{errors[0][1]} (at every opset tried: {', '.join(str(o) for o, _ in errors)})"
        else:
            reason = "; ".join(f"{o}: {e}" for o, e in errors)
        print(f"{case_id} {converter_name} unsupported: {reason}", file=sys.stderr)
        return {"id": case_id, "unsupported": reason}

    task = "classifier" if hasattr(model, "classes_") else "regressor"
    names = [o.name for o in sess.get_outputs()]
    zipmaps = zipmap_labels(proto)
    classes = [str(c) for c in model.classes_] if task == "classifier" else None
    outputs = {}
    for name, value in zip(names, raw):
        if name in zipmaps:
            labels = zipmaps[name]
            assert [str(c) for c in labels] == classes, (labels, classes)
            value = np.array([[row[c] for c in labels] for row in value], dtype=np.float32)
        outputs[name] = tolist(value)
    label_name = names[0] if task == "classifier" else None
    proba_name = names[1] if task == "classifier" and len(names) > 1 else None
    if proba_name and np.shape(outputs[proba_name])[1:] != (len(classes),):
        proba_name = None  # e.g. LinearSVC: one decision-function column, not per-class probabilities
    note = native_check(model, x_test, task, outputs, label_name, proba_name)

    with open(os.path.join(outdir, f"{case_id}.onnx"), "wb") as f:
        f.write(model_bytes)
    csv_rows = [i for i, row in enumerate(x_test) if not np.isnan(row).any()]
    rows = [[f32(v) for v in row] for row in x_test]
    with open(os.path.join(outdir, f"{case_id}.csv"), "w") as f:
        f.write(",".join(f"f{j}" for j in range(features)) + "\n")
        for i in csv_rows:
            f.write(",".join(str(np.float32(v)) for v in x_test[i]) + "\n")
    print(f"{case_id} {converter_name} ok" + (f" ({note})" if note else ""), file=sys.stderr)
    return {
        "id": case_id, "model": f"{case_id}.onnx", "data": f"{case_id}.csv", "converter": converter_name,
        "opsets": {imp.domain or "": imp.version for imp in proto.opset_import},
        "input": INPUT, "features": features, "task": task, "rows": rows, "csv_rows": csv_rows,
        "label_output": label_name, "proba_output": proba_name, "classes": classes, "outputs": outputs,
    }


def cases():
    """(id, unfitted model, converter, data, zipmap) per case; zipmap None keeps the converter's default."""
    skl, ml = "skl2onnx", "onnxmltools"
    forest = dict(n_estimators=20, max_depth=5, random_state=0, n_jobs=1)
    boost = dict(n_estimators=20, max_depth=3, random_state=0)
    hist = dict(max_iter=20, max_leaf_nodes=15, random_state=0)
    classifiers = {
        "random_forest_classifier": lambda: ensemble.RandomForestClassifier(**forest),
        "extra_trees_classifier": lambda: ensemble.ExtraTreesClassifier(**forest),
        "decision_tree_classifier": lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0),
        "gradient_boosting_classifier": lambda: ensemble.GradientBoostingClassifier(**boost),
        "hist_gradient_boosting_classifier": lambda: ensemble.HistGradientBoostingClassifier(**hist),
        "ada_boost_classifier": lambda: ensemble.AdaBoostClassifier(n_estimators=20, random_state=0),
    }
    for name, make in classifiers.items():
        yield f"{name}_binary_int", make(), skl, dataset("breast_cancer"), False
        yield f"{name}_binary_str", make(), skl, dataset("breast_cancer", "str"), True
        yield f"{name}_multiclass_int", make(), skl, dataset("iris"), True
        yield f"{name}_multiclass_str", make(), skl, dataset("wine", "str"), False
    hgb = classifiers["hist_gradient_boosting_classifier"]
    yield "hist_gradient_boosting_classifier_binary_int_nan", hgb(), skl, dataset("breast_cancer", nan=True), False
    yield "hist_gradient_boosting_classifier_multiclass_int_nan", hgb(), skl, dataset("wine", nan=True), False

    regressors = {
        "random_forest_regressor": ensemble.RandomForestRegressor(**forest),
        "extra_trees_regressor": ensemble.ExtraTreesRegressor(**forest),
        "decision_tree_regressor": tree.DecisionTreeRegressor(max_depth=6, random_state=0),
        "gradient_boosting_regressor": ensemble.GradientBoostingRegressor(**boost),
        "hist_gradient_boosting_regressor": ensemble.HistGradientBoostingRegressor(**hist),
        "ada_boost_regressor": ensemble.AdaBoostRegressor(n_estimators=20, random_state=0),
        "k_neighbors_regressor": neighbors.KNeighborsRegressor(n_neighbors=5),
    }
    for name, model in regressors.items():
        yield name, model, skl, dataset("diabetes"), None
    yield "hist_gradient_boosting_regressor_nan", ensemble.HistGradientBoostingRegressor(**hist), skl, \
        dataset("diabetes", nan=True), None

    def scaled(*steps):
        return make_pipeline(StandardScaler(), *steps)

    logistic = dict(max_iter=1000, random_state=0)
    sgd = dict(loss="log_loss", random_state=0)
    yield "logistic_regression_binary_int", scaled(linear_model.LogisticRegression(**logistic)), skl, \
        dataset("breast_cancer"), False
    yield "logistic_regression_multiclass_str", linear_model.LogisticRegression(**logistic), skl, \
        dataset("iris", "str"), True
    yield "sgd_classifier_binary_str", scaled(linear_model.SGDClassifier(**sgd)), skl, \
        dataset("breast_cancer", "str"), False
    yield "sgd_classifier_multiclass_int", scaled(linear_model.SGDClassifier(**sgd)), skl, dataset("wine"), True
    yield "svc_multiclass_str", svm.SVC(probability=True, random_state=0), skl, dataset("iris", "str"), False
    # Not in a Pipeline: skl2onnx's pipeline parser gives the last step a zipmap option LinearSVC refuses.
    yield "linear_svc_binary_int", svm.LinearSVC(max_iter=5000, random_state=0), skl, dataset("breast_cancer"), None
    yield "k_neighbors_classifier_multiclass_int", neighbors.KNeighborsClassifier(n_neighbors=5), skl, \
        dataset("iris"), True
    yield "mlp_classifier_multiclass_str", \
        scaled(neural_network.MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0)), skl, \
        dataset("wine", "str"), True
    yield "pca_logistic_regression_multiclass_int", \
        scaled(PCA(n_components=5, random_state=0), linear_model.LogisticRegression(**logistic)), skl, \
        dataset("wine"), False

    xgb = dict(n_estimators=20, max_depth=4, random_state=0, n_jobs=1)
    lgbm = dict(n_estimators=20, num_leaves=15, random_state=0, n_jobs=1, verbose=-1)
    for suffix, nan in (("", False), ("_nan", True)):
        yield f"xgb_classifier_binary{suffix}", xgboost.XGBClassifier(**xgb), ml, \
            dataset("breast_cancer", nan=nan), None
        yield f"xgb_classifier_multiclass{suffix}", xgboost.XGBClassifier(**xgb), ml, dataset("iris", nan=nan), None
        yield f"xgb_regressor{suffix}", xgboost.XGBRegressor(**xgb), ml, dataset("diabetes", nan=nan), None
        # Binary keeps the converter's default ZipMap output; multiclass asks for a plain tensor.
        yield f"lgbm_classifier_binary{suffix}", lightgbm.LGBMClassifier(**lgbm), ml, \
            dataset("breast_cancer", nan=nan), None
        yield f"lgbm_classifier_multiclass{suffix}", lightgbm.LGBMClassifier(**lgbm), ml, \
            dataset("wine", nan=nan), False
        yield f"lgbm_regressor{suffix}", lightgbm.LGBMRegressor(**lgbm), ml, dataset("diabetes", nan=nan), None


def torch_policy(outdir):
    """The committed PyTorch export (PyTorch itself is too large to install for the tests)."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "torch_policy.onnx"), "rb") as f:
        model_bytes = f.read()
    sess = session(model_bytes)
    (obs,) = sess.get_inputs()
    features = obs.shape[1]
    x = np.random.default_rng(0).normal(size=(MAX_TEST_ROWS, features)).astype(np.float32)
    outputs = {o.name: tolist(v) for o, v in zip(sess.get_outputs(), sess.run(None, {obs.name: x}))}
    with open(os.path.join(outdir, "torch_policy.onnx"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(outdir, "torch_policy.csv"), "w") as f:
        f.write(",".join(f"f{j}" for j in range(features)) + "\n")
        for row in x:
            f.write(",".join(str(v) for v in row) + "\n")
    print("torch_policy torch.onnx.export ok", file=sys.stderr)
    return {
        "id": "torch_policy", "model": "torch_policy.onnx", "data": "torch_policy.csv",
        "converter": "torch.onnx.export (committed file)", "opsets": {},
        "input": obs.name, "features": features, "task": "other", "rows": [[f32(v) for v in r] for r in x],
        "csv_rows": list(range(len(x))), "label_output": None, "proba_output": None, "classes": None,
        "outputs": outputs,
    }


PENGUIN_TEXT = ["island", "sex"]
PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins():
    """palmerpenguins as users load it, text gaps as "" (skl2onnx's string inputs have no NaN), numbers
    as float32; test rows: every row with a gap, an island the training rows never saw, then others."""
    df = palmerpenguins.load_penguins()
    df[PENGUIN_TEXT] = df[PENGUIN_TEXT].fillna("")
    df[PENGUIN_NUMBERS] = df[PENGUIN_NUMBERS].astype(np.float32)
    gaps = df[df[PENGUIN_NUMBERS].isna().any(axis=1) | (df["sex"] == "")]
    rest = df.drop(gaps.index)
    train, others = train_test_split(rest, test_size=0.2, random_state=0)
    unseen = others[:1].assign(island="Anvers")
    test = pd.concat([gaps, unseen, others[1:]])[:MAX_TEST_ROWS]
    return train, test


def table_cases():
    """(id, pipeline, target, feature columns) on penguins: what a scikit-learn user writes for a table."""
    numbers, text = PENGUIN_NUMBERS, PENGUIN_TEXT
    onehot = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
        ("text", make_pipeline(SimpleImputer(missing_values="", strategy="most_frequent"),
                               OneHotEncoder(handle_unknown="ignore")), text)])
    ordinal = ColumnTransformer([
        ("numbers", "passthrough", numbers),
        ("text", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), text)])
    indicator = ColumnTransformer([
        ("numbers", SimpleImputer(add_indicator=True), numbers[:3]),
        ("text", OneHotEncoder(drop="first", handle_unknown="ignore"), text + ["species"])])
    features = numbers + text + ["year"]
    yield "penguins_logistic_onehot", make_pipeline(onehot, linear_model.LogisticRegression(max_iter=1000)), \
        "species", features
    yield "penguins_forest_onehot", make_pipeline(
        onehot, ensemble.RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0, n_jobs=1)), \
        "species", features
    yield "penguins_hist_gradient_boosting_ordinal", make_pipeline(
        ordinal, ensemble.HistGradientBoostingClassifier(max_iter=20, random_state=0)), "species", features
    yield "penguins_ridge_indicator_regressor", make_pipeline(indicator, linear_model.Ridge()), \
        "body_mass_g", numbers[:3] + text + ["species"]


def build_table(outdir, case_id, model, target, features):
    train, test = penguins()
    train = train.dropna(subset=[target])
    model.fit(train[features], train[target])
    final = model.steps[-1][1]
    options = {id(final): {"zipmap": False}} if hasattr(final, "classes_") else None
    proto = skl2onnx.to_onnx(model, train[features][:1], target_opset=SKL_OPSETS[0], options=options,
                             name=case_id)
    model_bytes = proto.SerializeToString()
    sess = session(model_bytes)
    datatypes = {"tensor(string)": "BYTES", "tensor(float)": "FP32", "tensor(int64)": "INT64",
                 "tensor(double)": "FP64"}
    feeds, inputs = {}, []
    for i in sess.get_inputs():
        column = test[i.name]
        datatype = datatypes[i.type]
        if datatype == "BYTES":
            values = column.astype(str).to_numpy(dtype=object)
        else:
            values = column.to_numpy(dtype={"FP32": np.float32, "INT64": np.int64, "FP64": np.float64}[datatype])
        feeds[i.name] = values.reshape(-1, 1)
        inputs.append({"name": i.name, "datatype": datatype,
                       "values": [v if datatype == "BYTES" else f32(v) if datatype == "FP32" else
                                  (None if np.isnan(v) else float(v)) if datatype == "FP64" else int(v)
                                  for v in values]})
    names = [o.name for o in sess.get_outputs()]
    outputs = {name: tolist(value) for name, value in zip(names, sess.run(None, feeds))}
    task = "classifier" if hasattr(final, "classes_") else "regressor"
    classes = [str(c) for c in final.classes_] if task == "classifier" else None
    note = native_check(model, test[features], task, outputs, names[0] if classes else None,
                        names[1] if classes else None)
    with open(os.path.join(outdir, f"{case_id}.onnx"), "wb") as f:
        f.write(model_bytes)
    test[[i["name"] for i in inputs]].to_csv(os.path.join(outdir, f"{case_id}.csv"), index=False,
                                             float_format="%.9g")
    json_rows = [r for r in range(len(test)) if not test[[i["name"] for i in inputs]].iloc[r].isna().any()]
    print(f"{case_id} {SKL2ONNX} ok" + (f" ({note})" if note else ""), file=sys.stderr)
    return {
        "id": case_id, "model": f"{case_id}.onnx", "data": f"{case_id}.csv", "converter": SKL2ONNX,
        "opsets": {imp.domain or "": imp.version for imp in proto.opset_import},
        "inputs": inputs, "task": task, "csv_rows": list(range(len(test))), "json_rows": json_rows,
        "label_output": names[0] if classes else None, "proba_output": names[1] if classes else None,
        "classes": classes, "outputs": outputs,
    }


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    np.random.seed(0)
    warnings.filterwarnings("ignore")  # convergence and converter chatter; the per-case line is the report
    manifest = [build(outdir, *case) for case in cases()] + [torch_policy(outdir)]
    manifest += [build_table(outdir, *case) for case in table_cases()]
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, allow_nan=False)  # NaN is already null; refuse any that slipped through
        f.write("\n")


if __name__ == "__main__":
    main()
