//! What the chosen adapter is and what it can do, as percept uses it.

use serde::Serialize;

/// The adapter in words: what `percept info` prints and benchmarks record.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    /// Adapter name, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub adapter: String,
    /// Graphics API: "vulkan", "metal", "dx12" or "gl".
    pub backend: String,
    /// "discrete_gpu", "integrated_gpu", "virtual_gpu", "cpu" or "other".
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version or build.
    pub driver_info: String,
    /// PCI vendor id.
    pub vendor: u32,
    /// PCI device id.
    pub device: u32,
}

impl AdapterSummary {
    pub(crate) fn new(info: &wgpu::AdapterInfo) -> Self {
        let device_type = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete_gpu",
            wgpu::DeviceType::IntegratedGpu => "integrated_gpu",
            wgpu::DeviceType::VirtualGpu => "virtual_gpu",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        AdapterSummary {
            adapter: info.name.clone(),
            backend: info.backend.to_str().to_string(),
            device_type: device_type.to_string(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            vendor: info.vendor,
            device: info.device,
        }
    }
}

/// The optional features percept can use, as found on the device, and the limits that shape
/// its launchers.
#[derive(Clone, Debug, Serialize)]
pub struct Capabilities {
    /// Subgroup (warp/wave) operations in shaders.
    pub subgroups: bool,
    /// `f16` arithmetic in shaders.
    pub shader_f16: bool,
    /// `f64` arithmetic in shaders.
    pub shader_f64: bool,
    /// GPU timestamps at pass boundaries.
    pub timestamps: bool,
    /// GPU timestamps inside compute passes.
    pub timestamps_inside_passes: bool,
    /// Immediate data (push constants).
    pub immediates: bool,
    /// On-disk pipeline caches.
    pub pipeline_cache: bool,
    /// Cooperative-matrix (tensor core) operations.
    pub cooperative_matrix: bool,
    /// Cooperative matrices of 16 x 16 x 16 with f16 inputs and f32 accumulators, the shape
    /// [`crate::ops::Precision::SplitF16`] multiplies with.
    pub cooperative_f16_16x16: bool,
    /// Smallest subgroup size the adapter reports.
    pub min_subgroup_size: u32,
    /// Largest subgroup size the adapter reports.
    pub max_subgroup_size: u32,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Workgroup memory per workgroup, in bytes.
    pub max_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Workgroups per dispatch dimension.
    pub max_workgroups_per_dimension: u32,
    /// Storage buffers a shader stage may bind.
    pub max_storage_buffers_per_stage: u32,
    /// Loop iterations one invocation may run, all its loops together, where the driver ends
    /// loops silently past a count: Mesa's llvmpipe (lavapipe) stops at 65535, a guard against
    /// endless loops, and the kernel carries on with wrong results. `None`: no such limit.
    /// Kernels whose loops grow with the problem (Thomas's chain along a tridiagonal system)
    /// keep under it.
    pub max_loop_iterations: Option<u32>,
}

/// llvmpipe's loop limiter (`LP_MAX_TGSI_LOOP_ITERATIONS` in Mesa's gallivm).
const LLVMPIPE_MAX_LOOP_ITERATIONS: u32 = 65535;

impl Capabilities {
    /// Loop iterations one invocation of a kernel may plan for where the driver has a limit
    /// ([`Capabilities::max_loop_iterations`]): half of it, a margin for loop bookkeeping a
    /// compiler adds or counts in ways a kernel cannot see. `None`: no limit known.
    pub fn loop_budget(&self) -> Option<usize> {
        self.max_loop_iterations.map(|n| n as usize / 2)
    }

    pub(crate) fn new(
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: &wgpu::Limits,
        cooperative: &[wgpu::CooperativeMatrixProperties],
    ) -> Self {
        use wgpu::CooperativeScalarType as S;
        use wgpu::Features as F;
        let has_coop = features.contains(F::EXPERIMENTAL_COOPERATIVE_MATRIX);
        Capabilities {
            subgroups: features.contains(F::SUBGROUP),
            shader_f16: features.contains(F::SHADER_F16),
            shader_f64: features.contains(F::SHADER_F64),
            timestamps: features.contains(F::TIMESTAMP_QUERY),
            timestamps_inside_passes: features.contains(F::TIMESTAMP_QUERY_INSIDE_PASSES),
            immediates: features.contains(F::IMMEDIATES),
            pipeline_cache: features.contains(F::PIPELINE_CACHE),
            cooperative_matrix: has_coop,
            cooperative_f16_16x16: has_coop
                && cooperative.iter().any(|p| {
                    (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
                        && p.ab_type == S::F16
                        && p.cr_type == S::F32
                }),
            min_subgroup_size: info.subgroup_min_size,
            max_subgroup_size: info.subgroup_max_size,
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_loop_iterations: [&info.name, &info.driver]
                .iter()
                .any(|s| s.contains("llvmpipe"))
                .then_some(LLVMPIPE_MAX_LOOP_ITERATIONS),
        }
    }
}

/// The optional features percept asks for whenever the adapter has them.
pub(crate) fn wanted_features() -> wgpu::Features {
    use wgpu::Features as F;
    F::SUBGROUP
        | F::SHADER_F16
        | F::SHADER_F64
        | F::TIMESTAMP_QUERY
        | F::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | F::TIMESTAMP_QUERY_INSIDE_PASSES
        | F::IMMEDIATES
        | F::PIPELINE_CACHE
        | F::EXPERIMENTAL_COOPERATIVE_MATRIX
}
