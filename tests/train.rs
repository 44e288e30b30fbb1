//! Training end to end: data loaders and their errors, the shipped digits, determinism,
//! checkpoints, exact resumption, and stopping on divergence.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use common::unchecked;
use percept::Error;
use percept::checkpoint::{load_checkpoint, save_checkpoint};
use percept::data::{self, Dataset, LabelColumn, Source, Standardizer};
use percept::model::{Model, ModelConfig};
use percept::nn::{self, OptimizerChoice, OptimizerConfig};
use percept::train::{self, Outputs, TrainConfig, Trainer};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percept-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn digits() -> Dataset {
    data::load(&Source::csv(data::digits_path())).unwrap()
}

fn digits_config(epochs: usize) -> TrainConfig {
    let mut config = TrainConfig {
        epochs,
        batch_size: 32,
        ..TrainConfig::default()
    };
    config.optimizer = OptimizerConfig {
        kind: OptimizerChoice::Adam,
        lr: 3e-3,
        ..OptimizerConfig::default()
    };
    config
}

#[test]
fn digits_reach_95_percent_test_accuracy() {
    let gpu = unchecked();
    let data = digits();
    assert_eq!((data.len(), data.dim, data.classes()), (1797, 64, 10));
    let start = Instant::now();
    let mut trainer = Trainer::new(gpu, digits_config(15), &data).unwrap();
    let history = train::fit(&mut trainer, &Outputs::default(), || {}, |_| {}).unwrap();
    let test = trainer.evaluate(&trainer.splits().test).unwrap();
    eprintln!(
        "digits: {} epochs in {:.1} s, final train loss {:.4}, test accuracy {:.4}",
        history.len(),
        start.elapsed().as_secs_f64(),
        history.last().unwrap().train_loss,
        test.accuracy
    );
    assert!(test.accuracy >= 0.95, "test accuracy {}", test.accuracy);
    assert!(history.last().unwrap().train_loss < history[0].train_loss);
}

#[test]
fn a_deq_reaches_95_percent_test_accuracy_on_digits() {
    use percept::deq::{Backward, DeqConfig, Method, SolverConfig, Stop};
    let gpu = unchecked();
    let data = digits();
    let solver = SolverConfig {
        method: Method::ANDERSON,
        tol: 1e-3,
        stop: Stop::Relative,
        max_iter: 40,
        check_every: 5,
        accept_unconverged: true,
    };
    let mut config = digits_config(12);
    config.model = ModelConfig::Deq(DeqConfig {
        bias: true,
        backward: Backward::Implicit {
            solver: solver.clone(),
        },
        solver,
        // Width 128: at 64 the test accuracy was 0.939-0.964 over seeds 0-4 (mean 0.945) once
        // the cross-entropy's gradient kept its digits on confident rows; at 128, 0.953-0.972
        // over seeds 0-9 (mean 0.964). One test row is 0.28%.
        ..DeqConfig::new(0, 128)
    });
    let start = Instant::now();
    let mut trainer = Trainer::new(gpu, config, &data).unwrap();
    let history = train::fit(&mut trainer, &Outputs::default(), || {}, |_| {}).unwrap();
    let test = trainer.evaluate(&trainer.splits().test).unwrap();
    let last = history.last().unwrap();
    let solver = last.solver.as_ref().expect("a DEQ logs its solves");
    eprintln!(
        "digits DEQ: {} epochs in {:.1} s, test accuracy {:.4}, solver {solver:?}",
        history.len(),
        start.elapsed().as_secs_f64(),
        test.accuracy
    );
    assert!(test.accuracy >= 0.95, "test accuracy {}", test.accuracy);
    assert!(solver.forward_iterations >= 2.0 && solver.backward_iterations.unwrap() >= 2.0);
    assert!(last.train_loss < history[0].train_loss);
}

