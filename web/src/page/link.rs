//! The page's side of the worker: starting it, sending typed messages, and turning its answers
//! into signal updates (mirrored into `window.hn` for the browser tests and curious users).

use std::cell::RefCell;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

use super::state::{AppState, Phase};
use crate::protocol::{WorkerInput, WorkerOutput};

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// How long the worker may take to say it is ready before the page reports it.
const READY_TIMEOUT_MS: i32 = 30_000;

pub fn send(msg: &WorkerInput) {
    WORKER.with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            let _ = w.post_message(&JsValue::from_str(&msg.to_json()));
        }
    });
}

/// Starts the worker (trunk's loader shim next to the page) and wires its messages to `state`.
pub fn start(state: AppState) {
    let worker = match Worker::new("./worker_loader.js") {
        Ok(w) => w,
        Err(e) => {
            state.fail(format!("The training worker could not be started ({}). This page needs a browser with Web Worker and WebAssembly support.", describe(&e)));
            return;
        }
    };
    let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let text = ev.data().as_string().unwrap_or_default();
        mirror(&text);
        match WorkerOutput::from_json(&text) {
            Ok(msg) => state.apply(msg),
            Err(e) => state.fail(format!("unreadable message from the worker: {e}")),
        }
    });
    worker.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    // A script that fails to load gives a plain Event, a crash inside it an ErrorEvent.
    let onerror = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        ev.prevent_default();
        let what = js_sys::Reflect::get(&ev, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_else(|| "its script (worker_loader.js) could not be loaded".into());
        state.fail(if state.phase.get_untracked() == Phase::Starting {
            format!("The training worker failed to start: {what}")
        } else {
            format!("The training worker crashed: {what}. Reload the page to start again.")
        });
    });
    worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
    onerror.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
    // `window.hnSend(json)`: any WorkerInput, for the browser tests and the benchmark.
    let hn_send = Closure::<dyn Fn(String)>::new(move |text: String| match WorkerInput::from_json(&text) {
        Ok(msg) => send(&msg),
        Err(e) => state.fail(format!("hnSend: not a worker message ({e})")),
    });
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"hnSend".into(), hn_send.as_ref());
    }
    hn_send.forget();
    set_timeout(
        move || {
            if state.phase.get_untracked() == Phase::Starting {
                state.fail("The training worker did not start within 30 s (its script or WebAssembly failed to load).".into());
            }
        },
        std::time::Duration::from_millis(READY_TIMEOUT_MS as u64),
    );
}

/// `window.hn`: the latest message of each kind, every progress point, every error.
fn mirror(text: &str) {
    let Some(window) = web_sys::window() else { return };
    let hn = match js_sys::Reflect::get(&window, &"hn".into()) {
        Ok(v) if v.is_object() => v,
        _ => {
            let o: JsValue = js_sys::Object::new().into();
            let _ = js_sys::Reflect::set(&o, &"points".into(), &js_sys::Array::new());
            let _ = js_sys::Reflect::set(&o, &"errors".into(), &js_sys::Array::new());
            let _ = js_sys::Reflect::set(&window, &"hn".into(), &o);
            o
        }
    };
    let Ok(msg) = js_sys::JSON::parse(text) else { return };
    let kind = js_sys::Reflect::get(&msg, &"type".into()).ok().and_then(|k| k.as_string()).unwrap_or_default();
    let push = |list: &str, v: &JsValue| {
        if let Ok(a) = js_sys::Reflect::get(&hn, &list.into()) {
            a.unchecked_into::<js_sys::Array>().push(v);
        }
    };
    match kind.as_str() {
        "progress" => push("points", &js_sys::Reflect::get(&msg, &"point".into()).unwrap_or(JsValue::NULL)),
        "error" => push("errors", &js_sys::Reflect::get(&msg, &"message".into()).unwrap_or(JsValue::NULL)),
        _ => {}
    }
    let _ = js_sys::Reflect::set(&hn, &kind.into(), &msg);
}

pub fn describe(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}
