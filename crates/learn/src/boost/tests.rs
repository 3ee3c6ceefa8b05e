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

/// Rows of three classes along a diagonal, a fifth of them relabelled at random, so that
/// the held-out loss stops improving.
fn three_classes(n: usize) -> (Array2<f64>, ClassTarget) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = Array2::from_shape_fn((n, 2), |_| rng.random_range(0.0..3.0));
    let cells: Vec<String> = x
        .outer_iter()
        .map(|r| {
            let class = if rng.random_bool(0.2) {
                rng.random_range(0..3)
            } else {
                ((r[0] + 0.5 * r[1]) as usize).min(2)
            };
            format!("c{class}")
        })
        .collect();
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    (x, ClassTarget::from_cells(&cells).unwrap())
}

#[test]
fn the_training_loss_is_recorded_per_iteration_without_early_stopping() {
    let (mixed_x, mixed_y) = mixed(800);
    let (three_x, three_y) = three_classes(600);
    for (x, y) in [(mixed_x, mixed_y), (three_x, three_y)] {
        let mut params = HistGradientBoostingClassifier::params();
        params.boosting.max_iter = 30;
        params.boosting.random_state = Some(1);
        let model = params.fit(x.view(), &y).unwrap();
        let curves = model.curves();
        assert_eq!(curves.len(), 1, "no rows held out: {curves:?}");
        let train = &curves[0];
        assert_eq!(train.name, "train_loss");
        let steps: Vec<u64> = train.points.iter().map(|p| p.0).collect();
        assert_eq!(steps, (0..=model.model.n_iter as u64).collect::<Vec<_>>());
        // The baseline is the loss of the class shares; the last point is the final model's
        // log-loss on the training rows, computed from its probabilities.
        let proba = model.predict_proba(x.view()).unwrap();
        let final_loss = crate::metrics::log_loss(&y.indices, proba.view());
        let last = train.points.last().unwrap().1;
        assert!((last - final_loss).abs() < 1e-5, "{last} vs {final_loss}");
        assert!(last < train.points[0].1 * 0.8, "{:?}", train.points);
    }
}

#[test]
fn the_regressors_training_loss_is_half_the_squared_error_of_its_predictions() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Array2::from_shape_fn((500, 2), |_| rng.random_range(-3.0f64..3.0));
    let y: Vec<f64> = x.outer_iter().map(|r| r[0].sin() + 0.5 * r[1]).collect();
    for loss in [RegressionLoss::SquaredError, RegressionLoss::AbsoluteError] {
        let mut params = HistGradientBoostingRegressorParams {
            loss,
            ..Default::default()
        };
        params.boosting.max_iter = 25;
        let model = params.fit(x.view(), &y).unwrap();
        let p = model.predict(x.view()).unwrap();
        let expected = match loss {
            RegressionLoss::SquaredError => 0.5 * crate::metrics::mse(&y, &p),
            RegressionLoss::AbsoluteError => crate::metrics::mae(&y, &p),
        };
        let curves = model.curves();
        assert_eq!(curves[0].points.len(), 26);
        let last = curves[0].points[25];
        assert_eq!(last.0, 25);
        assert!(
            (last.1 - expected).abs() < 1e-5,
            "{loss:?}: {last:?} vs {expected}"
        );
    }
}

#[test]
fn early_stopping_records_training_and_validation_losses_from_step_zero() {
    let (x, y) = three_classes(2000);
    let mut params = HistGradientBoostingClassifier::params();
    params.boosting.early_stopping = EarlyStopping::On;
    params.boosting.random_state = Some(4);
    let model = params.fit(x.view(), &y).unwrap();
    let n_iter = model.model.n_iter as u64;
    assert!(n_iter < 100, "early stopping stopped it: {n_iter}");
    let curves = model.curves();
    let names: Vec<&str> = curves.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["train_loss", "validation_loss"]);
    for curve in &curves {
        assert_eq!(curve.points.len() as u64, n_iter + 1);
        assert_eq!(curve.points[0].0, 0);
        assert_eq!(curve.points.last().unwrap().0, n_iter);
        assert!(curve.points.iter().all(|p| p.1 > 0.0), "a loss: {curve:?}");
    }
    // It stopped because the last n_iter_no_change validation losses did not improve.
    assert!(should_stop(&model.model.validation_loss, 10, 1e-7));
}

/// Early stopping decides on these losses, so the ones computed with the gradients must be
/// the very numbers `Loss::mean` gives.
#[test]
fn the_loss_computed_with_the_gradients_is_the_mean_loss() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 500;
    for loss in [
        Loss::Binary,
        Loss::Multinomial(3),
        Loss::Squared,
        Loss::Absolute,
    ] {
        let k = loss.n_scores();
        let raw = Array2::from_shape_fn((n, k), |_| rng.random_range(-30.0..30.0));
        let y: Vec<f64> = (0..n)
            .map(|_| match loss {
                Loss::Binary => rng.random_range(0..2) as f64,
                Loss::Multinomial(k) => rng.random_range(0..k) as f64,
                _ => rng.random_range(-30.0..30.0),
            })
            .collect();
        let (mut g, mut h) = (vec![0f32; n * k], vec![0f32; n * k]);
        let fused = loss.gradients(&y, &raw, &mut g, &mut h);
        assert_eq!(fused, loss.mean(&y, &raw), "{loss:?}");
    }
}

