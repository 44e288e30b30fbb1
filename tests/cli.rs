//! The `percept` binary as a user runs it.

use std::process::Command;
use std::time::Instant;

fn percept(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        // Hermetic: no tuning file read from or written to the user's cache directory.
        .env("PERCEPT_TUNING", "memory")
        .output()
        .expect("the percept binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn info_json_has_the_documented_keys() {
    let (ok, stdout, stderr) = percept(&["info", "--json"]);
    assert!(ok, "{stderr}");
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "adapter",
        "backend",
        "device_type",
        "features",
        "limits",
        "tuning",
    ] {
        assert!(info.get(key).is_some(), "missing {key} in {stdout}");
    }
}

#[test]
fn bench_matmul_quick_json_passes_its_oracle_checks() {
    let (ok, stdout, stderr) =
        percept(&["bench", "matmul", "--quick", "--json", "--sizes", "33,64"]);
    assert!(ok, "{stderr}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(records.len(), 3);
    for r in &records {
        for key in [
            "name",
            "shape",
            "median_ms",
            "rate",
            "unit",
            "max_rel_err",
            "adapter",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert!(r["max_rel_err"].as_f64().unwrap() < 1e-4, "{r}");
    }
    // Each record also went to stderr when its case ended, as one line.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("record matmul: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, records, "{stderr}");
}

/// With `--profile` each case's kernel times go to stderr and stdout stays JSON (where the
/// adapter has GPU timestamps; elsewhere the run fails and says why); `--case` selects cases.
#[test]
fn bench_profile_and_case() {
    let (ok, info, stderr) = percept(&["info", "--json"]);
    assert!(ok, "{stderr}");
    let timestamps = info.contains("\"TIMESTAMP_QUERY\"");
    let (ok, stdout, stderr) = percept(&[
        "bench",
        "matmul",
        "--quick",
        "--json",
        "--sizes",
        "33,64",
        "--profile",
        "--case",
        "square",
    ]);
    if !timestamps {
        assert!(!ok && stderr.contains("needs GPU timestamps"), "{stderr}");
        return;
    }
    assert!(ok, "{stderr}");
    assert!(stderr.contains("mean us"), "{stderr}");
    assert!(stderr.contains("matmul::matmul BM"), "{stderr}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    // The two squares; --case left the MLP layer out.
    assert_eq!(records.len(), 2);
}

#[test]
fn bench_deq_quick_json_reports_the_fixed_count_case_and_each_solver() {
    let (ok, stdout, stderr) = percept(&["bench", "deq", "--quick", "--json"]);
    assert!(ok, "{stderr}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let fixed = &records[0];
    assert_eq!(fixed["name"], "deq/fixed-point-30");
    assert!(fixed["ok"].as_bool().unwrap(), "{fixed}");
    assert!(fixed["baseline"]["rate"].as_f64().unwrap() > 0.0);
    let solvers: Vec<&str> = records[1..]
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        solvers,
        [
            "fixed-point iteration",
            "Anderson acceleration",
            "Broyden's method"
        ]
    );
    for r in &records[1..] {
        assert!(r["converged"].as_bool().unwrap(), "{r}");
        assert!(r["max_residual"].as_f64().unwrap() <= 1e-4, "{r}");
    }
}

#[test]
fn train_on_the_shipped_digits_reaches_95_percent_within_a_minute() {
    let dir = std::env::temp_dir().join(format!("percept-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("digits.safetensors");
    let start = Instant::now();
    let (ok, stdout, stderr) = percept(&[
        "train",
        "--json",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    let seconds = start.elapsed().as_secs_f64();
    assert!(ok, "{stderr}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let accuracy = last["test"]["accuracy"].as_f64().unwrap();
    eprintln!("percept train: test accuracy {accuracy:.4} in {seconds:.1} s");
    assert!(accuracy >= 0.95, "{stdout}");
    assert!(seconds < 60.0, "took {seconds:.1} s");
    let (ok, stdout, stderr) = percept(&[
        "eval",
        "--json",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(eval["accuracy"].as_f64().unwrap(), accuracy);
}

#[test]
fn train_a_deq_logs_its_solver_and_its_checkpoint_evaluates_and_resumes() {
    let dir = std::env::temp_dir().join(format!("percept-cli-deq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("deq.safetensors");
    let path = checkpoint.to_str().unwrap();
    let common = [
        "train",
        "--model",
        "deq",
        "--width",
        "32",
        "--json",
        "--checkpoint",
        path,
    ];
    let (ok, stdout, stderr) =
        percept(&[&common[..], &["--epochs", "1", "--solver", "broyden"]].concat());
    assert!(ok, "{stderr}");
    let epoch: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let forward = epoch["solver"]["forward_iterations"].as_f64().unwrap();
    assert!(forward >= 2.0, "{stdout}");
    assert!(
        epoch["solver"]["backward_iterations"].as_f64().unwrap() >= 1.0,
        "{stdout}"
    );
    let (ok, stdout, stderr) = percept(&["eval", "--json", "--checkpoint", path]);
    assert!(ok, "{stderr}");
    let eval: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(eval["accuracy"].as_f64().unwrap() > 0.5, "{stdout}");
    let (ok, stdout, stderr) = percept(&[&common[..], &["--epochs", "2", "--resume"]].concat());
    assert!(ok, "{stderr}");
    let resumed: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(resumed["epoch"].as_u64(), Some(2), "{stdout}");
    let (ok, _, stderr) = percept(&["train", "--model", "deq", "--solver", "newton"]);
    assert!(
        !ok && stderr.contains("fixed-point, anderson or broyden"),
        "{stderr}"
    );
}

#[test]
fn bad_input_fails_with_a_message_not_a_panic() {
    let (ok, _, stderr) = percept(&["train", "--data", "/no/such/file.csv"]);
    assert!(!ok);
    assert!(
        stderr.contains("/no/such/file.csv") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let (ok, _, stderr) = percept(&["eval", "--checkpoint", "/no/such/checkpoint.safetensors"]);
    assert!(
        !ok && stderr.contains("/no/such/checkpoint.safetensors"),
        "{stderr}"
    );
    let (ok, _, stderr) = percept(&["bench", "matmul", "--sizes", "0"]);
    assert!(
        !ok && stderr.contains("0 x 0 x 0 is not a matrix product to time"),
        "{stderr}"
    );
    let (ok, _, stderr) = percept(&["bench", "pcr", "--case", "no such case"]);
    assert!(
        !ok && stderr.contains("no case matches --case \"no such case\""),
        "{stderr}"
    );
    // wgpu skips a backend name it does not know; percept says which. An empty value is unset.
    let info = |backends: &str| {
        Command::new(env!("CARGO_BIN_EXE_percept"))
            .arg("info")
            .env("WGPU_BACKEND", backends)
            .output()
            .expect("the percept binary runs")
    };
    let out = info("vulkan,bogus");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("unknown backend `bogus`"),
        "{stderr}"
    );
    let out = info("");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs percept and checks that it failed with exit code 2 (an error, not a panic or an
/// abort) and that stderr contains each of `needles`.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .env("PERCEPT_TUNING", "memory")
        .output()
        .expect("the percept binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: no `{needle}` in {stderr}"
        );
    }
}

/// A directory of the test's own, removed when the test ends (passing or not).
struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("percept-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Sizes past the adapter's limits (or past usize) are refused before any host data is drawn;
/// they used to abort on a failed allocation of terabytes.
#[test]
fn absurd_sizes_are_errors_not_aborts() {
    let dir = scratch("sizes");
    let ckpt = dir.join("c.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let limit = "past this adapter's limit";
    fails_with(
        &["bench", "matmul", "--sizes", "1000000000000"],
        &["overflows"],
    );
    fails_with(&["bench", "matmul", "--sizes", "100000"], &[limit]);
    let train = ["train", "--epochs", "1", "--checkpoint", ckpt];
    fails_with(
        &[&train[..], &["--hidden", "1000000000000"]].concat(),
        &["parameters", limit],
    );
    fails_with(
        &[&train[..], &["--hidden", "1000000000000,1000000000000"]].concat(),
        &["parameter count overflows"],
    );
    // The schedule is sized from the split before the split checks its fractions: the
    // held-out rows saturate rather than overflow (a panic in debug builds).
    fails_with(
        &[&train[..], &["--validation", "1e300"]].concat(),
        &["fractions must be in [0, 1)"],
    );
    // Sized before the layer norms' gains are filled: 400 GB of ones aborted the process.
    fails_with(
        &[&train[..], &["--hidden", "100000000000", "--norm", "after"]].concat(),
        &["parameters", limit],
    );
    fails_with(
        &[
            &train[..],
            &["--model", "deq", "--backward", "phantom"],
            &["--phantom-steps", "18446744073709551615"],
        ]
        .concat(),
        &["steps in 1..=1000"],
    );
    fails_with(
        &[&train[..], &["--model", "deq", "--width", "1000000"]].concat(),
        &["parameters", limit],
    );
    fails_with(
        &[
            &train[..],
            &[
                "--model",
                "deq",
                "--width",
                "8",
                "--max-iter",
                "1000000000000",
            ],
        ]
        .concat(),
        &["max_iter = 1000000000000", limit],
    );
    fails_with(
        &["repro", "isometry", "--quick", "--seeds", "1000000000000"],
        &[limit],
    );
    let prefix = dir.join("sp");
    let parity = [
        "repro",
        "sparse-parity",
        "--quick",
        "--seeds",
        "1",
        "--max-steps",
        "10",
        "--plot-prefix",
        prefix.to_str().unwrap(),
    ];
    fails_with(
        &[&parity[..], &["--widths", "1000000000000"]].concat(),
        &[limit],
    );
    fails_with(
        &[
            &parity[..],
            &["--widths", "4", "--train-sizes", "1000000000000"],
        ]
        .concat(),
        &["do not fit in host memory"],
    );
    fails_with(
        &["repro", "deq-nngp", "--quick", "--widths", "1000000000000"],
        &["overflows"],
    );
}

/// Settings out of range name the setting; they used to panic (normal:inf, a training-set size
/// of 0), pass silently (normal:NaN became a tiny std, sparse:0 one input, step-epochs 0 decayed
/// every step, momentum 2 diverged), or be reported as the whole configuration.
#[test]
fn out_of_range_settings_name_the_setting() {
    let dir = scratch("settings");
    let ckpt = dir.join("c.safetensors");
    let train = [
        "train",
        "--epochs",
        "1",
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--init", "normal:inf"],
            "standard deviation must be finite",
        ),
        (
            &["--init", "normal:nan"],
            "standard deviation must be finite",
        ),
        (&["--init", "sparse:0"], "at least one input"),
        (&["--init", "sparse:1000"], "give at most sparse:64"),
        (&["--lr", "nan"], "lr must be finite"),
        // A negative value reaches the check (clap would take it for a flag).
        (&["--lr", "-1"], "lr must be finite and >= 0, got -1"),
        (
            &["--optimizer", "sgd", "--momentum", "2"],
            "momentum must be below 1",
        ),
        (&["--optimizer", "sgd", "--nesterov"], "needs momentum > 0"),
        (
            &["--schedule", "step", "--step-epochs", "0"],
            "at least 1 step between decays",
        ),
        (
            &["--schedule", "step", "--gamma", "nan"],
            "gamma must be finite",
        ),
    ];
    for (flags, needle) in cases {
        fails_with(&[&train[..], flags].concat(), &[needle]);
    }
    fails_with(
        &[
            "train",
            "--epochs",
            "0",
            "--checkpoint",
            ckpt.to_str().unwrap(),
        ],
        &["epochs must be at least 1"],
    );
    let prefix = dir.join("sp");
    let parity = [
        "repro",
        "sparse-parity",
        "--quick",
        "--widths",
        "4",
        "--seeds",
        "1",
        "--plot-prefix",
        prefix.to_str().unwrap(),
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--train-sizes", "0"],
            "training-set size must be at least 1",
        ),
        (&["--max-steps", "0"], "max_steps must be at least 1"),
        (&["--sparse-inputs", "0"], "between 1 and n = 20 inputs"),
        (&["--sparse-inputs", "1000"], "between 1 and n = 20 inputs"),
        (&["--widths", "4,0"], "width must be at least 1"),
    ];
    for (flags, needle) in cases {
        fails_with(&[&parity[..], flags].concat(), &[needle]);
    }
    fails_with(
        &["repro", "isometry", "--quick", "--seeds", "0"],
        &["seeds must be at least 1"],
    );
    // n = k: the default sparse fan-in (at least k + 1) is capped at n, and the sweep runs.
    let (ok, _, stderr) = percept(
        &[
            &parity[..],
            &[
                "--n",
                "3",
                "--k",
                "3",
                "--max-steps",
                "5",
                "--train-sizes",
                "8",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
}

/// Flags that the chosen optimizer, schedule or family would ignore are errors; with --resume,
/// which keeps the checkpoint's settings, a note.
#[test]
fn flags_that_would_be_ignored_are_reported() {
    let dir = scratch("conflicts");
    let ckpt = dir.join("c.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let train = ["train", "--epochs", "1", "--checkpoint", ckpt];
    let cases: &[(&[&str], &str)] = &[
        (&["--momentum", "0.9"], "--momentum is SGD's setting"),
        (&["--nesterov"], "--nesterov is SGD's setting"),
        (&["--gamma", "0.5"], "--gamma sets the step schedule"),
        (
            &["--warmup-epochs", "1"],
            "--warmup-epochs sets the cosine schedule",
        ),
        (
            &["--schedule", "cosine", "--warmup-epochs", "5"],
            "longer than the run's --epochs 1",
        ),
        (
            &["--model", "deq", "--phantom-steps", "10"],
            "--phantom-steps is a setting of the phantom gradient",
        ),
        (
            &[
                "--model",
                "deq",
                "--backward",
                "implicit",
                "--phantom-damping",
                "0.3",
            ],
            "--phantom-damping is a setting of the phantom gradient",
        ),
    ];
    for (flags, needle) in cases {
        fails_with(&[&train[..], flags].concat(), &[needle]);
    }
    fails_with(
        &["bench", "matmul", "--heatmap", "h.svg"],
        &["--heatmap plots the deeppcr family's speedups"],
    );
    // Resuming: no --epochs continues to the checkpoint's own total; fewer than it has is an
    // error; other settings are noted as ignored.
    let (ok, _, stderr) = percept(&train);
    assert!(ok, "{stderr}");
    let resume = ["train", "--resume", "--json", "--checkpoint", ckpt];
    let (ok, stdout, stderr) = percept(&[&resume[..], &["--epochs", "2", "--lr", "5"]].concat());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("--lr ignored with --resume"), "{stderr}");
    assert!(stdout.contains("\"epoch\":2"), "{stdout}");
    let (ok, _, stderr) = percept(&resume);
    assert!(
        ok && stderr.contains("already trained its 2 epochs"),
        "{stderr}"
    );
    // The data flags apply to a resumed run: nothing is noted as ignored.
    let digits = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let (ok, _, stderr) = percept(&[&resume[..], &["--data", digits]].concat());
    assert!(ok && !stderr.contains("ignored"), "{stderr}");
    fails_with(
        &[&resume[..], &["--epochs", "1"]].concat(),
        &["has already trained 2 epochs"],
    );
}

/// The CLI sizes a cosine schedule in steps from the split the trainer makes: 1,797 digits less
/// 270 + 270 held out leave 1,257 rows, 3 batches of 419 (rounding 70% of the rows gave 1,258,
/// and 4), so the rate reaches 0 at the last step of the last epoch.
#[test]
fn a_cosine_schedule_ends_with_the_run() {
    let dir = scratch("cosine");
    let ckpt = dir.join("c.safetensors");
    let (ok, stdout, stderr) = percept(&[
        "train",
        "--validation",
        "0.15",
        "--test",
        "0.15",
        "--batch-size",
        "419",
        "--schedule",
        "cosine",
        "--epochs",
        "3",
        "--json",
        "--checkpoint",
        ckpt.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    // The epochs' lines, then the run's.
    let lines: Vec<&str> = stdout.lines().collect();
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 2]).unwrap();
    assert_eq!(
        (last["epoch"].as_u64(), last["steps"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(last["lr"].as_f64(), Some(0.0), "{stdout}");
}

/// The CSV flags, even `--label-column last` (the default, given), are refused with IDX or NPY
/// data rather than ignored, by train and eval alike.
#[test]
fn csv_flags_with_idx_data_are_refused() {
    let dir = scratch("csv-flags");
    let idx = |name: &str, shape: &[u32], body: &[u8]| {
        let mut bytes = vec![0, 0, 0x08, shape.len() as u8];
        for d in shape {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(body);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let images = idx("images-idx3-ubyte", &[4, 3], &[0; 12]);
    let labels = idx("labels-idx1-ubyte", &[4], &[0, 1, 2, 1]);
    let ckpt = dir.join("c.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let data = ["--data", images.as_str(), "--labels", labels.as_str()];
    for (flags, name) in [
        (&["--header"][..], "--header"),
        (&["--label-column", "last"], "--label-column"),
        (&["--label-column", "0"], "--label-column"),
    ] {
        let needles = [name, "applies to CSV files only", images.as_str()];
        let train = ["train", "--epochs", "1", "--checkpoint", ckpt];
        fails_with(&[&train[..], &data, flags].concat(), &needles);
        fails_with(&[&["eval"][..], &data, flags].concat(), &needles);
    }
}

/// Output paths are checked before the run (they used to fail after it, naming a temporary
/// file); an empty test split is reported as such, not as accuracy 0; a run that diverges in
/// its first epoch does not claim that an older file at the checkpoint's path is its own.
#[test]
fn outputs_are_checked_before_the_run() {
    let dir = scratch("outputs");
    let missing = dir.join("no-such-dir").join("out");
    let missing = missing.to_str().unwrap();
    let ckpt = dir.join("c.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let exists = "does not exist";
    fails_with(
        &["train", "--checkpoint", missing],
        &["--checkpoint", exists],
    );
    fails_with(
        &["train", "--checkpoint", ckpt, "--metrics", missing],
        &["--metrics", exists],
    );
    fails_with(
        &[
            "train",
            "--checkpoint",
            ckpt,
            "--plot",
            dir.to_str().unwrap(),
        ],
        &["--plot", "is a directory"],
    );
    fails_with(
        &["bench", "deeppcr", "--heatmap", missing],
        &["--heatmap", exists],
    );
    fails_with(
        &["repro", "isometry", "--quick", "--plot", missing],
        &["--plot", exists],
    );
    fails_with(
        &["repro", "deq-nngp", "--quick", "--plot", missing],
        &["--plot", exists],
    );
    fails_with(
        &[
            "repro",
            "sparse-parity",
            "--quick",
            "--plot-prefix",
            missing,
        ],
        &["--plot-prefix", exists],
    );
    fails_with(
        &["repro", "sparse-parity", "--quick", "--plot-prefix="],
        &["--plot-prefix is empty"],
    );
    let no_test = [
        "train",
        "--epochs",
        "1",
        "--validation",
        "0",
        "--test",
        "0",
        "--checkpoint",
        ckpt,
    ];
    let (ok, stdout, stderr) = percept(&no_test);
    assert!(ok && stdout.contains("no test split"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = percept(&[&no_test[..], &["--json"]].concat());
    assert!(ok, "{stderr}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(last["test"].is_null(), "{stdout}");
    let stale = dir.join("stale.safetensors");
    std::fs::write(&stale, b"not this run's").unwrap();
    fails_with(
        &[
            "train",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--checkpoint",
            stale.to_str().unwrap(),
        ],
        &["the training loss became"],
    );
    let (_, _, stderr) = percept(&[
        "train",
        "--epochs",
        "1",
        "--lr",
        "1e30",
        "--checkpoint",
        stale.to_str().unwrap(),
    ]);
    assert!(!stderr.contains("is kept"), "{stderr}");
}
