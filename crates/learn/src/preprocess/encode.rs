//! `OneHotEncoder` and `OrdinalEncoder` for text columns.
//!
//! Both are fitted on a column whose gaps an imputer has filled. In the graph each becomes a
//! `LabelEncoder` from the column's text to a code (the imputer folded in: missing-value
//! markers map to the code of the fill value), then `OneHotEncoder` over the codes for one-hot
//! encoding.

use crate::params::{self, Params};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};
use std::collections::{BTreeMap, HashMap};

/// What a one-hot encoder does with a category it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneHotUnknown {
    /// Refuse the row (scikit-learn's default).
    Error,
    /// Encode it as all zeros.
    Ignore,
    /// Encode it as the infrequent category where there is one, else as all zeros.
    InfrequentIfExist,
}

/// Which category's column a one-hot encoder leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneHotDrop {
    /// The first category of each column.
    First,
    /// The first category of columns with exactly two.
    IfBinary,
}

/// A minimum frequency for a category to get its own column: a count, or a fraction of rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MinFrequency {
    /// At least this many rows.
    Count(u64),
    /// At least this fraction of the rows.
    Fraction(f64),
}

/// scikit-learn's `OneHotEncoder` hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneHotEncoderParams {
    /// `error` (default), `ignore` or `infrequent_if_exist`.
    pub handle_unknown: OneHotUnknown,
    /// None (default), `first` or `if_binary`.
    pub drop: Option<OneHotDrop>,
    /// Categories rarer than this share one "infrequent" column.
    pub min_frequency: Option<MinFrequency>,
    /// At most this many columns, the infrequent one included.
    pub max_categories: Option<u64>,
}

impl Default for OneHotEncoderParams {
    fn default() -> Self {
        OneHotEncoderParams {
            handle_unknown: OneHotUnknown::Error,
            drop: None,
            min_frequency: None,
            max_categories: None,
        }
    }
}

impl Params for OneHotEncoderParams {
    const ALGORITHM: &'static str = "one-hot-encoder";

    fn check(&self) -> Result<()> {
        if let Some(MinFrequency::Fraction(f)) = self.min_frequency
            && !(f > 0.0 && f < 1.0)
        {
            return Err(params::invalid(
                "min_frequency",
                f,
                "a count of rows, or a fraction between 0 and 1",
            ));
        }
        if let Some(m) = self.max_categories
            && m < 1
        {
            return Err(params::invalid("max_categories", m, "1 or more"));
        }
        Ok(())
    }
}

/// What an ordinal encoder does with a category it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrdinalUnknown {
    /// Refuse the row (scikit-learn's default).
    Error,
    /// Encode it as `unknown_value`.
    UseEncodedValue,
}

/// scikit-learn's `OrdinalEncoder` hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdinalEncoderParams {
    /// `error` (default) or `use_encoded_value`.
    pub handle_unknown: OrdinalUnknown,
    /// The code of unseen categories, with `use_encoded_value` (e.g. -1).
    pub unknown_value: Option<f64>,
}

impl Default for OrdinalEncoderParams {
    fn default() -> Self {
        OrdinalEncoderParams {
            handle_unknown: OrdinalUnknown::Error,
            unknown_value: None,
        }
    }
}

impl Params for OrdinalEncoderParams {
    const ALGORITHM: &'static str = "ordinal-encoder";

    fn check(&self) -> Result<()> {
        match self.unknown_value {
            Some(v) if !v.is_finite() => {
                Err(params::invalid("unknown_value", v, "a finite number"))
            }
            _ => Ok(()),
        }
    }
}

/// How text columns become numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "encoder")]
pub enum Encoder {
    /// A column per category.
    OneHot(OneHotEncoderParams),
    /// One column of category codes.
    Ordinal(OrdinalEncoderParams),
}

