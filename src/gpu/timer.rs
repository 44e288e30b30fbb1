//! Timing recorded work on the GPU with timestamp queries, or on the host clock where the
//! adapter has none.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Gpu;
use crate::error::Result;

/// Where a [`Timing`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingSource {
    /// GPU timestamps written before and after the work.
    GpuTimestamps,
    /// The host clock around a submission and wait (includes submission overhead).
    HostClock,
}

/// The duration of some recorded GPU work.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long the work took.
    pub elapsed: Duration,
    /// How it was measured.
    pub source: TimingSource,
}

impl Gpu {
    /// Runs `record` (which records GPU work), and measures how long the GPU took to execute
    /// what it recorded (and whatever other threads record on this device meanwhile).
    ///
    /// ```
    /// # use percept::{Gpu, Tensor, ops};
    /// let gpu = Gpu::new()?;
    /// let a = Tensor::from_slice(&gpu, &vec![1.0; 256 * 256], &[256, 256])?;
    /// let (_, timing) = gpu.time(|| ops::matmul(&a, &a, &ops::MatmulSpec::default()))?;
    /// println!("{:?} by {:?}", timing.elapsed, timing.source);
    /// # Ok::<(), percept::Error>(())
    /// ```
    pub fn time<T>(&self, record: impl FnOnce() -> Result<T>) -> Result<(T, Timing)> {
        let _open = TimingOpen::new(self);
        if !self.capabilities().timestamps {
            self.synchronize()?;
            let start = Instant::now();
            let out = record()?;
            self.synchronize()?;
            let timing = Timing {
                elapsed: start.elapsed(),
                source: TimingSource::HostClock,
            };
            return Ok((out, timing));
        }
        let device = self.device();
        let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("percept timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("percept timer"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.mark(&queries, Some(0), None);
        let out = record()?;
        self.mark(&queries, None, Some(1));
        {
            let mut pending = self.inner.pending.lock().unwrap();
            pending
                .encoder(device)
                .resolve_query_set(&queries, 0..2, &resolved, 0);
        }
        let bytes = self.read(&resolved, 0, 16)?;
        let tick = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let ns =
            tick(1).saturating_sub(tick(0)) as f64 * self.queue().get_timestamp_period() as f64;
        let timing = Timing {
            elapsed: Duration::from_nanos(ns as u64),
            source: TimingSource::GpuTimestamps,
        };
        Ok((out, timing))
    }

    /// Records an empty compute pass that writes a timestamp at its start or end.
    fn mark(&self, queries: &wgpu::QuerySet, begin: Option<u32>, end: Option<u32>) {
        let mut pending = self.inner.pending.lock().unwrap();
        let pass =
            pending
                .encoder(self.device())
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("percept timestamp"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: queries,
                        beginning_of_pass_write_index: begin,
                        end_of_pass_write_index: end,
                    }),
                });
        drop(pass);
    }
}

/// Marks a [`Gpu::time`] in progress for as long as it lives (early returns included).
struct TimingOpen<'g>(&'g Gpu);

impl<'g> TimingOpen<'g> {
    fn new(gpu: &'g Gpu) -> Self {
        gpu.inner.timing_depth.fetch_add(1, Ordering::SeqCst);
        TimingOpen(gpu)
    }
}

impl Drop for TimingOpen<'_> {
    fn drop(&mut self) {
        self.0.inner.timing_depth.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gpu {
    /// Whether a [`Gpu::time`] is in progress.
    pub(crate) fn timing(&self) -> bool {
        self.inner.timing_depth.load(Ordering::SeqCst) > 0
    }
}
