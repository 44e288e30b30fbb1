//! Kernel variants chosen by measurement on this adapter (autotuning by shape bucket), kept for
//! the life of the device and, by default, in a file so that the next process starts tuned.
//!
//! The mechanism is generic: an op names a shape bucket with a key, lists its variants (the
//! fixed rule's choice first) and how to run one on the caller's operands (or stand-ins of
//! their shape), and [`Gpu::tune`] times each once and keeps the fastest under the key
//! (`ops::matmul`'s tiles, `ops::tridiagonal`'s methods, `ops::affine_scan`'s methods and chunks,
//! `ops::FftPlan`'s blocks of values per workgroup). A variant whose output disagrees with the
//! rule's is passed over, however fast: speed is no reason to keep a kernel that a driver runs
//! wrongly (lavapipe ends long loops early, silently).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AdapterSummary, Gpu};
use crate::error::{Error, Result};
use crate::files::write_atomically;
use crate::tensor::Tensor;

/// Timed runs per variant; the fastest counts (the minimum is what the variant can do, noise
/// only adds to it).
const SAMPLES: usize = 3;

/// A variant stops being sampled once its runs have taken this long (slow software adapters) ...
const SAMPLE_BUDGET: Duration = Duration::from_millis(250);

/// ... or once one run is this many times slower than the best variant so far.
const HOPELESS: f64 = 1.5;

/// Elements of a variant's output compared with the rule's (for larger outputs, this many from
/// its start and its end).
const COMPARED: usize = 1 << 22;

/// How far a variant's output may stray from the rule's, relative to the largest finite
/// magnitude of the rule's: the failures it is for (loops a driver ended early) were 0.25 and
/// more, and rounding and split sums stay far below it. Another elimination order on an
/// ill-conditioned system can pass it (f32 Thomas and PCR on a long 1-D Laplacian differ by
/// more than the solution); then either may be the wrong one, so such a choice is kept in
/// memory only, not saved.
const AGREEMENT: f32 = 0.1;