impl Encoder {
    /// The step's name, as `skiff algorithms` would list it.
    pub fn name(&self) -> &'static str {
        match self {
            Encoder::OneHot(_) => OneHotEncoderParams::ALGORITHM,
            Encoder::Ordinal(_) => OrdinalEncoderParams::ALGORITHM,
        }
    }

    /// The hyperparameters as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Encoder::OneHot(p) => p.to_json(),
            Encoder::Ordinal(p) => p.to_json(),
        }
    }

    /// Sets a hyperparameter from text.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match self {
            Encoder::OneHot(p) => p.set(name, value),
            Encoder::Ordinal(p) => p.set(name, value),
        }
    }

    /// Learns the categories of `column` (no missing cells).
    pub fn fit(&self, column: &str, cells: &[&str]) -> Result<FittedEncoder> {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for cell in cells {
            *counts.entry(cell).or_default() += 1;
        }
        let categories: Vec<String> = counts.keys().map(|c| c.to_string()).collect();
        let (codes, width, infrequent, unknown) = match self {
            Encoder::Ordinal(p) => {
                p.check()?;
                let codes = (0..categories.len()).map(Some).collect();
                let unknown = match (p.handle_unknown, p.unknown_value) {
                    (OrdinalUnknown::Error, _) => Unknown::Error,
                    (OrdinalUnknown::UseEncodedValue, Some(v)) => Unknown::Value(v),
                    (OrdinalUnknown::UseEncodedValue, None) => {
                        return Err(params::invalid(
                            "unknown_value",
                            "None",
                            "a number (e.g. --set encoder.unknown_value=-1) with handle_unknown=use_encoded_value",
                        ));
                    }
                };
                (codes, 1, false, unknown)
            }
            Encoder::OneHot(p) => {
                p.check()?;
                one_hot_codes(p, &counts, cells.len())
            }
        };
        Ok(FittedEncoder {
            column: column.to_string(),
            one_hot: matches!(self, Encoder::OneHot(_)),
            categories,
            codes,
            width,
            infrequent,
            unknown,
        })
    }
}

/// Each category's output column (None: dropped), the width, whether the last column is the
/// infrequent one, and what unseen categories become.
fn one_hot_codes(
    p: &OneHotEncoderParams,
    counts: &BTreeMap<&str, u64>,
    rows: usize,
) -> (Vec<Option<usize>>, usize, bool, Unknown) {
    let counts: Vec<u64> = counts.values().copied().collect();
    let mut rare: Vec<bool> = counts
        .iter()
        .map(|&c| match p.min_frequency {
            None => false,
            Some(MinFrequency::Count(min)) => c < min,
            Some(MinFrequency::Fraction(f)) => (c as f64) < f * rows as f64,
        })
        .collect();
    if let Some(max) = p.max_categories {
        let max = max as usize;
        let kept = rare.iter().filter(|r| !**r).count();
        // scikit-learn counts the infrequent column as one of the max_categories.
        if max < kept + 1 {
            let frequent = max - 1;
            // The least frequent first, ties in category order (a stable sort).
            let mut order: Vec<usize> = (0..counts.len()).collect();
            order.sort_by_key(|&i| counts[i]);
            for &i in &order[..counts.len().saturating_sub(frequent)] {
                rare[i] = true;
            }
        }
    }
    let infrequent = rare.iter().any(|r| *r);
    let mut next = 0;
    let mut codes: Vec<Option<usize>> = rare
        .iter()
        .map(|&r| {
            (!r).then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let mut width = next;
    if infrequent {
        for (code, &r) in codes.iter_mut().zip(&rare) {
            if r {
                *code = Some(width);
            }
        }
        width += 1;
    }
    let drop_first = match p.drop {
        None => false,
        Some(OneHotDrop::First) => true,
        Some(OneHotDrop::IfBinary) => width == 2,
    };
    if drop_first && width > 0 {
        for code in &mut codes {
            *code = match *code {
                Some(0) => None,
                Some(c) => Some(c - 1),
                None => None,
            };
        }
        width -= 1;
    }
    let unknown = match p.handle_unknown {
        OneHotUnknown::Error => Unknown::Error,
        OneHotUnknown::InfrequentIfExist if infrequent => Unknown::Code(width - 1),
        _ => Unknown::Zeros,
    };
    (codes, width, infrequent, unknown)
}

/// What an unseen category becomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Unknown {
    /// An error.
    Error,
    /// All zeros (one-hot).
    Zeros,
    /// The infrequent column (one-hot).
    Code(usize),
    /// This code (ordinal).
    Value(f64),
}

/// A fitted encoder of one text column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedEncoder {
    /// The column it encodes.
    pub column: String,
    /// One-hot (else ordinal).
    pub one_hot: bool,
    /// The categories seen in training, sorted.
    pub categories: Vec<String>,
    /// Each category's output column (one-hot; None where dropped) or code (ordinal).
    pub codes: Vec<Option<usize>>,
    /// How many columns it outputs.
    pub width: usize,
    /// Whether the last one-hot column gathers infrequent categories.
    pub infrequent: bool,
    /// What unseen categories become.
    pub unknown: Unknown,
}

