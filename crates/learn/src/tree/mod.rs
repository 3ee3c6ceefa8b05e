//! CART decision trees (scikit-learn's `DecisionTreeClassifier` and `DecisionTreeRegressor`),
//! the core the random forests of [`crate::forest`] grow their trees with: `cart` grows one
//! tree, `ensemble` predicts with and exports several, `estimators` holds the two estimators.
//!
//! As in scikit-learn, features are cast to float32 before fitting. A split's threshold lies
//! between two consecutive distinct float32 values `a < b` of the node: the midpoint
//! `(a as f64 / 2 + b as f64 / 2) as f32`, or `a` where that rounds to `b`. A row goes left
//! when `x as f32 <= threshold`, natively and in the exported ONNX graph alike, so both give
//! the same leaf for every row.

mod cart;
mod ensemble;
mod estimators;

pub(crate) use cart::{Criterion, Data, Growth, Target, grow};
pub use cart::{Tree, split_threshold};
pub(crate) use ensemble::*;
pub use estimators::*;

use crate::check::check_data;
use crate::params;
use crate::{Error, Result};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Hyperparameters shared by trees and forests
// ---------------------------------------------------------------------------------------------

/// Split quality measure of a classification tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassCriterion {
    /// Gini impurity (default).
    #[default]
    Gini,
    /// Shannon entropy.
    Entropy,
    /// Same as `Entropy` (scikit-learn's alias).
    LogLoss,
}

impl ClassCriterion {
    pub(crate) fn criterion(self) -> Criterion {
        match self {
            ClassCriterion::Gini => Criterion::Gini,
            ClassCriterion::Entropy | ClassCriterion::LogLoss => Criterion::Entropy,
        }
    }
}

/// Split quality measure of a regression tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionCriterion {
    /// Mean squared error (default and only choice).
    #[default]
    SquaredError,
}

/// How deep and how finely a tree grows: the hyperparameters every tree estimator shares
/// (flattened into each one's, so they keep scikit-learn's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeGrowth {
    /// Maximum depth; `None` grows until leaves are pure or too small (default).
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (default 2).
    pub min_samples_split: usize,
    /// Fewest rows in each leaf (default 1).
    pub min_samples_leaf: usize,
}

impl Default for TreeGrowth {
    fn default() -> Self {
        TreeGrowth {
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
        }
    }
}

impl TreeGrowth {
    /// Checks each value's range.
    pub(crate) fn check(&self) -> Result<()> {
        if self.max_depth == Some(0) {
            return Err(params::invalid(
                "max_depth",
                0,
                "a positive integer or None",
            ));
        }
        if self.min_samples_split < 2 {
            return Err(params::invalid(
                "min_samples_split",
                self.min_samples_split,
                "an integer of at least 2",
            ));
        }
        if self.min_samples_leaf < 1 {
            return Err(params::invalid(
                "min_samples_leaf",
                self.min_samples_leaf,
                "an integer of at least 1",
            ));
        }
        Ok(())
    }

    /// How one tree grows with these values, `criterion` and `max_features` features a node.
    pub(crate) fn growth(&self, criterion: Criterion, max_features: usize) -> Growth {
        Growth {
            criterion,
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features,
        }
    }
}

pub(crate) fn check_regression_target(x: ArrayView2<'_, f64>, y: &[f64]) -> Result<()> {
    check_data(x, y.len())?;
    if y.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

pub(crate) fn check_columns(x: ArrayView2<'_, f64>, n_features: usize) -> Result<()> {
    if x.ncols() != n_features {
        return Err(Error::Shape(format!(
            "the model takes {n_features} features, got {}",
            x.ncols()
        )));
    }
    Ok(())
}
