//! Choosing the burn backend at run time.

#[cfg(feature = "native")]
use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    /// wgpu when a real (non-software) GPU adapter exists, else the CPU backend.
    Auto,
    Wgpu,
    Cpu,
}

impl BackendChoice {
    /// What [`str::parse`] reads back.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Wgpu => "wgpu",
            Self::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Auto, Self::Wgpu, Self::Cpu].into_iter().find(|c| c.name() == s).ok_or_else(|| format!("unknown backend '{s}' (auto, wgpu, cpu)"))
    }
}

/// A GPU adapter, as wgpu (native) or the browser's WebGPU describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuAdapter {
    pub name: String,
    /// Vulkan, Metal, WebGPU, ...
    pub api: String,
    /// A CPU implementation (lavapipe, SwiftShader): slower than burn's CPU backends.
    pub software: bool,
}

impl GpuAdapter {
    pub fn describe(&self) -> String {
        format!("{}, {}{}", self.name, self.api, if self.software { ", software" } else { "" })
    }
}

/// Whether to train on `adapter`'s GPU, and why, in one line for the user. `asked` is how the
/// user makes the choice (`--backend`, `backend=`) and `cpu` the CPU backend's name. With `Auto`
/// the GPU runs only on a real adapter: on a software one, wgpu is 20x slower per MLP step than
/// burn's CPU backend. `Wgpu` uses any adapter, and falls back to the CPU only when there is none.
pub fn decide(choice: BackendChoice, adapter: Option<&GpuAdapter>, asked: &str, cpu: &str) -> (bool, String) {
    match (choice, adapter) {
        (BackendChoice::Cpu, _) => (false, format!("{asked}cpu: {cpu}")),
        (BackendChoice::Wgpu, Some(a)) => (true, format!("{asked}wgpu: GPU adapter {}", a.describe())),
        (BackendChoice::Wgpu, None) => (false, format!("{asked}wgpu, but no GPU adapter was found: using {cpu}")),
        (BackendChoice::Auto, Some(a)) if !a.software => (true, format!("auto: GPU adapter {}, using wgpu", a.describe())),
        (BackendChoice::Auto, Some(a)) => (
            false,
            format!("auto: only a software adapter ({}) is present, using {cpu} (faster than wgpu on a CPU; {asked}wgpu uses it anyway)", a.describe()),
        ),
        (BackendChoice::Auto, None) => (false, format!("auto: no GPU adapter found, using {cpu}")),
    }
}

/// The device chosen and why, in one line for the user.
#[cfg(feature = "native")]
#[derive(Clone, Debug)]
pub struct Chosen {
    pub device: Device,
    /// Short name for results.json, e.g. "wgpu (NVIDIA H100 80GB HBM3, Vulkan)".
    pub name: String,
    pub reason: String,
}

/// Picks the device (see [`decide`]).
#[cfg(feature = "native")]
pub fn choose(choice: BackendChoice) -> Chosen {
    let adapter = best_adapter();
    let (gpu, reason) = decide(choice, adapter.as_ref(), "--backend ", "burn's flex CPU backend");
    match adapter {
        Some(a) if gpu => {
            let kind = if a.software { DeviceKind::Cpu } else { DeviceKind::DefaultDevice };
            Chosen { device: Device::wgpu(kind), name: format!("wgpu ({})", a.describe()), reason }
        }
        _ => Chosen { device: Device::flex(), name: "flex (CPU)".into(), reason },
    }
}

/// The most capable adapter wgpu can see: a discrete or integrated GPU over anything else.
#[cfg(feature = "native")]
fn best_adapter() -> Option<GpuAdapter> {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::default();
    let adapters = burn::tensor::read_sync(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .iter()
        .map(|a| {
            let info = a.get_info();
            let rank = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => 0,
                wgpu::DeviceType::IntegratedGpu => 1,
                wgpu::DeviceType::VirtualGpu => 2,
                wgpu::DeviceType::Other => 3,
                wgpu::DeviceType::Cpu => 4,
            };
            (rank, GpuAdapter { name: info.name, api: format!("{:?}", info.backend), software: rank == 4 })
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(software: bool) -> GpuAdapter {
        GpuAdapter { name: "A".into(), api: "WebGPU".into(), software }
    }

    #[test]
    fn auto_takes_only_a_real_gpu_and_wgpu_takes_any() {
        let (real, soft) = (adapter(false), adapter(true));
        let gpu = |choice, a: Option<&GpuAdapter>| decide(choice, a, "backend=", "ndarray").0;
        assert!(gpu(BackendChoice::Auto, Some(&real)));
        assert!(!gpu(BackendChoice::Auto, Some(&soft)));
        assert!(!gpu(BackendChoice::Auto, None));
        assert!(gpu(BackendChoice::Wgpu, Some(&soft)));
        assert!(!gpu(BackendChoice::Wgpu, None));
        assert!(!gpu(BackendChoice::Cpu, Some(&real)));
        let (_, why) = decide(BackendChoice::Auto, Some(&soft), "backend=", "ndarray");
        assert!(why.contains("software") && why.contains("backend=wgpu"), "{why}");
    }
}
