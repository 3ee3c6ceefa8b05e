//! Fitting, and the fitted [`super::MlpClassifier`] and [`super::MlpRegressor`]: their
//! predictions natively and as an ONNX graph.

use super::network::{Layout, Objective, Output, forward, write_layers};
use super::train::{Training, Truth, class_indices, train};
use super::{Activation, MlpClassifierParams, MlpParams, MlpRegressorParams};
use crate::catalog::{Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::classifier_outputs;
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::{self, Params};
use crate::tree::check_columns;
use crate::{Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// Trains a network of `params`' hidden layers between `x`'s features and `y`'s columns.
fn fit_network(
    params: &MlpParams,
    algorithm: &str,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    output: Output,
    truth: Truth<'_>,
) -> Result<Network> {
    let mut units = vec![x.ncols()];
    units.extend(&params.hidden_layer_sizes);
    units.push(y.ncols());
    let layout = Layout::new(units);
    let objective = Objective {
        layout: &layout,
        activation: params.activation,
        output,
        alpha: params.alpha,
    };
    let seed = params.random_state.unwrap_or_else(params::random_seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let trained = train(params, algorithm, &objective, x, y, truth, &mut rng)?;
    let (coefs, intercepts) = layout.unpack(&trained.theta);
    let training = trained.training;
    Ok(Network {
        coefs,
        intercepts,
        training,
    })
}

/// A trained network's layers, and how training went.
struct Network {
    coefs: Vec<Array2<f64>>,
    intercepts: Vec<Array1<f64>>,
    training: Training,
}

impl MlpClassifierParams {
    /// Fits the network to rows `x` and their classes `y`: one logistic output unit for two
    /// classes, a softmax over one unit per class for more.
    ///
    /// Stopped at `max_iter` before converging, it still returns the model, as scikit-learn
    /// does, and [`Fitted::warnings`] says so.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedMlpClassifier> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let n_classes = y.classes.len();
        if n_classes < 2 {
            return Err(Error::SingleClass(if n_classes == 1 {
                y.classes.name(0)
            } else {
                String::new()
            }));
        }
        if y.indices.iter().any(|&i| i >= n_classes) {
            return Err(Error::Target(format!(
                "a class index is out of range for {n_classes} classes"
            )));
        }
        let (output, columns) = if n_classes == 2 {
            (Output::Logistic, 1)
        } else {
            (Output::Softmax, n_classes)
        };
        let mut targets = Array2::zeros((x.nrows(), columns));
        for (mut row, &class) in targets.axis_iter_mut(Axis(0)).zip(&y.indices) {
            match output {
                Output::Logistic => row[0] = class as f64,
                _ => row[class] = 1.0,
            }
        }
        let Network {
            coefs,
            intercepts,
            training,
        } = fit_network(
            &self.0,
            Self::ALGORITHM,
            x,
            targets.view(),
            output,
            Truth::Classes(&y.indices),
        )?;
        Ok(FittedMlpClassifier {
            coefs,
            intercepts,
            classes: y.classes.clone(),
            params: self.clone(),
            training,
        })
    }
}

impl MlpRegressorParams {
    /// Fits the network to rows `x` and their targets `y`, through one linear output unit.
    ///
    /// Stopped at `max_iter` before converging, it still returns the model, as scikit-learn
    /// does, and [`Fitted::warnings`] says so.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedMlpRegressor> {
        self.check()?;
        check_data(x, y.len())?;
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::Target(
                "the target holds NaN or infinite values: clean or drop those rows".into(),
            ));
        }
        let targets = ArrayView2::from_shape((y.len(), 1), y).expect("one column");
        let Network {
            coefs,
            intercepts,
            training,
        } = fit_network(
            &self.0,
            Self::ALGORITHM,
            x,
            targets,
            Output::Identity,
            Truth::Values(y),
        )?;
        Ok(FittedMlpRegressor {
            coefs,
            intercepts,
            params: self.clone(),
            training,
        })
    }
}

/// The network's output for `x`, the output activation applied.
fn outputs(
    coefs: &[Array2<f64>],
    intercepts: &[Array1<f64>],
    activation: Activation,
    output: Output,
    x: ArrayView2<'_, f64>,
) -> Array2<f64> {
    let coefs: Vec<_> = coefs.iter().map(|c| c.view()).collect();
    let intercepts: Vec<_> = intercepts.iter().map(|b| b.view()).collect();
    forward(&coefs, &intercepts, activation, output, x)
}

/// A fitted [`super::MlpClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedMlpClassifier {
    /// Each layer's weights, fan-in × fan-out (scikit-learn `coefs_`); the last layer has one
    /// column for two classes (the second class's logit), one per class for more.
    pub coefs: Vec<Array2<f64>>,
    /// Each layer's intercepts (scikit-learn `intercepts_`).
    pub intercepts: Vec<Array1<f64>>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: MlpClassifierParams,
    /// How training went (the loss curve, iterations, early stopping's scores).
    pub training: Training,
}

