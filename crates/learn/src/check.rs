//! Input checks every estimator shares.

use crate::{Error, Result};
use ndarray::ArrayView2;

/// Checks that `x` has rows and features, one row per target, and only finite values.
pub(crate) fn check_data(x: ArrayView2<'_, f64>, n_targets: usize) -> Result<()> {
    check_shape(x, n_targets)?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

/// As [`check_data`], with NaN allowed as a gap, for estimators that take gaps as they are.
pub(crate) fn check_gappy_data(x: ArrayView2<'_, f64>, n_targets: usize) -> Result<()> {
    check_shape(x, n_targets)?;
    if x.iter().any(|v| v.is_infinite()) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

fn check_shape(x: ArrayView2<'_, f64>, n_targets: usize) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::Shape(format!(
            "need at least one row and one feature, got {}x{}",
            x.nrows(),
            x.ncols()
        )));
    }
    if x.nrows() != n_targets {
        return Err(Error::Shape(format!(
            "{} rows of features but {} targets",
            x.nrows(),
            n_targets
        )));
    }
    Ok(())
}
