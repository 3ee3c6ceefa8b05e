use super::network::{Layout, Objective, Output};
use super::*;
use crate::catalog::{Fitted, Target};
use crate::{Error, Export, ExportInfo};
use ndarray::{Array2, Axis, array};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skiff_runtime::{Tensor, TensorData};

/// Iris's training and test rows, standardised by the training rows' means and deviations.
fn iris() -> (Array2<f64>, ClassTarget, Array2<f64>, Vec<usize>) {
    let read = |name: &str| {
        let path = format!("{}/../../examples/iris/{name}", env!("CARGO_MANIFEST_DIR"));
        let table = skiff_data::Table::from_path(path.as_ref()).unwrap();
        let x = table.features(&table.columns_except("species")).unwrap();
        let species: Vec<String> = table
            .column("species")
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        (x, species)
    };
    let (x, species) = read("train.csv");
    let (test_x, test_species) = read("test.csv");
    let cells: Vec<&str> = species.iter().map(String::as_str).collect();
    let y = ClassTarget::from_cells(&cells).unwrap();
    let mean = x.mean_axis(Axis(0)).unwrap();
    let std = x.std_axis(Axis(0), 0.0);
    let names = ["setosa", "versicolor", "virginica"];
    let test_y = test_species
        .iter()
        .map(|s| names.iter().position(|n| n == s).unwrap())
        .collect();
    ((&x - &mean) / &std, y, (&test_x - &mean) / &std, test_y)
}

/// Two noisy, overlapping blobs with labels "no" and "yes".
fn binary(n: usize) -> (Array2<f64>, ClassTarget) {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let labels: Vec<&str> = (0..n)
        .map(|i| if i % 2 == 0 { "no" } else { "yes" })
        .collect();
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        (i % 2) as f64 * (1.0 + j as f64 * 0.3) + rng.random_range(-1.0..1.0)
    });
    (x, ClassTarget::from_cells(&labels).unwrap())
}

/// y = sin(2·x0) + x1² − 0.5·x2 on rows uniform in [−1.5, 1.5]³.
fn smooth(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, 3), |_| rng.random_range(-1.5f64..1.5));
    let y = x
        .outer_iter()
        .map(|r| (2.0 * r[0]).sin() + r[1] * r[1] - 0.5 * r[2])
        .collect();
    (x, y)
}

fn accuracy(model: &FittedMlpClassifier, x: &Array2<f64>, y: &[usize]) -> f64 {
    model.score(x.view(), y).unwrap()
}

#[test]
fn every_solver_learns_iris() {
    let (x, y, test_x, test_y) = iris();
    for solver in [Solver::Adam, Solver::Sgd, Solver::Lbfgs] {
        // sgd's steps are plain gradient steps: it needs a larger one in as many epochs.
        let rate = if solver == Solver::Sgd { 0.01 } else { 0.001 };
        let model = MlpClassifier::params()
            .solver(solver)
            .learning_rate_init(rate)
            .max_iter(1000)
            .random_state(Some(0))
            .fit(x.view(), &y)
            .unwrap();
        let train = accuracy(&model, &x, &y.indices);
        let test = accuracy(&model, &test_x, &test_y);
        assert!(train > 0.95 && test > 0.9, "{solver:?}: {train} {test}");
        assert_eq!(model.coefs.len(), 2);
        assert_eq!(model.coefs[0].dim(), (4, 100));
        assert_eq!(model.coefs[1].dim(), (100, 3));
        assert_eq!(model.intercepts[1].len(), 3);
        let p = model.predict_proba(test_x.view()).unwrap();
        for (row, index) in p
            .outer_iter()
            .zip(model.predict_index(test_x.view()).unwrap())
        {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            assert_eq!(crate::classifier::argmax(row.iter().copied()), index);
        }
        if solver == Solver::Lbfgs {
            assert!(model.training.loss_curve.is_empty());
            // The loss curve of lbfgs is its loss per iteration, falling to the final loss.
            let losses = &model.training.lbfgs_losses;
            assert_eq!(losses.len() as u64, model.training.n_iter);
            assert!(losses.windows(2).all(|w| w[1] <= w[0]), "{losses:?}");
            assert_eq!(model.training.loss, *losses.last().unwrap());
            let curves = Fitted::curves(&model);
            assert_eq!(curves[0].name, "loss");
            assert_eq!(curves[0].points.len() as u64, model.training.n_iter);
            assert_eq!(
                curves[0].points.last().unwrap(),
                &(model.training.n_iter, model.training.loss)
            );
        } else {
            assert_eq!(
                model.training.loss_curve.len() as u64,
                model.training.n_iter
            );
            assert!(
                model.training.loss_curve[model.training.loss_curve.len() - 1]
                    < model.training.loss_curve[0]
            );
            assert_eq!(
                model.training.loss,
                *model.training.loss_curve.last().unwrap()
            );
        }
    }
}