/// The binary loss sums its logarithms as one logarithm of a product: it must still be the
/// plain sum of `ln(1 + e^r) - y r`, over several blocks, with scores far past where `e^-r`
/// overflows.
#[test]
fn the_binary_loss_is_the_sum_of_the_rows_log_losses() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 3 * 4096 + 17;
    for scale in [3.0f64, 40.0, 800.0] {
        let raw = Array2::from_shape_fn((n, 1), |_| rng.random_range(-scale..scale));
        let y: Vec<f64> = (0..n).map(|_| rng.random_range(0..2) as f64).collect();
        let plain = raw
            .column(0)
            .iter()
            .zip(&y)
            .map(|(&r, &y)| {
                let softplus = if r > 0.0 {
                    r + (-r).exp().ln_1p()
                } else {
                    r.exp().ln_1p()
                };
                softplus - y * r
            })
            .sum::<f64>()
            / n as f64;
        let (mut g, mut h) = (vec![0f32; n], vec![0f32; n]);
        let fused = Loss::Binary.gradients(&y, &raw, &mut g, &mut h);
        assert_eq!(fused, Loss::Binary.mean(&y, &raw), "scale {scale}");
        assert!(
            (fused - plain).abs() <= 1e-12 * plain.abs().max(1.0),
            "scale {scale}: {fused} vs {plain}"
        );
        // The gradients are the sigmoid's, as before.
        for ((&r, &y), &g) in raw.column(0).iter().zip(&y).zip(&g) {
            assert_eq!(g, (1.0 / (1.0 + (-r).exp()) - y) as f32);
        }
    }
}

#[test]
fn each_leaf_keeps_its_rows_in_order_across_partition_chunks() {
    // Enough rows for a split to partition them in several chunks.
    let n = 40_000;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = Array2::from_shape_fn((n, 3), |_| rng.random_range(0.0..1.0));
    let fitted = bins::fit_bins(x.view(), &[false; 3], 255, &mut rng).unwrap();
    let binned = bins::bin_columns(x.view(), &fitted, 255);
    let gradients: Vec<f32> = (0..n)
        .map(|i| (x[[i, 0]] - 0.5 + x[[i, 1]] * x[[i, 2]]) as f32)
        .collect();
    let options = GrowOptions {
        max_leaf_nodes: Some(31),
        max_depth: None,
        min_samples_leaf: 20,
        l2_regularization: 0.0,
        shrinkage: 0.1,
        missing: 255,
    };
    let mut scratch = Scratch::default();
    // Twice with one scratch: buffers left by a tree must not leak into the next.
    let first = grow(&binned, &fitted, &gradients, None, &options, &mut scratch);
    scratch.give_rows(first.rows.clone());
    let second = grow(&binned, &fitted, &gradients, None, &options, &mut scratch);
    assert_eq!(first.tree, second.tree);
    assert_eq!(first.rows, second.rows);
    assert_eq!(first.leaves.len(), 31);
    let mut seen = vec![false; n];
    for &(_, start, end) in &first.leaves {
        let rows = &first.rows[start..end];
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "a leaf's rows out of order"
        );
        for &row in rows {
            assert!(
                !std::mem::replace(&mut seen[row as usize], true),
                "row {row} twice"
            );
        }
    }
    assert!(seen.iter().all(|&s| s), "a row in no leaf");
}

#[test]
fn the_fits_own_scores_of_its_rows_are_the_models_predictions_of_them() {
    // Held-out rows (early stopping above 10,000 rows), gaps, a categorical feature, three
    // classes and both regression losses: the raw scores kept from the fit are bit for bit
    // the ones predicting the training rows gives, so the training metric can use them.
    let (x, y) = mixed(12_000);
    let mut params = HistGradientBoostingClassifier::params();
    params.boosting.categorical_features = Some(CategoricalFeatures::Indices(vec![1]));
    params.boosting.max_iter = 15;
    params.boosting.random_state = Some(1);
    let model = params.fit(x.view(), &y).unwrap();
    assert!(
        !model.model.validation_loss.is_empty(),
        "rows were held out"
    );
    assert_eq!(model.model.fitted_raw(), Some(&model.model.raw(x.view())));
    assert_eq!(model.fit_predictions(), Some(model.predict_rows(x.view())));

    let (x, y) = three_classes(3000);
    let model = HistGradientBoostingClassifier::params()
        .fit(x.view(), &y)
        .unwrap();
    assert_eq!(model.model.fitted_raw(), Some(&model.model.raw(x.view())));

    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = Array2::from_shape_fn((11_000, 3), |(i, j)| {
        if (i + j) % 11 == 0 {
            f64::NAN
        } else {
            rng.random_range(-3.0f64..3.0)
        }
    });
    let y: Vec<f64> = x
        .outer_iter()
        .map(|r| r[0].sin() + 0.5 * r[1].abs() - r[2])
        .map(|v| if v.is_nan() { 1.0 } else { v })
        .collect();
    for loss in [RegressionLoss::SquaredError, RegressionLoss::AbsoluteError] {
        let params = HistGradientBoostingRegressorParams {
            loss,
            boosting: Boosting {
                max_iter: 20,
                random_state: Some(4),
                ..Default::default()
            },
        };
        let model = params.fit(x.view(), &y).unwrap();
        assert_eq!(model.model.fitted_raw(), Some(&model.model.raw(x.view())));
        assert_eq!(model.fit_predictions(), Some(model.predict_rows(x.view())));
    }
}
