//! The GPU context: adapter and device, capabilities, the pipeline cache, pooled buffers,
//! batched submission, readback and GPU timing.
//!
//! Work is recorded, not run: each kernel launch appends a dispatch to a pending command
//! encoder, and the encoder is submitted when the host needs a result (a readback, a timing), when
//! [`Gpu::flush`] is called, or when [`MAX_DISPATCHES_PER_SUBMIT`] dispatches have piled up. A whole
//! training step or solver iteration therefore goes to the GPU as one submission.

mod adapter;
mod capabilities;
pub(crate) mod kernel;
mod pool;
mod profile;
mod submit;
mod timer;
mod tuning;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use capabilities::{AdapterSummary, Capabilities};
pub use profile::KernelTime;
pub use timer::{Timing, TimingSource};
pub use tuning::Tuning;

use crate::error::{Error, Result};
use kernel::PipelineCache;
use pool::BufferPool;
use submit::Pending;
use tuning::TuningTable;

/// Dispatches recorded before the pending encoder is submitted on its own.
pub const MAX_DISPATCHES_PER_SUBMIT: usize = 128;

/// How to open a [`Gpu`].
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Build shader modules with wgpu's runtime bounds checks. `None` reads `PERCEPT_CHECKED`
    /// (`1` or `true` turns checks on); the default is unchecked, which runs a tiled matmul
    /// about 14x faster.
    pub checked: Option<bool>,
    /// Backends to consider. `None` reads `WGPU_BACKEND` (e.g. `vulkan`, or `vulkan,gl`; a name
    /// wgpu does not know is an error), else all.
    pub backends: Option<wgpu::Backends>,
    /// Only adapters whose name contains this (case-insensitive). `None` reads
    /// `WGPU_ADAPTER_NAME`.
    pub adapter_name: Option<String>,
    /// Whether and where kernel variants are chosen by measurement. `None` reads
    /// `PERCEPT_TUNING` (see [`Tuning::from_env`]); the default keeps a file per adapter in the
    /// user's cache directory.
    pub tuning: Option<Tuning>,
    /// Time every dispatch on the GPU, per kernel ([`Gpu::kernel_times`]). `None` reads
    /// `PERCEPT_PROFILE` (`1` or `true` turns it on). Needs GPU timestamps; each submission is
    /// waited for, so profiled runs show where time goes rather than how long a run takes.
    pub profile: Option<bool>,
}

/// A device and queue with percept's caches. Cheap to clone: clones share everything.
///
/// Threads may share one (`Gpu` is `Send` and `Sync`): their work goes into one stream of
/// submissions in the order it is recorded, and a readback waits for everything recorded before
/// it, by any thread.
///
/// ```
/// let gpu = percept::Gpu::new()?;
/// println!("{} ({})", gpu.summary().adapter, gpu.summary().backend);
/// # Ok::<(), percept::Error>(())
/// ```
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    capabilities: Capabilities,
    limits: wgpu::Limits,
    checked: bool,
    pipelines: PipelineCache,
    tuning: Option<TuningTable>,
    pool: BufferPool,
    pending: Mutex<Pending>,
    /// The first error wgpu reported outside percept's checks, or a device loss; it stays (see
    /// [`Gpu::check`]).
    fault: Arc<Mutex<Option<Fault>>>,
    /// [`Gpu::time`] calls in progress: tuning does not measure inside a caller's timing.
    timing_depth: std::sync::atomic::AtomicUsize,
}

