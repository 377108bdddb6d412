//! Choosing the burn backend at run time.

use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// wgpu when a real (non-software) GPU adapter exists, else the CPU backend.
    Auto,
    Wgpu,
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "wgpu" => Ok(Self::Wgpu),
            "cpu" => Ok(Self::Cpu),
            o => Err(format!("unknown backend '{o}' (auto, wgpu, cpu)")),
        }
    }
}

/// The device chosen and why, in one line for the user.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub device: Device,
    /// Short name for results.json, e.g. "wgpu (NVIDIA H100 80GB HBM3, Vulkan)".
    pub name: String,
    pub reason: String,
}

/// Picks the device. With `Auto`, wgpu runs only on a real GPU adapter: on a software Vulkan
/// adapter (lavapipe) wgpu is 20x slower per MLP step than burn's CPU backend.
#[cfg(feature = "native")]
pub fn choose(choice: BackendChoice) -> Chosen {
    let cpu = |reason: String| Chosen { device: Device::flex(), name: "flex (CPU)".into(), reason };
    match choice {
        BackendChoice::Cpu => cpu("--backend cpu: burn's flex CPU backend".into()),
        BackendChoice::Wgpu => {
            let adapter = best_adapter();
            let what = adapter.as_ref().map(|a| a.describe()).unwrap_or_else(|| "no adapter found; wgpu will fail to start".into());
            let kind = match &adapter {
                Some(a) if a.software => DeviceKind::Cpu,
                _ => DeviceKind::DefaultDevice,
            };
            Chosen { device: Device::wgpu(kind), name: format!("wgpu ({what})"), reason: format!("--backend wgpu: {what}") }
        }
        BackendChoice::Auto => match best_adapter() {
            Some(a) if !a.software => Chosen {
                device: Device::wgpu(DeviceKind::DefaultDevice),
                name: format!("wgpu ({})", a.describe()),
                reason: format!("auto: GPU adapter {}, using wgpu", a.describe()),
            },
            Some(a) => cpu(format!(
                "auto: only a software adapter ({}) is present, using burn's flex CPU backend (faster than wgpu on a CPU)",
                a.describe()
            )),
            None => cpu("auto: no GPU adapter found, using burn's flex CPU backend".into()),
        },
    }
}

#[derive(Clone, Debug)]
struct Adapter {
    name: String,
    api: String,
    software: bool,
}

impl Adapter {
    fn describe(&self) -> String {
        format!("{}, {}{}", self.name, self.api, if self.software { ", software" } else { "" })
    }
}

/// The most capable adapter wgpu can see: a discrete or integrated GPU over anything else.
#[cfg(feature = "native")]
fn best_adapter() -> Option<Adapter> {
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
            (rank, Adapter { name: info.name, api: format!("{:?}", info.backend), software: rank == 4 })
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, a)| a)
}
