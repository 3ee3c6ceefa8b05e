//! Bad input: a one-line error naming the problem, a non-zero exit, nothing half-written.

use crate::*;

fn fit_csv(dir: &std::path::Path, csv: &str, target: &str) -> std::process::Output {
    let data = dir.join("data.csv");
    std::fs::write(&data, csv).unwrap();
    fit(&data, target, &dir.join("model.onnx"))
}

#[test]
fn unreadable_csv() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.csv");
    let out = fit(&missing, "y", &dir.path().join("m.onnx"));
    fails_with(out, &["cannot read", "nope.csv"]);
    assert_only_files(dir.path(), &[]);
}

#[test]
fn empty_csv() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(fit_csv(dir.path(), "", "y"), &["is empty"]);
    fails_with(fit_csv(dir.path(), "a,y\n", "y"), &["no data rows"]);
    assert_only_files(dir.path(), &["data.csv"]);
}

#[test]
fn missing_target_column() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        fit_csv(dir.path(), "a,b\n1,2\n3,4\n", "species"),
        &["column \"species\" not found", "(columns: a, b)"],
    );
    assert_only_files(dir.path(), &["data.csv"]);
}

#[test]
fn text_in_a_column_forced_numeric_names_row_column_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "a,b,y\n1,2,x\n3,4,z\n5,six,x\n").unwrap();
    let out = skiff()
        .args([
            "fit",
            "gaussian-nb",
            "--numeric",
            "b",
            "--target",
            "y",
            "--data",
        ])
        .arg(&data)
        .arg("-o")
        .arg(dir.path().join("model.onnx"))
        .output()
        .unwrap();
    fails_with(
        out,
        &["line 4", "column \"b\"", "\"six\"", "--categorical b"],
    );
    assert_only_files(dir.path(), &["data.csv"]);
}

#[test]
fn single_class_and_bad_hyperparameters() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        fit_csv(dir.path(), "a,y\n1,x\n2,x\n", "y"),
        &["single class"],
    );
    let data = example("iris/train.csv");
    let base = [
        "fit",
        "logistic-regression",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "species",
        "-o",
    ];
    let model = dir.path().join("m.onnx");
    let out = skiff()
        .args(base)
        .arg(&model)
        .args(["--set", "alpha=2"])
        .output()
        .unwrap();
    fails_with(
        out,
        &[
            "no hyperparameter \"alpha\"",
            "C, fit_intercept, max_iter, tol",
        ],
    );
    let out = skiff()
        .args(base)
        .arg(&model)
        .args(["--set", "C=-1"])
        .output()
        .unwrap();
    fails_with(out, &["C=-1", "positive"]);
    assert_only_files(dir.path(), &["data.csv"]);
}

#[test]
fn model_that_is_not_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.onnx");
    std::fs::write(&fake, "sepal_length,species\n1,setosa\n").unwrap();
    let test = example("iris/test.csv");
    let preds = dir.path().join("preds.csv");
    let out = run(&[
        "predict",
        fake.to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "-o",
        preds.to_str().unwrap(),
    ]);
    fails_with(out, &["fake.onnx is not an ONNX model"]);
    let out = run(&[
        "pack",
        fake.to_str().unwrap(),
        "-o",
        &format!("oci:{}:v1", dir.path().join("img").display()),
    ]);
    fails_with(out, &["not an ONNX model"]);
    let out = run(&["serve", fake.to_str().unwrap(), "--addr", "127.0.0.1:0"]);
    fails_with(out, &["not an ONNX model"]);
    assert_only_files(dir.path(), &["fake.onnx"]);
}

#[test]
fn failed_fit_keeps_the_previous_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let before = std::fs::read(&model).unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,y\n1,x\n2,x\n").unwrap();
    let out = fit(&bad, "y", &model);
    fails_with(out, &["single class"]);
    assert_eq!(
        std::fs::read(&model).unwrap(),
        before,
        "a failed fit changed the existing model"
    );
    assert_only_files(dir.path(), &["bad.csv", "iris.onnx"]);
}

#[test]
fn targets_that_do_not_suit_the_estimator() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    std::fs::write(
        &data,
        "a,b,price,kind\n1,2,10.5,x\n3,4,12.25,y\n5,6,9.75,x\n",
    )
    .unwrap();
    let model = dir.path().join("m.onnx");
    let fit_with = |algorithm: &str, target: &str| {
        skiff()
            .args(["fit", algorithm, "--data", data.to_str().unwrap()])
            .args(["--target", target, "-o", model.to_str().unwrap()])
            .output()
            .unwrap()
    };
    fails_with(
        fit_with("logistic-regression", "price"),
        &["looks continuous", "use a regressor"],
    );
    fails_with(
        fit_with("ridge", "kind"),
        &["\"x\"", "not a finite number", "use a classifier"],
    );
    fails_with(
        fit_with("gradient-boosting", "kind"),
        &[
            "unknown estimator \"gradient-boosting\"",
            "logistic-regression",
            "ridge",
        ],
    );
    assert_only_files(dir.path(), &["data.csv"]);
}