impl Gpu {
    /// Opens the best adapter, honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
    /// `PERCEPT_CHECKED`.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default())
    }

    /// Opens the best adapter with explicit options.
    pub fn with_options(options: GpuOptions) -> Result<Self> {
        let env_flag = |name: &str| {
            std::env::var(name)
                .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
                .unwrap_or(false)
        };
        let checked = options
            .checked
            .unwrap_or_else(|| env_flag("PERCEPT_CHECKED"));
        let profile = options
            .profile
            .unwrap_or_else(|| env_flag("PERCEPT_PROFILE"));
        let backends = match options.backends {
            Some(backends) => backends,
            None => adapter::backends_from_env()?.unwrap_or(wgpu::Backends::all()),
        };
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        let name_filter = options
            .adapter_name
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
        let adapter = adapter::select(&instance, backends, name_filter)?;
        let info = adapter.get_info();
        let features = adapter.features() & capabilities::wanted_features();
        let limits = adapter.limits();
        let experimental = if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            // SAFETY: cooperative matrices are only used by kernels chosen when the adapter
            // reports them, with the shapes it lists; see wgpu's experimental-features notes.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("percept"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;

        let fault: Arc<Mutex<Option<Fault>>> = Arc::default();
        let slot = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            slot.lock()
                .unwrap()
                .get_or_insert(Fault::Gpu(e.to_string()));
        }));
        let slot = fault.clone();
        device.set_device_lost_callback(move |reason, message| {
            slot.lock()
                .unwrap()
                .get_or_insert(Fault::Lost(format!("{reason:?}: {message}")));
        });

        let summary = AdapterSummary::new(&info);
        let capabilities = Capabilities::new(
            &info,
            device.features(),
            &limits,
            &adapter.cooperative_matrix_properties(),
        );
        if profile && !capabilities.timestamps {
            return Err(Error::invalid(
                "Gpu",
                format!(
                    "profiling needs GPU timestamps, which {} does not offer; unset \
                     PERCEPT_PROFILE (or GpuOptions::profile)",
                    summary.adapter
                ),
            ));
        }
        let profiler = profile.then(|| profile::Profiler::new(&device, &queue));
        let pending = Pending::new(&device, &limits, profiler);
        let tuning = match options.tuning {
            Some(tuning) => tuning,
            None => Tuning::from_env(&summary)?,
        };
        Ok(Gpu {
            inner: Arc::new(Inner {
                tuning: TuningTable::open(&tuning, &summary),
                summary,
                capabilities,
                limits,
                checked,
                pipelines: PipelineCache::new(checked),
                pool: BufferPool::default(),
                pending: Mutex::new(pending),
                fault,
                timing_depth: Default::default(),
                device,
                queue,
            }),
        })
    }

    /// The adapter in words.
    pub fn summary(&self) -> &AdapterSummary {
        &self.inner.summary
    }

    /// Optional features and the limits that shape launchers.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// The device's full limits (the adapter's own, as requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Whether shader modules carry runtime bounds checks.
    pub fn checked(&self) -> bool {
        self.inner.checked
    }

    /// Whether ops measure their kernel variants on this device ([`GpuOptions::tuning`]).
    pub fn tuning(&self) -> bool {
        self.inner.tuning.is_some()
    }

    /// The file that keeps tuned choices across processes, if any.
    pub fn tuning_file(&self) -> Option<&std::path::Path> {
        self.inner.tuning.as_ref().and_then(TuningTable::file)
    }

    /// The variants measured so far (or loaded from the tuning file), by shape-bucket key.
    pub fn tuned_choices(&self) -> std::collections::BTreeMap<String, String> {
        self.inner
            .tuning
            .as_ref()
            .map(TuningTable::choices)
            .unwrap_or_default()
    }

    /// The underlying wgpu device, for interoperation.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The underlying wgpu queue, for interoperation.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Submits every recorded dispatch.
    pub fn flush(&self) -> Result<()> {
        let mut pending = self.inner.pending.lock().unwrap();
        pending.submit(&self.inner.queue);
        drop(pending);
        self.check()
    }

    /// Submits every recorded dispatch and waits until the GPU has finished them.
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    /// GPU time per kernel variant over the dispatches submitted since the device opened or
    /// [`Gpu::reset_kernel_times`], the most expensive first; `None` unless the device profiles
    /// ([`GpuOptions::profile`]). Work still recorded is not in it: call [`Gpu::flush`] first.
    pub fn kernel_times(&self) -> Option<Vec<KernelTime>> {
        let pending = self.inner.pending.lock().unwrap();
        pending.profiler.as_ref().map(profile::Profiler::totals)
    }

    /// Starts [`Gpu::kernel_times`] afresh (after submitting what was recorded before).
    pub fn reset_kernel_times(&self) -> Result<()> {
        self.flush()?;
        let mut pending = self.inner.pending.lock().unwrap();
        if let Some(profiler) = &mut pending.profiler {
            profiler.reset();
        }
        Ok(())
    }

    /// Lets idle pooled buffers go back to the driver.
    pub fn release_pooled_memory(&self) {
        self.inner.pool.clear();
    }

    /// Returns the first error wgpu reported, if any, so that nothing fails silently. It stays:
    /// the submission it came with was dropped whole, other threads' work in it too, so every
    /// later check on this device (in any thread) reports it rather than results computed
    /// without that work.
    fn check(&self) -> Result<()> {
        match &*self.inner.fault.lock().unwrap() {
            Some(Fault::Gpu(message)) => Err(Error::Gpu(format!(
                "{message}; the work submitted with it was lost, so this device reports it from \
                 now on: create a new `Gpu` to continue"
            ))),
            Some(Fault::Lost(reason)) => Err(Error::DeviceLost(reason.clone())),
            None => Ok(()),
        }
    }

    fn wait(&self) -> Result<()> {
        self.poll(None)?;
        self.check()
    }

    /// Blocks until `submission` has run, or everything submitted so far when `None`.
    fn poll(&self, submission: Option<wgpu::SubmissionIndex>) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: submission,
                timeout: None,
            })
            .map(drop)
            .map_err(|e| Error::DeviceLost(e.to_string()))
    }

    /// Checks that `bytes` fit one storage binding and one buffer of this device.
    pub(crate) fn check_buffer_size(&self, what: &str, bytes: u64) -> Result<()> {
        let limits = &self.inner.limits;
        if bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::Limit {
                what: what.to_string(),
                requested: bytes,
                limit: limits.max_storage_buffer_binding_size,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        if bytes > limits.max_buffer_size {
            return Err(Error::Limit {
                what: what.to_string(),
                requested: bytes,
                limit: limits.max_buffer_size,
                limit_name: "max_buffer_size",
            });
        }
        Ok(())
    }

    /// A storage buffer of at least `bytes`, from the pool when one is idle. The caller must have
    /// checked the size with [`Gpu::check_buffer_size`].
    pub(crate) fn storage_buffer(&self, bytes: u64) -> Result<PooledBuffer> {
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        self.pooled(usage, bytes)
    }

    fn pooled(&self, usage: wgpu::BufferUsages, bytes: u64) -> Result<PooledBuffer> {
        let class = pool::size_class(bytes).min(
            self.inner
                .limits
                .max_buffer_size
                .max(bytes.next_multiple_of(16)),
        );
        let buffer = match self.inner.pool.take(usage, class) {
            Some(buffer) => buffer,
            None => self.create_buffer(usage, class)?,
        };
        Ok(PooledBuffer {
            buffer: Some(buffer),
            gpu: Arc::downgrade(&self.inner),
            writes: AtomicU64::new(0),
        })
    }

    /// A new buffer. wgpu reports running out of memory to an error scope and hands back an
    /// invalid buffer, which would poison the pool's size class and every submission that
    /// binds it: the scope catches that, and the pool's idle buffers go back to the driver
    /// before one more try.
    fn create_buffer(&self, usage: wgpu::BufferUsages, size: u64) -> Result<wgpu::Buffer> {
        let device = &self.inner.device;
        let create = || {
            let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            });
            match pollster::block_on(scope.pop()) {
                None => Ok(buffer),
                Some(e) => Err(e),
            }
        };
        create().or_else(|_| {
            self.inner.pool.clear();
            create().map_err(|e| Error::OutOfMemory {
                bytes: size,
                detail: e.to_string(),
            })
        })
    }

    /// Writes `bytes` at `offset` of `buffer`, ordered after every dispatch recorded so far.
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) -> Result<()> {
        // Queue writes land at the start of the next submission; recorded dispatches that may
        // still read this (recycled) buffer must be submitted first.
        self.flush()?;
        self.inner.queue.write_buffer(buffer, offset, bytes);
        Ok(())
    }

    /// Copies `size` bytes at `offset` of `buffer` back to the host, after all recorded work.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let staging = self.pooled(
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            size,
        )?;
        let staging_buffer = staging.buffer();
        let submission = {
            let mut pending = self.inner.pending.lock().unwrap();
            pending.encoder(&self.inner.device).copy_buffer_to_buffer(
                buffer,
                offset,
                staging_buffer,
                0,
                size,
            );
            pending.submit(&self.inner.queue)
        };
        self.check()?;
        let slice = staging_buffer.slice(..size);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Only as long as this submission takes, not other threads' later work.
        let bytes = self.poll(submission).and_then(|()| {
            rx.recv()
                .map_err(|e| Error::Readback(e.to_string()))?
                .map_err(|e| Error::Readback(e.to_string()))?;
            Ok(slice
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?
                .to_vec())
        });
        // Unmapped on every path: the staging buffer goes back to the pool, and a mapped one
        // would fail the next readback of its size.
        staging_buffer.unmap();
        let bytes = bytes?;
        self.check()?;
        Ok(bytes)
    }

    /// Records one dispatch of `kernel` with its uniform `params` and storage `bindings`.
    pub(crate) fn dispatch(
        &self,
        kernel: &kernel::KernelSpec,
        params: &[u8],
        bindings: &[Binding<'_>],
        workgroups: [u32; 3],
    ) -> Result<()> {
        debug_assert_eq!(bindings.len(), kernel.storage.len(), "{}", kernel.entry);
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        if let Some(&over) = workgroups.iter().find(|&&w| w > max) {
            return Err(Error::Limit {
                what: format!("kernel {}::{}", kernel.family, kernel.entry),
                requested: over as u64,
                limit: max as u64,
                limit_name: "max_compute_workgroups_per_dimension",
            });
        }
        if workgroups.contains(&0) {
            return Ok(());
        }
        let compiled = self.inner.pipelines.get(&self.inner.device, kernel)?;
        // Counted once the launch is sure to be recorded: a refused one writes nothing.
        for (binding, access) in bindings.iter().zip(kernel.storage) {
            if *access == kernel::Access::ReadWrite {
                binding.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut pending = self.inner.pending.lock().unwrap();
        if pending.is_full() {
            pending.submit(&self.inner.queue);
        }
        pending.dispatch(
            &self.inner.device,
            kernel,
            &compiled,
            params,
            bindings,
            workgroups,
        );
        Ok(())
    }

    /// Kernel variants compiled so far on this device (each is compiled once, then cached;
    /// plans such as [`crate::ops::FftPlan`] compile theirs when they are built).
    pub fn cached_pipelines(&self) -> usize {
        self.inner.pipelines.len()
    }

    /// Compiles `kernel`'s pipeline now (plans call this so that their first run does not
    /// stall on compilation, and a kernel that fails to compile fails the plan).
    pub(crate) fn prepare(&self, kernel: &kernel::KernelSpec) -> Result<()> {
        self.inner
            .pipelines
            .get(&self.inner.device, kernel)
            .map(drop)
    }

    /// Splits `groups` workgroups over x and y so neither passes the per-dimension limit.
    /// Kernels launched this way recover their linear index as `wg.x + wg.y * num_wg.x`.
    pub(crate) fn grid(&self, groups: u64) -> Result<[u32; 3]> {
        let max = self.inner.limits.max_compute_workgroups_per_dimension as u64;
        let x = groups.min(max);
        let y = groups.div_ceil(x.max(1));
        if y > max {
            return Err(Error::Limit {
                what: "a launch (workgroups in all)".to_string(),
                requested: groups,
                limit: max * max,
                limit_name: "max_compute_workgroups_per_dimension squared",
            });
        }
        Ok([x as u32, y as u32, 1])
    }

    /// The launch of a 3-D grid of blocks `[nx, ny, nz]` (output tiles, then matrices of a
    /// batch), folded as [`Gpu::grid`] folds it: kernels decode their block with `block_of` in
    /// `shaders/block_grid.wgsl` and return past the last one.
    pub(crate) fn block_grid(&self, blocks: [usize; 3]) -> Result<[u32; 3]> {
        let total = blocks
            .iter()
            .try_fold(1u64, |acc, &b| acc.checked_mul(b as u64))
            .unwrap_or(u64::MAX);
        self.grid(total)
    }
}

/// A range of a buffer bound to one storage slot of a kernel.
#[derive(Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
    /// The buffer's write count, bumped when a kernel binds it for writing.
    pub writes: &'a AtomicU64,
}

/// A buffer on loan from the pool: it goes back when dropped.
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    gpu: std::sync::Weak<Inner>,
    /// Writes recorded into it so far (kernels that bind it for writing, uploads, copies): what
    /// keeps data derived from it, such as an `ops::SplitB`, from being used once stale.
    writes: AtomicU64,
}

