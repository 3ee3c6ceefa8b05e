//! Feature scaling, fitted on training rows and exported into the same graph as the model
//! that follows it.

use crate::catalog::{Algorithm, Fitted, Predictions, Target};
use crate::check::check_data;
use crate::{ClassLabels, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};

/// How to scale features before the estimator sees them (`skiff fit --scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// To zero mean and unit variance (scikit-learn's `StandardScaler`).
    Standard,
    /// Into [0, 1] (scikit-learn's `MinMaxScaler`).
    MinMax,
    /// Less the median, over the interquartile range (scikit-learn's `RobustScaler`).
    Robust,
}

impl Scale {
    /// The step's name, as `--scale` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Standard => "standard-scaler",
            Scale::MinMax => "min-max-scaler",
            Scale::Robust => "robust-scaler",
        }
    }

    /// Learns the scaling of each feature of `x`.
    ///
    /// ```
    /// use skiff_learn::Scale;
    /// use ndarray::array;
    ///
    /// let x = array![[1.0, 10.0], [3.0, 10.0]];
    /// let scaler = Scale::Standard.fit(x.view()).unwrap();
    /// assert_eq!(scaler.transform(x.view()), array![[-1.0, 0.0], [1.0, 0.0]]);
    /// let scaler = Scale::MinMax.fit(x.view()).unwrap();
    /// assert_eq!(scaler.transform(x.view()), array![[0.0, 0.0], [1.0, 0.0]]);
    /// let x = array![[1.0], [2.0], [3.0], [4.0], [100.0]];
    /// let scaler = Scale::Robust.fit(x.view()).unwrap();
    /// assert_eq!(scaler.transform(x.view()), array![[-1.0], [-0.5], [0.0], [0.5], [48.5]]);
    /// ```
    pub fn fit(self, x: ArrayView2<'_, f64>) -> Result<FittedScaler> {
        check_data(x, x.nrows())?;
        // A constant feature keeps scale 1, as in scikit-learn, rather than dividing by 0.
        let nonzero = |v: f64| if v == 0.0 { 1.0 } else { v };
        let (offset, scale) = match self {
            Scale::Standard => {
                let mean = x.mean_axis(Axis(0)).expect("rows");
                let std = x.std_axis(Axis(0), 0.0).mapv(nonzero);
                (mean, std.mapv(|s| 1.0 / s))
            }
            Scale::MinMax => {
                let min = x.fold_axis(Axis(0), f64::INFINITY, |a, &b| a.min(b));
                let max = x.fold_axis(Axis(0), f64::NEG_INFINITY, |a, &b| a.max(b));
                let range = (&max - &min).mapv(nonzero);
                (min, range.mapv(|r| 1.0 / r))
            }
            Scale::Robust => {
                let mut median = Vec::with_capacity(x.ncols());
                let mut iqr = Vec::with_capacity(x.ncols());
                for column in x.axis_iter(Axis(1)) {
                    let mut sorted = column.to_vec();
                    sorted.sort_by(f64::total_cmp);
                    median.push(percentile(&sorted, 50.0));
                    iqr.push(1.0 / nonzero(percentile(&sorted, 75.0) - percentile(&sorted, 25.0)));
                }
                (Array1::from(median), Array1::from(iqr))
            }
        };
        Ok(FittedScaler {
            kind: self,
            offset,
            scale,
        })
    }
}

/// The `q`th percentile of sorted values, interpolated linearly as numpy does by default.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// A fitted scaler: `(x - offset) * scale`, per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedScaler {
    /// Which scaling.
    pub kind: Scale,
    /// Subtracted from each feature (the mean, or the minimum).
    pub offset: Array1<f64>,
    /// Then multiplied by (1 / standard deviation, or 1 / range).
    pub scale: Array1<f64>,
}

impl FittedScaler {
    /// The scaled rows.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        (&x - &self.offset) * &self.scale
    }

    /// Adds `Sub` and `Mul` nodes scaling `x` into `output`.
    pub fn write(&self, g: &mut Graph, x: &str, output: &str) {
        let n = self.offset.len() as u64;
        let f32s = |a: &Array1<f64>| a.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let offset = g.constant_f32("scaler_offset", &[n], f32s(&self.offset));
        let scale = g.constant_f32("scaler_scale", &[n], f32s(&self.scale));
        g.node(
            "Sub",
            &[x, &offset],
            &["scaler_centred"],
            Vec::<(&str, Attr)>::new(),
        );
        g.node("Mul", &["scaler_centred", &scale], &[output], vec![]);
    }
}

/// A scaler followed by an estimator, fitted and exported as one model.
///
/// ```
/// use skiff_learn::{Pipeline, Scale, Target, Fitted, Predictions, algorithm};
/// use ndarray::array;
///
/// let x = array![[1.0, 1000.0], [2.0, 3000.0], [3.0, 5000.0]];
/// let ridge = algorithm("ridge").unwrap();
/// let model = Pipeline::fit(Scale::Standard, ridge.as_ref(), x.view(), &Target::Values(vec![1.0, 2.0, 3.0])).unwrap();
/// let Predictions::Values(p) = model.predict_rows(x.view()) else { unreachable!() };
/// assert!(p[0] < p[1] && p[1] < p[2]);
/// ```
pub struct Pipeline {
    /// The preprocessing step.
    pub scaler: FittedScaler,
    /// The estimator, fitted on scaled rows.
    pub model: Box<dyn Fitted>,
}

impl Pipeline {
    /// Fits the scaler on `x`, then `algorithm` on the scaled rows.
    pub fn fit(
        scale: Scale,
        algorithm: &dyn Algorithm,
        x: ArrayView2<'_, f64>,
        y: &Target,
    ) -> Result<Pipeline> {
        let scaler = scale.fit(x)?;
        let model = algorithm.fit(scaler.transform(x).view(), y)?;
        Ok(Pipeline { scaler, model })
    }
}

impl Fitted for Pipeline {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        self.model.predict_rows(self.scaler.transform(x).view())
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.model.scores(self.scaler.transform(x).view())
    }

    fn warnings(&self) -> Vec<String> {
        self.model.warnings()
    }

    fn curves(&self) -> Vec<crate::Curve> {
        self.model.curves()
    }

    fn fit_predictions(&self) -> Option<Predictions> {
        self.model.fit_predictions()
    }
}

impl Export for Pipeline {
    fn algorithm(&self) -> &str {
        self.model.algorithm()
    }

    fn hyperparameters(&self) -> serde_json::Value {
        let mut params = self.model.hyperparameters();
        params["scale"] = serde_json::json!(self.scaler.kind);
        params
    }

    fn task(&self) -> Task {
        self.model.task()
    }

    fn n_features(&self) -> usize {
        self.model.n_features()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        self.model.classes()
    }

    fn write(&self, g: &mut Graph, x: &str) {
        self.scaler.write(g, x, "scaled");
        self.model.write(g, "scaled");
    }
}
