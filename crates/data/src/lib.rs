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
use rayon::prelude::*;
use std::path::Path;
use std::sync::Arc;

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
    cells: Cells,
    na_values: NaValues,
    /// Every column read as numbers, once (while splitting the file, or on first use): kinds,
    /// gaps and numeric columns then come from one parallel pass over the rows rather than
    /// one per question.
    parsed: std::sync::OnceLock<Numbers>,
}

/// The data rows' cells, as parts of one text (the file itself where it needed no unquoting),
/// row after row: where each row starts in the text, where each of its cells ends (four bytes
/// a cell), and the line of the file each row starts on.
#[derive(Debug, Clone)]
struct Cells {
    text: Arc<String>,
    starts: Vec<usize>,
    /// Each cell's end, from its row's start, before trimming; the next cell starts one
    /// byte (its separator) later.
    ends: Vec<u32>,
    lines: Vec<u64>,
    width: usize,
}

/// Where a cell ends, `end` bytes into a row starting at `row`; `None` past 4 GiB into the row.
fn cell_end(row: usize, end: usize) -> Option<u32> {
    u32::try_from(end - row).ok()
}

/// Cell `column` of the row starting at `row` in `text` whose cells end at `ends`, trimmed
/// as the stream reader trims cells.
fn cell<'t>(text: &'t str, row: usize, ends: &[u32], column: usize) -> &'t str {
    let start = match column {
        0 => row,
        c => row + ends[c - 1] as usize + 1,
    };
    text[start..row + ends[column] as usize].trim()
}

impl Cells {
    fn n_rows(&self) -> usize {
        self.lines.len()
    }

    fn row(&self, index: usize) -> Row<'_> {
        Row { cells: self, index }
    }

    /// The cells of `rows`, in that order, sharing the text.
    fn select(&self, rows: impl Iterator<Item = usize>) -> Cells {
        let (mut starts, mut ends, mut lines) = (Vec::new(), Vec::new(), Vec::new());
        for i in rows {
            starts.push(self.starts[i]);
            ends.extend_from_slice(&self.ends[i * self.width..(i + 1) * self.width]);
            lines.push(self.lines[i]);
        }
        Cells {
            text: self.text.clone(),
            starts,
            ends,
            lines,
            width: self.width,
        }
    }
}

/// One data row of [`Cells`].
#[derive(Clone, Copy)]
struct Row<'a> {
    cells: &'a Cells,
    index: usize,
}

impl<'a> Row<'a> {
    /// The cell in column `column`.
    fn get(self, column: usize) -> &'a str {
        let width = self.cells.width;
        let ends = &self.cells.ends[self.index * width..(self.index + 1) * width];
        cell(
            &self.cells.text,
            self.cells.starts[self.index],
            ends,
            column,
        )
    }

    /// The line of the file the row starts on.
    fn line(self) -> u64 {
        self.cells.lines[self.index]
    }
}

/// What a column's cells turned out to be when read as numbers.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    /// Some cell is not missing.
    present: bool,
    /// Every cell that is not missing is a number other than NaN.
    numeric: bool,
    /// Every number is finite.
    finite: bool,
    /// Some cell is missing.
    gaps: bool,
}

impl Parsed {
    fn new() -> Parsed {
        Parsed {
            present: false,
            numeric: true,
            finite: true,
            gaps: false,
        }
    }

    /// Whether the column's numbers are its values: every present cell a finite number.
    fn readable(&self) -> bool {
        self.numeric && self.finite
    }

    fn merge(&mut self, other: &Parsed) {
        self.present |= other.present;
        self.numeric &= other.numeric;
        self.finite &= other.finite;
        self.gaps |= other.gaps;
    }

    /// Takes in one (trimmed) cell of the column and returns it as a number: NaN where it is
    /// missing or the column is not numeric. `number` reads the cell, and is only called
    /// while the column is still numeric.
    fn take(&mut self, cell: &[u8], na: &NaValues, number: impl FnOnce() -> Option<f64>) -> f64 {
        if na.contains(cell) {
            self.gaps = true;
            return f64::NAN;
        }
        self.present = true;
        if self.numeric {
            match number() {
                Some(v) if !v.is_nan() => {
                    self.finite &= v.is_finite();
                    return v;
                }
                _ => self.numeric = false,
            }
        }
        f64::NAN
    }
}

