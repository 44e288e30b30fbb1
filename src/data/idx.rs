//! IDX files (the MNIST format): a magic number naming the element type and rank, big-endian
//! dimensions, then big-endian elements.

use std::path::Path;

use super::{read_maybe_gz, to_f32};
use crate::error::{Error, Result};

/// Reads an IDX array as (values, shape); `labels` checks each value is a class index before it
/// becomes f32.
pub(super) fn read(path: &Path, labels: bool) -> Result<(Vec<f32>, Vec<usize>)> {
    let name = path.display().to_string();
    let bytes = read_maybe_gz(path)?;
    let bad = |detail: String| Error::data(&name, format!("not a valid IDX file: {detail}"));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("the magic number must start with two zero bytes".into()));
    }
    let (kind, rank) = (bytes[2], bytes[3] as usize);
    let size: usize = match kind {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        other => return Err(bad(format!("unknown element type 0x{other:02x}"))),
    };
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(format!("rank {rank} with a {}-byte file", bytes.len())));
    }
    let shape: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    // Checked over the non-zero dimensions, so that no product of them (the caller's features
    // per row included) can overflow, even in a file with no rows.
    let count = shape
        .iter()
        .filter(|&&d| d > 0)
        .try_fold(size, |n, &d| n.checked_mul(d))
        .map(|_| shape.iter().product::<usize>())
        .ok_or_else(|| {
            bad(format!(
                "shape {shape:?} claims more elements than fit in memory"
            ))
        })?;
    let body = &bytes[header..];
    if body.len() != count * size {
        return Err(bad(format!(
            "shape {shape:?} needs {} bytes of data, found {}",
            count * size,
            body.len()
        )));
    }
    // Every element type converts to f64 exactly, so labels are checked there, before f32.
    let values = body.chunks(size).map(|c| match kind {
        0x08 => c[0] as f64,
        0x09 => c[0] as i8 as f64,
        0x0B => i16::from_be_bytes([c[0], c[1]]) as f64,
        0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
        _ => f64::from_be_bytes(c.try_into().expect("8 bytes")),
    });
    let values = to_f32(values, labels, &name)?;
    Ok((values, shape))
}
