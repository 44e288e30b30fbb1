//! NumPy `.npy` arrays of any real numeric dtype, read as f32.

use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};
use py_literal::Value;

use super::{read_maybe_gz, to_f32};
use crate::error::{Error, Result};

/// Reads an array as (values in C order, shape); `labels` checks each value is a class index in
/// the file's own element type, before it becomes f32.
pub(super) fn read(path: &Path, labels: bool) -> Result<(Vec<f32>, Vec<usize>)> {
    let name = path.display().to_string();
    let bytes = read_maybe_gz(path)?;
    let bad = |e: std::io::Error| Error::data(&name, format!("not a valid .npy file: {e}"));
    check_header(&bytes).map_err(|e| Error::data(&name, format!("not a valid .npy file: {e}")))?;
    let file = NpyFile::new(&bytes[..]).map_err(bad)?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    if file.order() != npyz::Order::C {
        return Err(Error::data(
            &name,
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let DType::Plain(ty) = file.dtype() else {
        return Err(Error::data(
            &name,
            "structured arrays are not supported; save a plain numeric array",
        ));
    };
    // npyz reads as many elements as the shape claims and ignores any bytes after them; the data
    // must be exactly the shape's size, as in IDX.
    let check_size = |item: usize| {
        let found = data_start(&bytes).map_or(0, |start| bytes.len().saturating_sub(start));
        let detail = match shape.iter().try_fold(item, |n, &d| n.checked_mul(d)) {
            None => format!("shape {shape:?} of {ty} claims more bytes than fit in memory"),
            Some(needed) if needed == found => return Ok(()),
            Some(needed) if needed < found => format!(
                "shape {shape:?} of {ty} needs {needed} bytes of data, found {found}: {} bytes \
                 follow the array (save the array alone, with numpy.save)",
                found - needed
            ),
            Some(needed) => format!(
                "shape {shape:?} of {ty} needs {needed} bytes of data, found {found} (truncated?)"
            ),
        };
        Err(Error::data(
            &name,
            format!("not a valid .npy file: {detail}"),
        ))
    };
    macro_rules! convert {
        ($t:ty) => {{
            check_size(std::mem::size_of::<$t>())?;
            to_f32(file.into_vec::<$t>().map_err(bad)?, labels, &name)?
        }};
    }
    let values: Vec<f32> = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 4) => convert!(f32),
        (TypeChar::Float, 8) => convert!(f64),
        (TypeChar::Int, 1) => convert!(i8),
        (TypeChar::Int, 2) => convert!(i16),
        (TypeChar::Int, 4) => convert!(i32),
        (TypeChar::Int, 8) => convert!(i64),
        (TypeChar::Uint, 1) => convert!(u8),
        (TypeChar::Uint, 2) => convert!(u16),
        (TypeChar::Uint, 4) => convert!(u32),
        (TypeChar::Uint, 8) => convert!(u64),
        _ => {
            return Err(Error::data(
                &name,
                format!("dtype {ty} is not a real number type"),
            ));
        }
    };
    if shape.is_empty() {
        return Err(Error::data(&name, "a scalar array; expected rows"));
    }
    Ok((values, shape))
}

/// Where the data of a `.npy` file begins: after the magic, version, header length and header.
fn data_start(bytes: &[u8]) -> Option<usize> {
    let len = |at: usize, width: usize| -> Option<usize> {
        let field = bytes.get(at..at + width)?;
        Some(field.iter().rev().fold(0, |n, &b| n << 8 | b as usize))
    };
    match bytes.get(6)? {
        1 => Some(10 + len(8, 2)?),
        2 | 3 => 12usize.checked_add(len(8, 4)?),
        _ => None,
    }
}

/// Refuses what npyz trusts: a header length past the end of the file (it allocates the length
/// before reading) and a shape whose element count overflows 64 bits (it multiplies unchecked,
/// its strides too, so the non-zero dimensions must fit even in an array with no rows).
/// Anything else malformed is left to npyz to report.
fn check_header(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 12 || !bytes.starts_with(b"\x93NUMPY") {
        return Ok(());
    }
    let (start, len) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        2 | 3 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
        ),
        _ => return Ok(()),
    };
    let Some(text) = bytes.get(start..start + len) else {
        return Err(format!(
            "the header claims {len} bytes, past the end of the {}-byte file (truncated?)",
            bytes.len()
        ));
    };
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let Some(Ok(Value::Dict(entries))) = std::str::from_utf8(text).ok().map(str::parse) else {
        return Ok(());
    };
    for (key, shape) in &entries {
        let (Value::String(key), Value::Tuple(dims) | Value::List(dims)) = (key, shape) else {
            continue;
        };
        let mut nonzero = dims.iter().filter_map(|d| match d {
            Value::Integer(d) => u64::try_from(d).ok().filter(|&d| d > 0),
            _ => None,
        });
        if key == "shape" && nonzero.try_fold(1u64, u64::checked_mul).is_none() {
            return Err(format!(
                "shape {shape} claims more elements than fit in memory"
            ));
        }
    }
    Ok(())
}