/// The dataset's fields are public: what a caller builds or changes by hand is checked where
/// training and evaluation take it, rather than indexing past a label's one-hot row.
#[test]
fn hand_made_or_mismatched_data_is_refused() {
    let gpu = unchecked();
    let data = digits();
    let mut bad = data.clone();
    bad.labels[5] = 1e30;
    let err = Trainer::new(gpu, digits_config(1), &bad).err().unwrap();
    assert!(err.to_string().contains("row 6: label"), "{err}");
    bad.labels[5] = 1.0;
    bad.features.pop();
    let err = Trainer::new(gpu, digits_config(1), &bad).err().unwrap();
    assert!(
        err.to_string().contains("feature values for 1797 labels"),
        "{err}"
    );

    let mut config = digits_config(1);
    config.loss = percept::ops::Loss::MeanSquaredError;
    let trainer = Trainer::new(gpu, config, &data).unwrap();
    let mut unseen = trainer.splits().test.clone();
    let last = unseen.labels.len() - 1;
    unseen.labels[last] = 10.0;
    let err = trainer.evaluate(&unseen).unwrap_err().to_string();
    assert!(
        err.contains("label 10 is out of range for 10 classes"),
        "{err}"
    );
    let narrow = Dataset::new(vec![0.5; 6], vec![0.0, 1.0], 3, "narrow").unwrap();
    let err = trainer.evaluate(&narrow).unwrap_err().to_string();
    assert!(err.contains("3 features, the model takes 64"), "{err}");

    let standardizer = Standardizer::fit(&data);
    let mut narrow = narrow;
    let err = standardizer.apply(&mut narrow).unwrap_err().to_string();
    assert!(
        err.contains("64 means and 64 standard deviations for rows of 3"),
        "{err}"
    );
}

#[test]
fn same_seed_gives_bit_identical_runs() {
    let gpu = unchecked();
    let data = digits();
    let run = || {
        let mut trainer = Trainer::new(gpu, digits_config(2), &data).unwrap();
        train::fit(&mut trainer, &Outputs::default(), || {}, |_| {}).unwrap();
        trainer.model().params().download().unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn resumed_training_equals_uninterrupted() {
    let gpu = unchecked();
    let data = digits();
    let mut config = digits_config(3);
    config.optimizer.kind = OptimizerChoice::Sgd;
    config.optimizer.momentum = 0.9;
    config.optimizer.lr = 0.05;
    config.optimizer.max_grad_norm = 1.0;
    // 3 epochs of 45 steps: the rate reaches 0 at the last.
    config.optimizer.schedule = nn::Schedule::Cosine {
        warmup: 10,
        total: 135,
    };

    let mut straight = Trainer::new(gpu, config.clone(), &data).unwrap();
    train::fit(&mut straight, &Outputs::default(), || {}, |_| {}).unwrap();

    let path = tmp("resume.safetensors");
    let mut first = Trainer::new(
        gpu,
        TrainConfig {
            epochs: 1,
            ..config.clone()
        },
        &data,
    )
    .unwrap();
    let metrics = tmp("resume.jsonl");
    let outputs = Outputs {
        checkpoint: Some(path.clone()),
        metrics: Some(metrics.clone()),
        ..Outputs::default()
    };
    train::fit(&mut first, &outputs, || {}, |_| {}).unwrap();
    let first_line = std::fs::read_to_string(&metrics).unwrap();
    // Past the cosine's last step the rate would be 0: refused.
    let err = Trainer::resume(gpu, &path, &data, Some(100)).err().unwrap();
    assert!(err.to_string().contains("reaches a rate of 0"), "{err}");
    // Other rows, or the same rows in another order, would split differently: refused.
    let mut reordered = data.clone();
    reordered.features.rotate_left(data.dim);
    reordered.labels.rotate_left(1);
    let err = Trainer::resume(gpu, &path, &reordered, Some(3))
        .err()
        .unwrap();
    assert!(err.to_string().contains("is not the data"), "{err}");
    let mut resumed = Trainer::resume(gpu, &path, &data, Some(3)).unwrap();
    assert_eq!(resumed.epoch(), 1);
    train::fit(&mut resumed, &outputs, || {}, |_| {}).unwrap();
    assert_eq!(
        resumed.model().params().download().unwrap(),
        straight.model().params().download().unwrap()
    );
    // The metrics file goes on from the first run's epoch rather than starting again.
    let lines = std::fs::read_to_string(&metrics).unwrap();
    assert!(lines.starts_with(&first_line), "{lines}");
    let epochs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3]);
    let straight_losses: Vec<f32> = straight.history().iter().map(|m| m.train_loss).collect();
    let resumed_losses: Vec<f32> = resumed.history().iter().map(|m| m.train_loss).collect();
    assert_eq!(resumed_losses, straight_losses);
}

