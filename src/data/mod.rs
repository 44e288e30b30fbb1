//! In-memory data sets: loaders (CSV, NPY, IDX), seeded shuffling and batching,
//! train/validation/test splits, and standardisation fitted on the training split.

mod csv;
mod idx;
mod npy;

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use self::csv::LabelColumn;

/// Labels are class indices stored as f32, exact below this.
const MAX_LABEL: f32 = 16_777_216.0;

/// Whether `v` is a class index: a non-negative integer below [`MAX_LABEL`].
fn is_class_index(v: f64) -> bool {
    v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < MAX_LABEL as f64
}

/// The error for row `row` (0-based) of `file`, whose label is not a class index.
fn not_a_class_index(file: &str, row: usize, label: impl std::fmt::Display) -> Error {
    Error::data(
        file,
        format!(
            "row {}: label {label} is not a class index (a non-negative integer below \
             {MAX_LABEL})",
            row + 1
        ),
    )
}

/// An element type of a data file.
trait Element: Copy + std::fmt::Display {
    fn to_f32(self) -> f32;
    /// Exact for the types up to 32 bits; 64-bit integers round monotonically, so the range
    /// check of [`is_class_index`] is exact for them too.
    fn to_f64(self) -> f64;
}

macro_rules! element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
element!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

/// `values` as f32. With `labels`, each is first checked to be a class index in its own type:
/// in f32, an f64 label of 1.00000001 would pass as 1, and a large i64 would be misreported.
fn to_f32<T: Element>(
    values: impl IntoIterator<Item = T>,
    labels: bool,
    file: &str,
) -> Result<Vec<f32>> {
    values
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            if labels && !is_class_index(v.to_f64()) {
                return Err(not_a_class_index(file, row, v));
            }
            Ok(v.to_f32())
        })
        .collect()
}

/// Features and integer class labels, row-major.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `rows x dim` features.
    pub features: Vec<f32>,
    /// One class index per row.
    pub labels: Vec<f32>,
    /// Features per row.
    pub dim: usize,
    /// Where it came from, for messages.
    pub source: String,
}

/// Rows, features per row, and the CRC-32 of the features' and labels' f32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Rows.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// CRC-32 of the features' f32 bytes, then the labels'.
    pub crc32: u32,
}

impl Dataset {
    /// Checks and wraps features and labels: every feature finite, every label a non-negative
    /// integer; errors name the offending row.
    pub fn new(
        features: Vec<f32>,
        labels: Vec<f32>,
        dim: usize,
        source: impl Into<String>,
    ) -> Result<Dataset> {
        let data = Dataset {
            features,
            labels,
            dim,
            source: source.into(),
        };
        data.check()?;
        Ok(data)
    }

