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

#[derive(Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    buffers: HashMap<(u32, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl BufferPool {
    /// An idle buffer of this usage and class, if one is waiting.
    pub(crate) fn take(&self, usage: wgpu::BufferUsages, class: u64) -> Option<wgpu::Buffer> {
        let mut idle = self.idle.lock().unwrap();
        let buffer = idle.buffers.get_mut(&(usage.bits(), class))?.pop()?;
        idle.bytes -= class;
        Some(buffer)
    }

    /// Returns a buffer to the pool, or drops it when the pool holds enough already.
    pub(crate) fn give(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        let mut idle = self.idle.lock().unwrap();
        if idle.bytes + class > MAX_IDLE_BYTES {
            return;
        }
        idle.bytes += class;
        idle.buffers
            .entry((buffer.usage().bits(), class))
            .or_default()
            .push(buffer);
    }

    /// Drops every idle buffer.
    pub(crate) fn clear(&self) {
        let mut idle = self.idle.lock().unwrap();
        idle.buffers.clear();
        idle.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

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
