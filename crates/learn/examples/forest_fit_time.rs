//! Times fitting a 100-tree random forest on a synthetic 100,000 × 20 data set.
//!
//!     cargo run --release -p skiff-learn --example forest_fit_time [rows] [trees]

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skiff_learn::{ClassTarget, RandomForestClassifier, RandomForestRegressor};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(100_000, |a| a.parse().expect("rows"));
    let trees: usize = args.next().map_or(100, |a| a.parse().expect("trees"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = Array2::from_shape_fn((rows, 20), |_| rng.random_range(-1.0f64..1.0));
    let y: Vec<f64> = x
        .outer_iter()
        .map(|r| r[0].sin() * 2.0 + r[1] * r[2] + r[3] - r[4] * r[4] + rng.random_range(-0.3..0.3))
        .collect();
    let cells: Vec<&str> = y
        .iter()
        .map(|&v| {
            if v < -0.5 {
                "low"
            } else if v < 0.5 {
                "mid"
            } else {
                "high"
            }
        })
        .collect();
    let classes = ClassTarget::from_cells(&cells).expect("classes");
    println!(
        "{rows} rows x 20 features, {trees} trees, {} threads",
        rayon::current_num_threads()
    );

    let started = Instant::now();
    let m = RandomForestClassifier::params()
        .n_estimators(trees)
        .random_state(Some(0))
        .fit(x.view(), &classes)
        .expect("fit");
    let nodes: usize = m.trees.iter().map(|t| t.node_count()).sum();
    println!(
        "classifier (max_features=sqrt): {:.2}s, {nodes} nodes, training accuracy {:.4}",
        started.elapsed().as_secs_f64(),
        m.score(x.view(), &classes.indices).expect("score")
    );

    let started = Instant::now();
    let m = RandomForestRegressor::params()
        .n_estimators(trees)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .expect("fit");
    let nodes: usize = m.trees.iter().map(|t| t.node_count()).sum();
    println!(
        "regressor (max_features=1.0): {:.2}s, {nodes} nodes",
        started.elapsed().as_secs_f64()
    );
}
