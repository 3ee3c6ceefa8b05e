//! Reading tabular data from CSV files.
//!
//! A [`Table`] is a CSV file with a header row, held as text; columns become numeric only when
//! asked for, so errors can name the file, the line and the column of a bad cell.
//!
//! ```
//! let csv = "a,b,target\n1,2,x\n3,4,y\n";
//! let table = skiff_data::Table::from_reader("inline.csv", csv.as_bytes()).unwrap();
//! let x = table.features(&["a".to_string(), "b".to_string()]).unwrap();
//! assert_eq!(x.shape(), &[2, 2]);
//! assert_eq!(table.column("target").unwrap(), vec!["x", "y"]);
//! ```

#![deny(missing_docs)]

mod error;

pub use error::{Error, Result};
use ndarray::Array2;
use std::path::Path;

/// The cells read as missing values unless told otherwise: pandas' `read_csv` defaults, so a
/// file means the same in skiff as in a notebook.
pub const NA_VALUES: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Numbers (missing cells become NaN).
    Numeric,
    /// Text categories.
    Categorical,
}

impl Kind {
    /// `numeric` or `categorical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Categorical => "categorical",
        }
    }
}

/// A column's cells, read as its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numbers; NaN where a cell is missing.
    Numbers(Vec<f64>),
    /// Text; `None` where a cell is missing.
    Text(Vec<Option<String>>),
}

impl Values {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of column these values are.
    pub fn kind(&self) -> Kind {
        match self {
            Values::Numbers(_) => Kind::Numeric,
            Values::Text(_) => Kind::Categorical,
        }
    }
}

/// A CSV file with a header row, read whole.
#[derive(Debug, Clone)]
pub struct Table {
    source: String,
    headers: Vec<String>,
    rows: Vec<csv::StringRecord>,
    na_values: NaValues,
}

/// The cells read as missing, with what lets most cells be told apart at a glance: the
/// bytes missing markers start with and their lengths (a number like `0.25` starts with no
/// marker's byte, and is never compared).
#[derive(Debug, Clone)]
struct NaValues {
    values: Vec<String>,
    first_bytes: [bool; 256],
    lengths: u64,
    longer: bool,
}

impl NaValues {
    fn new(values: impl IntoIterator<Item = String>) -> NaValues {
        let mut na = NaValues {
            values: Vec::new(),
            first_bytes: [false; 256],
            lengths: 0,
            longer: false,
        };
        na.extend(values);
        na
    }

    fn extend(&mut self, values: impl IntoIterator<Item = String>) {
        for v in values {
            if let Some(&b) = v.as_bytes().first() {
                self.first_bytes[b as usize] = true;
            }
            match v.len() {
                n if n < 64 => self.lengths |= 1 << n,
                _ => self.longer = true,
            }
            self.values.push(v);
        }
    }

    fn contains(&self, cell: &str) -> bool {
        let n = cell.len();
        let length_possible = if n < 64 {
            self.lengths & (1 << n) != 0
        } else {
            self.longer
        };
        let first_possible = cell
            .as_bytes()
            .first()
            .is_none_or(|&b| self.first_bytes[b as usize]);
        length_possible && first_possible && self.values.iter().any(|v| v == cell)
    }
}