impl Gpu {
    /// The variant of `candidates` kept for the shape bucket `key`, measured now if the bucket is
    /// new: each variant runs once untimed (which compiles it), then up to [`SAMPLES`] times
    /// between GPU timestamps, and the fastest is kept. With tuning off or a single candidate,
    /// `candidates[0]` (the op's fixed rule); inside a [`Gpu::time`] of the caller's, the same
    /// unless the bucket was measured before. `run` records one run of a variant on the caller's
    /// operands (or stand-ins of their shape) and returns its output (compared with the rule's: a
    /// variant that disagrees is passed over); it must write only outputs that the caller's own run
    /// overwrites afterwards, or tensors of its own. Each candidate's runs come one after another.
    pub(crate) fn tune<C: Copy + std::fmt::Debug, N: AsRef<str>>(
        &self,
        key: String,
        candidates: &[C],
        name: impl Fn(C) -> N,
        mut run: impl FnMut(C) -> Result<Tensor>,
    ) -> Result<C> {
        let rule = candidates[0];
        // Bounds checks slow kernels unevenly (a tiled matmul about 14x): checked devices keep
        // choices of their own, beside the unchecked ones in the same file.
        let key = match self.checked() {
            true => format!("checked {key}"),
            false => key,
        };
        // With one variant there is nothing to measure (nor to compare it with).
        let (Some(table), true) = (&self.inner.tuning, candidates.len() > 1) else {
            return Ok(rule);
        };
        if let Some(kept) = table.get(&key) {
            if let Some(&c) = candidates.iter().find(|&&c| name(c).as_ref() == kept) {
                return Ok(c);
            }
        }
        // Inside a caller's `Gpu::time`, measuring would land in the caller's figure: run the
        // rule's variant and leave the bucket to be measured outside (benchmarks warm up first).
        if self.timing() {
            return Ok(rule);
        }
        // Work recorded before this must not run inside the timings.
        self.synchronize()?;
        let mut best: Option<(C, Duration)> = None;
        let mut rule_output: Option<Vec<f32>> = None;
        let mut passed_over = false;
        for (index, &candidate) in candidates.iter().enumerate() {
            // A variant that cannot run here (one that fails to compile on this adapter, say) is
            // passed over; the rule's variant must run.
            let output = match run(candidate) {
                Ok(output) => compared_part(&output)?,
                Err(e) if index > 0 => {
                    log::warn!(
                        "{key}: {candidate:?} cannot run on this adapter ({e}); passed over"
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            match &rule_output {
                None => rule_output = Some(output),
                Some(rule) => {
                    let difference = disagreement(rule, &output);
                    if difference > AGREEMENT {
                        log::warn!(
                            "{key}: the output of {candidate:?} differs from that of {:?} (the \
                             rule's variant) by {difference:.2e} of its largest magnitude; \
                             {candidate:?} is passed over, and this bucket's choice is kept in \
                             memory only (a kernel that the driver runs wrongly differs like \
                             this, but so can two correct methods on an ill-conditioned input: \
                             force one there)",
                            candidates[0]
                        );
                        passed_over = true;
                        continue;
                    }
                }
            }
            let mut fastest = Duration::MAX;
            let mut spent = Duration::ZERO;
            for _ in 0..SAMPLES {
                let (_, timing) = self.time(|| run(candidate))?;
                fastest = fastest.min(timing.elapsed);
                spent += timing.elapsed;
                let hopeless =
                    best.is_some_and(|(_, b)| fastest.as_secs_f64() > HOPELESS * b.as_secs_f64());
                if spent > SAMPLE_BUDGET || hopeless {
                    break;
                }
            }
            log::debug!("{key}: {candidate:?} {fastest:?}");
            if best.is_none_or(|(_, b)| fastest < b) {
                best = Some((candidate, fastest));
            }
        }
        let (chosen, _) = best.expect("at least one candidate");
        table.insert(key, name(chosen).as_ref().to_string(), !passed_over);
        Ok(chosen)
    }
}

/// The part of a variant's output that tuning compares: all of it, or [`COMPARED`] elements
/// from its start and its end (a wrong last tile or batch shows there).
fn compared_part(output: &Tensor) -> Result<Vec<f32>> {
    let flat = output.flat_f32();
    let len = flat.len();
    if len <= COMPARED {
        return flat.to_vec();
    }
    let half = COMPARED / 2;
    let mut part = flat.narrow(0..half)?.to_vec()?;
    part.extend(flat.narrow(len - half..len)?.to_vec()?);
    Ok(part)
}

/// How far a variant's output is from the rule's: the largest difference where the rule's is
/// finite, over the rule's largest finite magnitude; infinite where a non-finite value of
/// either is not matched by the same in the other (a masked `-inf` stays `-inf`, NaN stays NaN).
fn disagreement(rule: &[f32], variant: &[f32]) -> f32 {
    if rule.len() != variant.len() {
        return f32::INFINITY;
    }
    let scale = rule
        .iter()
        .filter(|v| v.is_finite())
        .fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (&r, &v) in rule.iter().zip(variant) {
        let same_kind = (r.is_nan() && v.is_nan()) || r == v;
        if !r.is_finite() || !v.is_finite() {
            if !same_kind {
                return f32::INFINITY;
            }
            continue;
        }
        worst = worst.max((r - v).abs() / scale);
    }
    worst
}

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
    /// `PERCEPT_TUNING`: `off` (or `0`, `false`), `memory`, `on` (or `1`, `true`, or unset: a
    /// file per adapter in the user's cache directory, in memory where the platform has none),
    /// or a file's path (containing a `/` or ending in `.json`). Anything else is an error, so
    /// that a typo does not become a file.
    pub fn from_env(summary: &AdapterSummary) -> Result<Tuning> {
        Tuning::parse(
            &std::env::var("PERCEPT_TUNING").unwrap_or_default(),
            summary,
        )
    }

    fn parse(value: &str, summary: &AdapterSummary) -> Result<Tuning> {
        let is = |words: &[&str]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
        if is(&["off", "0", "false"]) {
            Ok(Tuning::Off)
        } else if is(&["memory"]) {
            Ok(Tuning::Memory)
        } else if is(&["", "on", "1", "true"]) {
            Ok(match dirs::cache_dir() {
                Some(dir) => Tuning::File(dir.join("percept").join(default_file_name(summary))),
                None => Tuning::Memory,
            })
        } else if value.contains(std::path::MAIN_SEPARATOR) || value.ends_with(".json") {
            Ok(Tuning::File(PathBuf::from(value)))
        } else {
            Err(Error::invalid(
                "PERCEPT_TUNING",
                format!(
                    "{value:?} is not a setting; use off, memory, on, or a file's path \
                     (containing a / or ending in .json)"
                ),
            ))
        }
    }
}

/// `tuning-<adapter>-<backend>.json`, the adapter's name reduced to letters, digits and dashes.
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
    /// Buckets whose choice is not saved (see [`AGREEMENT`]).
    unsaved: Mutex<std::collections::BTreeSet<String>>,
    /// Set once the file could not be written: later choices stay in memory, unannounced.
    unwritable: std::sync::atomic::AtomicBool,
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
            unsaved: Mutex::default(),
            unwritable: Default::default(),
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

    /// Records a choice and, when `save`, rewrites the file. A file that cannot be written costs
    /// only the next process a re-measurement, so that is a warning (once), not an error.
    pub(crate) fn insert(&self, key: String, choice: String, save: bool) {
        use std::sync::atomic::Ordering;
        let mut choices = self.choices.lock().unwrap();
        log::info!("tuned {key}: {choice}");
        if !save {
            self.unsaved.lock().unwrap().insert(key.clone());
        }
        choices.insert(key, choice);
        let Some(path) = &self.file else { return };
        if !save || self.unwritable.load(Ordering::Relaxed) {
            return;
        }
        // Another process may have added buckets since this one loaded the file: keep them.
        for (key, choice) in load(path, &self.summary) {
            choices.entry(key).or_insert(choice);
        }
        let unsaved = self.unsaved.lock().unwrap();
        let contents = TuningFile {
            format: FORMAT.to_string(),
            adapter: self.summary.adapter.clone(),
            driver: self.summary.driver.clone(),
            driver_info: self.summary.driver_info.clone(),
            choices: choices
                .iter()
                .filter(|(key, _)| !unsaved.contains(*key))
                .map(|(key, choice)| (key.clone(), choice.clone()))
                .collect(),
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
            self.unwritable.store(true, Ordering::Relaxed);
            log::warn!(
                "could not write the tuning file {}: {e}; tuned choices stay in memory from \
                 now on (set PERCEPT_TUNING to a writable path, or to `memory`)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GpuOptions;

    #[test]
    fn disagreement_is_relative_to_the_largest_finite_magnitude() {
        let rule = [1.0, -2.0, 0.5];
        assert_eq!(disagreement(&rule, &[1.0, -2.0, 0.5]), 0.0);
        assert!((disagreement(&rule, &[1.1, -2.0, 0.5]) - 0.05).abs() < 1e-6);
        assert!(disagreement(&rule, &[1.0, -2.0, 0.9]) > AGREEMENT);
        assert_eq!(disagreement(&rule, &[1.0, -2.0, f32::NAN]), f32::INFINITY);
        assert_eq!(disagreement(&rule, &[1.0, -2.0]), f32::INFINITY);
        // Non-finite values must be matched in kind; the finite ones are still compared.
        let masked = [f32::NEG_INFINITY, 4.0, f32::NAN];
        assert_eq!(
            disagreement(&masked, &[f32::NEG_INFINITY, 4.0, f32::NAN]),
            0.0
        );
        assert_eq!(disagreement(&masked, &[0.0, 4.0, f32::NAN]), f32::INFINITY);
        assert!(disagreement(&masked, &[f32::NEG_INFINITY, 9.0, f32::NAN]) > AGREEMENT);
    }

    /// A variant far faster than the others whose output is wrong (as a kernel whose loops a
    /// driver ends early) is never kept.
    #[test]
    fn a_fast_variant_that_disagrees_is_passed_over() {
        let gpu = crate::gpu::test_gpu(GpuOptions {
            tuning: Some(Tuning::Memory),
            profile: Some(false),
            ..Default::default()
        });
        let x = Tensor::from_slice(&gpu, &[1.5; 4096], &[4096]).unwrap();
        // Variants 0 and 2 scale by 1 in 200 dispatches; variant 1 by 3 in one.
        let run = |variant: u32| -> Result<Tensor> {
            if variant == 1 {
                return crate::ops::scale(&x, 3.0);
            }
            let mut y = x.clone();
            for _ in 0..200 {
                y = crate::ops::scale(&y, 1.0)?;
            }
            Ok(y)
        };
        let chosen = gpu.tune("test".to_string(), &[0, 1, 2], |v| v.to_string(), run);
        assert_ne!(chosen.unwrap(), 1);
        assert_ne!(gpu.tuned_choices()["test"], "1");
    }

    /// A choice made after passing a variant over stays out of the file; the others are saved.
    #[test]
    fn unsaved_choices_stay_out_of_the_file() {
        let summary = AdapterSummary {
            adapter: "test adapter".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            driver: "test".into(),
            driver_info: "1".into(),
            vendor: 0,
            device: 0,
        };
        let path = std::env::temp_dir().join(format!("percept-tuning-{}.json", std::process::id()));
        let table = TuningTable::open(&Tuning::File(path.clone()), &summary).unwrap();
        table.insert("saved".into(), "a".into(), true);
        table.insert("unsaved".into(), "b".into(), false);
        table.insert("saved too".into(), "c".into(), true);
        assert_eq!(table.choices().len(), 3);
        let kept = load(&path, &summary);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["saved", "saved too"]);
    }

    #[test]
    fn settings_parse_and_typos_are_errors() {
        let summary = AdapterSummary {
            adapter: "NVIDIA H200 (x)".into(),
            backend: "vulkan".into(),
            device_type: "discrete_gpu".into(),
            driver: "NVIDIA".into(),
            driver_info: "580".into(),
            vendor: 0,
            device: 0,
        };
        let parse = |v: &str| Tuning::parse(v, &summary);
        for off in ["off", "0", "FALSE"] {
            assert_eq!(parse(off).unwrap(), Tuning::Off);
        }
        assert_eq!(parse("memory").unwrap(), Tuning::Memory);
        for on in ["", "on", "1", "true"] {
            match parse(on).unwrap() {
                Tuning::File(path) => assert!(
                    path.ends_with("percept/tuning-nvidia-h200-x-vulkan.json"),
                    "{path:?}"
                ),
                other => assert_eq!(other, Tuning::Memory, "no cache directory"),
            }
        }
        assert_eq!(
            parse("/tmp/t.json").unwrap(),
            Tuning::File("/tmp/t.json".into())
        );
        assert_eq!(parse("t.json").unwrap(), Tuning::File("t.json".into()));
        let err = parse("yes").unwrap_err().to_string();
        assert!(
            err.contains("PERCEPT_TUNING") && err.contains("off, memory, on"),
            "{err}"
        );
    }
}