impl FittedMlpClassifier {
    /// Number of features the model expects.
    pub fn n_features(&self) -> usize {
        self.coefs[0].nrows()
    }

    fn output(&self) -> Output {
        if self.classes.len() == 2 {
            Output::Logistic
        } else {
            Output::Softmax
        }
    }

    fn proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let out = outputs(
            &self.coefs,
            &self.intercepts,
            self.params.0.activation,
            self.output(),
            x,
        );
        if self.output() == Output::Logistic {
            let mut p = Array2::zeros((x.nrows(), 2));
            for (mut row, &q) in p.axis_iter_mut(Axis(0)).zip(out.column(0)) {
                row[0] = 1.0 - q;
                row[1] = q;
            }
            return p;
        }
        out
    }

    fn index(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        let out = outputs(
            &self.coefs,
            &self.intercepts,
            self.params.0.activation,
            self.output(),
            x,
        );
        class_indices(self.output(), &out)
    }

    /// Class probabilities, rows × classes.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_columns(x, self.n_features())?;
        Ok(self.proba(x))
    }

    /// Index of the predicted class of each row.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        check_columns(x, self.n_features())?;
        Ok(self.index(x))
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<String>> {
        Ok(self
            .predict_index(x)?
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect())
    }

    /// Mean accuracy on rows `x` with true classes `y` (which must use this model's classes).
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> Result<f64> {
        Ok(crate::metrics::accuracy(y, &self.predict_index(x)?))
    }
}

/// A fitted [`super::MlpRegressor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedMlpRegressor {
    /// Each layer's weights, fan-in × fan-out (scikit-learn `coefs_`); the last has one column.
    pub coefs: Vec<Array2<f64>>,
    /// Each layer's intercepts (scikit-learn `intercepts_`).
    pub intercepts: Vec<Array1<f64>>,
    /// The hyperparameters it was fitted with.
    pub params: MlpRegressorParams,
    /// How training went (the loss curve, iterations, early stopping's scores).
    pub training: Training,
}

impl FittedMlpRegressor {
    /// Number of features the model expects.
    pub fn n_features(&self) -> usize {
        self.coefs[0].nrows()
    }

    fn values(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        outputs(
            &self.coefs,
            &self.intercepts,
            self.params.0.activation,
            Output::Identity,
            x,
        )
        .column(0)
        .to_owned()
    }

    /// Predictions for rows `x`.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_columns(x, self.n_features())?;
        Ok(self.values(x))
    }

    /// The coefficient of determination R² on rows `x` with true targets `y`.
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<f64> {
        Ok(crate::metrics::r2(y, &self.predict(x)?.to_vec()))
    }
}

impl Fitted for FittedMlpClassifier {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(self.index(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.proba(x)
    }

    fn warnings(&self) -> Vec<String> {
        self.training.warnings.clone()
    }

    fn curves(&self) -> Vec<crate::Curve> {
        self.training.curves()
    }
}

impl Fitted for FittedMlpRegressor {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(self.values(x).to_vec())
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.values(x).insert_axis(Axis(1))
    }

    fn warnings(&self) -> Vec<String> {
        self.training.warnings.clone()
    }

    fn curves(&self) -> Vec<crate::Curve> {
        self.training.curves()
    }
}

impl Export for FittedMlpClassifier {
    fn algorithm(&self) -> &str {
        MlpClassifierParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.coefs[0].nrows()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }

    /// The layers, then for more than two classes a softmax over the last layer's sums; for
    /// two, whose one unit z gives the second class's probability σ(z), the softmax of
    /// [0, z], which is [1 − σ(z), σ(z)] and whose argmax keeps ties in the first class.
    fn write(&self, g: &mut Graph, x: &str) {
        let activation = self.params.0.activation;
        if self.classes.len() == 2 {
            write_layers(g, x, &self.coefs, &self.intercepts, activation, "mlp_logit");
            g.node("Sub", &["mlp_logit", "mlp_logit"], &["mlp_zero"], vec![]);
            g.node(
                "Concat",
                &["mlp_zero", "mlp_logit"],
                &["scores"],
                vec![("axis", Attr::Int(1))],
            );
        } else {
            write_layers(g, x, &self.coefs, &self.intercepts, activation, "scores");
        }
        classifier_outputs(g, &self.classes, "scores", true);
    }
}

impl Export for FittedMlpRegressor {
    fn algorithm(&self) -> &str {
        MlpRegressorParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Regression
    }

    fn n_features(&self) -> usize {
        self.coefs[0].nrows()
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let activation = self.params.0.activation;
        write_layers(g, x, &self.coefs, &self.intercepts, activation, "variable");
        g.output("variable", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
    }
}