/// The cells read as numbers (NaN where missing), in the blocks of rows they were read in,
/// and what each column turned out to be. Only readable columns' numbers are kept: a text
/// column's would be NaN and are never handed out.
#[derive(Debug, Clone)]
struct Numbers {
    /// Each block's rows, one after another, a value for each readable column.
    blocks: Vec<Vec<f64>>,
    /// How many rows each block holds.
    rows: Vec<usize>,
    columns: Vec<Parsed>,
    /// Where each column's value sits in a block's row; `None` unless it is readable.
    place: Vec<Option<usize>>,
    /// Values in a block's row.
    stride: usize,
}

impl Numbers {
    /// The numbers of blocks of rows read on their own (a value for every column), with what
    /// each block found of every column.
    fn gather(width: usize, blocks: Vec<(Vec<f64>, Vec<Parsed>)>) -> Numbers {
        let mut columns = vec![Parsed::new(); width];
        for (_, found) in &blocks {
            for (column, block) in columns.iter_mut().zip(found) {
                column.merge(block);
            }
        }
        let kept: Vec<usize> = (0..width).filter(|&c| columns[c].readable()).collect();
        let mut place = vec![None; width];
        for (i, &c) in kept.iter().enumerate() {
            place[c] = Some(i);
        }
        let rows = blocks
            .iter()
            .map(|(numbers, _)| numbers.len() / width)
            .collect();
        let blocks = if kept.len() == width {
            blocks.into_iter().map(|(numbers, _)| numbers).collect()
        } else {
            blocks
                .into_par_iter()
                .map(|(numbers, _)| {
                    numbers
                        .chunks_exact(width)
                        .flat_map(|row| kept.iter().map(|&c| row[c]))
                        .collect()
                })
                .collect()
        };
        Numbers {
            blocks,
            rows,
            columns,
            place,
            stride: kept.len(),
        }
    }
}

/// The cells read as missing, with what lets most cells be told apart at a glance: for each
/// byte a marker starts with, the lengths of those markers (`1.257027` starts like `1.#IND`
/// but is longer, and is never compared).
#[derive(Debug, Clone)]
struct NaValues {
    values: Vec<String>,
    /// Bit `n` of entry `b`: a marker of `n` bytes starts with byte `b`; bit 63 stands for
    /// every length from 63 on.
    lengths: Box<[u64; 256]>,
    /// Some marker is empty.
    empty: bool,
}

impl NaValues {
    fn new(values: impl IntoIterator<Item = String>) -> NaValues {
        let mut na = NaValues {
            values: Vec::new(),
            lengths: Box::new([0; 256]),
            empty: false,
        };
        na.extend(values);
        na
    }

    /// [`NA_VALUES`].
    fn pandas() -> NaValues {
        NaValues::new(NA_VALUES.iter().map(|v| v.to_string()))
    }

    fn extend(&mut self, values: impl IntoIterator<Item = String>) {
        for v in values {
            match v.as_bytes().first() {
                Some(&b) => self.lengths[b as usize] |= Self::length_bit(v.len()),
                None => self.empty = true,
            }
            self.values.push(v);
        }
    }

    fn length_bit(n: usize) -> u64 {
        1 << n.min(63)
    }

    fn contains(&self, cell: &[u8]) -> bool {
        match cell.first() {
            None => self.empty,
            Some(&b) => {
                self.lengths[b as usize] & Self::length_bit(cell.len()) != 0
                    && self.values.iter().any(|v| v.as_bytes() == cell)
            }
        }
    }
}

