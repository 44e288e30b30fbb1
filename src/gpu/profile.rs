//! Per-kernel GPU time ([`GpuOptions::profile`](super::GpuOptions::profile)): every dispatch's
//! compute pass writes GPU timestamps at its start and end, and each submission is read back
//! when it completes, so that the time of a whole pass (a Newton step, a training step) can be
//! split by kernel. Reading back every submission serialises the host with the GPU: profiled
//! runs are for finding where time goes, not for timing.

use std::collections::HashMap;
use std::time::Duration;

use super::MAX_DISPATCHES_PER_SUBMIT;
use super::kernel::KernelSpec;

/// The GPU time of one kernel variant over the dispatches profiled so far.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// The kernel: `family::entry` and its specialisation constants (`BM128`, `TRANS_B`, ...).
    pub kernel: String,
    /// Dispatches.
    pub calls: u64,
    /// GPU time over all of them.
    pub total: Duration,
}

/// Timestamp queries for the dispatches of one pending submission, and the totals so far.
pub(crate) struct Profiler {
    device: wgpu::Device,
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    period_ns: f64,
    /// The kernel of each dispatch in the pending submission, in order.
    labels: Vec<String>,
    totals: HashMap<String, (u64, f64)>,
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let count = 2 * MAX_DISPATCHES_PER_SUBMIT as u32;
        let bytes = 8 * count as u64;
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("percept profile"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Profiler {
            device: device.clone(),
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("percept profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            staging: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
            period_ns: queue.get_timestamp_period() as f64,
            labels: Vec::new(),
            totals: HashMap::new(),
        }
    }

    /// The timestamp writes for the next dispatch's pass, which runs `kernel`.
    pub(crate) fn next_pass(
        &mut self,
        kernel: &KernelSpec,
    ) -> wgpu::ComputePassTimestampWrites<'_> {
        let index = 2 * self.labels.len() as u32;
        self.labels.push(label(kernel));
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(index),
            end_of_pass_write_index: Some(index + 1),
        }
    }

    /// Records the copy of this submission's timestamps to the host-visible buffer.
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.labels.is_empty() {
            return;
        }
        let count = 2 * self.labels.len() as u32;
        encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, 8 * count as u64);
    }

    /// After the submission: waits for it, and adds its dispatches' times to the totals.
    pub(crate) fn collect(&mut self) {
        if self.labels.is_empty() {
            return;
        }
        let bytes = 8 * 2 * self.labels.len() as u64;
        let slice = self.staging.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        // A lost device shows up in the next operation's error; the profile just stops.
        if self
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .is_ok()
            && let Ok(view) = slice.get_mapped_range()
        {
            let ticks: &[u64] = bytemuck::cast_slice(&view);
            for (label, pair) in self.labels.iter().zip(ticks.chunks_exact(2)) {
                let ns = pair[1].saturating_sub(pair[0]) as f64 * self.period_ns;
                let entry = self.totals.entry(label.clone()).or_default();
                entry.0 += 1;
                entry.1 += ns;
            }
            drop(view);
            self.staging.unmap();
        }
        self.labels.clear();
    }

    /// The totals, the most expensive kernel first.
    pub(crate) fn totals(&self) -> Vec<KernelTime> {
        let mut out: Vec<KernelTime> = self
            .totals
            .iter()
            .map(|(kernel, &(calls, ns))| KernelTime {
                kernel: kernel.clone(),
                calls,
                total: Duration::from_nanos(ns as u64),
            })
            .collect();
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.kernel.cmp(&b.kernel)));
        out
    }

    pub(crate) fn reset(&mut self) {
        self.totals.clear();
    }
}

/// `family::entry` and the constants that tell its variants apart: numbers, and the flags set.
fn label(kernel: &KernelSpec) -> String {
    use super::kernel::Const;
    let mut out = format!("{}::{}", kernel.family, kernel.entry);
    for (name, value) in &kernel.consts {
        match value {
            Const::U32(v) => out.push_str(&format!(" {name}{v}")),
            Const::Bool(true) => out.push_str(&format!(" {name}")),
            Const::Bool(false) => {}
        }
    }
    out
}
