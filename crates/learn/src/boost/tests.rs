use super::*;
use ndarray::Array2;

/// Rows where class depends on x0 (numeric, with gaps) and x1 (a category code).
fn mixed(n: usize) -> (Array2<f64>, ClassTarget) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Array2::from_shape_fn((n, 2), |(i, j)| match j {
        0 if i % 7 == 0 => f64::NAN,
        0 => rng.random_range(0.0..10.0),
        _ => (i % 4) as f64,
    });
    let cells: Vec<&str> = x
        .outer_iter()
        .map(|r| {
            let high = r[0].is_nan() || r[0] > 5.0;
            if high ^ (r[1] == 1.0 || r[1] == 3.0) {
                "a"
            } else {
                "b"
            }
        })
        .collect();
    (x, ClassTarget::from_cells(&cells).unwrap())
}

#[test]
fn learns_gaps_and_category_sets() {
    let (x, y) = mixed(800);
    let mut params = HistGradientBoostingClassifier::params();
    params.boosting.categorical_features = Some(CategoricalFeatures::Indices(vec![1]));
    let model = params.fit(x.view(), &y).unwrap();
    let predicted = model.predict_rows(x.view());
    let Predictions::Classes(p) = predicted else {
        panic!()
    };
    let accuracy = crate::metrics::accuracy(&y.indices, &p);
    assert!(accuracy > 0.97, "accuracy {accuracy}");
    // Category splits send sets of codes left.
    let sets = model
        .model
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .any(|n| matches!(n, Node::Split { rule: Rule::OneOf(codes), .. } if codes.len() == 2));
    assert!(sets, "no split on two categories");
}

#[test]
fn the_same_seed_gives_the_same_model_whatever_the_threads() {
    let (x, y) = mixed(12_000);
    let mut params = HistGradientBoostingClassifier::params();
    params.boosting.random_state = Some(3);
    params.boosting.max_iter = 20;
    let fit = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| params.fit(x.view(), &y).unwrap())
    };
    let (one, four) = (fit(1), fit(4));
    assert_eq!(one.model, four.model);
    // Above 10,000 rows early stopping holds out a tenth of them.
    assert_eq!(one.model.validation_loss.len(), one.model.n_iter + 1);
}

#[test]
fn regressor_losses_fit_a_curve() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Array2::from_shape_fn((1000, 2), |_| rng.random_range(-3.0f64..3.0));
    let y: Vec<f64> = x.outer_iter().map(|r| r[0].sin() + 0.5 * r[1]).collect();
    for loss in [RegressionLoss::SquaredError, RegressionLoss::AbsoluteError] {
        let params = HistGradientBoostingRegressorParams {
            loss,
            ..Default::default()
        };
        let model = params.fit(x.view(), &y).unwrap();
        let p = model.predict(x.view()).unwrap();
        let r2 = crate::metrics::r2(&y, &p);
        assert!(r2 > 0.97, "{loss:?}: r2 {r2}");
    }
}

#[test]
fn early_stopping_stops_when_the_loss_stalls() {
    assert!(!should_stop(&[5.0, 4.0, 3.0], 2, 0.0));
    assert!(should_stop(&[5.0, 4.0, 4.0, 4.0], 2, 0.0));
    assert!(!should_stop(&[5.0, 4.0, 4.0, 3.9], 2, 0.0));
    assert!(should_stop(&[5.0, 4.0, 4.0, 3.9], 2, 0.5));
}

#[test]
fn hyperparameters_keep_scikit_learns_names_and_ranges() {
    let mut p = HistGradientBoostingClassifierParams::default();
    p.set("early_stopping", "false").unwrap();
    assert_eq!(p.boosting.early_stopping, EarlyStopping::Off);
    p.set("early_stopping", "auto").unwrap();
    assert_eq!(p.boosting.early_stopping, EarlyStopping::Auto);
    p.set("categorical_features", "0,2").unwrap();
    assert_eq!(
        p.boosting.categorical_features,
        Some(CategoricalFeatures::Indices(vec![0, 2]))
    );
    p.set("max_leaf_nodes", "None").unwrap();
    for (name, value) in [
        ("max_bins", "256"),
        ("learning_rate", "0"),
        ("early_stopping", "maybe"),
        ("validation_fraction", "1.5"),
        ("max_leaf_nodes", "1"),
    ] {
        let err = p.set(name, value).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
    let json = p.to_json();
    for name in [
        "learning_rate",
        "max_iter",
        "min_samples_leaf",
        "l2_regularization",
        "loss",
    ] {
        assert!(json.get(name).is_some(), "{name} in {json}");
    }
}
