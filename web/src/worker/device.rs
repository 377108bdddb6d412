//! Which burn device a run trains on: the browser's WebGPU adapter through burn's wgpu backend
//! (in the worker build with the `webgpu` feature), or ndarray on the CPU. The decision itself is
//! [`crate::protocol::plan`].

use burn::tensor::Device;
use hidden_neurons::backend::{BackendChoice, GpuAdapter};

use crate::protocol::{CPU_BACKEND, Plan, plan};

/// The device a run uses, and what the page shows about it.
#[derive(Clone)]
pub struct Backend {
    /// Without autodiff; sessions add it.
    pub device: Device,
    /// What actually runs (the CPU when WebGPU failed to start).
    pub plan: Plan,
}

/// burn's CPU backend in the browser. ndarray is deprecated in favour of flex, but in wasm it
/// trains about 1.5x faster (measured: docs/building.md).
#[allow(deprecated)]
pub fn cpu() -> Device {
    Device::ndarray()
}

/// The worker's devices: the WebGPU adapter it saw at start, and burn's WebGPU device once it is
/// up (burn's wgpu runtime starts once per worker).
pub struct Devices {
    pub adapter: Option<GpuAdapter>,
    webgpu: Option<Result<Device, String>>,
}

impl Devices {
    pub async fn probe() -> Self {
        Self { adapter: crate::adapter::probe().await, webgpu: None }
    }

    /// The device for `choice`. When WebGPU fails to start, the run goes on on the CPU and the
    /// note says why.
    pub async fn resolve(&mut self, choice: BackendChoice) -> Backend {
        let p = plan(choice, self.adapter.as_ref());
        if !p.webgpu {
            return Backend { device: cpu(), plan: p };
        }
        if self.webgpu.is_none() {
            self.webgpu = Some(start_webgpu().await);
        }
        match self.webgpu.as_ref().expect("just set") {
            Ok(device) => Backend { device: device.clone(), plan: p },
            Err(e) => Backend {
                device: cpu(),
                plan: Plan {
                    note: format!("WebGPU did not start ({e}): training runs on burn's {CPU_BACKEND} backend."),
                    ..plan(BackendChoice::Cpu, None)
                },
            },
        }
    }
}

/// burn's wgpu runtime on the browser's WebGPU (once per worker).
#[cfg(feature = "webgpu")]
async fn start_webgpu() -> Result<Device, String> {
    use burn::tensor::wgpu::WgpuBackend;
    Device::wgpu_options().graphics_api(WgpuBackend::WebGpu).init_async().await.map_err(|e| e.to_string())
}

/// The CPU build of the worker has no WebGPU backend: the page loads the WebGPU build for a run
/// that asks for WebGPU, so only a message sent by hand (`window.hnSend`) gets here.
#[cfg(not(feature = "webgpu"))]
async fn start_webgpu() -> Result<Device, String> {
    Err("this is the CPU build of the worker, without WebGPU".into())
}
