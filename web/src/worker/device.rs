//! Which burn device a run trains on: the browser's WebGPU adapter through burn's wgpu backend,
//! or ndarray on the CPU. The decision itself is [`crate::protocol::plan`].

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use hidden_neurons::backend::{BackendChoice, GpuAdapter};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::js;
use crate::protocol::{CPU_BACKEND, Plan, plan};

/// How long the adapter request may take before the worker goes on without WebGPU (the page
/// waits for the worker's Ready).
const PROBE_MS: i32 = 5000;

/// The device a run uses, and what the page shows about it.
#[derive(Clone)]
pub struct Backend {
    /// Without autodiff; sessions add it.
    pub device: Device,
    /// What actually runs (the CPU when WebGPU failed to start).
    pub plan: Plan,
}

/// burn's CPU backend in the browser. ndarray is deprecated in favour of flex, but in wasm it
/// trains about 1.5x faster (measured in TOOLCHAIN.md).
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
        Self { adapter: probe_adapter().await, webgpu: None }
    }

    /// The device for `choice`. When WebGPU fails to start, the run goes on on the CPU and the
    /// note says why.
    pub async fn resolve(&mut self, choice: BackendChoice) -> Backend {
        let p = plan(choice, self.adapter.as_ref());
        if !p.webgpu {
            return Backend { device: cpu(), plan: p };
        }
        if self.webgpu.is_none() {
            let started = Device::wgpu_options().graphics_api(WgpuBackend::WebGpu).init_async().await;
            self.webgpu = Some(started.map_err(|e| e.to_string()));
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

/// `navigator.gpu.requestAdapter()` in the worker, described. web-sys's WebGPU bindings sit
/// behind an unstable cfg; a few dynamic property reads suffice.
async fn probe_adapter() -> Option<GpuAdapter> {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null());
    let navigator: JsValue = js::scope().navigator().into();
    let gpu = get(&navigator, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    // A request that never settles counts as no adapter.
    let timeout = js_sys::Promise::new(&mut |resolve, _| {
        let _ = js::scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, PROBE_MS);
    });
    let first = js_sys::Promise::race(&js_sys::Array::of2(&promise, &timeout));
    let adapter = JsFuture::from(first).await.ok().filter(|a| !a.is_null() && !a.is_undefined())?;
    let info = get(&adapter, "info").unwrap_or(JsValue::UNDEFINED);
    let text = |k: &str| get(&info, k).and_then(|v| v.as_string()).unwrap_or_default();
    let (vendor, architecture, description) = (text("vendor"), text("architecture"), text("description"));
    // Chromium reports SwiftShader as a fallback adapter (older versions only on the adapter).
    let fallback = [get(&info, "isFallbackAdapter"), get(&adapter, "isFallbackAdapter")].into_iter().flatten().any(|v| v.is_truthy());
    let all = format!("{vendor} {architecture} {description}").to_lowercase();
    let software = fallback || ["swiftshader", "llvmpipe", "lavapipe", "software"].iter().any(|s| all.contains(s));
    let name = if !description.is_empty() {
        description
    } else {
        let n = format!("{vendor} {architecture}").trim().to_string();
        if n.is_empty() { "unnamed adapter".into() } else { n }
    };
    Some(GpuAdapter { name, api: "WebGPU".into(), software })
}