impl Table {
    /// Reads the CSV file at `path`. A file without quotes is split in parallel blocks of
    /// lines, its cells kept as parts of the file's text; any other file, or one whose lines
    /// do not split cleanly, is read as one stream (which then names the faulty line).
    pub fn from_path(path: &Path) -> Result<Table> {
        let source = path.display().to_string();
        let bytes = read_file(path).map_err(|source| Error::Open {
            path: path.display().to_string(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            // The stream names where the bytes stop being UTF-8.
            Err(e) => return Self::from_stream(&source, e.as_bytes()),
        };
        let text = Arc::new(text);
        let quoted = text
            .as_bytes()
            .par_chunks(1 << 20)
            .any(|chunk| memchr::memchr(b'"', chunk).is_some());
        let na_values = NaValues::pandas();
        if !quoted && let Some((headers, cells, numbers)) = Self::split_unquoted(&text, &na_values)
        {
            return Ok(Table {
                source,
                headers,
                cells,
                na_values,
                parsed: numbers.into(),
            });
        }
        Self::from_stream(&source, text.as_bytes())
    }

    /// The parallel read of [`Table::from_path`]: the headers, the cells (parts of `text`) and
    /// the cells read as numbers with `na` missing; `None` where the file must be read as a
    /// stream.
    fn split_unquoted(text: &Arc<String>, na: &NaValues) -> Option<(Vec<String>, Cells, Numbers)> {
        let mut head = csv_reader(text.as_bytes());
        let headers: Vec<String> = head.headers().ok()?.iter().map(str::to_string).collect();
        let start = head.position().byte() as usize;
        if headers.iter().all(|h| h.is_empty()) || first_duplicate(&headers).is_some() {
            return None;
        }
        // Blocks end after a newline; without quotes, every newline ends a record.
        let blocks = rayon::current_num_threads() * 4;
        let step = (text.len() - start).div_ceil(blocks).max(1 << 16);
        let mut bounds = vec![start];
        while let Some(&last) = bounds.last() {
            if last == text.len() {
                break;
            }
            let target = (last + step).min(text.len());
            let end = memchr::memchr(b'\n', &text.as_bytes()[target..])
                .map_or(text.len(), |i| target + i + 1);
            bounds.push(end);
        }
        let width = headers.len();
        let parts: Vec<Option<Split>> = bounds
            .par_windows(2)
            .map(|w| split_lines(text, w[0]..w[1], width, na))
            .collect();
        let n_rows = parts.iter().flatten().map(|p| p.lines.len()).sum();
        let mut starts = Vec::with_capacity(n_rows);
        let mut ends = Vec::with_capacity(n_rows * width);
        let mut lines = Vec::with_capacity(n_rows);
        let mut numbers = Vec::with_capacity(parts.len());
        let mut lines_before =
            1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..start]).count() as u64;
        // Each block's share copied by both threads, so the fresh pages are touched in
        // parallel too; a block is freed once copied. Its numbers stay where they are.
        for part in parts {
            let part = part?;
            starts.par_extend(part.starts.par_iter().copied());
            ends.par_extend(part.ends.par_iter().copied());
            lines.par_extend(part.lines.par_iter().map(|l| l + lines_before));
            lines_before += part.newlines;
            numbers.push((part.numbers, part.columns));
        }
        let cells = Cells {
            text: Arc::clone(text),
            starts,
            ends,
            lines,
            width,
        };
        (cells.n_rows() > 0).then(|| (headers, cells, Numbers::gather(width, numbers)))
    }

