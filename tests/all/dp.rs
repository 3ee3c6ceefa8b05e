//! Differential privacy against its anchors, live: `skiff dp describe`'s epsilons equal
//! OpenDP's Python privacy maps of the same pipelines and its noise passes a
//! Kolmogorov-Smirnov test over 2,000 releases; `dp-logistic-regression` without noise has
//! diffprivlib's coefficients, and both private estimators' mean accuracy over 30 seeds lies
//! in diffprivlib's 95% interval; the budget ledger composes as diffprivlib's accountant and
//! refuses a fit over budget.

use crate::*;
use serde_json::Value;
use std::path::Path;

/// The venv of tests/requirements-dp.txt: diffprivlib, OpenDP's Python package, scipy.
fn anchors(args: &[&str]) -> Value {
    let python = std::env::var_os("SKIFF_TEST_DP_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_DP_PYTHON is not set: run the tests with scripts/test.sh, which makes the venv with diffprivlib and OpenDP")
    });
    let out = std::process::Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dp_anchors.py"))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "dp_anchors.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn penguins() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/penguins/train.csv")
}

fn describe_json(data: &Path, args: &[&str]) -> Value {
    let out = ok(skiff()
        .args(["dp", "describe"])
        .arg(data)
        .args(args)
        .arg("--json")
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn dp_describe_epsilons_are_opendps_own_maps() {
    let dir = tempfile::tempdir().unwrap();
    let data = penguins();
    let args = [
        "--epsilon",
        "1",
        "--bounds",
        "bill_length_mm=30:60,body_mass_g=2500:6500",
        "--categories",
        "island=Biscoe,Dream,Torgersen",
        "--stats",
        "count,sum,mean,var,hist:island",
    ];
    let report = describe_json(&data, &args);
    let releases = report["releases"].as_array().unwrap();
    let names: Vec<&str> = releases
        .iter()
        .map(|r| r["statistic"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["count", "sum", "sum", "mean", "mean", "var", "var", "hist"]
    );
    let path = dir.path().join("report.json");
    std::fs::write(&path, report.to_string()).unwrap();
    let opendp = anchors(&["maps", path.to_str().unwrap(), "species"]);
    for (release, theirs) in releases.iter().zip(opendp["epsilons"].as_array().unwrap()) {
        // Equal to the last few bits: both round every step up, the Python wheel with MPFR
        // and the pure-Rust crate without it.
        let (ours, theirs) = (
            release["epsilon"].as_f64().unwrap(),
            theirs.as_f64().unwrap(),
        );
        assert!(
            (ours - theirs).abs() <= 1e-12 * theirs,
            "{release}: OpenDP maps it to {theirs}"
        );
        assert!(ours <= 1.0 / 8.0);
    }
    let total = report["epsilon"].as_f64().unwrap();
    let composed = opendp["total"].as_f64().unwrap();
    assert!(
        (total - composed).abs() <= 1e-12,
        "total {total}, OpenDP's composition {composed}"
    );
    assert!(total <= 1.0 && total > 0.999_999, "{total}");

    // The releases are near the truth: 274 rows (gaps and all), a count's noise of scale 8.
    let count = releases[0]["value"].as_f64().unwrap();
    assert!((count - 274.0).abs() < 100.0, "count {count}");
    for mean in &releases[3..5] {
        let (lower, upper) = (
            mean["bounds"][0].as_f64().unwrap(),
            mean["bounds"][1].as_f64().unwrap(),
        );
        let value = mean["value"].as_f64().unwrap();
        assert!(
            value > lower - (upper - lower) && value < upper + (upper - lower),
            "{mean}"
        );
        assert_eq!(mean["size"].as_f64().unwrap(), count.max(2.0));
    }
    assert_eq!(releases[7]["value"].as_array().unwrap().len(), 4);

    // The text report names every release and the total.
    let text = ok(skiff()
        .args(["dp", "describe"])
        .arg(&data)
        .args(args)
        .output()
        .unwrap());
    assert!(
        text.contains("mean(body_mass_g)") && text.contains("(other)"),
        "{text}"
    );
    assert!(text.contains("total epsilon"), "{text}");

    // What cannot be released privately is refused in one line.
    fails_with(
        run(&[
            "dp",
            "describe",
            data.to_str().unwrap(),
            "--epsilon",
            "1",
            "--stats",
            "mean",
        ]),
        &["mean needs bounds", "--bounds COLUMN=LOWER:UPPER"],
    );
    fails_with(
        run(&[
            "dp",
            "describe",
            data.to_str().unwrap(),
            "--epsilon",
            "1",
            "--stats",
            "hist:island",
        ]),
        &["--categories island="],
    );
    fails_with(
        run(&[
            "dp",
            "describe",
            data.to_str().unwrap(),
            "--epsilon",
            "1",
            "--bounds",
            "island=0:1",
            "--stats",
            "sum",
        ]),
        &["\"Biscoe\"", "numeric"],
    );
    fails_with(
        run(&[
            "dp",
            "describe",
            data.to_str().unwrap(),
            "--epsilon",
            "0",
            "--stats",
            "count",
        ]),
        &["epsilon must be a positive number"],
    );
}

#[test]
fn dp_noise_passes_a_kolmogorov_smirnov_test_over_2000_releases() {
    // 2,000 columns of three rows, each summed with bounds 0:10 and epsilon 1: 2,000 releases
    // with Laplace noise of scale 10 around sums known here.
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let rows: Vec<Vec<u32>> = (0..3u32)
        .map(|r| (0..n as u32).map(|j| (j * (r + 3) + r) % 11).collect())
        .collect();
    let header: Vec<String> = (0..n).map(|j| format!("x{j}")).collect();
    let mut csv = header.join(",") + "\n";
    for row in &rows {
        csv += &row.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        csv += "\n";
    }
    let data = dir.path().join("wide.csv");
    std::fs::write(&data, csv).unwrap();
    let bounds: Vec<String> = header.iter().map(|c| format!("{c}=0:10")).collect();
    let report = describe_json(
        &data,
        &[
            "--epsilon",
            &n.to_string(),
            "--bounds",
            &bounds.join(","),
            "--stats",
            "sum",
        ],
    );
    let releases = report["releases"].as_array().unwrap();
    assert_eq!(releases.len(), n);
    let z: Vec<f64> = releases
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let truth: u32 = rows.iter().map(|row| row[j]).sum();
            (r["value"].as_f64().unwrap() - truth as f64) / r["scale"].as_f64().unwrap()
        })
        .collect();
    let scale = releases[0]["scale"].as_f64().unwrap();
    assert!((scale / 10.0 - 1.0).abs() < 1e-6, "scale {scale}");
    let path = dir.path().join("z.json");
    std::fs::write(&path, serde_json::to_string(&z).unwrap()).unwrap();
    let ks = anchors(&["ks", path.to_str().unwrap()]);
    eprintln!("KS over {n} releases: {ks}");
    assert!(ks["pvalue"].as_f64().unwrap() > 1e-4, "{ks}");
    // The test can tell: the same noise read as 1.5 times narrower is rejected.
    assert!(ks["wide_pvalue"].as_f64().unwrap() < 1e-4, "{ks}");
}

/// Writes the anchors' binary and three-class tables into `dir`.
fn classification_data(dir: &Path) {
    anchors(&["data", dir.to_str().unwrap()]);
}

fn fit_private(dir: &Path, algorithm: &str, data: &str, settings: &[String]) -> std::path::PathBuf {
    let model = dir.join(format!(
        "{algorithm}-{}.onnx",
        settings.join("-").replace([':', '='], "_")
    ));
    let mut command = skiff();
    command
        .args(["fit", algorithm, "--data"])
        .arg(dir.join(data))
        .args(["--target", "y", "-o"])
        .arg(&model);
    for setting in settings {
        command.args(["--set", setting]);
    }
    ok(command.output().unwrap());
    model
}

#[test]
fn dp_logistic_regression_without_noise_has_diffprivlibs_coefficients() {
    let dir = tempfile::tempdir().unwrap();
    classification_data(dir.path());
    for data in ["binary_train.csv", "multi_train.csv"] {
        let settings = [
            "epsilon=inf".to_string(),
            "data_norm=2".into(),
            "C=1".into(),
        ];
        let model = fit_private(dir.path(), "dp-logistic-regression", data, &settings);
        let both = anchors(&[
            "coef",
            dir.path().join(data).to_str().unwrap(),
            "y",
            "2",
            "1",
            model.to_str().unwrap(),
        ]);
        for key in ["coef", "intercept"] {
            let flat = |v: &Value| -> Vec<f64> {
                let mut out = Vec::new();
                let mut stack = vec![v.clone()];
                while let Some(v) = stack.pop() {
                    match v {
                        Value::Array(items) => stack.extend(items.into_iter().rev()),
                        other => out.push(other.as_f64().unwrap()),
                    }
                }
                out
            };
            let (ours, theirs) = (flat(&both["skiff"][key]), flat(&both["diffprivlib"][key]));
            assert_eq!(ours.len(), theirs.len(), "{data} {key}: {both}");
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            eprintln!("{data} {key}: max |skiff - diffprivlib| = {worst:.2e}");
            assert!(worst < 1e-4, "{data} {key}: {both}");
        }
        let metadata = &both["metadata"];
        assert_eq!(metadata["skiff.dp.epsilon"], "inf", "{metadata}");
        assert_eq!(metadata["skiff.dp.data_norm"], "2", "{metadata}");
        assert_eq!(
            metadata["skiff.algorithm"], "dp-logistic-regression",
            "{metadata}"
        );
    }
}

fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[test]
fn dp_estimators_mean_accuracy_is_inside_diffprivlibs_interval() {
    let dir = tempfile::tempdir().unwrap();
    classification_data(dir.path());
    let seeds = 30;
    let cases = [
        ("dp-logistic-regression", "binary", "data_norm=2", "2"),
        ("dp-gaussian-nb", "multi", "bounds=-1:1", "-1:1"),
    ];
    for (algorithm, data, setting, param) in cases {
        let train = format!("{data}_train.csv");
        let test = dir.path().join(format!("{data}_test.csv"));
        let theirs = anchors(&[
            "accuracy",
            algorithm,
            dir.path().join(&train).to_str().unwrap(),
            test.to_str().unwrap(),
            "y",
            &seeds.to_string(),
            "0.5,1,2",
            param,
        ]);
        for epsilon in ["0.5", "1", "2"] {
            let ours: Vec<f64> = (0..seeds)
                .map(|seed| {
                    let settings = [
                        format!("epsilon={epsilon}"),
                        setting.to_string(),
                        format!("random_state={seed}"),
                    ];
                    let model = fit_private(dir.path(), algorithm, &train, &settings);
                    let scores = ok(skiff()
                        .arg("eval")
                        .arg(&model)
                        .arg("--data")
                        .arg(&test)
                        .args(["--target", "y", "--json"])
                        .output()
                        .unwrap());
                    let scores: Value = serde_json::from_str(&scores).unwrap();
                    std::fs::remove_file(&model).unwrap();
                    scores["metrics"]["accuracy"].as_f64().unwrap()
                })
                .collect();
            let theirs: Vec<f64> = theirs[epsilon]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (our_mean, our_var) = mean_and_variance(&ours);
            let (their_mean, their_var) = mean_and_variance(&theirs);
            // The 95% interval of diffprivlib's mean that a second sample of 30 must fall in.
            let half = 1.96 * ((their_var + our_var) / seeds as f64).sqrt();
            eprintln!(
                "{algorithm} epsilon {epsilon}: skiff {our_mean:.4} (sd {:.4}), diffprivlib \
                 {their_mean:.4} (sd {:.4}), interval ±{half:.4}",
                our_var.sqrt(),
                their_var.sqrt()
            );
            assert!(
                (our_mean - their_mean).abs() <= half,
                "{algorithm} at epsilon {epsilon}: skiff's mean accuracy {our_mean} is outside \
                 diffprivlib's {their_mean} ± {half}"
            );
        }
    }
}

#[test]
fn dp_budget_composes_as_diffprivlib_and_refuses_a_fit_over_budget() {
    let dir = tempfile::tempdir().unwrap();
    classification_data(dir.path());
    let ledger = dir.path().join("budget.json");
    let ledger_arg = ledger.to_str().unwrap();
    ok(run(&["dp", "budget", ledger_arg, "--epsilon", "2.5"]));
    fails_with(
        run(&["dp", "budget", ledger_arg, "--epsilon", "9"]),
        &["already exists"],
    );
    let fit = |epsilon: &str, model: &str| {
        skiff()
            .args(["fit", "dp-gaussian-nb", "--data"])
            .arg(dir.path().join("multi_train.csv"))
            .args(["--target", "y", "--set", &format!("epsilon={epsilon}")])
            .args(["--set", "bounds=-1:1", "--budget", ledger_arg, "-o"])
            .arg(dir.path().join(model))
            .output()
            .unwrap()
    };
    ok(fit("1", "first.onnx"));
    ok(fit("1", "second.onnx"));
    fails_with(
        fit("1", "third.onnx"),
        &["would exceed the budget", "2 of 2.5 spent"],
    );
    assert!(
        !dir.path().join("third.onnx").exists(),
        "a refused fit writes no model"
    );
    ok(run(&[
        "dp",
        "describe",
        penguins().to_str().unwrap(),
        "--epsilon",
        "0.5",
        "--stats",
        "count",
        "--budget",
        ledger_arg,
    ]));
    let state: Value =
        serde_json::from_str(&ok(run(&["dp", "budget", ledger_arg, "--json"]))).unwrap();
    assert_eq!(state["spent"].as_array().unwrap().len(), 3, "{state}");
    assert!(
        (state["spent_epsilon"].as_f64().unwrap() - 2.5).abs() < 1e-9,
        "{state}"
    );
    fails_with(
        run(&[
            "dp",
            "describe",
            penguins().to_str().unwrap(),
            "--epsilon",
            "0.1",
            "--budget",
            ledger_arg,
        ]),
        &["would exceed the budget"],
    );

    // Releases racing for one budget take turns: of four at 0.4 against 1.0, two pass.
    let shared = dir.path().join("shared.json");
    let shared_arg = shared.to_str().unwrap();
    ok(run(&["dp", "budget", shared_arg, "--epsilon", "1"]));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            skiff()
                .args(["dp", "describe"])
                .arg(penguins())
                .args(["--epsilon", "0.4", "--budget", shared_arg])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let passed = racers
        .into_iter()
        .map(|mut child| child.wait().unwrap().success())
        .filter(|&ok| ok)
        .count();
    assert_eq!(passed, 2, "two of four releases fit the budget");
    let state: Value =
        serde_json::from_str(&ok(run(&["dp", "budget", shared_arg, "--json"]))).unwrap();
    assert_eq!(state["spent"].as_array().unwrap().len(), 2, "{state}");

    // Non-private fits, and epsilon=inf, cannot spend from a budget.
    let out = skiff()
        .args(["fit", "gaussian-nb", "--data"])
        .arg(dir.path().join("multi_train.csv"))
        .args(["--target", "y", "--budget", ledger_arg, "-o"])
        .arg(dir.path().join("plain.onnx"))
        .output()
        .unwrap();
    fails_with(out, &["not differentially private"]);
    fails_with(fit("inf", "inf.onnx"), &["not private"]);
    // Preprocessing fitted on the data would leak: text columns and gaps are refused.
    let out = skiff()
        .args(["fit", "dp-gaussian-nb", "--data"])
        .arg(penguins())
        .args(["--target", "species", "--set", "bounds=0:10000", "-o"])
        .arg(dir.path().join("penguins.onnx"))
        .output()
        .unwrap();
    fails_with(out, &["differentially private", "\"island\"", "--drop"]);

    // Advanced composition: 100 releases of epsilon 0.1 add up to 10, but composed with a
    // slack of delta they spend about 5.3, within a budget of 6; skiff's totals equal
    // diffprivlib's accountant for the same spends.
    let slack = dir.path().join("slack.json");
    let slack_arg = slack.to_str().unwrap();
    ok(run(&[
        "dp",
        "budget",
        slack_arg,
        "--epsilon",
        "6",
        "--delta",
        "1e-5",
        "--slack",
        "1e-5",
    ]));
    for _ in 0..100 {
        ok(run(&[
            "dp",
            "describe",
            penguins().to_str().unwrap(),
            "--epsilon",
            "0.1",
            "--budget",
            slack_arg,
        ]));
    }
    let state: Value =
        serde_json::from_str(&ok(run(&["dp", "budget", slack_arg, "--json"]))).unwrap();
    let theirs = anchors(&["budget", slack_arg]);
    for (ours, key) in [
        ("spent_epsilon", "epsilon"),
        ("spent_delta", "delta"),
        ("remaining_epsilon", "remaining"),
    ] {
        let (a, b) = (state[ours].as_f64().unwrap(), theirs[key].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{ours}: skiff {a}, diffprivlib {b}"
        );
    }
    let spent = state["spent_epsilon"].as_f64().unwrap();
    assert!(spent < 6.0 && spent > 5.0, "{state}");
}
