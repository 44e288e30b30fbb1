//! Parameters and their gradients in one flat GPU buffer each, with a view per tensor: the
//! optimizer is one dispatch over everything, and a checkpoint one read.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;

/// One named parameter tensor inside the flat buffers.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    /// Name as PyTorch's `state_dict` would give it, e.g. `0.weight`.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// First element in the flat buffers.
    pub offset: usize,
}

impl ParamInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Flat parameter and gradient buffers and the tensors laid out in them.
///
/// Each tensor starts at a multiple of the adapter's storage-offset alignment, so its view binds
/// directly; the gaps are zero and stay zero (their gradients are zero).
pub struct Parameters {
    infos: Vec<ParamInfo>,
    weights: Tensor,
    grads: Tensor,
    weight_views: Vec<Tensor>,
    grad_views: Vec<Tensor>,
}

impl Parameters {
    /// Checks that `tensors` (name, shape) fit one flat buffer of this adapter, and returns
    /// each one's offset and the flat length: call it before drawing initial values, which
    /// would otherwise fill host memory first.
    pub(crate) fn layout(
        gpu: &Gpu,
        tensors: &[(String, Vec<usize>)],
    ) -> Result<(Vec<usize>, usize)> {
        let align = (gpu.limits().min_storage_buffer_offset_alignment as usize / 4).max(1);
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut offset = 0usize;
        let overflow = || {
            Error::invalid(
                "Parameters::new",
                format!(
                    "the parameter count overflows: {:?}",
                    tensors.iter().map(|(_, s)| s).collect::<Vec<_>>()
                ),
            )
        };
        for (_, shape) in tensors {
            offsets.push(offset);
            let len = shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .ok_or_else(overflow)?;
            offset = offset
                .checked_add(len)
                .and_then(|o| o.checked_next_multiple_of(align))
                .ok_or_else(overflow)?;
        }
        let bytes = (offset.max(1) as u64).checked_mul(4).ok_or_else(overflow)?;
        gpu.check_buffer_size(&format!("{offset} parameters (one flat f32 buffer)"), bytes)?;
        Ok((offsets, offset))
    }

    /// Lays out `tensors` (name, shape) and uploads their initial `values`, one `Vec` each.
    pub fn new(gpu: &Gpu, tensors: Vec<(String, Vec<usize>)>, values: &[Vec<f32>]) -> Result<Self> {
        let (offsets, offset) = Parameters::layout(gpu, &tensors)?;
        let infos: Vec<ParamInfo> = tensors
            .into_iter()
            .zip(offsets)
            .map(|((name, shape), offset)| ParamInfo {
                name,
                shape,
                offset,
            })
            .collect();
        if values.len() != infos.len() {
            return Err(Error::invalid(
                "Parameters::new",
                format!(
                    "{} tensors but {} initial values",
                    infos.len(),
                    values.len()
                ),
            ));
        }
        let mut flat = vec![0.0f32; offset.max(1)];
        for (info, v) in infos.iter().zip(values) {
            if v.len() != info.len() {
                return Err(Error::shape(
                    "Parameters::new",
                    format!(
                        "{} has shape {:?} but {} initial values",
                        info.name,
                        info.shape,
                        v.len()
                    ),
                ));
            }
            flat[info.offset..info.offset + v.len()].copy_from_slice(v);
        }
        let weights = Tensor::from_slice(gpu, &flat, &[flat.len()])?;
        let grads = Tensor::zeros(gpu, &[flat.len()])?;
        let views = |t: &Tensor| -> Result<Vec<Tensor>> {
            infos.iter().map(|i| t.view(i.offset, &i.shape)).collect()
        };
        Ok(Parameters {
            weight_views: views(&weights)?,
            grad_views: views(&grads)?,
            infos,
            weights,
            grads,
        })
    }

    /// The tensors' names, shapes and offsets, in order.
    pub fn infos(&self) -> &[ParamInfo] {
        &self.infos
    }

    /// The flat weight buffer.
    pub fn weights(&self) -> &Tensor {
        &self.weights
    }

    /// The flat gradient buffer.
    pub fn grads(&self) -> &Tensor {
        &self.grads
    }

    /// The weight view of tensor `i`, an index into [`Parameters::infos`]; like a slice's
    /// index, one past them panics.
    pub fn weight(&self, i: usize) -> &Tensor {
        &self.weight_views[i]
    }

    /// The gradient view of tensor `i`, an index into [`Parameters::infos`] (one past them
    /// panics).
    pub fn grad(&self, i: usize) -> &Tensor {
        &self.grad_views[i]
    }

    /// Downloads the flat weights and splits them per tensor.
    pub fn download(&self) -> Result<Vec<Vec<f32>>> {
        split(&self.infos, &self.weights.to_vec()?)
    }

    /// Downloads the flat gradients and splits them per tensor.
    pub fn download_grads(&self) -> Result<Vec<Vec<f32>>> {
        split(&self.infos, &self.grads.to_vec()?)
    }

    /// Uploads new values for every tensor (one `Vec` each, in order).
    pub fn upload(&self, values: &[Vec<f32>]) -> Result<()> {
        self.weights.write(&self.flatten(values)?)
    }

    /// Lays out per-tensor values (one `Vec` each) in the flat order, gaps zero.
    pub fn flatten(&self, values: &[Vec<f32>]) -> Result<Vec<f32>> {
        if values.len() != self.infos.len() {
            return Err(Error::invalid(
                "Parameters::flatten",
                format!("{} tensors but {} values", self.infos.len(), values.len()),
            ));
        }
        let mut flat = vec![0.0f32; self.weights.len()];
        for (info, v) in self.infos.iter().zip(values) {
            if v.len() != info.len() {
                return Err(Error::shape(
                    "Parameters::flatten",
                    format!(
                        "{} has shape {:?} but {} values",
                        info.name,
                        info.shape,
                        v.len()
                    ),
                ));
            }
            flat[info.offset..info.offset + v.len()].copy_from_slice(v);
        }
        Ok(flat)
    }
}

/// Splits a flat buffer into per-tensor vectors.
pub(crate) fn split(infos: &[ParamInfo], flat: &[f32]) -> Result<Vec<Vec<f32>>> {
    Ok(infos
        .iter()
        .map(|i| flat[i.offset..i.offset + i.len()].to_vec())
        .collect())
}