/// A typo in the estimator or one of its hyperparameters is reported before the data is
/// read: on a file of millions of rows the user hears of it at once (the file named here
/// does not even exist).
#[test]
fn estimator_typos_are_reported_before_the_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("missing.csv");
    let data = data.to_str().unwrap();
    let model = dir.path().join("m.onnx");
    let model = model.to_str().unwrap();
    for (args, needles) in [
        (
            vec![
                "fit",
                "gradient-boosting",
                "--data",
                data,
                "--target",
                "y",
                "-o",
                model,
            ],
            vec!["unknown estimator \"gradient-boosting\"", "ridge"],
        ),
        (
            vec![
                "fit", "ridge", "--data", data, "--target", "y", "--set", "alpah=2", "-o", model,
            ],
            vec!["alpah", "alpha"],
        ),
        (
            vec![
                "cv", "ridge", "--data", data, "--target", "y", "--set", "alpha=-1",
            ],
            vec!["alpha", "-1"],
        ),
        (
            vec![
                "tune",
                "ridge",
                "--data",
                data,
                "--target",
                "y",
                "--grid",
                "alpha=1,x",
                "-o",
                model,
            ],
            vec!["invalid hyperparameter alpha=x"],
        ),
    ] {
        let out = skiff().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!stderr.contains("missing.csv"), "{args:?}: {stderr}");
        fails_with(out, &needles);
    }
    assert_only_files(dir.path(), &[]);
}

#[test]
fn more_clusters_than_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "a,b\n1,2\n3,4\n5,6\n").unwrap();
    let out = skiff()
        .args([
            "fit",
            "kmeans",
            "--data",
            data.to_str().unwrap(),
            "--set",
            "n_clusters=5",
        ])
        .args(["-o", dir.path().join("m.onnx").to_str().unwrap()])
        .output()
        .unwrap();
    fails_with(out, &["n_clusters=5", "only 3 rows", "at most 3"]);
    assert_only_files(dir.path(), &["data.csv"]);
}

#[test]
fn infinite_values_are_errors_that_name_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    for (csv, algorithm, target, needles) in [
        (
            "a,b,c,y\n1,2,p,x\n3,-inf,q,z\n",
            "gaussian-nb",
            "y",
            &["line 3", "\"-inf\"", "column \"b\"", "--na-values"][..],
        ),
        (
            "a,b,y\n1,inf,1.5\n3,4,2.5\n",
            "ridge",
            "y",
            &["line 2", "\"inf\""][..],
        ),
        (
            "a,y\n1,2.5\n3,-inf\n",
            "ridge",
            "y",
            &["data row 2", "\"-inf\"", "not a finite number"][..],
        ),
    ] {
        let data = dir.path().join("data.csv");
        std::fs::write(&data, csv).unwrap();
        let out = skiff()
            .args([
                "fit",
                algorithm,
                "--data",
                data.to_str().unwrap(),
                "--target",
                target,
            ])
            .args(["-o", dir.path().join("m.onnx").to_str().unwrap()])
            .output()
            .unwrap();
        fails_with(out, needles);
        assert_only_files(dir.path(), &["data.csv"]);
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for args in [
        &["algorithms"][..],
        &["k8s", "registry.example.com/team/iris:1"],
    ] {
        let mut child = skiff()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before skiff writes, as `skiff ... | head -0` does.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {stderr}");
    }
}

#[test]
fn eval_gates_name_the_metric_the_bound_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ridge.onnx");
    let train = example("../tests/data/diabetes/train.csv");
    let test = example("../tests/data/diabetes/test.csv");
    let (train, test) = (train.to_str().unwrap(), test.to_str().unwrap());
    ok(run(&[
        "fit",
        "ridge",
        "--data",
        train,
        "--target",
        "progression",
        "-o",
        model.to_str().unwrap(),
    ]));
    let model = model.to_str().unwrap();
    let eval = |gate: &[&str]| {
        let mut args = vec![
            "eval",
            model,
            "--data",
            test,
            "--target",
            "progression",
            "--json",
        ];
        args.extend(gate);
        run(&args)
    };
    let scores: serde_json::Value = serde_json::from_str(&ok(eval(&[]))).unwrap();
    let rmse = scores["metrics"]["rmse"].as_f64().unwrap();
    ok(eval(&["--fail-over", &format!("rmse={}", rmse + 1.0)]));
    // Over the ceiling: the metrics are still printed, then the gate fails.
    let out = eval(&["--fail-over", &format!("rmse={}", rmse - 1.0)]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"rmse\""));
    fails_with(out, &["rmse", "above the ceiling", "--fail-over rmse="]);
    fails_with(
        eval(&["--fail-under", "accuracy=0.9"]),
        &["accuracy is not a metric", "rmse"],
    );
    fails_with(eval(&["--fail-under", "r2"]), &["METRIC=NUMBER"]);
}
