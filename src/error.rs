//! The one error type of the crate.

/// Everything that can go wrong in percept, each variant naming the problem and, where there is
/// one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter (real or software) could be found.
    #[error(
        "no GPU adapter found{filter}. percept needs a Vulkan, Metal or DX12 adapter. On a \
         Debian/Ubuntu machine without a GPU install Mesa's CPU driver (lavapipe) with \
         `apt-get install -y mesa-vulkan-drivers` and run with WGPU_BACKEND=vulkan; on a GPU \
         machine install the vendor's Vulkan driver."
    )]
    NoAdapter {
        /// Describes the filters in force (backend, adapter name), or is empty.
        filter: String,
    },

    /// The adapter refused to create a device.
    #[error("the adapter `{adapter}` could not create a device: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// What wgpu reported.
        reason: String,
    },

    /// Tensor shapes that do not fit together.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation that was asked for.
        op: &'static str,
        /// What does not match, with the shapes.
        detail: String,
    },

    /// An argument outside what the operation accepts.
    #[error("invalid argument to {op}: {detail}")]
    InvalidArgument {
        /// The operation that was asked for.
        op: &'static str,
        /// What is wrong and what is accepted.
        detail: String,
    },

    /// A request past one of the adapter's limits.
    #[error(
        "{what} needs {requested}{unit}, past this adapter's limit of {limit}{unit} \
         ({limit_name}); use smaller sizes (a smaller batch, width or length), split the work \
         into pieces, or use an adapter with a larger limit",
        unit = unit_of(limit_name)
    )]
    Limit {
        /// What was being created or dispatched.
        what: String,
        /// The amount requested.
        requested: u64,
        /// The adapter's limit.
        limit: u64,
        /// The name of the limit in `wgpu::Limits`.
        limit_name: &'static str,
    },

    /// Non-finite values where finite ones are required.
    #[error("{what} contains a non-finite value (NaN or infinity) at index {index}")]
    NonFinite {
        /// Which input.
        what: String,
        /// The first offending flat index.
        index: usize,
    },

    /// The device was lost (driver reset, GPU removed, out of memory).
    #[error("the GPU device was lost: {0}. Create a new `Gpu` to continue")]
    DeviceLost(String),

    /// The GPU had no memory left for a buffer, even after the pool let its idle ones go.
    #[error(
        "out of GPU memory allocating {bytes} bytes ({detail}): drop tensors no longer needed, \
         or use smaller sizes (a smaller batch or width)"
    )]
    OutOfMemory {
        /// The buffer's size.
        bytes: u64,
        /// What wgpu said.
        detail: String,
    },

    /// wgpu reported an error that percept's own validation did not catch: a bug in percept.
    #[error("GPU error (please report it as a percept bug): {0}")]
    Gpu(String),

    /// Reading results back from the GPU failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),

    /// A data or checkpoint file whose contents are not what percept needs.
    #[error("{file}: {detail}")]
    Data {
        /// The file (and, where it helps, the row or tensor) concerned.
        file: String,
        /// What is wrong and what was expected.
        detail: String,
    },

    /// Training produced a non-finite loss.
    #[error(
        "the training loss became {loss} in epoch {epoch}; training stopped{kept}. Lower the \
         learning rate, clip gradients (--max-grad-norm) or standardise the inputs"
    )]
    Diverged {
        /// The loss value.
        loss: f32,
        /// The epoch (1-based) in which it happened.
        epoch: usize,
        /// Says which checkpoint was kept, if any.
        kept: String,
    },

    /// A fixed-point solve left rows above the tolerance.
    #[error(
        "{stage} ({method}) did not converge: {converged} of {rows} rows reached the tolerance \
         {tol:e} within {iterations} iterations (largest residual left {residual:e}; {non_finite} \
         rows were NaN or infinite at every iterate: check the inputs and the map). Raise \
         max_iter, loosen tol, try another solver (Anderson, Broyden), make the map more \
         contractive, or set accept_unconverged to take f at the lowest-residual iterates"
    )]
    NotConverged {
        /// Which solve: `the fixed-point solve`, or a DEQ's forward or adjoint solve.
        stage: &'static str,
        /// The solver.
        method: &'static str,
        /// Rows that reached the tolerance.
        converged: usize,
        /// Rows in all.
        rows: usize,
        /// The tolerance.
        tol: f32,
        /// Evaluations made.
        iterations: usize,
        /// The largest residual among the iterates whose map is returned.
        residual: f32,
        /// Rows with no finite residual at any iterate.
        non_finite: usize,
    },

    /// An I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }

    pub(crate) fn data(file: impl std::fmt::Display, detail: impl Into<String>) -> Self {
        Error::Data {
            file: file.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            detail: detail.into(),
        }
    }
}

/// The unit of a `wgpu::Limits` field, as the messages print it: its sizes are in bytes, the
/// rest are counts.
fn unit_of(limit_name: &str) -> &'static str {
    if limit_name.ends_with("_size") {
        " bytes"
    } else {
        ""
    }
}