#[test]
fn two_classes_get_one_logistic_unit() {
    let (x, y) = binary(200);
    for activation in [
        Activation::Relu,
        Activation::Tanh,
        Activation::Logistic,
        Activation::Identity,
    ] {
        let model = MlpClassifier::params()
            .hidden_layer_sizes(vec![6, 4])
            .activation(activation)
            .solver(Solver::Lbfgs)
            .random_state(Some(2))
            .fit(x.view(), &y)
            .unwrap();
        assert_eq!(model.coefs.len(), 3);
        assert_eq!(model.coefs[2].dim(), (4, 1));
        assert!(accuracy(&model, &x, &y.indices) > 0.8, "{activation:?}");
        let p = model.predict_proba(x.view()).unwrap();
        assert_eq!(p.dim(), (200, 2));
        let labels = model.predict(x.view()).unwrap();
        for (row, label) in p.outer_iter().zip(&labels) {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            assert_eq!(label, if row[1] > 0.5 { "yes" } else { "no" });
        }
    }
}

#[test]
fn the_regressor_fits_a_smooth_function() {
    let (x, y) = smooth(400, 1);
    let (test_x, test_y) = smooth(200, 2);
    for (solver, activation) in [
        (Solver::Lbfgs, Activation::Tanh),
        (Solver::Adam, Activation::Relu),
        (Solver::Sgd, Activation::Tanh),
    ] {
        let model = MlpRegressor::params()
            .hidden_layer_sizes(vec![30])
            .activation(activation)
            .solver(solver)
            .learning_rate_init(0.01)
            .max_iter(1000)
            .random_state(Some(4))
            .fit(x.view(), &y)
            .unwrap();
        let r2 = model.score(test_x.view(), &test_y).unwrap();
        assert!(r2 > 0.95, "{solver:?}: R² {r2}");
        assert_eq!(model.coefs[1].dim(), (30, 1));
        let scores = model.scores(test_x.view());
        assert_eq!(scores.dim(), (200, 1));
    }
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = Array2::from_shape_fn((9, 3), |_| rng.random_range(-1.0..1.0));
    for (output, columns) in [
        (Output::Identity, 1),
        (Output::Logistic, 1),
        (Output::Softmax, 3),
    ] {
        let y = Array2::from_shape_fn((9, columns), |(i, j)| match output {
            Output::Identity => i as f64 * 0.3 - 1.0,
            Output::Logistic => (i % 2) as f64,
            Output::Softmax => f64::from(i % columns == j),
        });
        for activation in [
            Activation::Relu,
            Activation::Tanh,
            Activation::Logistic,
            Activation::Identity,
        ] {
            let layout = Layout::new(vec![3, 5, 4, columns]);
            let objective = Objective {
                layout: &layout,
                activation,
                output,
                alpha: 0.3,
            };
            let theta = layout.glorot(activation, &mut rng);
            let mut grad = vec![0.0; theta.len()];
            objective.loss_grad(&theta, x.view(), y.view(), &mut grad);
            let mut scratch = grad.clone();
            for k in 0..theta.len() {
                let h = 1e-6;
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[k] += h;
                down[k] -= h;
                let numeric = (objective.loss_grad(&up, x.view(), y.view(), &mut scratch)
                    - objective.loss_grad(&down, x.view(), y.view(), &mut scratch))
                    / (2.0 * h);
                assert!(
                    (numeric - grad[k]).abs() < 1e-6,
                    "{output:?} {activation:?} weight {k}: {numeric} vs {}",
                    grad[k]
                );
            }
        }
    }
}