    /// Reads CSV from `reader`; `source` names it in error messages.
    pub fn from_reader(source: &str, mut reader: impl std::io::Read) -> Result<Table> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|e| Error::Csv {
            source_name: source.to_string(),
            message: e.to_string(),
        })?;
        Self::from_stream(source, &bytes)
    }

    /// Reads `bytes` as one stream of CSV, quotes and all.
    fn from_stream(source: &str, bytes: &[u8]) -> Result<Table> {
        let mut csv = csv_reader(bytes);
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
        let (mut text, mut starts, mut ends, mut lines) =
            (String::new(), Vec::new(), Vec::new(), Vec::new());
        let mut record = csv::StringRecord::new();
        // Each record's line, counted here: the reader's own positions lie before the empty
        // lines and the `\n` of a `\r\n` that precede a record.
        let (mut at, mut line) = (0, 1);
        while csv.read_record(&mut record).map_err(csv_err)? {
            let mut start = record.position().map_or(at, |p| p.byte() as usize);
            while let Some(b'\r' | b'\n') = bytes.get(start) {
                start += 1;
            }
            line += memchr::memchr_iter(b'\n', &bytes[at..start]).count() as u64;
            at = start;
            let row = text.len();
            for (i, field) in record.iter().enumerate() {
                // Cells end where the next starts less one byte, the separator.
                if i > 0 {
                    text.push(',');
                }
                text.push_str(field);
                ends.push(cell_end(row, text.len()).ok_or_else(|| Error::Csv {
                    source_name: source.to_string(),
                    message: format!("the record on line {line} is longer than 4 GiB"),
                })?);
            }
            starts.push(row);
            lines.push(line);
        }
        if lines.is_empty() {
            return Err(Error::NoRows {
                source_name: source.to_string(),
            });
        }
        let cells = Cells {
            text: Arc::new(text),
            starts,
            ends,
            lines,
            width: headers.len(),
        };
        Ok(Table::new(source, headers, cells))
    }

    fn new(source: &str, headers: Vec<String>, cells: Cells) -> Table {
        Table {
            source: source.to_string(),
            headers,
            cells,
            na_values: NaValues::pandas(),
            parsed: Default::default(),
        }
    }

    /// The column names, in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Number of data rows (the header not counted).
    pub fn n_rows(&self) -> usize {
        self.cells.n_rows()
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
        Ok((0..self.n_rows()).map(move |r| self.cells.row(r).get(index)))
    }

    /// Also reads these cells as missing (`--na-values`), besides [`NA_VALUES`].
    pub fn add_na_values(&mut self, values: impl IntoIterator<Item = String>) {
        self.na_values.extend(values);
        self.parsed = Default::default();
    }

    /// The cells read as missing: [`NA_VALUES`] and any added.
    pub fn na_values(&self) -> &[String] {
        &self.na_values.values
    }

    /// Whether `cell` is a missing value.
    pub fn is_missing(&self, cell: &str) -> bool {
        self.na_values.contains(cell.as_bytes())
    }

    /// Keeps the data rows where `keep` is true, in order.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let kept = (0..self.n_rows()).filter(|&i| keep.get(i).copied().unwrap_or(true));
        self.cells = self.cells.select(kept);
        self.parsed = Default::default();
    }

    /// A table of the data rows at `rows`, in that order (a cross-validation fold); errors
    /// still name each row's line in the file.
    pub fn take_rows(&self, rows: &[usize]) -> Table {
        Table {
            source: self.source.clone(),
            headers: self.headers.clone(),
            cells: self.cells.select(rows.iter().copied()),
            na_values: self.na_values.clone(),
            parsed: Default::default(),
        }
    }

    /// What column `name` holds: numbers when every cell that is not missing is a number, text
    /// otherwise. A column with no values at all is an error.
    pub fn infer_kind(&self, name: &str) -> Result<Kind> {
        // An infinite number still makes a numeric column, and is refused when read.
        let column = &self.parsed().columns[self.column_index(name)?];
        if !column.present {
            return Err(Error::AllMissing {
                source_name: self.source.clone(),
                column: name.to_string(),
            });
        }
        Ok(if column.numeric {
            Kind::Numeric
        } else {
            Kind::Categorical
        })
    }

    /// Whether column `name` has missing cells.
    pub fn has_gaps(&self, name: &str) -> Result<bool> {
        Ok(self.parsed().columns[self.column_index(name)?].gaps)
    }

    /// Whether every cell of column `name` is a finite number (no gaps, no text, no
    /// infinities): a column that [`Table::features`] and [`Table::values`] hand out as read.
    pub fn is_finite_numeric(&self, name: &str) -> Result<bool> {
        let column = &self.parsed().columns[self.column_index(name)?];
        Ok(column.readable() && !column.gaps)
    }

    /// Every column read as numbers: as the file was split, or on first use (a table read as
    /// a stream, or whose rows or missing markers changed) in parallel blocks of rows.
    fn parsed(&self) -> &Numbers {
        self.parsed.get_or_init(|| {
            const BLOCK: usize = 4096;
            let width = self.headers.len();
            let text = self.cells.text.as_str();
            let blocks = self
                .cells
                .ends
                .par_chunks(BLOCK * width)
                .zip(self.cells.starts.par_chunks(BLOCK))
                .map(|(ends, starts)| {
                    let mut columns = vec![Parsed::new(); width];
                    let mut numbers = Vec::with_capacity(ends.len());
                    for (row, &start) in ends.chunks_exact(width).zip(starts) {
                        for (c, column) in columns.iter_mut().enumerate() {
                            let cell = cell(text, start, row, c).as_bytes();
                            numbers.push(column.take(cell, &self.na_values, || number(cell)));
                        }
                    }
                    (numbers, columns)
                })
                .collect();
            Numbers::gather(width, blocks)
        })
    }

    /// Column `index`'s numbers, in row order; `None` unless the column is readable.
    fn numbers(&self, index: usize) -> Option<Vec<f64>> {
        let parsed = self.parsed();
        let place = parsed.place[index]?;
        let mut numbers = Vec::with_capacity(self.n_rows());
        for block in &parsed.blocks {
            numbers.extend(block.iter().skip(place).step_by(parsed.stride));
        }
        Some(numbers)
    }

    /// Column `name` read as `kind`: numbers with NaN for missing cells (a cell that is neither
    /// is an error naming its line), or text with `None` for missing cells.
    pub fn values(&self, name: &str, kind: Kind) -> Result<Values> {
        let index = self.column_index(name)?;
        Ok(match kind {
            Kind::Categorical => Values::Text(
                self.cells(name)?
                    .map(|c| (!self.is_missing(c)).then(|| c.to_string()))
                    .collect(),
            ),
            Kind::Numeric if let Some(numbers) = self.numbers(index) => Values::Numbers(numbers),
            // Read again cell by cell, to name the first that is not a finite number.
            Kind::Numeric => {
                let mut numbers = vec![0.0; self.n_rows()];
                self.parse_rows(&mut numbers, |row, out| {
                    let cell = row.get(index);
                    out[0] = if self.is_missing(cell) {
                        f64::NAN
                    } else {
                        self.number(cell, row.line(), name)?
                    };
                    Ok(())
                })?;
                Values::Numbers(numbers)
            }
        })
    }

    /// `cell` as a finite number, or the error naming its line and column.
    fn number(&self, cell: &str, line: u64, column: &str) -> Result<f64> {
        match number(cell.as_bytes()) {
            Some(v) if v.is_finite() => Ok(v),
            Some(v) if v.is_infinite() => Err(Error::Infinite {
                source_name: self.source.clone(),
                line,
                column: column.to_string(),
                value: cell.to_string(),
            }),
            _ => Err(Error::NotNumeric {
                source_name: self.source.clone(),
                line,
                column: column.to_string(),
                value: cell.to_string(),
            }),
        }
    }

    /// Fills `out`, `out.len() / rows` values per row, by `parse` on blocks of rows in
    /// parallel; the error of the first row that fails, in file order, is the one returned.
    fn parse_rows<F>(&self, out: &mut [f64], parse: F) -> Result<()>
    where
        F: Fn(Row<'_>, &mut [f64]) -> Result<()> + Sync,
    {
        const BLOCK: usize = 4096;
        let width = out.len() / self.n_rows().max(1);
        if width == 0 {
            return Ok(());
        }
        let outcomes: Vec<Result<()>> = out
            .par_chunks_mut(BLOCK * width)
            .enumerate()
            .map(|(block, out)| {
                for (i, out) in out.chunks_mut(width).enumerate() {
                    parse(self.cells.row(block * BLOCK + i), out)?;
                }
                Ok(())
            })
            .collect();
        outcomes.into_iter().collect()
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
        let k = indices.len();
        let mut data = vec![0.0; self.n_rows() * k];
        let parsed = self.parsed();
        let places: Option<Vec<usize>> = indices
            .iter()
            .map(|&c| parsed.place[c].filter(|_| !parsed.columns[c].gaps))
            .collect();
        if let Some(places) = places
            && k > 0
        {
            // Every cell already read as a finite number: each block's rows, picked out.
            let mut outs = Vec::with_capacity(parsed.blocks.len());
            let mut rest = data.as_mut_slice();
            for &rows in &parsed.rows {
                let (out, tail) = rest.split_at_mut(rows * k);
                outs.push(out);
                rest = tail;
            }
            outs.into_par_iter()
                .zip(&parsed.blocks)
                .for_each(|(out, block)| {
                    for (out, row) in out
                        .chunks_exact_mut(k)
                        .zip(block.chunks_exact(parsed.stride))
                    {
                        for (value, &c) in out.iter_mut().zip(&places) {
                            *value = row[c];
                        }
                    }
                });
        } else {
            self.parse_rows(&mut data, |row, out| {
                for ((&c, name), value) in indices.iter().zip(names).zip(out) {
                    let cell = row.get(c);
                    *value = match number(cell.as_bytes()) {
                        Some(v) if v.is_finite() => v,
                        _ => {
                            return Err(Error::BadCell {
                                source_name: self.source.clone(),
                                line: row.line(),
                                column: name.clone(),
                                value: cell.to_string(),
                            });
                        }
                    };
                }
                Ok(())
            })?;
        }
        Ok(Array2::from_shape_vec((self.n_rows(), indices.len()), data)
            .expect("one value per row and column"))
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

/// The bytes of the file at `path`. A large file is read by every thread of rayon's pool,
/// each its own part, so that the fresh memory it lands in is touched in parallel too.
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::io::{Read, Seek};
        use std::os::unix::fs::FileExt;
        let mut file = std::fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(0);
        if len >= 1 << 22 {
            let mut bytes = vec![0; len];
            let part = len.div_ceil(rayon::current_num_threads());
            bytes
                .par_chunks_mut(part)
                .enumerate()
                .try_for_each(|(i, out)| file.read_exact_at(out, (i * part) as u64))?;
            // Whatever was written to the file since its size was taken.
            file.seek(std::io::SeekFrom::Start(len as u64))?;
            file.read_to_end(&mut bytes)?;
            return Ok(bytes);
        }
    }
    std::fs::read(path)
}

