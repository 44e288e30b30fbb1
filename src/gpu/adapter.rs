//! Choosing an adapter: honour the backend and name filters, prefer real GPUs, and
//! prefer the native compute APIs over GL.

use crate::error::{Error, Result};

/// The backends `WGPU_BACKEND` names (a comma-separated list, as wgpu reads it), `None` where it
/// is unset or empty. wgpu skips a name it does not know with a warning, and a list of nothing
/// but unknown names would then find no adapter and blame the machine: here it is an error that
/// names the value.
pub(crate) fn backends_from_env() -> Result<Option<wgpu::Backends>> {
    let list = std::env::var("WGPU_BACKEND").unwrap_or_default();
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let mut backends = wgpu::Backends::empty();
    for name in names {
        let one = wgpu::Backends::from_comma_list(name);
        if one.is_empty() {
            return Err(Error::invalid(
                "Gpu::new",
                format!(
                    "WGPU_BACKEND=`{list}` names an unknown backend `{name}`; use vulkan, metal, \
                     dx12 or gl, or a comma-separated list of them"
                ),
            ));
        }
        backends |= one;
    }
    Ok(Some(backends))
}

/// Picks the best adapter the instance offers, or says why there is none.
pub(crate) fn select(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    name_filter: Option<String>,
) -> Result<wgpu::Adapter> {
    let name_filter = name_filter.map(|s| s.to_lowercase());
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let best = adapters
        .into_iter()
        .filter(|a| match &name_filter {
            Some(want) => a.get_info().name.to_lowercase().contains(want.as_str()),
            None => true,
        })
        .max_by_key(|a| rank(&a.get_info()));
    best.ok_or_else(|| {
        let mut filter = String::new();
        if backends != wgpu::Backends::all() {
            filter.push_str(&format!(" for backends {backends:?}"));
        }
        if let Some(name) = name_filter {
            filter.push_str(&format!(
                " whose name contains `{name}` (WGPU_ADAPTER_NAME)"
            ));
        }
        Error::NoAdapter { filter }
    })
}

/// Higher is better: device type first, then backend. GL lacks the subgroup and f16 features
/// the fast paths use, so a software Vulkan driver beats a GL one.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}
