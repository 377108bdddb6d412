//! The few browser calls the worker makes.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::DedicatedWorkerGlobalScope;

use crate::protocol::WorkerOutput;

pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub fn post(msg: &WorkerOutput) {
    // Posting a string to our own page cannot fail.
    let _ = scope().post_message(&JsValue::from_str(&msg.to_json()));
}

/// Posts bytes to whoever started this worker (a helper to its training worker).
pub fn post_bytes(bytes: &[u8]) {
    let _ = scope().post_message(&js_sys::Uint8Array::from(bytes));
}

/// Logical cores the browser reports (at least 1).
pub fn cores() -> usize {
    (scope().navigator().hardware_concurrency() as usize).max(1)
}

/// Milliseconds, for timing.
pub fn now() -> f64 {
    scope().performance().map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

/// Yields to the event loop for at least `ms` milliseconds.
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// GETs `url` (relative to the worker's script, or an object URL) and returns the body, refusing
/// one over `limit` bytes before it is copied into the worker's memory.
pub async fn fetch_bytes(url: &str, limit: u64) -> Result<Vec<u8>, String> {
    let resp = JsFuture::from(scope().fetch_with_str(url)).await.map_err(describe)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(describe)?;
    if !resp.ok() {
        return Err(format!("HTTP {} {}", resp.status(), resp.status_text()));
    }
    let too_large = |n: u64| format!("{n} bytes, more than the {} MiB a file may have here", limit >> 20);
    if let Some(n) = resp.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok()) {
        if n > limit {
            return Err(too_large(n));
        }
    }
    let buf: js_sys::ArrayBuffer = JsFuture::from(resp.array_buffer().map_err(describe)?).await.map_err(describe)?.unchecked_into();
    let n = buf.byte_length() as u64;
    if n > limit {
        return Err(too_large(n));
    }
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

fn describe(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}
