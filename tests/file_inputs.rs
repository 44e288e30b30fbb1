//! Malformed user files: every reader (CSV, NPY, IDX, safetensors checkpoints) returns a
//! result for truncated, bit-flipped, oversized-header, wrong-dtype, wrong-shape, non-finite,
//! empty and missing files, and never panics. A panic anywhere fails the test; the errors
//! checked by name are the ones a user would meet first. Only the last test needs a GPU: the
//! values a checkpoint hands to training and evaluation.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use percept::Error;
use percept::checkpoint::load_checkpoint;
use percept::data::{self, Dataset, Format, LabelColumn, Source};
use percept::model::{Model, ModelConfig};
use percept::nn::{MlpConfig, Optimizer, OptimizerConfig};
use percept::train::{self, Part};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, TensorView};

/// A directory of one test's own, removed when the test ends (passing or not).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("percept-file-inputs-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        // Unlinked first: ext4 flushes a file truncated and rewritten in place on close, which
        // made thousands of rewrites take seconds.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Every prefix of `bytes` (every length up to 600, then about 400 evenly spaced ones), and
/// 300 copies with one to three bytes replaced at seeded random positions, each handed to
/// `check`, which must not panic.
fn corruptions(bytes: &[u8], seed: u64, mut check: impl FnMut(&[u8])) {
    let step = (bytes.len() / 400).max(1);
    for len in (0..bytes.len()).filter(|&l| l < 600 || l % step == 0) {
        check(&bytes[..len]);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..300 {
        let mut bad = bytes.to_vec();
        for _ in 0..rng.random_range(1..=3) {
            let at = rng.random_range(0..bad.len());
            bad[at] = match rng.random_range(0..4) {
                0 => bad[at] ^ (1 << rng.random_range(0..8)),
                1 => 0xff,
                2 => 0,
                _ => rng.random(),
            };
        }
        check(&bad);
    }
}

/// Loads `features` (and `labels`, for NPY and IDX) as `format`; a panic fails the test.
fn load(format: Format, features: &Path, labels: Option<&Path>) -> percept::Result<data::Dataset> {
    data::load(&Source {
        format: Some(format),
        labels: labels.map(Path::to_path_buf),
        ..Source::csv(features)
    })
}

fn err_text(result: percept::Result<impl std::fmt::Debug>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn csv_never_panics() {
    let dir = Scratch::new("csv");
    let text = "1.5,2,-3,0\n4,5e-1,6,1\n7,8,9,2\n-1,0,1,1\n";
    let csv = text.as_bytes();
    let good = load(Format::Csv, &dir.write("good.csv", csv), None).unwrap();
    assert_eq!((good.len(), good.dim, good.classes()), (4, 3, 3));
    corruptions(csv, 1, |bytes| {
        let _ = load(Format::Csv, &dir.write("bad.csv", bytes), None);
    });
    // Compressed: the decompressor sees the corruptions, then the parser what it let through.
    let gz = gzip(csv);
    corruptions(&gz, 2, |bytes| {
        let _ = load(Format::Csv, &dir.write("bad.csv.gz", bytes), None);
    });
    // With a header and a named label column.
    let headed = format!("a,b,c,label\n{text}");
    corruptions(headed.as_bytes(), 3, |bytes| {
        let _ = data::load(&Source {
            header: true,
            label_column: Some(LabelColumn::Name("label".into())),
            ..Source::csv(dir.write("bad-header.csv", bytes))
        });
    });

    let expect = |name: &str, text: &[u8], needle: &str| {
        let err = err_text(load(Format::Csv, &dir.write(name, text), None));
        assert!(err.contains(needle), "{name}: {err}");
    };
    expect("empty.csv", b"", "no rows");
    expect("blank.csv", b"\n\n", "no rows");
    expect(
        "one-column.csv",
        b"1\n2\n",
        "label column 0 with only 1 columns",
    );
    expect(
        "nan.csv",
        b"1,2,0\nnan,2,1\n",
        "row 2, feature 1: non-finite value NaN",
    );
    expect(
        "inf-label.csv",
        b"1,2,0\n1,2,inf\n",
        "row 2: label inf is not a class index",
    );
    expect(
        "near-label.csv",
        b"1,2,0\n1,2,1.00000001\n",
        "near-label.csv: row 2: label 1.00000001 is not a class index",
    );
    expect(
        "big-label.csv",
        b"1,2,0\n1,2,16777216\n",
        "row 2: label 16777216 is not a class index (a non-negative integer below 16777216)",
    );
    expect("binary.csv", &[0xff, 0xfe, b',', b'1', b'\n'], "line 1");
    // Line numbers count the blank lines the parser skips, and the header.
    expect(
        "blank-line.csv",
        b"1,2,0\n\n3,x,1\n",
        "line 3, column 2: `x` is not a number",
    );
    expect(
        "blank-short.csv",
        b"\n1,2,0\n\r\n\n1,2\n",
        "line 5: 2 columns, earlier lines have 3",
    );
    expect(
        "blank-binary.csv",
        b"1,2,0\n\n1,\xff,0\n",
        "line 3, column 2: not UTF-8 text",
    );
    let headed = data::load(&Source {
        header: true,
        ..Source::csv(dir.write("blank-header.csv", b"a,b,label\n\n1,2,0\n\n1,y,0\n"))
    });
    let err = err_text(headed);
    assert!(err.contains("line 5, column 2: `y`"), "{err}");
    expect("empty.csv.gz", b"", "not valid gzip");
    expect("not-gzip.csv.gz", b"1,2,0\n", "not valid gzip");
    let header_only = data::load(&Source {
        header: true,
        ..Source::csv(dir.write("header-only.csv", b"a,b,label\n"))
    });
    assert!(err_text(header_only).contains("no rows"));
    let missing = load(Format::Csv, &dir.path("absent.csv"), None).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    let directory = data::load(&Source::csv(&dir.0));
    assert!(err_text(directory).contains("is a directory"));
    let labels = dir.write("labels.csv", b"0\n");
    let with_labels = load(Format::Csv, &dir.write("x.csv", b"1,2,0\n"), Some(&labels));
    assert!(err_text(with_labels).contains("--label-column"));
}

/// `--header` and `--label-column` read CSV files only; with NPY or IDX data they are refused,
/// not ignored (as `--labels` is refused with a CSV).
#[test]
fn csv_flags_are_refused_for_npy_and_idx() {
    let dir = Scratch::new("csv-flags");
    let features: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let x = dir.write("x.npy", &npy("<f4", "4, 3", &features));
    let y = dir.write("y.npy", &npy("|u1", "4,", &[0, 1, 2, 1]));
    let images = dir.write("images-idx3-ubyte", &idx(0x08, &[4, 3], &[0; 12]));
    let labels = dir.write("labels-idx1-ubyte", &idx(0x08, &[4], &[0, 1, 2, 1]));
    for (features, labels) in [(&x, &y), (&images, &labels)] {
        let source = Source {
            format: None,
            labels: Some(labels.clone()),
            ..Source::csv(features)
        };
        data::load(&source).unwrap();
        let header = err_text(data::load(&Source {
            header: true,
            ..source.clone()
        }));
        assert!(
            header.starts_with(&features.display().to_string())
                && header.contains("--header applies to CSV files only"),
            "{header}"
        );
        for column in [LabelColumn::Index(0), LabelColumn::Name("label".into())] {
            let err = err_text(data::load(&Source {
                label_column: Some(column),
                ..source.clone()
            }));
            assert!(
                err.contains("--label-column applies to CSV files only"),
                "{err}"
            );
        }
    }
}

/// A version-1 `.npy` file: `descr`, `shape` (the tuple's inside), `body`.
fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    npy_header(&format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}"
    ))
    .into_iter()
    .chain(body.iter().copied())
    .collect()
}

