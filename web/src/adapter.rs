//! `navigator.gpu.requestAdapter()`, described. The page asks before it picks which worker build
//! to load (only a run on WebGPU needs the build with burn's wgpu stack); each worker asks again
//! for its own backend decision. web-sys's WebGPU bindings sit behind an unstable cfg; a few
//! dynamic property reads on the global scope (a window or a worker) suffice.

use hidden_neurons::backend::GpuAdapter;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// How long the adapter request may take before the caller goes on without WebGPU.
pub const PROBE_MS: i32 = 5000;

fn get(o: &JsValue, k: &str) -> Option<JsValue> {
    js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// A promise that resolves (to undefined) after `ms` milliseconds, in any global scope.
fn timeout(ms: i32) -> Option<js_sys::Promise> {
    let global: JsValue = js_sys::global().into();
    let set_timeout: js_sys::Function = get(&global, "setTimeout")?.dyn_into().ok()?;
    Some(js_sys::Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
    }))
}

/// The browser's WebGPU adapter, if it offers one within [`PROBE_MS`].
pub async fn probe() -> Option<GpuAdapter> {
    let navigator = get(&js_sys::global().into(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request: js_sys::Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    // A request that never settles counts as no adapter.
    let timer = timeout(PROBE_MS)?;
    let first = js_sys::Promise::race(&js_sys::Array::of2(&promise, &timer));
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