/// Rewrites a checkpoint's metadata, keeping its tensors.
fn rewrite_metadata(path: &std::path::Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap_or_default();
    edit(&mut metadata);
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensors();
    safetensors::serialize_to_file(tensors, Some(metadata), path).unwrap();
}

#[test]
fn resuming_keeps_what_history_the_checkpoint_holds() {
    let gpu = unchecked();
    let data = digits();
    let path = tmp("history.safetensors");
    let outputs = Outputs {
        checkpoint: Some(path.clone()),
        ..Outputs::default()
    };
    let epochs = |t: &Trainer| t.history().iter().map(|m| m.epoch).collect::<Vec<_>>();
    let mut first = Trainer::new(gpu, digits_config(1), &data).unwrap();
    train::fit(&mut first, &outputs, || {}, |_| {}).unwrap();
    // As a checkpoint written before histories were kept: the run resumes without one.
    rewrite_metadata(&path, |m| {
        m.remove("history");
    });
    let mut second = Trainer::resume(gpu, &path, &data, Some(2)).unwrap();
    assert!(second.history().is_empty());
    train::fit(&mut second, &outputs, || {}, |_| {}).unwrap();
    // Its own checkpoint's history starts at epoch 2, and resumes.
    assert_eq!(
        epochs(&Trainer::resume(gpu, &path, &data, None).unwrap()),
        [2]
    );
    // One that does not end at the checkpoint's epoch is dropped, not trusted.
    rewrite_metadata(&path, |m| {
        let shifted = m["history"].replace("\"epoch\":2", "\"epoch\":1");
        m.insert("history".into(), shifted);
    });
    assert!(
        Trainer::resume(gpu, &path, &data, None)
            .unwrap()
            .history()
            .is_empty()
    );
}

