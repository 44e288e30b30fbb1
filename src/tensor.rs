//! Tensors: typed, shaped views over GPU buffers.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, PooledBuffer};

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// Complex number as an interleaved pair of 32-bit floats (re, im).
    C32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::C32 => 8,
        }
    }
}

/// A dense, row-major tensor in GPU memory.
///
/// Clones and reshapes share the buffer. Tensors are immutable to users except through
/// [`Tensor::write`]; operations return new tensors whose buffers come from the device's pool.
///
/// ```
/// use percept::{Gpu, Tensor};
/// let gpu = Gpu::new()?;
/// let x = Tensor::from_slice(&gpu, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
/// assert_eq!(x.shape(), &[2, 3]);
/// assert_eq!(x.reshape(&[3, 2])?.to_vec()?, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// # Ok::<(), percept::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor {
    gpu: Gpu,
    storage: Arc<PooledBuffer>,
    /// Byte offset of the first element in the buffer.
    offset: u64,
    shape: Vec<usize>,
    dtype: DType,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.dtype, self.shape)
    }
}

/// Number of elements of a shape, or `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

impl Tensor {
    /// The bytes a tensor of `shape` needs, or the error creating it would give (an overflowing
    /// shape, a buffer past the adapter's limits): for checking sizes before building host data.
    pub(crate) fn check_size(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<u64> {
        let bytes = element_count(shape)
            .and_then(|count| (count as u64).checked_mul(dtype.size()))
            .ok_or_else(|| Error::invalid("tensor", format!("shape {shape:?} overflows")))?;
        gpu.check_buffer_size(&format!("a tensor of shape {shape:?}"), bytes)?;
        Ok(bytes)
    }

    /// A tensor of `shape` whose contents are unspecified: for outputs that a kernel overwrites.
    pub(crate) fn uninit(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = Tensor::check_size(gpu, shape, dtype)?;
        Ok(Tensor {
            gpu: gpu.clone(),
            storage: Arc::new(gpu.storage_buffer(bytes)?),
            offset: 0,
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// Uploads `data` as an f32 tensor of `shape`.
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::uninit(gpu, shape, DType::F32)?;
        t.write(data)?;
        Ok(t)
    }

    /// Uploads complex values, given as `(re, im)` pairs, as a C32 tensor of `shape`.
    pub fn from_complex(gpu: &Gpu, data: &[[f32; 2]], shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::uninit(gpu, shape, DType::C32)?;
        t.write_bytes(bytemuck::cast_slice(data), data.len())?;
        Ok(t)
    }

    /// An f32 tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::uninit(gpu, shape, DType::F32)?;
        t.write(&vec![0.0; t.len()])?;
        Ok(t)
    }

    /// Overwrites the contents with `data` (f32 tensors), in order with recorded work.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        self.expect_dtype("Tensor::write", DType::F32)?;
        self.write_bytes(bytemuck::cast_slice(data), data.len())
    }

    fn write_bytes(&self, bytes: &[u8], count: usize) -> Result<()> {
        if count != self.len() {
            return Err(Error::shape(
                "tensor upload",
                format!(
                    "{count} values given for shape {:?} ({} elements)",
                    self.shape,
                    self.len()
                ),
            ));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.storage.writes().fetch_add(1, Ordering::Relaxed);
        self.gpu.write(self.storage.buffer(), self.offset, bytes)
    }

    /// Downloads an f32 tensor.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.expect_dtype("Tensor::to_vec", DType::F32)?;
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes()?))
    }

    /// The flat index of the first NaN or infinity of an f32 tensor, by a download: for the
    /// error of a check that found one on the GPU, where the index tells the user where to look.
    pub(crate) fn first_non_finite(&self) -> Result<Option<usize>> {
        Ok(self.to_vec()?.iter().position(|v| !v.is_finite()))
    }

    /// Downloads a C32 tensor as `(re, im)` pairs.
    pub fn to_complex_vec(&self) -> Result<Vec<[f32; 2]>> {
        self.expect_dtype("Tensor::to_complex_vec", DType::C32)?;
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes()?))
    }

    fn read_bytes(&self) -> Result<Vec<u8>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        self.gpu
            .read(self.storage.buffer(), self.offset, self.byte_len())
    }

    /// The device this tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the elements in bytes.
    pub fn byte_len(&self) -> u64 {
        self.len() as u64 * self.dtype.size()
    }

    /// The same elements under another shape with as many elements; shares the buffer.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if element_count(shape) != Some(self.len()) {
            return Err(Error::shape(
                "reshape",
                format!("cannot view shape {:?} as {shape:?}", self.shape),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Rows `range` of the outermost axis. Shares the buffer when the start is aligned to the
    /// adapter's storage-offset alignment, and copies otherwise.
    pub fn narrow(&self, range: Range<usize>) -> Result<Tensor> {
        let rows = self.shape.first().copied().unwrap_or(1);
        if range.start > range.end || range.end > rows {
            return Err(Error::invalid(
                "narrow",
                format!("rows {range:?} of a tensor of shape {:?}", self.shape),
            ));
        }
        let row_bytes = self.byte_len() / rows.max(1) as u64;
        let mut shape = self.shape.clone();
        if shape.is_empty() {
            shape.push(1);
        }
        shape[0] = range.len();
        let offset = self.offset + range.start as u64 * row_bytes;
        let align = self.gpu.limits().min_storage_buffer_offset_alignment as u64;
        if offset.is_multiple_of(align) {
            return Ok(Tensor {
                offset,
                shape,
                ..self.clone()
            });
        }
        let out = Tensor::uninit(&self.gpu, &shape, self.dtype)?;
        let bytes = out.byte_len();
        if bytes > 0 {
            self.gpu.copy(
                self.storage.buffer(),
                offset,
                out.storage.buffer(),
                0,
                bytes,
            );
        }
        Ok(out)
    }

    /// The binding a kernel reads or writes this tensor through: its bytes, rounded up to whole
    /// vec4s so kernels may load four floats at a time.
    pub(crate) fn binding(&self) -> Binding<'_> {
        let buffer = self.storage.buffer();
        // An empty view may start at the buffer's end, where no binding (of at least a byte)
        // fits; kernels touch none of an empty tensor, so it binds the buffer's start instead.
        let offset = if self.is_empty() { 0 } else { self.offset };
        let size = self
            .byte_len()
            .next_multiple_of(16)
            .max(16)
            .min(buffer.size() - offset);
        Binding {
            buffer,
            offset,
            size,
            writes: self.storage.writes(),
        }
    }

    /// Writes recorded into this tensor's buffer so far (by kernels, uploads and copies).
    pub(crate) fn writes(&self) -> u64 {
        self.storage.writes().load(Ordering::Relaxed)
    }

    pub(crate) fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype != dtype {
            return Err(Error::invalid(
                op,
                format!("expects a {dtype:?} tensor, got {:?}", self.dtype),
            ));
        }
        Ok(())
    }

    /// Whether both tensors are on the same device.
    pub(crate) fn same_device(&self, other: &Tensor) -> bool {
        self.gpu.same(&other.gpu)
    }
}