impl Table {
    /// Reads the CSV file at `path`.
    pub fn from_path(path: &Path) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|source| Error::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_reader(&path.display().to_string(), file)
    }

    /// Reads CSV from `reader`; `source` names it in error messages.
    pub fn from_reader(source: &str, reader: impl std::io::Read) -> Result<Table> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let csv_err = |e: csv::Error| Error::Csv {
            source_name: source.to_string(),
            message: e.to_string(),
        };
        let headers: Vec<String> = csv
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(str::to_string)
            .collect();
        if headers.iter().all(|h| h.is_empty()) {
            return Err(Error::Empty {
                source_name: source.to_string(),
            });
        }
        if let Some(dup) = first_duplicate(&headers) {
            return Err(Error::DuplicateColumn {
                source_name: source.to_string(),
                column: dup,
            });
        }
        let rows = csv
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(csv_err)?;
        if rows.is_empty() {
            return Err(Error::NoRows {
                source_name: source.to_string(),
            });
        }
        Ok(Table {
            source: source.to_string(),
            headers,
            rows,
            na_values: NaValues::new(NA_VALUES.iter().map(|v| v.to_string())),
        })
    }

    /// The column names, in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Number of data rows (the header not counted).
    pub fn n_rows(&self) -> usize {
        self.rows.len()
    }

    /// Where the table came from, as given when it was read.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The position of column `name`.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                source_name: self.source.clone(),
                column: name.to_string(),
                columns: self.headers.join(", "),
            })
    }

    /// The cells of column `name`, as text.
    pub fn column(&self, name: &str) -> Result<Vec<&str>> {
        Ok(self.cells(name)?.collect())
    }

    /// The cells of column `name`, in row order, without collecting them.
    pub fn cells(&self, name: &str) -> Result<impl Iterator<Item = &str> + '_> {
        let index = self.column_index(name)?;
        Ok(self.rows.iter().map(move |r| r.get(index).unwrap_or("")))
    }

    /// Also reads these cells as missing (`--na-values`), besides [`NA_VALUES`].
    pub fn add_na_values(&mut self, values: impl IntoIterator<Item = String>) {
        self.na_values.extend(values);
    }

    /// The cells read as missing: [`NA_VALUES`] and any added.
    pub fn na_values(&self) -> &[String] {
        &self.na_values.values
    }

    /// Whether `cell` is a missing value.
    pub fn is_missing(&self, cell: &str) -> bool {
        self.na_values.contains(cell)
    }

    /// Keeps the data rows where `keep` is true, in order.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let mut keep = keep.iter();
        self.rows.retain(|_| keep.next().copied().unwrap_or(true));
    }

    /// A table of the data rows at `rows`, in that order (a cross-validation fold); errors
    /// still name each row's line in the file.
    pub fn take_rows(&self, rows: &[usize]) -> Table {
        Table {
            source: self.source.clone(),
            headers: self.headers.clone(),
            rows: rows.iter().map(|&i| self.rows[i].clone()).collect(),
            na_values: self.na_values.clone(),
        }
    }

    /// What column `name` holds: numbers when every cell that is not missing is a number, text
    /// otherwise. A column with no values at all is an error.
    pub fn infer_kind(&self, name: &str) -> Result<Kind> {
        let mut present = self.cells(name)?.filter(|c| !self.is_missing(c)).peekable();
        if present.peek().is_none() {
            return Err(Error::AllMissing {
                source_name: self.source.clone(),
                column: name.to_string(),
            });
        }
        // An infinite number still makes a numeric column, and is refused when read.
        let numeric = present.all(|c| c.parse::<f64>().is_ok_and(|v| !v.is_nan()));
        Ok(if numeric {
            Kind::Numeric
        } else {
            Kind::Categorical
        })
    }

    /// Column `name` read as `kind`: numbers with NaN for missing cells (a cell that is neither
    /// is an error naming its line), or text with `None` for missing cells.
    pub fn values(&self, name: &str, kind: Kind) -> Result<Values> {
        let index = self.column_index(name)?;
        let cells = self.rows.iter().map(|r| r.get(index).unwrap_or(""));
        Ok(match kind {
            Kind::Categorical => Values::Text(
                cells
                    .map(|c| (!self.is_missing(c)).then(|| c.to_string()))
                    .collect(),
            ),
            Kind::Numeric => Values::Numbers(
                cells
                    .zip(&self.rows)
                    .enumerate()
                    .map(|(i, (cell, row))| {
                        if self.is_missing(cell) {
                            return Ok(f64::NAN);
                        }
                        let line = row.position().map_or(i as u64 + 2, |p| p.line());
                        match cell.parse::<f64>() {
                            Ok(v) if v.is_finite() => Ok(v),
                            Ok(v) if v.is_infinite() => Err(Error::Infinite {
                                source_name: self.source.clone(),
                                line,
                                column: name.to_string(),
                                value: cell.to_string(),
                            }),
                            _ => Err(Error::NotNumeric {
                                source_name: self.source.clone(),
                                line,
                                column: name.to_string(),
                                value: cell.to_string(),
                            }),
                        }
                    })
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// Every column name except `excluded`, in file order.
    pub fn columns_except(&self, excluded: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|h| *h != excluded)
            .cloned()
            .collect()
    }

    /// The named columns as a numeric matrix, rows × columns.
    ///
    /// Every cell must be a finite number; the first that is not is reported with its line and
    /// column.
    pub fn features(&self, names: &[String]) -> Result<Array2<f64>> {
        let indices = names
            .iter()
            .map(|n| self.column_index(n))
            .collect::<Result<Vec<_>>>()?;
        let mut data = Vec::with_capacity(self.rows.len() * indices.len());
        for (i, row) in self.rows.iter().enumerate() {
            for (&c, name) in indices.iter().zip(names) {
                let cell = row.get(c).unwrap_or("");
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => data.push(v),
                    _ => {
                        return Err(Error::BadCell {
                            source_name: self.source.clone(),
                            line: row.position().map_or(i as u64 + 2, |p| p.line()),
                            column: name.clone(),
                            value: cell.to_string(),
                        });
                    }
                }
            }
        }
        Ok(
            Array2::from_shape_vec((self.rows.len(), indices.len()), data)
                .expect("one value per row and column"),
        )
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and a failure leaves nothing behind. The file gets
/// the permissions a plain create would (0666 less the umask).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn first_duplicate(names: &[String]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    names.iter().find(|n| !seen.insert(n.as_str())).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Result<Table> {
        Table::from_reader("t.csv", csv.as_bytes())
    }

    #[test]
    fn bad_cell_error_names_line_and_column() {
        let t = table("a,b\n1,2\n3,oops\n").unwrap();
        let err = t
            .features(&["a".into(), "b".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("\"b\"") && err.contains("oops"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_missing_values_are_rejected() {
        assert!(matches!(table(""), Err(Error::Empty { .. })));
        assert!(matches!(table("a,b\n"), Err(Error::NoRows { .. })));
        let t = table("a\n1\n\"\"\n").unwrap();
        assert!(
            t.features(&["a".into()])
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let t = table("a\nNaN\n").unwrap();
        assert!(t.features(&["a".into()]).is_err());
    }

    #[test]
    fn missing_column_lists_the_columns() {
        let err = table("a,b\n1,2\n")
            .unwrap()
            .column("target")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "column \"target\" not found in t.csv (columns: a, b)");
    }

    #[test]
    fn ragged_rows_are_an_error() {
        assert!(matches!(table("a,b\n1,2\n3\n"), Err(Error::Csv { .. })));
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic(&dir.path().join("missing/out.csv"), b"x").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_ne!(
                mode & 0o044,
                0,
                "written files must not be private to the owner: {mode:o}"
            );
        }
    }

    #[test]
    fn kinds_are_inferred_and_gaps_kept() {
        let mut t = table("n,s,g,e\n1,a,NA,\n2.5,b,3,\nnan,,?,null\n").unwrap();
        assert_eq!(t.infer_kind("n").unwrap(), Kind::Numeric);
        assert_eq!(t.infer_kind("s").unwrap(), Kind::Categorical);
        assert_eq!(t.infer_kind("g").unwrap(), Kind::Categorical);
        let err = t.infer_kind("e").unwrap_err().to_string();
        assert!(err.contains("\"e\"") && err.contains("--drop e"), "{err}");
        let Values::Numbers(n) = t.values("n", Kind::Numeric).unwrap() else {
            unreachable!()
        };
        assert_eq!(&n[..2], &[1.0, 2.5]);
        assert!(n[2].is_nan());
        assert_eq!(
            t.values("s", Kind::Categorical).unwrap(),
            Values::Text(vec![Some("a".into()), Some("b".into()), None])
        );
        let err = t.values("g", Kind::Numeric).unwrap_err().to_string();
        assert!(
            err.contains("line 4") && err.contains("\"?\"") && err.contains("--na-values"),
            "{err}"
        );
        t.add_na_values(["?".to_string()]);
        assert_eq!(t.infer_kind("g").unwrap(), Kind::Numeric);
        assert_eq!(t.take_rows(&[2, 0]).column("n").unwrap(), vec!["nan", "1"]);
        t.retain_rows(&[false, true, true]);
        assert_eq!(t.column("n").unwrap(), vec!["2.5", "nan"]);
    }

    #[test]
    fn duplicate_columns_are_an_error() {
        assert!(matches!(
            table("a,a\n1,2\n"),
            Err(Error::DuplicateColumn { .. })
        ));
    }
}
