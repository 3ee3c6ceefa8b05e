use thiserror::Error;

/// Errors reading a table.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CSV is malformed (ragged rows, bad UTF-8, ...).
    #[error("{source_name} is not valid CSV: {message}")]
    Csv {
        /// The table's name.
        source_name: String,
        /// What the CSV reader said.
        message: String,
    },
    /// No header row.
    #[error("{source_name} is empty: expected a header row naming the columns, then data rows")]
    Empty {
        /// The table's name.
        source_name: String,
    },
    /// A header but no data.
    #[error("{source_name} has a header row but no data rows")]
    NoRows {
        /// The table's name.
        source_name: String,
    },
    /// Two columns share a name.
    #[error("{source_name} has two columns named \"{column}\": rename one")]
    DuplicateColumn {
        /// The table's name.
        source_name: String,
        /// The repeated name.
        column: String,
    },
    /// A column asked for is not in the header.
    #[error("column \"{column}\" not found in {source_name} (columns: {columns})")]
    MissingColumn {
        /// The table's name.
        source_name: String,
        /// The column asked for.
        column: String,
        /// The columns present, comma separated.
        columns: String,
    },
    /// A feature cell is not a finite number.
    #[error("{source_name}, line {line}, column \"{column}\": {} (features must be numbers)", describe(.value))]
    BadCell {
        /// The table's name.
        source_name: String,
        /// 1-based line in the file.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text.
        value: String,
    },
    /// A column read as numbers holds text.
    #[error(
        "{source_name}, line {line}, column \"{column}\": \"{value}\" is not a number in a numeric column: \
         fix the cell, add --na-values \"{value}\" if it means missing, or read the column as text with --categorical {column}"
    )]
    NotNumeric {
        /// The table's name.
        source_name: String,
        /// 1-based line in the file.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text.
        value: String,
    },
    /// A numeric cell is infinite.
    #[error(
        "{source_name}, line {line}, column \"{column}\": \"{value}\" is infinite, and features must be finite: \
         replace it, or add --na-values \"{value}\" to read it as missing"
    )]
    Infinite {
        /// The table's name.
        source_name: String,
        /// 1-based line in the file.
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text.
        value: String,
    },
    /// Every cell of a column is missing.
    #[error(
        "column \"{column}\" of {source_name} has no values (every cell is missing): leave it out with --drop {column}"
    )]
    AllMissing {
        /// The table's name.
        source_name: String,
        /// The column's name.
        column: String,
    },
}

fn describe(value: &str) -> String {
    if value.is_empty() {
        "empty cell (fill in or drop missing values)".to_string()
    } else {
        format!("\"{value}\" is not a finite number")
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