impl Tensor {
    /// A view of `shape` starting `offset` elements into this tensor's buffer: for the
    /// per-parameter views of a flat parameter buffer. The start must be aligned to the adapter's
    /// storage-offset alignment and the view must lie inside this tensor.
    pub(crate) fn view(&self, offset: usize, shape: &[usize]) -> Result<Tensor> {
        let count = element_count(shape)
            .ok_or_else(|| Error::invalid("view", format!("shape {shape:?} overflows")))?;
        let start = self.offset + offset as u64 * self.dtype.size();
        let align = self.gpu.limits().min_storage_buffer_offset_alignment as u64;
        if offset + count > self.len() || !start.is_multiple_of(align) {
            return Err(Error::invalid(
                "view",
                format!(
                    "{shape:?} at element {offset} of a tensor of shape {:?} (offsets must be \
                     multiples of {align} bytes)",
                    self.shape
                ),
            ));
        }
        Ok(Tensor {
            offset: start,
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Records a copy of all of `src` into this tensor starting at element `offset` (same
    /// dtype), in order with the dispatches.
    pub(crate) fn copy_from(&self, src: &Tensor, offset: usize) -> Result<()> {
        if src.dtype != self.dtype || offset + src.len() > self.len() {
            return Err(Error::invalid(
                "copy_from",
                format!(
                    "{:?} {:?} into {:?} {:?} at {offset}",
                    src.dtype, src.shape, self.dtype, self.shape
                ),
            ));
        }
        if !src.is_empty() {
            self.storage.writes().fetch_add(1, Ordering::Relaxed);
            self.gpu.copy(
                src.storage.buffer(),
                src.offset,
                self.storage.buffer(),
                self.offset + offset as u64 * self.dtype.size(),
                src.byte_len(),
            );
        }
        Ok(())
    }

    /// All of this tensor's values as one f32 view (a complex value as its two parts).
    pub(crate) fn flat_f32(&self) -> Tensor {
        let parts = (self.dtype.size() / DType::F32.size()) as usize;
        Tensor {
            shape: vec![self.len() * parts],
            dtype: DType::F32,
            ..self.clone()
        }
    }

    /// Whether both tensors view the same GPU buffer.
    pub(crate) fn shares_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// Whether the two tensors' elements share any bytes of one buffer (an empty one shares
    /// none).
    pub(crate) fn overlaps(&self, other: &Tensor) -> bool {
        self.shares_buffer(other)
            && !self.is_empty()
            && !other.is_empty()
            && self.offset < other.offset + other.byte_len()
            && other.offset < self.offset + self.byte_len()
    }
}