    /// What [`Dataset::new`] checks. The fields are public, so a dataset built or changed by
    /// hand is checked again where training and evaluation take it.
    pub fn check(&self) -> Result<()> {
        let (features, labels, dim, source) =
            (&self.features, &self.labels, self.dim, &self.source);
        if dim == 0 || labels.len().checked_mul(dim) != Some(features.len()) {
            return Err(Error::data(
                source,
                format!(
                    "{} feature values for {} labels of {dim} features each",
                    features.len(),
                    labels.len()
                ),
            ));
        }
        if labels.is_empty() {
            return Err(Error::data(source, "no rows"));
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                source,
                format!(
                    "row {}, feature {}: non-finite value {}",
                    i / dim + 1,
                    i % dim + 1,
                    features[i]
                ),
            ));
        }
        if let Some((row, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| !is_class_index(**l as f64))
        {
            return Err(not_a_class_index(source, row, l));
        }
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// What identifies these rows, in this order, to a checkpoint (a split is by row index, so
    /// a resumed run needs the same rows in the same order).
    pub fn fingerprint(&self) -> DataFingerprint {
        let mut crc = crc32fast::Hasher::new();
        crc.update(bytemuck::cast_slice(&self.features));
        crc.update(bytemuck::cast_slice(&self.labels));
        DataFingerprint {
            rows: self.len(),
            features: self.dim,
            crc32: crc.finalize(),
        }
    }

    /// Number of classes: the largest label plus one.
    pub fn classes(&self) -> usize {
        self.labels.iter().fold(0.0f32, |m, &l| m.max(l)) as usize + 1
    }

    /// Checks every label is below `classes`, naming the first row that is not.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        match self.labels.iter().position(|&l| l as usize >= classes) {
            Some(row) => Err(Error::data(
                &self.source,
                format!(
                    "row {}: label {} is out of range for {classes} classes",
                    row + 1,
                    self.labels[row]
                ),
            )),
            None => Ok(()),
        }
    }

    /// The rows `indices`, in that order.
    pub(crate) fn subset(&self, indices: &[usize]) -> Dataset {
        let (features, labels) = self.gather(indices);
        Dataset {
            features,
            labels,
            dim: self.dim,
            source: self.source.clone(),
        }
    }

    /// Features and labels of the rows `indices`.
    pub(crate) fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            features.extend_from_slice(&self.features[i * self.dim..(i + 1) * self.dim]);
        }
        (features, indices.iter().map(|&i| self.labels[i]).collect())
    }

    /// Rows [`Dataset::split`] holds out for validation and test at these fractions.
    fn held_out(&self, validation: f64, test: f64) -> (usize, usize) {
        let rows = |fraction: f64| (self.len() as f64 * fraction).round() as usize;
        (rows(validation), rows(test))
    }

    /// Rows [`Dataset::split`] leaves for training at these fractions (0 where none are left).
    pub fn training_rows(&self, validation: f64, test: f64) -> usize {
        let (n_val, n_test) = self.held_out(validation, test);
        self.len().saturating_sub(n_val.saturating_add(n_test))
    }

    /// Shuffles (seeded) and splits into train, validation and test parts of the given
    /// fractions (the rest is training).
    pub fn split(&self, validation: f64, test: f64, seed: u64) -> Result<Splits> {
        if !(0.0..1.0).contains(&validation)
            || !(0.0..1.0).contains(&test)
            || validation + test >= 1.0
        {
            return Err(Error::invalid(
                "Dataset::split",
                format!(
                    "validation {validation} and test {test} fractions must be in [0, 1) and sum below 1"
                ),
            ));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let (n_val, n_test) = self.held_out(validation, test);
        let (test_idx, rest) = order.split_at(n_test);
        let (val_idx, train_idx) = rest.split_at(n_val);
        if train_idx.is_empty() {
            return Err(Error::data(
                &self.source,
                "too few rows to leave a training split",
            ));
        }
        Ok(Splits {
            train: self.subset(train_idx),
            validation: self.subset(val_idx),
            test: self.subset(test_idx),
        })
    }

    /// The rows of epoch `epoch` in shuffled batches of `batch` (the last may be smaller). The
    /// order depends only on (seed, epoch), so a resumed run sees the same batches.
    pub fn batches(&self, batch: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch);
        order.shuffle(&mut rng);
        order.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
    }
}

/// A data set split three ways.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training rows.
    pub train: Dataset,
    /// Validation rows (may be empty).
    pub validation: Dataset,
    /// Test rows (may be empty).
    pub test: Dataset,
}

/// Per-feature standardisation `(x - mean) / std`, fitted on one data set and applied to any.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Per-feature means.
    pub mean: Vec<f32>,
    /// Per-feature standard deviations (1 where a feature is constant).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits means and standard deviations on `data` (in f64).
    pub fn fit(data: &Dataset) -> Standardizer {
        let n = data.len().max(1) as f64;
        let mut mean = vec![0.0f64; data.dim];
        let mut sq = vec![0.0f64; data.dim];
        for row in data.features.chunks(data.dim) {
            for (j, &v) in row.iter().enumerate() {
                mean[j] += v as f64;
                sq[j] += v as f64 * v as f64;
            }
        }
        let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let sd = (s / n - m * m).max(0.0).sqrt();
                if sd > 1e-12 { sd as f32 } else { 1.0 }
            })
            .collect();
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Standardises `data` in place; it must have a feature per mean and standard deviation.
    pub fn apply(&self, data: &mut Dataset) -> Result<()> {
        if self.mean.len() != data.dim || self.std.len() != data.dim {
            return Err(Error::shape(
                "Standardizer::apply",
                format!(
                    "{} means and {} standard deviations for rows of {} features",
                    self.mean.len(),
                    self.std.len(),
                    data.dim
                ),
            ));
        }
        for row in data.features.chunks_mut(data.dim) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j]) / self.std[j];
            }
        }
        Ok(())
    }
}