fn npy_header(dict: &str) -> Vec<u8> {
    let mut h = dict.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h.as_bytes());
    bytes
}

#[test]
fn npy_never_panics() {
    let dir = Scratch::new("npy");
    let features: Vec<u8> = (0..12)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let labels: Vec<u8> = [2i64, 0, 1, 1]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    let x = npy("<f4", "4, 3", &features);
    let y = npy("<i8", "4,", &labels);
    let (x_path, y_path) = (dir.write("x.npy", &x), dir.write("y.npy", &y));
    let good = load(Format::Npy, &x_path, Some(&y_path)).unwrap();
    assert_eq!((good.len(), good.dim, good.features[5]), (4, 3, 2.5));
    corruptions(&x, 4, |bytes| {
        let _ = load(Format::Npy, &dir.write("bad-x.npy", bytes), Some(&y_path));
    });
    corruptions(&y, 5, |bytes| {
        let _ = load(Format::Npy, &x_path, Some(&dir.write("bad-y.npy", bytes)));
    });
    let gz = gzip(&x);
    corruptions(&gz, 6, |bytes| {
        let _ = load(
            Format::Npy,
            &dir.write("bad-x.npy.gz", bytes),
            Some(&y_path),
        );
    });

    // Every dtype the reader accepts, in both byte orders, and some it does not.
    for descr in [
        "<f8", ">f8", "<f4", ">f4", "|i1", "<i2", ">i4", "<i8", "|u1", "<u2", ">u4", "<u8", "<f2",
        "<c8", "|b1", "<U3", "|S4", "|O", "<M8[s]", "<f16",
    ] {
        let item: usize = descr
            .trim_start_matches(['<', '>', '|'])
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(8)
            .min(16);
        let body = vec![1u8; 12 * item];
        let _ = load(
            Format::Npy,
            &dir.write("dtype.npy", &npy(descr, "4, 3", &body)),
            Some(&y_path),
        );
        let _ = load(
            Format::Npy,
            &x_path,
            Some(&dir.write("dtype.npy", &npy(descr, "4,", &body[..4 * item]))),
        );
    }

    let expect = |name: &str, bytes: &[u8], needle: &str| {
        let err = err_text(load(Format::Npy, &dir.write(name, bytes), Some(&y_path)));
        assert!(err.contains(needle), "{name}: {err}");
    };
    // Shapes that claim more elements than there are bytes, or than fit in 64 bits.
    for (i, shape) in [
        "1099511627776, 3",
        "4, 1099511627776",
        "4294967296, 4294967296, 4294967296",
        "0, 4294967296, 4294967296, 4294967296",
        "4294967296, 4294967296, 4294967296, 0",
        "18446744073709551615, 18446744073709551615",
        "18446744073709551616,",
        "-4, 3",
    ]
    .iter()
    .enumerate()
    {
        let result = load(
            Format::Npy,
            &dir.write(&format!("shape{i}.npy"), &npy("<f4", shape, &features)),
            Some(&y_path),
        );
        assert!(result.is_err(), "shape ({shape}) was accepted");
    }
    expect(
        "overflow.npy",
        &npy("<f4", "4294967296, 4294967296, 4294967296", &features),
        "shape (4294967296, 4294967296, 4294967296) claims more elements than fit in memory",
    );
    expect(
        "complex.npy",
        &npy("<c8", "4, 3", &[0; 96]),
        "is not a real number type",
    );
    expect(
        "scalar.npy",
        &npy("<f4", "", &features[..4]),
        "a scalar array",
    );
    expect(
        "short.npy",
        &npy("<f4", "4, 3", &features[..40]),
        "not a valid .npy file",
    );
    expect(
        "fortran.npy",
        &npy_header("{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }"),
        "Fortran-ordered",
    );
    expect(
        "structured.npy",
        &npy_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 3), }"),
        "structured arrays",
    );
    expect("empty.npy", b"", "not a valid .npy file");
    // Bytes past the array are refused, as IDX refuses them (npyz reads what the shape claims).
    let long_body = [&features[..], &[0; 4]].concat();
    expect(
        "long-body.npy",
        &npy("<f4", "4, 3", &long_body),
        "long-body.npy: not a valid .npy file: shape [4, 3] of <f4 needs 48 bytes of data, \
         found 52",
    );
    expect(
        "long-body-f8.npy",
        &npy("<f8", "4, 3", &[0; 100]),
        "needs 96 bytes of data, found 100",
    );
    expect(
        "zero-rows.npy",
        &npy("<f4", "0, 3", &[]),
        "labels have shape",
    );
    // A header length past the end of the file (v1: u16; v2: u32, up to 4 GiB).
    let mut long = x.clone();
    long[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
    expect(
        "long-header.npy",
        &long,
        "the header claims 65535 bytes, past the end of the 176-byte file",
    );
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend(u32::MAX.to_le_bytes());
    v2.extend(&x[10..]);
    expect("huge-header.npy", &v2, "the header claims 4294967295 bytes");
    // Deep nesting in the header's Python literal.
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    expect("deep.npy", &npy_header(&deep), "not a valid .npy file");
    // Non-finite features, and labels that are not class indices.
    let mut nan = features.clone();
    nan[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
    expect(
        "nan.npy",
        &npy("<f4", "4, 3", &nan),
        "row 2, feature 3: non-finite value NaN",
    );
    let half: Vec<u8> = [0.5f64, 0.0, 1.0, 1.0]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    let err = err_text(load(
        Format::Npy,
        &x_path,
        Some(&dir.write("half.npy", &npy("<f8", "4,", &half))),
    ));
    assert!(
        err.contains("row 1: label 0.5 is not a class index"),
        "{err}"
    );
    // Labels are checked in their own type: these round to whole numbers in f32.
    for (i, bad) in [1.000_000_01f64, -1e-50, 1e-50, 16_777_216.000_000_1]
        .into_iter()
        .enumerate()
    {
        let y: Vec<u8> = [2.0, 0.0, bad, 1.0]
            .iter()
            .flat_map(|l: &f64| l.to_le_bytes())
            .collect();
        let path = dir.write(&format!("near{i}.npy"), &npy("<f8", "4,", &y));
        let err = err_text(load(Format::Npy, &x_path, Some(&path)));
        assert!(
            err.contains(&format!(
                "near{i}.npy: row 3: label {bad} is not a class index"
            )),
            "{bad}: {err}"
        );
    }
    let big: Vec<u8> = [2i64, 0, (1 << 53) + 1, 1]
        .iter()
        .flat_map(|l| l.to_le_bytes())
        .collect();
    let err = err_text(load(
        Format::Npy,
        &x_path,
        Some(&dir.write("big.npy", &npy("<i8", "4,", &big))),
    ));
    assert!(
        err.contains("big.npy: row 3: label 9007199254740993 is not a class index"),
        "{err}"
    );
    let err = err_text(load(
        Format::Npy,
        &x_path,
        Some(&dir.write("y2.npy", &npy("<i8", "2, 2", &labels))),
    ));
    assert!(
        err.contains("labels have shape [2, 2], the features [4, 3]"),
        "{err}"
    );
    let missing = load(Format::Npy, &x_path, Some(&dir.path("absent.npy"))).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    let no_labels = err_text(load(Format::Npy, &x_path, None));
    assert!(
        no_labels.contains("need a labels file (--labels)"),
        "{no_labels}"
    );
}

/// An IDX file of element type `kind` and `shape`.
fn idx(kind: u8, shape: &[u32], body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, kind, shape.len() as u8];
    for d in shape {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(body);
    bytes
}

#[test]
fn idx_never_panics() {
    let dir = Scratch::new("idx");
    let images = idx(0x08, &[4, 2, 3], &(0..24).collect::<Vec<u8>>());
    let labels = idx(0x08, &[4], &[3, 0, 1, 2]);
    let (x_path, y_path) = (
        dir.write("images-idx3-ubyte", &images),
        dir.write("labels-idx1-ubyte", &labels),
    );
    let good = load(Format::Idx, &x_path, Some(&y_path)).unwrap();
    assert_eq!((good.len(), good.dim, good.features[23]), (4, 6, 23.0));
    corruptions(&images, 7, |bytes| {
        let _ = load(
            Format::Idx,
            &dir.write("bad-idx3-ubyte", bytes),
            Some(&y_path),
        );
    });
    corruptions(&labels, 8, |bytes| {
        let _ = load(
            Format::Idx,
            &x_path,
            Some(&dir.write("bad-idx1-ubyte", bytes)),
        );
    });
    corruptions(&gzip(&images), 9, |bytes| {
        let _ = load(
            Format::Idx,
            &dir.write("bad-idx3-ubyte.gz", bytes),
            Some(&y_path),
        );
    });
    // Every element type, with the size its body needs and with a byte short.
    for (kind, size) in [
        (0x08, 1),
        (0x09, 1),
        (0x0B, 2),
        (0x0C, 4),
        (0x0D, 4),
        (0x0E, 8),
    ] {
        let body = vec![0x3f; 24 * size];
        let full = idx(kind, &[4, 2, 3], &body);
        assert!(
            load(
                Format::Idx,
                &dir.write("kind-idx3-ubyte", &full),
                Some(&y_path)
            )
            .is_ok()
        );
        let _ = load(
            Format::Idx,
            &dir.write("kind-idx3-ubyte", &full[..full.len() - 1]),
            Some(&y_path),
        );
    }

    let expect = |name: &str, bytes: &[u8], needle: &str| {
        let err = err_text(load(Format::Idx, &dir.write(name, bytes), Some(&y_path)));
        assert!(err.contains(needle), "{name}: {err}");
    };
    let big = u32::MAX;
    expect(
        "huge-idx3-ubyte",
        &idx(0x08, &[big, big, big], &[0; 24]),
        "claims more elements than fit in memory",
    );
    expect(
        "huge-f64-idx2-ubyte",
        &idx(0x0E, &[big, big], &[0; 24]),
        "claims more elements than fit in memory",
    );
    expect(
        "zero-idx4-ubyte",
        &idx(0x08, &[0, big, big, big], &[]),
        "claims more elements than fit in memory",
    );
    expect(
        "zero-last-idx4-ubyte",
        &idx(0x08, &[big, big, big, 0], &[]),
        "claims more elements than fit in memory",
    );
    expect(
        "long-idx2-ubyte",
        &idx(0x08, &[1 << 30, 16], &[0; 24]),
        "needs 17179869184 bytes of data, found 24",
    );
    expect(
        "empty-idx-ubyte",
        b"",
        "the magic number must start with two zero bytes",
    );
    expect(
        "kind-idx-ubyte",
        &idx(0x0A, &[4, 6], &[0; 24]),
        "unknown element type 0x0a",
    );
    expect("rank0-idx-ubyte", &idx(0x08, &[], &[0; 24]), "rank 0");
    expect(
        "rank255-idx-ubyte",
        &[0, 0, 0x08, 255, 0, 0, 0, 1],
        "rank 255 with a 8-byte file",
    );
    // No rows, and rows of 2^64 - 2^33 + 1 bytes: the reader's count and the row width fit.
    let err = err_text(load(
        Format::Idx,
        &dir.write("wide-idx3-ubyte", &idx(0x08, &[0, big, big], &[])),
        Some(&dir.write("none-idx1-ubyte", &idx(0x08, &[0], &[]))),
    ));
    assert!(err.contains("no rows"), "{err}");
    expect(
        "zero-rows-idx2-ubyte",
        &idx(0x08, &[0, 6], &[]),
        "labels have shape",
    );
    let nan: Vec<u8> = (0..24)
        .flat_map(|i| if i == 7 { f32::NAN } else { 1.0 }.to_be_bytes())
        .collect();
    expect(
        "nan-idx3-ubyte",
        &idx(0x0D, &[4, 2, 3], &nan),
        "row 2, feature 2: non-finite value NaN",
    );
    let negative = idx(0x09, &[4], &[0, 0xff, 1, 2]);
    let err = err_text(load(
        Format::Idx,
        &x_path,
        Some(&dir.write("neg-idx1-ubyte", &negative)),
    ));
    assert!(
        err.contains("row 2: label -1 is not a class index"),
        "{err}"
    );
    let near: Vec<u8> = [0.0f64, 1.000_000_01, 1.0, 2.0]
        .iter()
        .flat_map(|l| l.to_be_bytes())
        .collect();
    let err = err_text(load(
        Format::Idx,
        &x_path,
        Some(&dir.write("near-idx1-ubyte", &idx(0x0E, &[4], &near))),
    ));
    assert!(
        err.contains("near-idx1-ubyte: row 2: label 1.00000001 is not a class index"),
        "{err}"
    );
    let missing = load(Format::Idx, &dir.path("absent-idx3-ubyte"), Some(&y_path)).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Name, dtype, shape and bytes of each tensor of a checkpoint.
type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

/// A checkpoint of an MLP [3, 4, 2] with Adam state and a standardisation, as `save_checkpoint`
/// writes it, with `edit` applied to its metadata and tensors first.
fn checkpoint(edit: impl FnOnce(&mut HashMap<String, String>, &mut Tensors)) -> Vec<u8> {
    let config = ModelConfig::Mlp(MlpConfig::new(&[3, 4, 2]));
    let mut meta = HashMap::from([
        ("format".to_string(), "percept.mlp.v1".to_string()),
        ("model".to_string(), serde_json::to_string(&config).unwrap()),
        (
            "optimizer".to_string(),
            serde_json::to_string(&OptimizerConfig::default()).unwrap(),
        ),
        ("optimizer_step".to_string(), "7".to_string()),
        ("epoch".to_string(), "1".to_string()),
    ]);
    let layout = [
        ("0.weight", vec![4, 3]),
        ("0.bias", vec![4]),
        ("2.weight", vec![2, 4]),
        ("2.bias", vec![2]),
    ];
    let mut tensors = Vec::new();
    for prefix in ["", "optimizer.exp_avg.", "optimizer.exp_avg_sq."] {
        for (name, shape) in &layout {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
            tensors.push((
                format!("{prefix}{name}"),
                Dtype::F32,
                shape.clone(),
                f32_bytes(&values),
            ));
        }
    }
    tensors.push((
        "data.mean".into(),
        Dtype::F32,
        vec![3],
        f32_bytes(&[0.5, 1.0, -1.0]),
    ));
    tensors.push((
        "data.std".into(),
        Dtype::F32,
        vec![3],
        f32_bytes(&[1.0, 2.0, 0.5]),
    ));
    edit(&mut meta, &mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// A safetensors file with `header` (JSON) and `data` written by hand.
fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn checkpoints_never_panic() {
    let dir = Scratch::new("checkpoints");
    let good = checkpoint(|_, _| {});
    let loaded = load_checkpoint(&dir.write("good.safetensors", &good)).unwrap();
    assert_eq!(loaded.params.len(), 4);
    assert_eq!(loaded.optimizer.as_ref().map(|o| o.step), Some(7));
    assert_eq!(loaded.extra["data.std"], vec![1.0, 2.0, 0.5]);
    corruptions(&good, 10, |bytes| {
        let _ = load_checkpoint(&dir.write("bad.safetensors", bytes));
    });

    let expect = |name: &str, bytes: &[u8], needle: &str| {
        let err = err_text(load_checkpoint(&dir.write(name, bytes)));
        assert!(err.contains(needle), "{name}: {err}");
    };
    expect("empty.safetensors", b"", "not a safetensors file");
    // Header lengths past the file, up to 2^63 and 2^64 - 1.
    for n in [1u64 << 20, 1 << 40, 1 << 63, u64::MAX] {
        let mut bytes = good.clone();
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        expect("long-header.safetensors", &bytes, "not a safetensors file");
    }
    // Tensors whose data, all together, end near 2^64 bytes: past the file, and past usize.
    let size = (1u64 << 61) - 1;
    let header = (0..8)
        .map(|i| {
            format!(
                "\"t{i}\": {{\"dtype\": \"U8\", \"shape\": [{size}], \"data_offsets\": [{}, {}]}}",
                i * size,
                (i + 1) * size
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let header = format!("{{\"__metadata__\": {{\"format\": \"percept.mlp.v1\"}}, {header}}}");
    expect(
        "huge-offsets.safetensors",
        &raw_safetensors(&header, &[0; 16]),
        "tensor `t0` claims data up to byte 2305843009213693951, but the file holds 16 bytes",
    );
    let header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 16]}}";
    expect(
        "overflow.safetensors",
        &raw_safetensors(header, &[0; 16]),
        "not a safetensors file",
    );
    let header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [1099511627776], \"data_offsets\": [0, 4398046511104]}}";
    expect(
        "long-tensor.safetensors",
        &raw_safetensors(header, &[0; 16]),
        "tensor `a` claims data",
    );

    // Well-formed safetensors that are not the checkpoint the metadata describes.
    expect(
        "wrong-format.safetensors",
        &checkpoint(|m, _| {
            m.insert("format".into(), "other".into());
        }),
        "not a percept checkpoint",
    );
    expect(
        "no-model.safetensors",
        &checkpoint(|m, _| {
            m.remove("model");
        }),
        "metadata lacks `model`",
    );
    expect(
        "bad-model.safetensors",
        &checkpoint(|m, _| {
            m.insert("model".into(), "{\"widths\": [3, -4]}".into());
        }),
        "malformed model metadata",
    );
    expect(
        "huge-model.safetensors",
        &checkpoint(|m, _| {
            let config = ModelConfig::Mlp(MlpConfig::new(&[1 << 40, 1 << 40, usize::MAX]));
            m.insert("model".into(), serde_json::to_string(&config).unwrap());
        }),
        "tensor `0.weight` has shape [4, 3], expected [1099511627776, 1099511627776]",
    );
    expect(
        "zero-width.safetensors",
        &checkpoint(|m, _| {
            let config = ModelConfig::Mlp(MlpConfig::new(&[3, 0, 2]));
            m.insert("model".into(), serde_json::to_string(&config).unwrap());
        }),
        "widths must list at least the input and output sizes",
    );
    expect(
        "missing.safetensors",
        &checkpoint(|_, t| t.retain(|(n, ..)| n != "2.bias")),
        "tensor `2.bias` is missing",
    );
    expect(
        "f64.safetensors",
        &checkpoint(|_, t| {
            let (_, dtype, _, data) = &mut t[1];
            *dtype = Dtype::F64;
            data.extend([0; 16]);
        }),
        "tensor `0.bias` has dtype F64, expected F32",
    );
    expect(
        "shape.safetensors",
        &checkpoint(|_, t| t[0].2 = vec![3, 4]),
        "tensor `0.weight` has shape [3, 4], expected [4, 3]",
    );
    expect(
        "no-step.safetensors",
        &checkpoint(|m, _| {
            m.remove("optimizer_step");
        }),
        "metadata lacks `optimizer_step`",
    );
    expect(
        "step.safetensors",
        &checkpoint(|m, _| {
            m.insert("optimizer_step".into(), "-1".into());
        }),
        "malformed optimizer_step",
    );
    expect(
        "extra-2d.safetensors",
        &checkpoint(|_, t| t.push(("extra".into(), Dtype::F32, vec![2, 2], f32_bytes(&[0.0; 4])))),
        "tensor `extra` has shape [2, 2]",
    );
    expect(
        "extra-u8.safetensors",
        &checkpoint(|_, t| t.push(("extra".into(), Dtype::U8, vec![3], vec![1, 2, 3]))),
        "tensor `extra` has dtype U8, expected F32",
    );
    // Non-finite parameters load (training reports them); they must not panic either.
    let nan = checkpoint(|_, t| t[0].3[..4].copy_from_slice(&f32::NAN.to_le_bytes()));
    assert!(
        load_checkpoint(&dir.write("nan.safetensors", &nan))
            .unwrap()
            .params[0][0]
            .is_nan()
    );
    let missing = load_checkpoint(&dir.path("absent.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

#[test]
fn checkpoint_values_used_on_the_gpu_are_checked() {
    let dir = Scratch::new("gpu");
    let gpu = common::unchecked();
    let data = Dataset::new(vec![0.5; 6], vec![0.0, 1.0], 3, "two rows").unwrap();
    let evaluate = |name: &str, bytes: &[u8]| {
        train::evaluate_checkpoint(gpu, &dir.write(name, bytes), &data, Part::All)
            .map(|e| e.accuracy)
    };
    assert!(evaluate("eval.safetensors", &checkpoint(|_, _| {})).is_ok());
    // A standardisation of two features for a model of three inputs indexed past its end.
    let short = checkpoint(|_, t| {
        let mean = t.iter_mut().find(|t| t.0 == "data.mean").unwrap();
        mean.2 = vec![2];
        mean.3.truncate(8);
    });
    let err = err_text(evaluate("short-mean.safetensors", &short));
    assert!(
        err.contains("2 means and 3 standard deviations, the model takes 3 inputs"),
        "{err}"
    );
    let nan = checkpoint(|_, t| {
        let std = t.iter_mut().find(|t| t.0 == "data.std").unwrap();
        std.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let err = err_text(evaluate("nan-std.safetensors", &nan));
    assert!(
        err.contains("non-finite value (NaN or infinity) at index 4"),
        "{err}"
    );
    let zero = checkpoint(|_, t| {
        let std = t.iter_mut().find(|t| t.0 == "data.std").unwrap();
        std.3[4..8].copy_from_slice(&0.0f32.to_le_bytes());
    });
    let err = err_text(evaluate("zero-std.safetensors", &zero));
    assert!(
        err.contains("deviation 1 is 0; deviations must be positive"),
        "{err}"
    );

    // The largest step count a file can hold: the next step has no number.
    let last = checkpoint(|m, _| {
        m.insert("optimizer_step".into(), u64::MAX.to_string());
    });
    let saved = load_checkpoint(&dir.write("last-step.safetensors", &last)).unwrap();
    let model = Model::from_checkpoint(gpu, &saved).unwrap();
    let mut optimizer =
        Optimizer::from_checkpoint(model.params(), saved.optimizer.as_ref().unwrap()).unwrap();
    assert!(optimizer.next_lr().is_finite());
    let err = err_text(optimizer.step(model.params()));
    assert!(err.contains("the step count is at its largest"), "{err}");
}