impl FittedEncoder {
    /// Writes the encoding of `cell` into `out` (`width` zeros on entry).
    pub fn encode(&self, cell: &str, out: &mut [f64]) -> Result<()> {
        let code = match self.categories.binary_search_by(|c| c.as_str().cmp(cell)) {
            Ok(i) => self.codes[i],
            Err(_) => match self.unknown {
                Unknown::Error => {
                    return Err(Error::Column(format!(
                        "column {:?} holds {cell:?}, a category training never saw: refit with it, or encode unseen categories with --set encoder.handle_unknown={}",
                        self.column,
                        if self.one_hot {
                            "ignore"
                        } else {
                            "use_encoded_value --set encoder.unknown_value=-1"
                        }
                    )));
                }
                Unknown::Zeros => None,
                Unknown::Code(c) => Some(c),
                Unknown::Value(v) => {
                    out[0] = v;
                    return Ok(());
                }
            },
        };
        match (self.one_hot, code) {
            (true, Some(c)) => out[c] = 1.0,
            (false, Some(c)) => out[0] = c as f64,
            (_, None) => {}
        }
        Ok(())
    }

    /// Writes the encoding of a missing cell into `out` (`width` zeros on entry): NaN
    /// (ordinal, scikit-learn's `encoded_missing_value`), all zeros (one-hot).
    pub fn encode_missing(&self, out: &mut [f64]) {
        if !self.one_hot {
            out[0] = f64::NAN;
        }
    }

    /// Adds the nodes encoding `input` (string [N, 1]) into `output` (float [N, width]),
    /// with `fill` standing for every cell in `missing`, or with those cells encoded as
    /// missing (see [`FittedEncoder::encode_missing`]) where there is no fill.
    pub fn write(
        &self,
        g: &mut Graph,
        input: &str,
        missing: &[String],
        fill: Option<&str>,
        output: &str,
    ) {
        // Codes: a category's column or code; -1 unseen, -2 dropped, -3 missing (NaN).
        const MISSING: i64 = -3;
        let mut keys = self.categories.clone();
        let mut codes: Vec<i64> = self
            .codes
            .iter()
            .map(|c| c.map_or(-2, |c| c as i64))
            .collect();
        let fill_code = fill.map_or(MISSING, |fill| {
            self.categories
                .binary_search_by(|c| c.as_str().cmp(fill))
                .map_or(-1, |i| codes[i])
        });
        for marker in missing {
            if self.categories.binary_search(marker).is_err() && !keys.contains(marker) {
                keys.push(marker.clone());
                codes.push(fill_code);
            }
        }
        let default = match self.unknown {
            Unknown::Code(c) => c as i64,
            Unknown::Value(_) | Unknown::Error | Unknown::Zeros => -1,
        };
        if !self.one_hot {
            // Ordinal: the codes as floats; an unseen category becomes unknown_value, or NaN
            // where scikit-learn would refuse it (a graph cannot refuse one row).
            let unknown = match self.unknown {
                Unknown::Value(v) => v as f32,
                _ => f32::NAN,
            };
            g.ml_node(
                "LabelEncoder",
                &[input],
                &[output],
                vec![
                    ("keys_strings", Attr::Strings(keys)),
                    (
                        "values_floats",
                        Attr::Floats(
                            codes
                                .iter()
                                .map(|&c| if c == MISSING { f32::NAN } else { c as f32 })
                                .collect(),
                        ),
                    ),
                    ("default_float", Attr::Float(unknown)),
                ],
            );
            return;
        }
        let coded = format!("{output}_codes");
        let hot = format!("{output}_hot");
        g.ml_node(
            "LabelEncoder",
            &[input],
            &[&coded],
            vec![
                ("keys_strings", Attr::Strings(keys)),
                ("values_int64s", Attr::Ints(codes)),
                ("default_int64", Attr::Int(default)),
            ],
        );
        // Unseen categories (-1) and a dropped one (-2) are all zeros; with
        // handle_unknown=error and no dropped column, an unseen one is an error, as in
        // scikit-learn.
        // Missing cells left unfilled (-3) are all zeros too, so then nothing is refused.
        let refuse = fill.is_some()
            && self.unknown == Unknown::Error
            && self.codes.iter().all(Option::is_some);
        g.ml_node(
            "OneHotEncoder",
            &[&coded],
            &[&hot],
            vec![
                ("cats_int64s", Attr::Ints((0..self.width as i64).collect())),
                ("zeros", Attr::Int(i64::from(!refuse))),
            ],
        );
        let shape = g.constant_i64(&format!("{output}_shape"), &[2], &[-1, self.width as i64]);
        g.node("Reshape", &[&hot, &shape], &[output], vec![]);
    }
}