/// The csv crate's reader of a file with a header row, cells trimmed.
fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes)
}

/// `cell` as a number, as Rust's own `f64` parsing reads it (`inf` and `nan` too), faster.
fn number(cell: &[u8]) -> Option<f64> {
    fast_float2::parse(cell).ok()
}

/// The cells of the lines of `text` in `range`, a file without quotes: records end at `\n` or
/// `\r` (empty ones are skipped), cells at commas, each trimmed as the stream reader trims them.
/// Each cell is read as a number on the way ([`Parsed::take`], missing where `na` says so).
/// `None` where a record has other than `width` cells.
fn split_lines(
    text: &str,
    range: std::ops::Range<usize>,
    width: usize,
    na: &NaValues,
) -> Option<Split> {
    let bytes = text.as_bytes();
    // Records are about as many as lines (more only where `\r` alone ends them): counted
    // first, so that no vector is given far more room than it fills. The room given is
    // memory touched, in huge pages, on this path.
    let rows = memchr::memchr_iter(b'\n', &bytes[range.clone()]).count() + 1;
    let mut split = Split {
        starts: Vec::with_capacity(rows),
        ends: Vec::with_capacity(rows * width),
        lines: Vec::with_capacity(rows),
        newlines: 0,
        numbers: Vec::with_capacity(rows * width),
        columns: vec![Parsed::new(); width],
    };
    let (mut at, end) = (range.start, range.end);
    let (mut cells, mut row) = (0, at);
    while at < end {
        // A cell that starts like a number is read as one up to where the number ends; if
        // a separator follows, that is the whole cell, found without a second look at it.
        let quick = match split.columns.get(cells) {
            Some(column) if column.numeric && starts_number(bytes[at]) => {
                fast_float2::parse_partial::<f64, _>(&bytes[at..end])
                    .ok()
                    .filter(|&(_, n)| {
                        at + n == end || matches!(bytes[at + n], b',' | b'\n' | b'\r')
                    })
            }
            _ => None,
        };
        let stop = match quick {
            Some((_, n)) => at + n,
            None => memchr::memchr3(b',', b'\n', b'\r', &bytes[at..end]).map_or(end, |i| at + i),
        };
        let separator = bytes.get(stop).copied().filter(|_| stop < end);
        if cells == 0 && stop == at && separator != Some(b',') {
            // An empty line.
            split.newlines += u64::from(separator == Some(b'\n'));
            at = stop + 1;
            continue;
        }
        if cells == 0 {
            row = at;
        }
        split.ends.push(cell_end(row, stop)?);
        let column = split.columns.get_mut(cells)?;
        split.numbers.push(match quick {
            Some((value, _)) => column.take(&bytes[at..stop], na, || Some(value)),
            None => {
                let cell = text[at..stop].trim().as_bytes();
                column.take(cell, na, || number(cell))
            }
        });
        cells += 1;
        if separator != Some(b',') {
            if cells != width {
                return None;
            }
            split.starts.push(row);
            split.lines.push(split.newlines);
            split.newlines += u64::from(separator == Some(b'\n'));
            cells = 0;
        }
        at = stop + 1;
    }
    (cells == 0).then_some(split)
}