#[test]
fn initial_weights_are_glorot_uniform() {
    let layout = Layout::new(vec![4, 10, 3]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (activation, factor) in [(Activation::Relu, 6.0), (Activation::Logistic, 2.0)] {
        let theta = layout.glorot(activation, &mut rng);
        let (coefs, intercepts) = layout.views(&theta);
        for (w, b) in coefs.iter().zip(&intercepts) {
            let bound = f64::sqrt(factor / (w.nrows() + w.ncols()) as f64);
            let largest = w.iter().chain(b).fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                largest < bound && largest > 0.7 * bound,
                "{largest} {bound}"
            );
        }
    }
}

#[test]
fn set_parses_every_kind_of_hyperparameter() {
    let mut p = MlpClassifier::params();
    for (text, sizes) in [
        ("50,20", vec![50, 20]),
        ("50", vec![50]),
        ("(30,)", vec![30]),
        ("[10, 5, 2]", vec![10, 5, 2]),
        (" 7 , 3 ", vec![7, 3]),
        ("()", vec![]),
    ] {
        p.set("hidden_layer_sizes", text).unwrap();
        assert_eq!(p.0.hidden_layer_sizes, sizes, "{text}");
    }
    p.set("activation", "tanh").unwrap();
    p.set("solver", "sgd").unwrap();
    p.set("alpha", "0.01").unwrap();
    p.set("batch_size", "32").unwrap();
    assert_eq!(p.0.batch_size, Some(32));
    p.set("batch_size", "auto").unwrap();
    assert_eq!(p.0.batch_size, None);
    p.set("batch_size", "16").unwrap();
    p.set("batch_size", "None").unwrap();
    assert_eq!(p.0.batch_size, None);
    p.set("learning_rate", "invscaling").unwrap();
    p.set("learning_rate_init", "0.1").unwrap();
    p.set("power_t", "0.25").unwrap();
    p.set("max_iter", "50").unwrap();
    p.set("shuffle", "false").unwrap();
    p.set("random_state", "3").unwrap();
    p.set("tol", "0").unwrap();
    p.set("momentum", "0.5").unwrap();
    p.set("nesterovs_momentum", "False").unwrap();
    p.set("early_stopping", "true").unwrap();
    p.set("validation_fraction", "0.2").unwrap();
    p.set("beta_1", "0.8").unwrap();
    p.set("beta_2", "0.99").unwrap();
    p.set("epsilon", "1e-7").unwrap();
    p.set("n_iter_no_change", "5").unwrap();
    p.set("max_fun", "100").unwrap();
    let expected = MlpParams {
        hidden_layer_sizes: vec![],
        activation: Activation::Tanh,
        solver: Solver::Sgd,
        alpha: 0.01,
        batch_size: None,
        learning_rate: LearningRate::Invscaling,
        learning_rate_init: 0.1,
        power_t: 0.25,
        max_iter: 50,
        shuffle: false,
        random_state: Some(3),
        tol: 0.0,
        momentum: 0.5,
        nesterovs_momentum: false,
        early_stopping: true,
        validation_fraction: 0.2,
        beta_1: 0.8,
        beta_2: 0.99,
        epsilon: 1e-7,
        n_iter_no_change: 5,
        max_fun: 100,
    };
    assert_eq!(p.0, expected);
    let json = p.to_json();
    assert_eq!(json["hidden_layer_sizes"], serde_json::json!([]));
    let mut r = MlpRegressor::params();
    r.set("hidden_layer_sizes", "64,32").unwrap();
    assert_eq!(r.0.hidden_layer_sizes, [64, 32]);
    assert_eq!(
        MlpRegressor::params().to_json()["hidden_layer_sizes"],
        serde_json::json!([100])
    );
}