#[test]
fn checkpoints_round_trip_and_report_mismatches() {
    let gpu = unchecked();
    let data = digits();
    let path = tmp("roundtrip.safetensors");
    let mut trainer = Trainer::new(gpu, digits_config(1), &data).unwrap();
    let outputs = Outputs {
        checkpoint: Some(path.clone()),
        metrics: Some(tmp("m.jsonl")),
        plot: Some(tmp("p.svg")),
    };
    train::fit(&mut trainer, &outputs, || {}, |_| {}).unwrap();
    let saved = load_checkpoint(&path).unwrap();
    assert_eq!(saved.params, trainer.model().params().download().unwrap());
    assert_eq!(saved.metadata.get("epoch").map(String::as_str), Some("1"));
    assert!(saved.extra.contains_key("data.mean"));
    let eval = train::evaluate_checkpoint(gpu, &path, &data, train::Part::Test).unwrap();
    assert!(eval.accuracy > 0.5, "{eval:?}");
    let metrics = std::fs::read_to_string(tmp("m.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    assert!(
        std::fs::read_to_string(tmp("p.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    // A tensor of the wrong shape is named.
    let ModelConfig::Mlp(mut config) = saved.config.clone() else {
        panic!("an MLP was saved")
    };
    config.widths[1] = 32;
    let bad = Model::new(gpu, ModelConfig::Mlp(config)).unwrap();
    let bad_path = tmp("bad.safetensors");
    save_checkpoint(
        &bad_path,
        &bad,
        None,
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    // Rewrite the model metadata to claim the original widths, keeping the 32-wide tensors
    // (a same-length byte replacement inside the JSON header).
    let mut bytes = std::fs::read(&bad_path).unwrap();
    let (from, to) = (b"[64,32,10]", b"[64,64,10]");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("widths in the header");
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(&bad_path, bytes).unwrap();
    let err = load_checkpoint(&bad_path).unwrap_err().to_string();
    assert!(
        err.contains("tensor `0.weight` has shape [32, 64], expected [64, 64]"),
        "{err}"
    );

    let missing = load_checkpoint(&tmp("no-such-file.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    std::fs::write(tmp("garbage.safetensors"), b"not a checkpoint").unwrap();
    let garbage = load_checkpoint(&tmp("garbage.safetensors")).unwrap_err();
    assert!(matches!(garbage, Error::Data { .. }), "{garbage}");
}

#[test]
fn divergence_stops_training_and_keeps_the_last_checkpoint() {
    let gpu = unchecked();
    let data = digits();
    let mut config = digits_config(3);
    config.standardize = false;
    config.optimizer = OptimizerConfig {
        kind: OptimizerChoice::Sgd,
        lr: 1e9,
        ..OptimizerConfig::default()
    };
    let path = tmp("diverged.safetensors");
    let _ = std::fs::remove_file(&path);
    let mut trainer = Trainer::new(gpu, config, &data).unwrap();
    let outputs = Outputs {
        checkpoint: Some(path.clone()),
        ..Outputs::default()
    };
    let err = train::fit(&mut trainer, &outputs, || {}, |_| {}).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("Lower the learning rate"), "{err}");
}

#[test]
fn loaders_read_csv_npy_idx_and_name_bad_rows() {
    // CSV with a header and a named label column.
    let csv = tmp("small.csv");
    std::fs::write(&csv, "a,label,b\n1.5,1,2\n-3,0,4\n0.25,2,8\n").unwrap();
    let source = Source {
        header: true,
        label_column: Some(LabelColumn::Name("label".into())),
        ..Source::csv(&csv)
    };
    let d = data::load(&source).unwrap();
    assert_eq!(
        (d.features.clone(), d.labels.clone(), d.dim),
        (vec![1.5, 2.0, -3.0, 4.0, 0.25, 8.0], vec![1.0, 0.0, 2.0], 2)
    );

    let expect_err = |text: &str, needle: &str| {
        let path = tmp("bad.csv");
        std::fs::write(&path, text).unwrap();
        let err = data::load(&Source::csv(&path)).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    };
    expect_err("1,2,0\n3,x,1\n", "line 2, column 2: `x` is not a number");
    expect_err("1,2,0\n3,NaN,1\n", "row 2, feature 2: non-finite value NaN");
    expect_err("1,2,0\n3,4,1.5\n", "row 2: label 1.5 is not a class index");
    expect_err("1,2,0\n3,4\n", "line 2");
    let missing = data::load(&Source::csv(tmp("absent.csv"))).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));

    // NPY: features f64 [3, 2, 2], labels i64 [3].
    let write_npy = |name: &str, header: &str, body: &[u8]| {
        let mut h = format!(
            "{{'descr': '{header}', 'fortran_order': False, 'shape': ({}), }}",
            if header == "<f8" { "3, 2, 2" } else { "3," }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h.as_bytes());
        bytes.extend(body);
        std::fs::write(tmp(name), bytes).unwrap();
    };
    let feats: Vec<u8> = (0..12)
        .flat_map(|i| (i as f64 * 0.5).to_le_bytes())
        .collect();
    let labs: Vec<u8> = [2i64, 0, 1].iter().flat_map(|l| l.to_le_bytes()).collect();
    write_npy("x.npy", "<f8", &feats);
    write_npy("y.npy", "<i8", &labs);
    let npy = data::load(&Source {
        format: None,
        labels: Some(tmp("y.npy")),
        ..Source::csv(tmp("x.npy"))
    })
    .unwrap();
    assert_eq!(
        (npy.dim, npy.labels.clone(), npy.features[5]),
        (4, vec![2.0, 0.0, 1.0], 2.5)
    );

    // IDX: u8 images [2, 2, 3], u8 labels [2]; gzipped labels.
    let mut images = vec![0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
    images.extend(1..=12u8);
    std::fs::write(tmp("images-idx3-ubyte"), &images).unwrap();
    let labels = [0u8, 0, 0x08, 1, 0, 0, 0, 2, 7, 3];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &labels).unwrap();
    std::fs::write(tmp("labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let idx = data::load(&Source {
        format: None,
        labels: Some(tmp("labels-idx1-ubyte.gz")),
        ..Source::csv(tmp("images-idx3-ubyte"))
    })
    .unwrap();
    assert_eq!(
        (idx.dim, idx.labels.clone(), idx.features[11]),
        (6, vec![7.0, 3.0], 12.0)
    );
    std::fs::write(tmp("short-idx3-ubyte"), &images[..20]).unwrap();
    let err = data::load(&Source {
        format: None,
        labels: Some(tmp("labels-idx1-ubyte.gz")),
        ..Source::csv(tmp("short-idx3-ubyte"))
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("needs 12 bytes of data, found 4"),
        "{err}"
    );

    // A label past the network's outputs.
    let err = d.check_labels(2).unwrap_err().to_string();
    assert!(
        err.contains("row 3: label 2 is out of range for 2 classes"),
        "{err}"
    );
}