impl PooledBuffer {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }

    pub(crate) fn writes(&self) -> &AtomicU64 {
        &self.writes
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(buffer), Some(gpu)) = (self.buffer.take(), self.gpu.upgrade()) {
            gpu.pool.give(buffer);
        }
    }
}

impl Gpu {
    /// Whether two handles refer to the same device.
    pub(crate) fn same(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Records a buffer-to-buffer copy, in order with the dispatches.
    pub(crate) fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        let mut pending = self.inner.pending.lock().unwrap();
        pending
            .encoder(&self.inner.device)
            .copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
    }
}

/// An error wgpu reported outside percept's own checks.
enum Fault {
    /// A validation or internal error: a percept bug.
    Gpu(String),
    /// The device was lost.
    Lost(String),
}

/// A device of a unit test's own, with `options`; without an adapter the test fails saying how
/// to get one (as the integration tests' `common::open_with` does).
#[cfg(test)]
pub(crate) fn test_gpu(options: GpuOptions) -> Gpu {
    Gpu::with_options(options).unwrap_or_else(|e| {
        panic!(
            "this test needs a GPU adapter and found none: {e}\n(on a machine without a GPU: \
             `apt-get install -y mesa-vulkan-drivers` and run with WGPU_BACKEND=vulkan)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{GpuOptions, test_gpu};
    use crate::Tensor;

    /// An error wgpu reports outside percept's checks drops its submission whole (other
    /// threads' work too), so every later check reports it, not only the first.
    #[test]
    fn an_uncaught_gpu_error_is_reported_by_every_later_check() {
        let gpu = test_gpu(GpuOptions::default());
        let x = Tensor::from_slice(&gpu, &[1.0, 2.0], &[2]).unwrap();
        // A buffer both mapped for reading and for writing is invalid: percept never makes
        // one, so its error reaches the device's handler.
        let _invalid = gpu.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
            mapped_at_creation: false,
        });
        for _ in 0..2 {
            let err = x.to_vec().unwrap_err().to_string();
            assert!(
                err.contains("percept bug") && err.contains("from now on"),
                "{err}"
            );
        }
        // A new device starts clean.
        let gpu = test_gpu(GpuOptions::default());
        let x = Tensor::from_slice(&gpu, &[1.0, 2.0], &[2]).unwrap();
        assert_eq!(x.to_vec().unwrap(), [1.0, 2.0]);
    }
}
