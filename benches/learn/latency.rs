//! Single-row predict latency, in process: each estimator natively (skiff-learn) and its
//! exported ONNX file in skiff's runtime (tract). Classifiers and clusterers are fitted on
//! iris, regressors on diabetes. The ONNX files are written to `SKIFF_BENCH_ONNX` (default
//! `target/bench-onnx`) with the row they are timed on, for `latency_ort.py` to time the same
//! files in ONNX Runtime.
//!
//! usage: cargo bench --bench latency

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use skiff_data::Table;
use skiff_learn::{ExportInfo, Target, algorithm};
use skiff_runtime::{Tensor, TensorData};
use std::hint::black_box;
use std::path::PathBuf;

/// An estimator, its data set folder, the target column, and its `--set` hyperparameters.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CASES: &[Case] = &[
    ("logistic-regression", "examples/iris", "species", &[]),
    (
        "linear-svc",
        "examples/iris",
        "species",
        &[("random_state", "0")],
    ),
    ("gaussian-nb", "examples/iris", "species", &[]),
    ("knn-classifier", "examples/iris", "species", &[]),
    (
        "decision-tree-classifier",
        "examples/iris",
        "species",
        &[("random_state", "0")],
    ),
    (
        "random-forest-classifier",
        "examples/iris",
        "species",
        &[("random_state", "0")],
    ),
    (
        "linear-regression",
        "tests/data/diabetes",
        "progression",
        &[],
    ),
    ("ridge", "tests/data/diabetes", "progression", &[]),
    (
        "lasso",
        "tests/data/diabetes",
        "progression",
        &[("alpha", "0.1")],
    ),
    (
        "elastic-net",
        "tests/data/diabetes",
        "progression",
        &[("alpha", "0.01")],
    ),
    ("knn-regressor", "tests/data/diabetes", "progression", &[]),
    (
        "decision-tree-regressor",
        "tests/data/diabetes",
        "progression",
        &[],
    ),
    (
        "random-forest-regressor",
        "tests/data/diabetes",
        "progression",
        &[("random_state", "0")],
    ),
    (
        "kmeans",
        "examples/iris",
        "species",
        &[("n_clusters", "3"), ("random_state", "0")],
    ),
    (
        "gaussian-mixture",
        "examples/iris",
        "species",
        &[("n_components", "3"), ("random_state", "0")],
    ),
];

fn latency(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::var_os("SKIFF_BENCH_ONNX")
        .map_or_else(|| root.join("target/bench-onnx"), PathBuf::from);
    std::fs::create_dir_all(&out).unwrap();
    let mut group = c.benchmark_group("predict_1_row");
    for &(name, dataset, target, settings) in CASES {
        let table = Table::from_path(&root.join(dataset).join("train.csv")).unwrap();
        let features = table.columns_except(target);
        let x = table.features(&features).unwrap();
        let mut estimator = algorithm(name).unwrap();
        for (k, v) in settings {
            estimator.set(k, v).unwrap();
        }
        let y = Target::from_cells(estimator.as_ref(), &table.column(target).unwrap()).unwrap();
        let model = estimator.fit(x.view(), &y).unwrap();
        let info = ExportInfo {
            feature_names: features.clone(),
            target: target.into(),
            training_metric: None,
        };
        let bytes = model.to_onnx(&info).to_bytes();
        let row = x.slice(ndarray::s![0..1, ..]).to_owned();
        std::fs::write(out.join(format!("{name}.onnx")), &bytes).unwrap();
        let row_f32: Vec<f32> = row.iter().map(|&v| v as f32).collect();
        std::fs::write(
            out.join(format!("{name}.json")),
            serde_json::to_string(&row_f32).unwrap(),
        )
        .unwrap();
        group.bench_with_input(BenchmarkId::new("native", name), &row, |b, row| {
            b.iter(|| black_box(model.predict_rows(black_box(row.view()))))
        });
        let runtime = skiff_runtime::Model::from_bytes(name, &bytes).unwrap();
        group.bench_function(BenchmarkId::new("tract", name), |b| {
            b.iter(|| {
                let input =
                    Tensor::new(vec![1, row_f32.len()], TensorData::Fp32(row_f32.clone())).unwrap();
                black_box(runtime.run(vec![input]).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
