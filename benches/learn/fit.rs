//! Fit times of skiff's estimators on the benchmark data (`make_data.py`), as JSON lines:
//! each estimator fitted REPEAT times (default 3), the best time counts; also the time to
//! read the CSV into a matrix (best of REPEAT reads, with the allocator `skiff` runs on), and
//! the `--set` hyperparameters, which match
//! `fit_sklearn.py`'s (`cli_wall.py` gives them to `skiff fit`). ONLY=a,b fits just those.
//!
//! usage: cargo bench --bench fit -- DATA_DIR

use skiff_data::Table;
use skiff_learn::{Target, algorithm};
use std::time::Instant;

/// The allocator of the `skiff` binary, so that reading costs here what it costs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The table at `path` and its features as a matrix, read `repeat` times: the last read and
/// the best time.
fn read(path: &str, repeat: usize) -> (Table, ndarray::Array2<f64>, f64) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        let table = Table::from_path(path.as_ref()).unwrap();
        let target = table.headers().last().unwrap().clone();
        let x = table.features(&table.columns_except(&target)).unwrap();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some((table, x));
    }
    let (table, x) = last.expect("read at least once");
    (table, x, best)
}

/// An estimator, the data set it fits, and its `--set` hyperparameters.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const ESTIMATORS: &[Case] = &[
    ("logistic-regression", "classification", &[]),
    ("linear-svc", "classification", &[("random_state", "0")]),
    ("gaussian-nb", "classification", &[]),
    ("knn-classifier", "classification", &[]),
    (
        "decision-tree-classifier",
        "classification",
        &[("random_state", "0")],
    ),
    (
        "random-forest-classifier",
        "classification",
        &[("random_state", "0")],
    ),
    ("linear-regression", "regression", &[]),
    ("ridge", "regression", &[]),
    ("lasso", "regression", &[("alpha", "0.1")]),
    ("elastic-net", "regression", &[("alpha", "0.1")]),
    ("knn-regressor", "regression", &[]),
    ("decision-tree-regressor", "regression", &[]),
    (
        "random-forest-regressor",
        "regression",
        &[("random_state", "0")],
    ),
    (
        "kmeans",
        "blobs",
        &[("n_clusters", "8"), ("n_init", "1"), ("random_state", "0")],
    ),
    (
        "gaussian-mixture",
        "blobs",
        &[("n_components", "8"), ("random_state", "0")],
    ),
];

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: cargo bench --bench fit -- DATA_DIR");
    let repeat: usize = std::env::var("REPEAT").map_or(3, |r| r.parse().expect("REPEAT"));
    let only = std::env::var("ONLY").ok();
    for &(name, data, settings) in ESTIMATORS {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == name))
        {
            continue;
        }
        let (table, x, read_seconds) = read(&format!("{dir}/{data}.csv"), repeat);
        let target = table.headers().last().unwrap().clone();
        let mut estimator = algorithm(name).unwrap();
        for (k, v) in settings {
            estimator.set(k, v).unwrap();
        }
        let cells = table.column(&target).unwrap();
        let y = Target::from_cells(estimator.as_ref(), &cells).unwrap();
        let mut best = f64::INFINITY;
        for _ in 0..repeat {
            let start = Instant::now();
            let model = estimator.fit(x.view(), &y).unwrap();
            best = best.min(start.elapsed().as_secs_f64());
            drop(model);
        }
        let line = serde_json::json!({
            "estimator": name,
            "seconds": best,
            "read_seconds": read_seconds,
            "data": data,
            "target": target,
            "settings": settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        });
        println!("{line}");
    }
}
