//! The pending command encoder and the uniform arena its dispatches draw their parameters from.

use super::kernel::{Compiled, KernelSpec};
use super::profile::Profiler;
use super::{Binding, MAX_DISPATCHES_PER_SUBMIT};

/// Bytes reserved per dispatch for its parameter block; every kernel's uniform struct fits.
const PARAM_SLOT: u64 = 256;

pub(crate) struct Pending {
    encoder: Option<wgpu::CommandEncoder>,
    /// Parameter blocks of the recorded dispatches, one slot each, written to `arena` on submit.
    params: Vec<u8>,
    arena: wgpu::Buffer,
    slot: u64,
    dispatches: usize,
    /// Per-kernel timestamps, when the device profiles.
    pub(crate) profiler: Option<Profiler>,
}

impl Pending {
    pub(crate) fn new(
        device: &wgpu::Device,
        limits: &wgpu::Limits,
        profiler: Option<Profiler>,
    ) -> Self {
        let slot = PARAM_SLOT.max(limits.min_uniform_buffer_offset_alignment as u64);
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("percept params"),
            size: slot * MAX_DISPATCHES_PER_SUBMIT as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Pending {
            encoder: None,
            params: Vec::new(),
            arena,
            slot,
            dispatches: 0,
            profiler,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.dispatches >= MAX_DISPATCHES_PER_SUBMIT
    }

    pub(crate) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    pub(crate) fn dispatch(
        &mut self,
        device: &wgpu::Device,
        kernel: &KernelSpec,
        compiled: &Compiled,
        params: &[u8],
        bindings: &[Binding<'_>],
        workgroups: [u32; 3],
    ) {
        assert!(
            params.len() as u64 <= self.slot,
            "parameter block too large"
        );
        let offset = self.params.len() as u64;
        self.params.extend_from_slice(params);
        self.params.resize((offset + self.slot) as usize, 0);

        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena,
                offset,
                size: wgpu::BufferSize::new((params.len() as u64).next_multiple_of(16)),
            }),
        }];
        for (i, b) in bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buffer,
                    offset: b.offset,
                    size: wgpu::BufferSize::new(b.size),
                }),
            });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &compiled.layout,
            entries: &entries,
        });
        let encoder = self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        });
        let timestamp_writes = self.profiler.as_mut().map(|p| p.next_pass(kernel));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes,
        });
        pass.set_pipeline(&compiled.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        drop(pass);
        self.dispatches += 1;
    }

    /// Submits what was recorded, if anything, and returns the submission's index. When
    /// profiling, waits for it.
    pub(crate) fn submit(&mut self, queue: &wgpu::Queue) -> Option<wgpu::SubmissionIndex> {
        let mut encoder = self.encoder.take()?;
        if !self.params.is_empty() {
            queue.write_buffer(&self.arena, 0, &self.params);
        }
        if let Some(profiler) = &self.profiler {
            profiler.resolve(&mut encoder);
        }
        let index = queue.submit([encoder.finish()]);
        if let Some(profiler) = &mut self.profiler {
            profiler.collect();
        }
        self.params.clear();
        self.dispatches = 0;
        Some(index)
    }
}