#[test]
fn invalid_values_are_rejected_with_their_name() {
    let cases = [
        ("hidden_layer_sizes", "0"),
        ("hidden_layer_sizes", "50,0"),
        ("hidden_layer_sizes", "-3"),
        ("hidden_layer_sizes", "50,x"),
        ("hidden_layer_sizes", "1.5"),
        ("activation", "softplus"),
        ("solver", "newton"),
        ("alpha", "-1"),
        ("batch_size", "0"),
        ("batch_size", "big"),
        ("learning_rate", "cyclic"),
        ("learning_rate_init", "0"),
        ("power_t", "-0.5"),
        ("max_iter", "0"),
        ("shuffle", "maybe"),
        ("random_state", "-1"),
        ("tol", "-1"),
        ("momentum", "1.5"),
        ("nesterovs_momentum", "2"),
        ("early_stopping", "yes"),
        ("validation_fraction", "1"),
        ("beta_1", "1"),
        ("beta_2", "-0.1"),
        ("epsilon", "0"),
        ("n_iter_no_change", "0"),
        ("max_fun", "0"),
    ];
    let mut p = MlpClassifier::params();
    for (name, value) in cases {
        let err = p.set(name, value).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParam { .. }),
            "{name}={value}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid hyperparameter {name}=")),
            "{message}"
        );
    }
    assert_eq!(p, MlpClassifier::params());
    let err = p.set("hidden_layer_sizes", "50,x").unwrap_err().to_string();
    assert!(err.contains("comma-separated list such as 50,20"), "{err}");
    let err = p.set("loss", "poisson").unwrap_err().to_string();
    assert!(
        err.contains("mlp-classifier has no hyperparameter"),
        "{err}"
    );

    let (x, y) = binary(20);
    let bad = MlpClassifier::params().momentum(-0.1);
    assert!(matches!(
        bad.fit(x.view(), &y),
        Err(Error::InvalidParam { name, .. }) if name == "momentum"
    ));
}

#[test]
fn bad_data_is_an_error() {
    let (mut x, y) = binary(20);
    let classifier = MlpClassifier::params().random_state(Some(0)).max_iter(5);
    let model = classifier.fit(x.view(), &y).unwrap();
    let err = model.predict(x.slice(ndarray::s![.., ..2])).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    x[[3, 1]] = f64::NAN;
    assert!(matches!(
        classifier.fit(x.view(), &y),
        Err(Error::NonFinite)
    ));
    let (x, mut values) = smooth(20, 0);
    values[2] = f64::INFINITY;
    assert!(matches!(
        MlpRegressor::params().fit(x.view(), &values),
        Err(Error::Target(_))
    ));
    assert!(matches!(
        MlpRegressor::params().fit(x.view(), &values[..5]),
        Err(Error::Shape(_))
    ));
    let (x, y) = binary(10);
    let err = MlpClassifier::params()
        .early_stopping(true)
        .fit(x.view(), &y)
        .unwrap_err();
    assert!(matches!(err, Error::TooFewRows(_)), "{err}");
}