/// Counts of distinct values, for the identifier check.
pub(crate) fn distinct(cells: &[Option<String>]) -> (usize, usize) {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut present = 0;
    for cell in cells.iter().flatten() {
        present += 1;
        seen.insert(cell, ());
    }
    (seen.len(), present)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(params: OneHotEncoderParams, cells: &[&str]) -> FittedEncoder {
        Encoder::OneHot(params).fit("c", cells).unwrap()
    }

    fn row(e: &FittedEncoder, cell: &str) -> Vec<f64> {
        let mut out = vec![0.0; e.width];
        e.encode(cell, &mut out).unwrap();
        out
    }

    #[test]
    fn one_hot_sorts_categories_and_handles_unknown_as_asked() {
        let cells = ["b", "a", "c", "a"];
        let e = fit(OneHotEncoderParams::default(), &cells);
        assert_eq!(e.categories, ["a", "b", "c"]);
        assert_eq!(row(&e, "b"), [0.0, 1.0, 0.0]);
        let err = e.encode("z", &mut [0.0; 3]).unwrap_err().to_string();
        assert!(
            err.contains("\"z\"") && err.contains("handle_unknown=ignore"),
            "{err}"
        );
        let mut p = OneHotEncoderParams::default();
        p.set("handle_unknown", "ignore").unwrap();
        assert_eq!(row(&fit(p, &cells), "z"), [0.0, 0.0, 0.0]);
    }

    #[test]
    fn rare_categories_share_the_last_column() {
        let cells = ["a", "a", "a", "b", "b", "c", "d"];
        let mut p = OneHotEncoderParams::default();
        p.set("min_frequency", "2").unwrap();
        p.set("handle_unknown", "infrequent_if_exist").unwrap();
        let e = fit(p.clone(), &cells);
        assert_eq!(e.width, 3);
        assert_eq!(row(&e, "c"), [0.0, 0.0, 1.0]);
        assert_eq!(row(&e, "z"), [0.0, 0.0, 1.0]);
        let mut p = OneHotEncoderParams::default();
        p.set("max_categories", "2").unwrap();
        let e = fit(p, &cells);
        assert_eq!(
            (e.width, row(&e, "a"), row(&e, "b")),
            (2, vec![1.0, 0.0], vec![0.0, 1.0])
        );
    }

    #[test]
    fn drop_first_and_if_binary() {
        let mut p = OneHotEncoderParams::default();
        p.set("drop", "if_binary").unwrap();
        let e = fit(p.clone(), &["x", "y"]);
        assert_eq!(
            (e.width, row(&e, "x"), row(&e, "y")),
            (1, vec![0.0], vec![1.0])
        );
        assert_eq!(fit(p, &["x", "y", "z"]).width, 3);
    }

    #[test]
    fn ordinal_codes_and_unknown_value() {
        let mut p = OrdinalEncoderParams::default();
        p.set("handle_unknown", "use_encoded_value").unwrap();
        let err = Encoder::Ordinal(p.clone())
            .fit("c", &["a"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown_value"), "{err}");
        p.set("unknown_value", "-1").unwrap();
        let e = Encoder::Ordinal(p).fit("c", &["b", "a"]).unwrap();
        assert_eq!((row(&e, "b"), row(&e, "q")), (vec![1.0], vec![-1.0]));
    }
}
