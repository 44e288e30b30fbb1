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
    assert!(!ok && stderr.contains("size 0"), "{stderr}");
    let (ok, _, stderr) = percept(&["bench", "pcr", "--case", "no such case"]);
    assert!(
        !ok && stderr.contains("no case matches --case \"no such case\""),
        "{stderr}"
    );
}