#[test]
fn a_seed_gives_the_same_model_on_any_thread_count() {
    let (x, y) = binary(120);
    let (rx, ry) = smooth(120, 3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for solver in [Solver::Adam, Solver::Sgd, Solver::Lbfgs] {
        let params = MlpClassifier::params()
            .hidden_layer_sizes(vec![16, 8])
            .solver(solver)
            .max_iter(30)
            .random_state(Some(11));
        let a = params.fit(x.view(), &y).unwrap();
        let b = pool.install(|| params.fit(x.view(), &y).unwrap());
        assert_eq!(a, b, "{solver:?}");
        let c = params
            .clone()
            .random_state(Some(12))
            .fit(x.view(), &y)
            .unwrap();
        assert_ne!(a.coefs, c.coefs);

        let r = MlpRegressor::params()
            .hidden_layer_sizes(vec![8])
            .solver(solver)
            .max_iter(20)
            .early_stopping(solver != Solver::Lbfgs)
            .random_state(Some(5));
        assert_eq!(
            r.fit(rx.view(), &ry).unwrap(),
            pool.install(|| r.fit(rx.view(), &ry).unwrap())
        );
    }
}

#[test]
fn stopping_at_max_iter_warns_as_scikit_learn_does() {
    let (x, y) = binary(100);
    let adam = MlpClassifier::params()
        .max_iter(3)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert_eq!(adam.training.n_iter, 3);
    assert!(!adam.training.converged);
    let warnings = Fitted::warnings(&adam);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "mlp-classifier: Stochastic Optimizer: Maximum iterations (3) reached and the \
             optimization hasn't converged yet"
        ),
        "{warnings:?}"
    );
    let lbfgs = MlpClassifier::params()
        .solver(Solver::Lbfgs)
        .max_iter(2)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert_eq!(lbfgs.training.n_iter, 2);
    let warnings = Fitted::warnings(&lbfgs);
    assert!(
        warnings[0].starts_with("mlp-classifier: lbfgs failed to converge after 2 iteration(s)"),
        "{warnings:?}"
    );
    let limited = MlpClassifier::params()
        .solver(Solver::Lbfgs)
        .max_fun(3)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert!(Fitted::warnings(&limited)[0].contains("max_fun=3"));
    assert!(limited.training.n_iter <= 3, "{}", limited.training.n_iter);

    // Many epochs on easy data: the loss stops improving and training stops by itself.
    let (x, y, _, _) = iris();
    let settled = MlpClassifier::params()
        .hidden_layer_sizes(vec![10])
        .learning_rate_init(0.05)
        .max_iter(2000)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert!(
        settled.training.converged && settled.training.n_iter < 2000,
        "{}",
        settled.training.n_iter
    );
    assert!(Fitted::warnings(&settled).is_empty());
    assert!(settled.training.best_loss.unwrap() <= settled.training.loss);
}

#[test]
fn early_stopping_keeps_the_best_validation_weights() {
    let (x, y, _, _) = iris();
    let model = MlpClassifier::params()
        .hidden_layer_sizes(vec![20])
        .early_stopping(true)
        .validation_fraction(0.2)
        .learning_rate_init(0.01)
        .max_iter(500)
        .random_state(Some(1))
        .fit(x.view(), &y)
        .unwrap();
    assert_eq!(
        model.training.validation_scores.len() as u64,
        model.training.n_iter
    );
    let best = model
        .training
        .validation_scores
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(model.training.best_validation_score, Some(best));
    assert!(best > 0.85, "{best}");
    assert!(model.training.converged);
    assert_eq!(model.training.best_loss, None);

    let (rx, ry) = smooth(300, 5);
    let regressor = MlpRegressor::params()
        .hidden_layer_sizes(vec![20])
        .early_stopping(true)
        .learning_rate_init(0.01)
        .max_iter(300)
        .random_state(Some(2))
        .fit(rx.view(), &ry)
        .unwrap();
    assert!(regressor.training.best_validation_score.unwrap() > 0.8);
}

