//! CSV: numeric columns, one of them the label.

use std::path::Path;

use super::{Dataset, read_maybe_gz, to_f32};
use crate::error::{Error, Result};

/// Which CSV column holds the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column.
    Last,
    /// A 0-based column index.
    Index(usize),
    /// A header name (needs a header line).
    Name(String),
}

impl std::str::FromStr for LabelColumn {
    type Err = std::convert::Infallible;

    /// `last`, a number (0-based index), or a header name.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "last" => LabelColumn::Last,
            _ => s
                .parse()
                .map(LabelColumn::Index)
                .unwrap_or_else(|_| LabelColumn::Name(s.to_string())),
        })
    }
}

pub(super) fn load(path: &Path, header: bool, label: &LabelColumn) -> Result<Dataset> {
    let name = path.display().to_string();
    let bytes = read_maybe_gz(path)?;
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(header)
        .trim(::csv::Trim::All)
        .from_reader(&bytes[..]);
    let mut label_index = match label {
        LabelColumn::Index(i) => Some(*i),
        LabelColumn::Last => None,
        LabelColumn::Name(column) => {
            if !header {
                return Err(Error::data(
                    &name,
                    format!("label column `{column}` named, but the file has no header (--header)"),
                ));
            }
            let headers = reader
                .headers()
                .map_err(|e| Error::data(&name, e.to_string()))?;
            Some(headers.iter().position(|h| h == column).ok_or_else(|| {
                Error::data(
                    &name,
                    format!(
                        "no column `{column}` in the header {:?}",
                        headers.iter().collect::<Vec<_>>()
                    ),
                )
            })?)
        }
    };
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    let mut width = None;
    for (i, record) in reader.records().enumerate() {
        // Lines as the file numbers them (the count of records is a fallback, never needed).
        let line = |pos: Option<&::csv::Position>| {
            pos.map_or(i as u64 + 1 + header as u64, |p| line_of(&bytes, p))
        };
        let record = record.map_err(|e| {
            // The parser's own messages give its line, blind to skipped blank lines.
            let detail = match e.kind() {
                ::csv::ErrorKind::UnequalLengths {
                    pos,
                    expected_len,
                    len,
                } => format!(
                    "line {}: {len} columns, earlier lines have {expected_len}",
                    line(pos.as_ref())
                ),
                ::csv::ErrorKind::Utf8 { pos, err } => format!(
                    "line {}, column {}: not UTF-8 text (save the CSV as UTF-8)",
                    line(pos.as_ref()),
                    err.field() + 1
                ),
                _ => format!("line {}: {e}", line(None)),
            };
            Error::data(&name, detail)
        })?;
        let line = line(record.position());
        let cols = record.len();
        if *width.get_or_insert(cols) != cols {
            return Err(Error::data(
                &name,
                format!(
                    "line {line}: {cols} columns, earlier lines have {}",
                    width.unwrap_or(0)
                ),
            ));
        }
        let li = *label_index.get_or_insert(cols.saturating_sub(1));
        if li >= cols || cols < 2 {
            return Err(Error::data(
                &name,
                format!("line {line}: label column {li} with only {cols} columns"),
            ));
        }
        for (j, cell) in record.iter().enumerate() {
            let not_number = || {
                Error::data(
                    &name,
                    format!("line {line}, column {}: `{cell}` is not a number", j + 1),
                )
            };
            // Labels are read as f64, so that one like 1.00000001 is not rounded to a class.
            if j == li {
                labels.push(cell.parse::<f64>().map_err(|_| not_number())?)
            } else {
                features.push(cell.parse::<f32>().map_err(|_| not_number())?)
            }
        }
    }
    let Some(width) = width else {
        return Err(Error::data(
            &name,
            "no rows: the file is empty or holds only a header",
        ));
    };
    let labels = to_f32(labels, true, &name)?;
    Dataset::new(features, labels, width - 1, name)
}

/// The line a record starts on. The parser's position is where it began reading, before the
/// blank lines it skips (so counting records, or its own line, would miss them): they are
/// counted here.
fn line_of(bytes: &[u8], pos: &::csv::Position) -> u64 {
    let start = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
    let blank = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r');
    pos.line() + blank.filter(|&&b| b == b'\n').count() as u64
}