/// Whether a cell starting with `b` may be a number written plainly (no space before it).
fn starts_number(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.')
}

/// One block's share of [`split_lines`]: each record's start and cells' ends, its line counted
/// from the block's first, the newlines in the block, and its cells read as numbers.
struct Split {
    starts: Vec<usize>,
    ends: Vec<u32>,
    lines: Vec<u64>,
    newlines: u64,
    numbers: Vec<f64>,
    columns: Vec<Parsed>,
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
    fn the_first_bad_cell_in_file_order_is_reported_however_the_rows_are_split() {
        let mut csv = String::from("a,b\n");
        for i in 0..20_000 {
            match i {
                9_000 => csv.push_str("1,first\n"),
                15_000 => csv.push_str("second,1\n"),
                _ => csv.push_str(&format!("{i},{}.5\n", i % 7)),
            }
        }
        let t = table(&csv).unwrap();
        let err = t
            .features(&["a".into(), "b".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 9002") && err.contains("first"), "{err}");
        let err = t.values("a", Kind::Numeric).unwrap_err().to_string();
        assert!(
            err.contains("line 15002") && err.contains("second"),
            "{err}"
        );
        assert_eq!(t.infer_kind("a").unwrap(), Kind::Categorical);
        let good = table("a\n1\nNA\n2.5\n").unwrap();
        assert_eq!(good.infer_kind("a").unwrap(), Kind::Numeric);
        let Values::Numbers(v) = good.values("a", Kind::Numeric).unwrap() else {
            panic!("numbers")
        };
        assert_eq!((v[0], v[1].is_nan(), v[2]), (1.0, true, 2.5));
    }

    /// A table big enough for the parallel read, written to a file.
    fn big_file(rows: usize, extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let mut csv = String::from("a,b,c\n");
        for i in 0..rows {
            csv.push_str(&format!("{i}, {}.25 ,x{}\n", i % 11, i % 3));
            if i == 1000 {
                csv.push('\n');
            }
        }
        csv.push_str(extra);
        std::fs::write(&path, csv).unwrap();
        (dir, path)
    }

    /// Each row's cells and line.
    fn rows(t: &Table) -> Vec<(Vec<&str>, u64)> {
        (0..t.n_rows())
            .map(|i| {
                let row = t.cells.row(i);
                (
                    (0..t.headers().len()).map(|c| row.get(c)).collect(),
                    row.line(),
                )
            })
            .collect()
    }

    #[test]
    fn large_files_read_in_parallel_as_one_stream_reads_them() {
        let (_dir, path) = big_file(100_000, "");
        let parallel = Table::from_path(&path).unwrap();
        let stream = Table::from_reader("big.csv", std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(parallel.headers(), ["a", "b", "c"]);
        assert_eq!(parallel.headers(), stream.headers());
        assert_eq!(parallel.n_rows(), 100_000);
        let (p, s) = (rows(&parallel), rows(&stream));
        assert!(p == s, "the rows differ");
        assert_eq!((p[0].1, p[1000].1, p[1001].1), (2, 1002, 1004));
        assert_eq!(p[7].0, ["7", "7.25", "x1"]);
    }

    #[test]
    fn unquoted_files_split_as_the_stream_reader_splits_them() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [&[u8]; 10] = [
            b"a,b\n1,2\n3,4",
            b"a,b\r\n1,2\r\n\r\n3,4\r\n",
            b"a,b\n1,2\r3,4\n\n\n5,6\n",
            b" a , b \n \xc2\xa0x\xc2\xa0 ,\t2\n,\n",
            b"\xef\xbb\xbfa\n \n1\n",
            b"a,b\n1,2,\n",
            b"a,b\n1\n",
            b"a,b\n",
            b"a,a\n1,2\n",
            b"a,b\n1,\xff\n",
        ];
        for (i, bytes) in cases.into_iter().enumerate() {
            let csv = String::from_utf8_lossy(bytes);
            let path = dir.path().join(format!("{i}.csv"));
            std::fs::write(&path, bytes).unwrap();
            let read = Table::from_path(&path).map_err(|e| e.to_string());
            let stream =
                Table::from_reader(&path.display().to_string(), bytes).map_err(|e| e.to_string());
            match (&read, &stream) {
                (Ok(r), Ok(s)) => {
                    assert_eq!(r.headers(), s.headers(), "{csv:?}");
                    assert_eq!(rows(r), rows(s), "{csv:?}");
                    if i == 1 {
                        // Each row's own line, past the empty ones and the `\n` of `\r\n`.
                        assert_eq!(rows(r), [(vec!["1", "2"], 2), (vec!["3", "4"], 4)]);
                    }
                }
                (Err(r), Err(s)) => assert_eq!(r, s, "{csv:?}"),
                _ => panic!(
                    "{csv:?}: {:?} / {:?}",
                    read.map(|t| rows(&t).len()),
                    stream.map(|t| rows(&t).len())
                ),
            }
        }
    }

    /// What a table says of each column: kind, gaps, finite numbers, and its numbers (bits,
    /// so NaN compares) or the error reading them.
    fn numeric_view(t: &Table) -> Vec<String> {
        t.headers()
            .iter()
            .map(|name| {
                let numbers = match t.values(name, Kind::Numeric) {
                    Ok(Values::Numbers(v)) => {
                        use std::hash::{Hash, Hasher};
                        let mut hash = std::collections::hash_map::DefaultHasher::new();
                        v.iter().for_each(|x| x.to_bits().hash(&mut hash));
                        format!("{} numbers, hash {:x}", v.len(), hash.finish())
                    }
                    other => format!("{:?}", other.map(|v| v.len()).map_err(|e| e.to_string())),
                };
                format!(
                    "{name}: {:?} {:?} {:?} {numbers}",
                    t.infer_kind(name).map_err(|e| e.to_string()),
                    t.has_gaps(name).unwrap(),
                    t.is_finite_numeric(name).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn numbers_read_while_splitting_are_those_read_from_the_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.csv");
        for newline in ["\n", "\r\n"] {
            let mut csv = String::from("a,b,c,d,e,f,g,h\n");
            let plain = ["0.25", " 3.5 ", "-1e-3", "+2", ".5", "7.", "1E5", "-0"];
            let gaps = ["1.5", "NA", "", "-nan", "2.5", "1.#IND", " nan "];
            for i in 0..120_000 {
                let d = if i == 50_000 { "1e400" } else { "-4.125" };
                let e = if i == 70_000 { "1.5e" } else { "0.1" };
                let h = if i == 90_000 { "12abc" } else { "inf" };
                csv.push_str(&format!(
                    "{i},{},{},{d},{e},x{},{},{h}{newline}",
                    plain[i % plain.len()],
                    gaps[i % gaps.len()],
                    i % 3,
                    if i % 5 == 0 { "-999" } else { "3" },
                ));
            }
            std::fs::write(&path, &csv).unwrap();
            let mut split = Table::from_path(&path).unwrap();
            let mut stream =
                Table::from_reader(&path.display().to_string(), csv.as_bytes()).unwrap();
            assert_eq!(split.n_rows(), 120_000);
            assert_eq!(numeric_view(&split), numeric_view(&stream), "{newline:?}");
            // A matrix of the readable columns, picked out of the blocks past the text ones.
            let names = ["g", "a", "b"].map(String::from);
            let x = split.features(&names).unwrap();
            assert_eq!(x, stream.features(&names).unwrap());
            for (j, name) in names.iter().enumerate() {
                let Values::Numbers(column) = split.values(name, Kind::Numeric).unwrap() else {
                    panic!("{name} is numeric");
                };
                assert_eq!(x.column(j).to_vec(), column, "{name}");
            }
            assert_eq!(x[[119_999, 1]], 119_999.0);
            assert_eq!(split.infer_kind("e").unwrap(), Kind::Categorical);
            assert!(split.has_gaps("c").unwrap() && !split.is_finite_numeric("d").unwrap());
            // Read again from the cells once the missing markers change.
            for t in [&mut split, &mut stream] {
                t.add_na_values(["-999".to_string()]);
            }
            assert_eq!(numeric_view(&split), numeric_view(&stream), "{newline:?}");
            assert!(split.has_gaps("g").unwrap());
        }
    }

    #[test]
    fn large_files_with_a_faulty_line_are_reported_as_one_stream_reports_them() {
        let (_dir, path) = big_file(60_000, "1,2\n");
        let err = Table::from_path(&path).unwrap_err().to_string();
        assert!(
            err.contains("line: 60003") && err.contains("found record with 2 fields"),
            "{err}"
        );
        let (_dir, path) = big_file(60_000, "1,\"2,3\",x\n");
        let t = Table::from_path(&path).unwrap();
        assert_eq!(t.n_rows(), 60_001);
        assert_eq!(t.cells.row(60_000).get(1), "2,3");
    }

    #[test]
    fn kinds_gaps_and_numbers_follow_the_missing_markers_and_rows() {
        let mut t = table("a,b\n1,x\n?,y\n3,inf\n").unwrap();
        assert_eq!(t.infer_kind("a").unwrap(), Kind::Categorical);
        assert!(!t.has_gaps("a").unwrap());
        t.add_na_values(["?".to_string()]);
        assert_eq!(t.infer_kind("a").unwrap(), Kind::Numeric);
        assert!(t.has_gaps("a").unwrap());
        let Values::Numbers(a) = t.values("a", Kind::Numeric).unwrap() else {
            panic!("numbers")
        };
        assert_eq!((a[0], a[1].is_nan(), a[2]), (1.0, true, 3.0));
        t.retain_rows(&[true, false, true]);
        assert!(!t.has_gaps("a").unwrap());
        assert_eq!(t.values("a", Kind::Numeric).unwrap().len(), 2);
        // An infinite number makes a numeric column, and is refused when read.
        t.retain_rows(&[false, true]);
        assert_eq!(t.infer_kind("b").unwrap(), Kind::Numeric);
        let err = t.values("b", Kind::Numeric).unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
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