#[test]
fn sgd_schedules_and_plain_momentum_train() {
    let (x, y, test_x, test_y) = iris();
    for (schedule, nesterov, shuffle) in [
        (LearningRate::Constant, false, true),
        (LearningRate::Invscaling, true, true),
        (LearningRate::Adaptive, true, false),
    ] {
        let model = MlpClassifier::params()
            .hidden_layer_sizes(vec![20])
            .solver(Solver::Sgd)
            .learning_rate(schedule)
            .learning_rate_init(0.1)
            .nesterovs_momentum(nesterov)
            .shuffle(shuffle)
            .batch_size(Some(16))
            .max_iter(300)
            .random_state(Some(3))
            .fit(x.view(), &y)
            .unwrap();
        let acc = accuracy(&model, &test_x, &test_y);
        let floor = if schedule == LearningRate::Invscaling {
            0.3
        } else {
            0.9
        };
        assert!(acc >= floor, "{schedule:?}: {acc}");
    }
    let clipped = MlpClassifier::params()
        .batch_size(Some(1000))
        .max_iter(2)
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert!(Fitted::warnings(&clipped)[0].contains("It is going to be clipped"));
}

#[test]
fn the_catalog_fits_both_by_name() {
    let (x, y) = binary(60);
    let mut classifier = crate::algorithm("mlp-classifier").unwrap();
    assert!(classifier.needs_scaling());
    classifier.set("hidden_layer_sizes", "8,4").unwrap();
    classifier.set("random_state", "0").unwrap();
    let model = classifier
        .fit(x.view(), &Target::Classes(y.clone()))
        .unwrap();
    assert_eq!(model.scores(x.view()).dim(), (60, 2));
    assert_eq!(
        model.hyperparameters()["hidden_layer_sizes"],
        serde_json::json!([8, 4])
    );
    let (rx, ry) = smooth(60, 0);
    let mut regressor = crate::algorithm("mlp-regressor").unwrap();
    regressor.set("solver", "lbfgs").unwrap();
    let model = regressor.fit(rx.view(), &Target::Values(ry)).unwrap();
    assert!(
        matches!(model.predict_rows(rx.view()), crate::Predictions::Values(v) if v.len() == 60)
    );
}

fn info(n_features: usize) -> ExportInfo {
    ExportInfo {
        feature_names: (0..n_features).map(|i| format!("f{i}")).collect(),
        target: "y".into(),
        training_metric: None,
    }
}

/// Runs an exported model in skiff's runtime (tract) on rows `x`.
fn run(model: &dyn Export, x: &Array2<f64>) -> Vec<Tensor> {
    let bytes = model.to_onnx(&info(x.ncols())).to_bytes();
    let loaded = skiff_runtime::Model::from_bytes("mlp.onnx", &bytes).unwrap();
    assert_eq!(loaded.metadata()["skiff.algorithm"], model.algorithm());
    let input = Tensor::new(
        vec![x.nrows(), x.ncols()],
        TensorData::Fp32(x.iter().map(|&v| v as f32).collect()),
    )
    .unwrap();
    loaded.run(vec![input]).unwrap()
}

fn floats(t: &Tensor) -> Vec<f32> {
    match &t.data {
        TensorData::Fp32(v) => v.clone(),
        other => panic!("values are {:?}", other.datatype()),
    }
}

fn labels(t: &Tensor) -> Vec<String> {
    match &t.data {
        TensorData::Bytes(v) => v.clone(),
        TensorData::Int64(v) => v.iter().map(i64::to_string).collect(),
        other => panic!("labels are {:?}", other.datatype()),
    }
}

fn largest_difference(native: &Array2<f64>, onnx: &[f32]) -> f64 {
    assert_eq!(native.len(), onnx.len());
    native
        .iter()
        .zip(onnx)
        .fold(0.0, |m, (a, &b)| m.max((a - b as f64).abs()))
}

