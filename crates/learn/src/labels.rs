//! Class labels as they appear in training data: integers or strings.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The distinct classes of a classification target, sorted as scikit-learn sorts them
/// (`numpy.unique`): numerically for integers, lexicographically for strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabels {
    /// Every target value parsed as a 64-bit integer.
    Int(Vec<i64>),
    /// Anything else.
    Str(Vec<String>),
}

/// A classification target: its classes and each row's class index.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassTarget {
    /// The distinct classes.
    pub classes: ClassLabels,
    /// Per row, the index of its class in `classes`.
    pub indices: Vec<usize>,
}

impl ClassTarget {
    /// Encodes a column of target cells: integers if they all parse as integers, else strings.
    pub fn from_cells(cells: &[&str]) -> Result<ClassTarget> {
        if cells.is_empty() {
            return Err(Error::Shape("target is empty".into()));
        }
        if let Some(row) = cells.iter().position(|c| c.is_empty()) {
            return Err(Error::Shape(format!(
                "target is empty in data row {}: fill in or drop rows without a label",
                row + 1
            )));
        }
        let ints: Option<Vec<i64>> = cells.iter().map(|c| c.parse().ok()).collect();
        let target = match ints {
            Some(values) => encode(&values, ClassLabels::Int),
            None => encode(
                &cells.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                ClassLabels::Str,
            ),
        };
        if target.classes.len() < 2 {
            return Err(Error::SingleClass(target.classes.name(0)));
        }
        Ok(target)
    }
}

fn encode<T: Ord + Clone>(values: &[T], wrap: fn(Vec<T>) -> ClassLabels) -> ClassTarget {
    let mut classes = values.to_vec();
    classes.sort();
    classes.dedup();
    let indices = values
        .iter()
        .map(|v| classes.binary_search(v).expect("class present"))
        .collect();
    ClassTarget {
        classes: wrap(classes),
        indices,
    }
}

impl ClassLabels {
    /// Number of classes.
    pub fn len(&self) -> usize {
        match self {
            ClassLabels::Int(v) => v.len(),
            ClassLabels::Str(v) => v.len(),
        }
    }

    /// True when there are no classes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class `i` as text.
    pub fn name(&self, i: usize) -> String {
        match self {
            ClassLabels::Int(v) => v[i].to_string(),
            ClassLabels::Str(v) => v[i].clone(),
        }
    }

    /// The classes as a JSON array (numbers or strings).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("labels serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_targets_sort_numerically() {
        let t = ClassTarget::from_cells(&["10", "2", "10", "-1"]).unwrap();
        assert_eq!(t.classes, ClassLabels::Int(vec![-1, 2, 10]));
        assert_eq!(t.indices, vec![2, 1, 2, 0]);
    }

    #[test]
    fn mixed_targets_are_strings() {
        let t = ClassTarget::from_cells(&["b", "1", "a"]).unwrap();
        assert_eq!(
            t.classes,
            ClassLabels::Str(vec!["1".into(), "a".into(), "b".into()])
        );
        assert_eq!(t.classes.to_json(), r#"["1","a","b"]"#);
    }

    #[test]
    fn single_class_is_an_error() {
        let err = ClassTarget::from_cells(&["a", "a"]).unwrap_err();
        assert!(matches!(err, Error::SingleClass(_)), "{err}");
    }
}
