//! A pool of GPU buffers by size class, so that tensors of a recurring shape reuse memory
//! instead of allocating on every step.

use std::collections::HashMap;
use std::sync::Mutex;

/// Idle bytes the pool keeps before it lets buffers go back to the driver.
const MAX_IDLE_BYTES: u64 = 1 << 30;

/// Rounds a request up to its size class: powers of two below 1 MiB, above that eight classes
/// per octave, so no buffer wastes more than 12.5% (and every class is a multiple of 16 bytes,
/// which vec4 bindings need).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    if bytes <= 1 << 20 {
        return bytes.next_power_of_two();
    }
    let step = (bytes.next_power_of_two() / 2) / 8;
    bytes.div_ceil(step) * step
}

pub(crate) struct BufferPool {
    idle: Mutex<Idle>,
    /// Idle bytes kept before the longest-idle buffers go back to the driver.
    capacity: u64,
}

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::with_capacity(MAX_IDLE_BYTES)
    }
}

#[derive(Default)]
struct Idle {
    /// Per usage and class, the idle buffers with the tick each was given back at, oldest
    /// first (the newest is taken first, which keeps each list in order).
    buffers: HashMap<(u32, u64), Vec<(u64, wgpu::Buffer)>>,
    bytes: u64,
    tick: u64,
}

impl BufferPool {
    pub(crate) fn with_capacity(capacity: u64) -> Self {
        BufferPool {
            idle: Mutex::default(),
            capacity,
        }
    }

    /// An idle buffer of this usage and class, if one is waiting.
    pub(crate) fn take(&self, usage: wgpu::BufferUsages, class: u64) -> Option<wgpu::Buffer> {
        let mut idle = self.idle.lock().unwrap();
        let (_, buffer) = idle.buffers.get_mut(&(usage.bits(), class))?.pop()?;
        idle.bytes -= class;
        Some(buffer)
    }

    /// Returns a buffer to the pool. Past the capacity, the buffers idle longest go back to the
    /// driver first: a workload whose sizes change (a second model trained in the same process)
    /// is pooled instead of allocating on every step behind the first one's leftovers.
    pub(crate) fn give(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        if class > self.capacity {
            return;
        }
        let mut idle = self.idle.lock().unwrap();
        while idle.bytes + class > self.capacity {
            // The oldest buffer heads its list; the lists are few (usages times classes).
            let oldest = idle
                .buffers
                .iter()
                .filter_map(|(&key, list)| list.first().map(|&(tick, _)| (tick, key)))
                .min();
            let Some((_, key)) = oldest else { break };
            idle.buffers.get_mut(&key).expect("found above").remove(0);
            idle.bytes -= key.1;
        }
        idle.bytes += class;
        idle.tick += 1;
        let tick = idle.tick;
        idle.buffers
            .entry((buffer.usage().bits(), class))
            .or_default()
            .push((tick, buffer));
    }

    /// Drops every idle buffer.
    pub(crate) fn clear(&self) {
        let mut idle = self.idle.lock().unwrap();
        *idle = Idle::default();
    }
}

#[cfg(test)]
mod tests {
    use super::{BufferPool, size_class};
    use crate::GpuOptions;

    #[test]
    fn a_full_pool_lets_its_longest_idle_buffers_go() {
        let gpu = crate::gpu::test_gpu(GpuOptions::default());
        let usage = wgpu::BufferUsages::STORAGE;
        let buffer = |size| {
            gpu.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let pool = BufferPool::with_capacity(4096);
        for _ in 0..4 {
            pool.give(buffer(1024));
        }
        // Full: a new class makes room by letting the two oldest go, not by being refused.
        pool.give(buffer(2048));
        assert!(pool.take(usage, 2048).is_some());
        assert!(pool.take(usage, 1024).is_some());
        assert!(pool.take(usage, 1024).is_some());
        assert!(pool.take(usage, 1024).is_none());
        // A buffer larger than the whole pool is not kept.
        pool.give(buffer(8192));
        assert!(pool.take(usage, 8192).is_none());
    }

    #[test]
    fn classes_cover_requests_with_bounded_waste() {
        for bytes in [
            1u64,
            15,
            16,
            17,
            1000,
            1 << 20,
            (1 << 20) + 1,
            3 << 22,
            123_456_789,
        ] {
            let class = size_class(bytes);
            assert!(class >= bytes, "{bytes} -> {class}");
            assert_eq!(class % 16, 0, "{bytes} -> {class}");
            if bytes > 1 << 20 {
                assert!(
                    class as f64 <= bytes as f64 * 1.125 + 16.0,
                    "{bytes} -> {class}"
                );
            }
        }
    }
}
