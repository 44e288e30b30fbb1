//! Kernel variants chosen by measurement on this adapter (autotuning by shape bucket), kept for
//! the life of the device and, by default, in a file so that the next process starts tuned.
//!
//! The table is generic: an op names a shape bucket with a key and stores the variant it
//! measured to be fastest under it. Which variants exist and how they are timed is the op's
//! business (see `ops::matmul`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::AdapterSummary;
use crate::files::write_atomically;

/// Where tuned kernel choices live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// No measuring: every op chooses its variant by a fixed rule of the shape.
    Off,
    /// Measure each new shape bucket once per process.
    Memory,
    /// Measure each new shape bucket once, and keep the choices in this file across processes.
    File(PathBuf),
}

impl Tuning {
    /// `PERCEPT_TUNING`: `off` (or `0`), `memory`, or a file's path; unset, a file per adapter
    /// in the user's cache directory (in memory where the platform has none).
    pub fn from_env(summary: &AdapterSummary) -> Tuning {
        match std::env::var("PERCEPT_TUNING") {
            Ok(v) if v == "0" || v.eq_ignore_ascii_case("off") => Tuning::Off,
            Ok(v) if v.eq_ignore_ascii_case("memory") => Tuning::Memory,
            Ok(v) if !v.is_empty() => Tuning::File(PathBuf::from(v)),
            _ => match dirs::cache_dir() {
                Some(dir) => Tuning::File(dir.join("percept").join(default_file_name(summary))),
                None => Tuning::Memory,
            },
        }
    }
}

/// `tuning-<adapter>.json`, the adapter's name reduced to letters, digits and dashes.
fn default_file_name(summary: &AdapterSummary) -> String {
    let slug: String = summary
        .adapter
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>();
    format!("tuning-{}-{}.json", slug.join("-"), summary.backend)
}

const FORMAT: &str = "percept.tuning.v1";

/// The file's contents: choices are only valid for the adapter and driver that measured them.
#[derive(Serialize, Deserialize)]
struct TuningFile {
    format: String,
    adapter: String,
    driver: String,
    driver_info: String,
    choices: BTreeMap<String, String>,
}

/// The choices measured so far on one device.
pub(crate) struct TuningTable {
    file: Option<PathBuf>,
    summary: AdapterSummary,
    choices: Mutex<BTreeMap<String, String>>,
}

impl TuningTable {
    /// A table for `summary`'s adapter, started from `tuning`'s file when it holds choices
    /// measured by the same adapter and driver. `None` for [`Tuning::Off`].
    pub(crate) fn open(tuning: &Tuning, summary: &AdapterSummary) -> Option<TuningTable> {
        let file = match tuning {
            Tuning::Off => return None,
            Tuning::Memory => None,
            Tuning::File(path) => Some(path.clone()),
        };
        let choices = file
            .as_deref()
            .map(|path| load(path, summary))
            .unwrap_or_default();
        Some(TuningTable {
            file,
            summary: summary.clone(),
            choices: Mutex::new(choices),
        })
    }

    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.choices.lock().unwrap().get(key).cloned()
    }

    pub(crate) fn choices(&self) -> BTreeMap<String, String> {
        self.choices.lock().unwrap().clone()
    }

    /// Records a choice and rewrites the file. A file that cannot be written costs only the
    /// next process a re-measurement, so that is a warning, not an error.
    pub(crate) fn insert(&self, key: String, choice: String) {
        let mut choices = self.choices.lock().unwrap();
        log::info!("tuned {key}: {choice}");
        choices.insert(key, choice);
        let Some(path) = &self.file else { return };
        let contents = TuningFile {
            format: FORMAT.to_string(),
            adapter: self.summary.adapter.clone(),
            driver: self.summary.driver.clone(),
            driver_info: self.summary.driver_info.clone(),
            choices: choices.clone(),
        };
        let written = serde_json::to_vec_pretty(&contents)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                write_atomically(path, &bytes).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            log::warn!(
                "could not write the tuning file {}: {e}; tuned choices stay in memory \
                 (set PERCEPT_TUNING to a writable path, or to `memory`)",
                path.display()
            );
        }
    }
}

/// The choices in `path` if it was written by this adapter and driver; anything else starts an
/// empty table (with a warning when the file is unreadable or not a tuning file).
fn load(path: &Path, summary: &AdapterSummary) -> BTreeMap<String, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            log::warn!("ignoring the tuning file {}: {e}", path.display());
            return BTreeMap::new();
        }
    };
    match serde_json::from_slice::<TuningFile>(&bytes) {
        Ok(f) if f.format != FORMAT => {
            log::warn!(
                "ignoring the tuning file {}: format {:?}, expected {FORMAT:?}; it will be \
                 rewritten",
                path.display(),
                f.format
            );
            BTreeMap::new()
        }
        Ok(f)
            if f.adapter != summary.adapter
                || f.driver != summary.driver
                || f.driver_info != summary.driver_info =>
        {
            log::info!(
                "the tuning file {} was measured on {} ({}); re-measuring on {} ({})",
                path.display(),
                f.adapter,
                f.driver_info,
                summary.adapter,
                summary.driver_info
            );
            BTreeMap::new()
        }
        Ok(f) => f.choices,
        Err(e) => {
            log::warn!(
                "ignoring the tuning file {}: not a percept tuning file ({e}); it will be \
                 rewritten",
                path.display()
            );
            BTreeMap::new()
        }
    }
}