#[test]
fn exported_classifiers_give_the_native_probabilities() {
    let (x, y, test_x, _) = iris();
    let (bx, by) = binary(80);
    let int_labels = ClassTarget::from_cells(
        &(0..80)
            .map(|i| if i % 2 == 0 { "-3" } else { "7" })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let cases = [
        (
            MlpClassifier::params().random_state(Some(0)).max_iter(300),
            &x,
            &y,
            &test_x,
        ),
        (
            MlpClassifier::params()
                .hidden_layer_sizes(vec![7, 5])
                .activation(Activation::Logistic)
                .solver(Solver::Lbfgs)
                .random_state(Some(1)),
            &bx,
            &by,
            &bx,
        ),
        (
            MlpClassifier::params()
                .hidden_layer_sizes(vec![6])
                .activation(Activation::Tanh)
                .solver(Solver::Lbfgs)
                .random_state(Some(2)),
            &bx,
            &int_labels,
            &bx,
        ),
        (
            MlpClassifier::params()
                .hidden_layer_sizes(vec![5])
                .activation(Activation::Identity)
                .solver(Solver::Sgd)
                .random_state(Some(3)),
            &x,
            &y,
            &test_x,
        ),
    ];
    for (params, x, y, rows) in cases {
        let model = params.fit(x.view(), y).unwrap();
        let outputs = run(&model, rows);
        assert_eq!(outputs.len(), 2);
        assert_eq!(labels(&outputs[0]), model.predict(rows.view()).unwrap());
        let proba = model.predict_proba(rows.view()).unwrap();
        assert_eq!(outputs[1].shape, vec![rows.nrows(), proba.ncols()]);
        let diff = largest_difference(&proba, &floats(&outputs[1]));
        assert!(diff < 1e-5, "{:?}: {diff}", model.params.0.activation);
    }
}

#[test]
fn exported_regressors_give_the_native_values() {
    let (x, y) = smooth(200, 8);
    for (activation, layers) in [
        (Activation::Relu, vec![20, 10]),
        (Activation::Identity, vec![]),
        (Activation::Logistic, vec![12]),
    ] {
        let model = MlpRegressor::params()
            .hidden_layer_sizes(layers)
            .activation(activation)
            .solver(Solver::Lbfgs)
            .random_state(Some(6))
            .fit(x.view(), &y)
            .unwrap();
        let outputs = run(&model, &x);
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].shape, vec![200, 1]);
        let native = model.scores(x.view());
        let diff = largest_difference(&native, &floats(&outputs[0]));
        assert!(diff < 1e-5, "{activation:?}: {diff}");
    }
}

#[test]
fn a_network_without_hidden_layers_is_a_linear_model() {
    let x = array![[0.0], [1.0], [2.0], [3.0]];
    let model = MlpRegressor::params()
        .hidden_layer_sizes(vec![])
        .alpha(0.0)
        .solver(Solver::Lbfgs)
        .tol(1e-10)
        .random_state(Some(0))
        .fit(x.view(), &[1.0, 3.0, 5.0, 7.0])
        .unwrap();
    assert!(
        (model.coefs[0][[0, 0]] - 2.0).abs() < 1e-5,
        "{:?}",
        model.coefs
    );
    assert!((model.intercepts[0][0] - 1.0).abs() < 1e-5);
}

#[test]
fn a_table_fit_scales_in_front_of_the_network_in_the_graph() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/iris/iris.csv");
    let table = skiff_data::Table::from_path(path.as_ref()).unwrap();
    let spec = crate::FitSpec {
        algorithm: "mlp-classifier".into(),
        target: Some("species".into()),
        set: vec![
            ("hidden_layer_sizes".into(), "10,5".into()),
            ("solver".into(), "lbfgs".into()),
            ("random_state".into(), "0".into()),
        ],
        ..Default::default()
    };
    let report = crate::fit_table(&table, &spec).unwrap();
    assert!(report.training_metric.unwrap().1 > 0.97);
    let x = report.features_of(&table).unwrap();
    let native = report.model.scores(x.view());
    let bytes = report.to_onnx().to_bytes();
    let loaded = skiff_runtime::Model::from_bytes("mlp.onnx", &bytes).unwrap();
    let input = Tensor::new(
        vec![x.nrows(), x.ncols()],
        TensorData::Fp32(x.iter().map(|&v| v as f32).collect()),
    )
    .unwrap();
    let outputs = loaded.run(vec![input]).unwrap();
    let diff = largest_difference(&native, &floats(&outputs[1]));
    assert!(diff < 1e-5, "{diff}");
}
