//! Kernels: one entry point of one WGSL family, specialised by constants, compiled once per
//! device and cached.
//!
//! Specialisation prepends `const NAME: TYPE = VALUE;` lines to the family's source (after any
//! `enable` directives the entry point needs): a shader refers to constants such as `TILE_M`
//! that its launcher defines, so workgroup array sizes and loop bounds are compile-time
//! constants the driver can unroll.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// How a storage binding is accessed, as declared in the shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

/// A compile-time constant of a kernel variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Const {
    U32(u32),
    Bool(bool),
}

/// Everything that identifies one compiled pipeline.
///
/// Binding 0 is always a uniform block of parameters; `storage` lists bindings 1.. in order.
#[derive(Clone, Debug)]
pub(crate) struct KernelSpec {
    pub family: &'static str,
    /// WGSL parts, concatenated after the constants (shared helpers first, the family last).
    pub sources: &'static [&'static str],
    pub entry: &'static str,
    pub storage: &'static [Access],
    pub consts: Vec<(&'static str, Const)>,
    /// WGSL extensions the family needs (`f16`, say), written before everything else as
    /// `enable` directives must be; fixed per entry point, so not part of the variant's key.
    pub enables: &'static [&'static str],
}

impl KernelSpec {
    pub(crate) fn new(
        family: &'static str,
        sources: &'static [&'static str],
        entry: &'static str,
        storage: &'static [Access],
    ) -> Self {
        KernelSpec {
            family,
            sources,
            entry,
            storage,
            consts: Vec::new(),
            enables: &[],
        }
    }

    pub(crate) fn enabling(mut self, extensions: &'static [&'static str]) -> Self {
        self.enables = extensions;
        self
    }

    pub(crate) fn with(mut self, name: &'static str, value: Const) -> Self {
        self.consts.push((name, value));
        self
    }

    /// The variant's whole WGSL source: directives, constants, then the family's parts.
    pub(crate) fn source(&self) -> String {
        let mut out = String::new();
        for extension in self.enables {
            let _ = writeln!(out, "enable {extension};");
        }
        for (name, value) in &self.consts {
            let _ = match value {
                Const::U32(v) => writeln!(out, "const {name}: u32 = {v}u;"),
                Const::Bool(v) => writeln!(out, "const {name}: bool = {v};"),
            };
        }
        out + &self.sources.concat()
    }

    /// What identifies the compiled variant; cheaper than its source text, as it is built on
    /// every dispatch.
    fn key(&self) -> VariantKey {
        (self.family, self.entry, self.consts.clone())
    }
}

type VariantKey = (&'static str, &'static str, Vec<(&'static str, Const)>);

/// Compiled pipelines and their bind-group layouts, keyed by kernel variant.
pub(crate) struct PipelineCache {
    checked: bool,
    pipelines: Mutex<HashMap<VariantKey, Arc<Compiled>>>,
}

pub(crate) struct Compiled {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

impl PipelineCache {
    pub(crate) fn new(checked: bool) -> Self {
        PipelineCache {
            checked,
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// Pipelines compiled so far.
    pub(crate) fn len(&self) -> usize {
        self.pipelines.lock().unwrap().len()
    }

    pub(crate) fn get(&self, device: &wgpu::Device, spec: &KernelSpec) -> Result<Arc<Compiled>> {
        let key = spec.key();
        if let Some(found) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(found.clone());
        }
        let compiled = Arc::new(self.compile(device, spec)?);
        self.pipelines.lock().unwrap().insert(key, compiled.clone());
        Ok(compiled)
    }

    fn compile(&self, device: &wgpu::Device, spec: &KernelSpec) -> Result<Compiled> {
        // Named here rather than as a pipeline error: downlevel adapters allow as few as 8.
        let most = device.limits().max_storage_buffers_per_shader_stage;
        if spec.storage.len() > most as usize {
            return Err(Error::Limit {
                what: format!("kernel {}::{}'s storage buffers", spec.family, spec.entry),
                requested: spec.storage.len() as u64,
                limit: most as u64,
                limit_name: "max_storage_buffers_per_shader_stage",
            });
        }
        // Naga's backends and the driver report failures as internal errors, and a pipeline
        // can run out of memory: all three are caught here, or an invalid pipeline would be
        // cached and fail every submission that uses it.
        let scopes = [
            wgpu::ErrorFilter::Validation,
            wgpu::ErrorFilter::OutOfMemory,
            wgpu::ErrorFilter::Internal,
        ]
        .map(|filter| device.push_error_scope(filter));
        let source = spec.source();
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(spec.family),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if self.checked {
            device.create_shader_module(descriptor)
        } else {
            // SAFETY: every launcher validates shapes, strides and buffer sizes before it
            // dispatches, and each kernel guards its own indexing against the sizes it is
            // given, so no access leaves its binding. The checked mode (PERCEPT_CHECKED=1),
            // which the test suite also runs, keeps the runtime checks to catch a launcher bug.
            unsafe {
                device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            }
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, access) in spec.storage.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(spec.family),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.family),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        // Scopes pop innermost first; each catches its own kind.
        let caught: Vec<wgpu::Error> = scopes
            .into_iter()
            .rev()
            .filter_map(|scope| pollster::block_on(scope.pop()))
            .collect();
        if let Some(err) = caught.first() {
            return Err(Error::Gpu(format!(
                "compiling kernel {}::{}: {err}",
                spec.family, spec.entry
            )));
        }
        Ok(Compiled { pipeline, layout })
    }
}

#[cfg(test)]
mod tests {
    use super::{Access, KernelSpec};
    use crate::GpuOptions;

    /// A kernel that does not compile is an error, and is not cached: asking again compiles
    /// (and fails) again rather than handing out an invalid pipeline.
    #[test]
    fn a_kernel_that_fails_to_compile_is_an_error_every_time() {
        let gpu = crate::gpu::test_gpu(GpuOptions::default());
        const BROKEN: &[&str] = &["@compute @workgroup_size(64) fn main() { let x: f32 = 1u; }"];
        let spec = KernelSpec::new("broken", BROKEN, "main", &[Access::ReadWrite]);
        let cached = gpu.cached_pipelines();
        for _ in 0..2 {
            let err = gpu.prepare(&spec).unwrap_err().to_string();
            assert!(err.contains("compiling kernel broken::main"), "{err}");
        }
        assert_eq!(gpu.cached_pipelines(), cached);
        // The device goes on working.
        let x = crate::Tensor::from_slice(&gpu, &[1.5, -2.0], &[2]).unwrap();
        assert_eq!(x.to_vec().unwrap(), [1.5, -2.0]);
    }
}