/// File formats the loaders read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated numbers, one row per line, with a label column.
    Csv,
    /// NumPy `.npy` arrays: features `[n, ...]` and labels `[n]` in a second file.
    Npy,
    /// IDX (the MNIST format): images `[n, ...]` and labels `[n]` in a second file.
    Idx,
}

/// Where to read a data set from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The features file (or the whole CSV). `.gz` files are decompressed.
    pub path: PathBuf,
    /// The format; `None` infers it from the file name.
    pub format: Option<Format>,
    /// The labels file, for NPY and IDX.
    pub labels: Option<PathBuf>,
    /// The CSV label column; `None` is the last. Given with NPY or IDX data, even as
    /// [`LabelColumn::Last`], it is refused.
    pub label_column: Option<LabelColumn>,
    /// Whether the CSV's first line is a header (refused with NPY or IDX data).
    pub header: bool,
}

impl Source {
    /// A CSV file with the label in the last column and no header (as the shipped digits).
    pub fn csv(path: impl Into<PathBuf>) -> Source {
        Source {
            path: path.into(),
            format: Some(Format::Csv),
            labels: None,
            label_column: None,
            header: false,
        }
    }
}

/// The UCI handwritten digits shipped in `data/digits.csv.gz` (1,797 rows of 8x8 pixels,
/// 10 classes), found relative to the crate or the working directory.
pub fn digits_path() -> PathBuf {
    let in_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz");
    if in_crate.exists() {
        in_crate
    } else {
        PathBuf::from("data/digits.csv.gz")
    }
}

/// Loads a data set.
pub fn load(source: &Source) -> Result<Dataset> {
    let name = source.path.display().to_string();
    if source.path.is_dir() {
        return Err(Error::data(
            &name,
            "is a directory; give a data file (.csv, .csv.gz, .npy or idx)",
        ));
    }
    let format = match source.format {
        Some(f) => f,
        None => infer_format(&source.path).ok_or_else(|| {
            Error::data(
                &name,
                "cannot tell the format from the name; give it (csv, npy or idx)",
            )
        })?,
    };
    // The CSV flags would be ignored with NPY or IDX data, so they are refused, as --labels is
    // refused with a CSV.
    let csv_flag = if source.header {
        Some("--header")
    } else {
        source.label_column.as_ref().map(|_| "--label-column")
    };
    if let (Some(flag), Format::Npy | Format::Idx) = (csv_flag, format) {
        let format = if format == Format::Npy { "NPY" } else { "IDX" };
        return Err(Error::data(
            &name,
            format!(
                "{flag} applies to CSV files only, and this is {format} data (its labels come \
                 from the --labels file); drop {flag}"
            ),
        ));
    }
    match format {
        Format::Csv if source.labels.is_some() => Err(Error::data(
            &name,
            "a CSV file carries its labels in a column (--label-column); --labels is for npy \
             and idx features",
        )),
        Format::Csv => csv::load(
            &source.path,
            source.header,
            source.label_column.as_ref().unwrap_or(&LabelColumn::Last),
        ),
        Format::Npy | Format::Idx => {
            let labels = source.labels.as_ref().ok_or_else(|| {
                Error::data(
                    &name,
                    format!("{format:?} features need a labels file (--labels)"),
                )
            })?;
            let read = if format == Format::Npy {
                npy::read
            } else {
                idx::read
            };
            let (features, shape) = read(&source.path, false)?;
            let (labels_values, label_shape) = read(labels, true)?;
            if label_shape.len() != 1 || shape.first() != label_shape.first() {
                return Err(Error::data(
                    labels.display(),
                    format!(
                        "labels have shape {label_shape:?}, the features {shape:?}: expected [{}]",
                        shape.first().unwrap_or(&0)
                    ),
                ));
            }
            let dim = shape[1..].iter().product();
            Dataset::new(features, labels_values, dim, name)
        }
    }
}

fn infer_format(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.ends_with(".npy") {
        Some(Format::Npy)
    } else if name.contains("idx") || name.ends_with("-ubyte") {
        Some(Format::Idx)
    } else {
        None
    }
}

/// A file's bytes, decompressed when its name ends in `.gz`.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path.display(), format!("not valid gzip: {e}")))?;
        return Ok(out);
    }
    Ok(raw)
}
