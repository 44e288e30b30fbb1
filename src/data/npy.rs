//! NumPy `.npy` arrays of any real numeric dtype, read as f32.

use std::path::Path;

use npyz::{DType, NpyFile, TypeChar};

use super::read_maybe_gz;
use crate::error::{Error, Result};

/// Reads an array as (values in C order, shape).
pub(super) fn read(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let name = path.display().to_string();
    let bytes = read_maybe_gz(path)?;
    let bad = |e: std::io::Error| Error::data(&name, format!("not a valid .npy file: {e}"));
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
    macro_rules! as_f32 {
        ($t:ty) => {
            file.into_vec::<$t>()
                .map_err(bad)?
                .into_iter()
                .map(|v| v as f32)
                .collect()
        };
    }
    let values: Vec<f32> = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 4) => file.into_vec::<f32>().map_err(bad)?,
        (TypeChar::Float, 8) => as_f32!(f64),
        (TypeChar::Int, 1) => as_f32!(i8),
        (TypeChar::Int, 2) => as_f32!(i16),
        (TypeChar::Int, 4) => as_f32!(i32),
        (TypeChar::Int, 8) => as_f32!(i64),
        (TypeChar::Uint, 1) => as_f32!(u8),
        (TypeChar::Uint, 2) => as_f32!(u16),
        (TypeChar::Uint, 4) => as_f32!(u32),
        (TypeChar::Uint, 8) => as_f32!(u64),
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
