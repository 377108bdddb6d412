//! The page's side of the worker: starting it, sending typed messages, and turning its answers
//! into signal updates (mirrored into `window.hn` for the browser tests and curious users).

use std::cell::{Cell, RefCell};

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

use super::state::{AppState, Phase};
use crate::protocol::{DataChoice, DataSource, WorkerInput, WorkerOutput};

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    static BUILD: Cell<Option<WorkerBuild>> = const { Cell::new(None) };
    /// Counts the workers started, so that a timeout only speaks for its own.
    static GENERATION: Cell<u32> = const { Cell::new(0) };
    /// The user's files that loaded last: names and object URLs, kept for a worker started later.
    static FILES: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// Files given since, on their way to the worker: they replace `FILES` once they load.
    static PENDING: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
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

/// Switches to data set `choice`: served sets are loaded at once; own files wait for the user
/// (the file picker or a drop). The current run, if any, ends.
pub fn choose_data(state: AppState, choice: DataChoice) {
    state.forget_data(choice);
    if choice == DataChoice::Own {
        let resent = resend_files();
        state.phase.set(if resent { Phase::Loading } else { Phase::NoData });
    } else {
        state.phase.set(Phase::Loading);
        send(&WorkerInput::Load { source: DataSource::Served { data: choice } });
    }
}

/// The user gave files (picked or dropped): they become the data set once the worker has checked
/// them. Data already loaded stays usable (and a run on it goes on) until then, so a bad file
/// costs nothing but a message.
pub fn load_own_files(state: AppState, files: &web_sys::FileList) {
    if state.data.with_untracked(|d| d.is_none()) {
        state.forget_data(DataChoice::Own);
        state.phase.set(Phase::Loading);
    }
    load_files(files);
}

/// Hands the user's files to the worker as object URLs (nothing leaves the browser); the worker
/// tells them apart by name, checks them and answers `DataLoaded` or `DataFailed`.
pub fn load_files(files: &web_sys::FileList) {
    revoke(&PENDING);
    let mut named = Vec::new();
    for i in 0..files.length() {
        let Some(file) = files.get(i) else { continue };
        if let Ok(url) = web_sys::Url::create_object_url_with_blob(&file) {
            named.push((file.name(), url));
        }
    }
    PENDING.with(|f| *f.borrow_mut() = named);
    resend_files();
}

fn revoke(files: &'static std::thread::LocalKey<RefCell<Vec<(String, String)>>>) {
    for (_, url) in files.with(|f| std::mem::take(&mut *f.borrow_mut())) {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
}

/// Files on their way become the loaded ones, or are let go, as the worker answers.
fn settle_files(msg: &WorkerOutput) {
    let pending = PENDING.with(|p| !p.borrow().is_empty());
    match msg {
        WorkerOutput::DataLoaded { data: DataChoice::Own, .. } if pending => {
            revoke(&FILES);
            FILES.with(|f| *f.borrow_mut() = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut())));
        }
        WorkerOutput::DataFailed { data: DataChoice::Own, .. } => revoke(&PENDING),
        _ => {}
    }
}

/// Sends the files on their way, else those that loaded last (to a worker started since);
/// false when there are none.
pub fn resend_files() -> bool {
    let pending = PENDING.with(|f| f.borrow().clone());
    let files = if pending.is_empty() { FILES.with(|f| f.borrow().clone()) } else { pending };
    if files.is_empty() {
        return false;
    }
    send(&WorkerInput::Load { source: DataSource::Files { files } });
    true
}

/// The two builds of the worker (trunk's loader shims next to the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerBuild {
    /// ndarray only: what a run on the CPU needs (about a fifth of the other's size).
    Cpu,
    /// With burn's wgpu stack, for a run on WebGPU.
    WebGpu,
}

impl WorkerBuild {
    fn script(self) -> &'static str {
        match self {
            WorkerBuild::Cpu => "./worker_loader.js",
            WorkerBuild::WebGpu => "./worker_gpu_loader.js",
        }
    }

    /// The build a run with the URL's backend choice needs on this browser's adapter (the CPU
    /// build once the WebGPU one failed to load).
    pub fn for_state(state: AppState) -> Self {
        if state.planned_backend().webgpu { WorkerBuild::WebGpu } else { WorkerBuild::Cpu }
    }
}

/// The build of the running worker.
pub fn running_build() -> Option<WorkerBuild> {
    BUILD.with(|b| b.get())
}

/// Asks the browser for its WebGPU adapter, then starts the worker build the URL's backend choice
/// needs, and offers `window.hnSend` for the browser tests and the benchmark.
pub fn start(state: AppState) {
    // `window.hnSend(json)`: any WorkerInput, for the browser tests and the benchmark.
    let hn_send = Closure::<dyn Fn(String)>::new(move |text: String| match WorkerInput::from_json(&text) {
        Ok(msg) => send(&msg),
        Err(e) => state.fail(format!("hnSend: not a worker message ({e})")),
    });
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"hnSend".into(), hn_send.as_ref());
    }
    hn_send.forget();
    wasm_bindgen_futures::spawn_local(async move {
        let adapter = crate::adapter::probe().await;
        state.adapter.set(adapter);
        spawn(state, WorkerBuild::for_state(state));
    });
}

/// Starts worker `build` (ending the running one, and with it any run) and wires its messages to
/// `state`. The worker says Ready, then the page asks it for the data set.
pub fn spawn(state: AppState, build: WorkerBuild) {
    WORKER.with(|w| {
        if let Some(old) = w.borrow_mut().take() {
            old.terminate();
        }
    });
    state.phase.set(Phase::Starting);
    let script = build.script();
    let worker = match Worker::new(script) {
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
            Ok(msg) => {
                settle_files(&msg);
                let ready = matches!(msg, WorkerOutput::Ready { .. });
                state.apply(msg);
                // A worker that is ready loads the URL's data set.
                if ready {
                    choose_data(state, state.url.with_untracked(|u| u.settings.data));
                }
            }
            Err(e) => state.fail(format!("unreadable message from the worker: {e}")),
        }
    });
    worker.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    // A script that fails to load gives a plain Event, a crash inside it an ErrorEvent.
    let onerror = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
        ev.prevent_default();
        let message = js_sys::Reflect::get(&ev, &"message".into()).ok().and_then(|m| m.as_string());
        // The WebGPU build is optional (served later, or not at all): a page without it trains on
        // the CPU build, and any run waiting for it starts there.
        if build == WorkerBuild::WebGpu && message.is_none() && state.phase.get_untracked() == Phase::Starting {
            state.gpu_worker_missing.set(true);
            spawn(state, WorkerBuild::Cpu);
            state.show_planned_backend();
            return;
        }
        let what = message.unwrap_or_else(|| format!("its script ({}) could not be loaded", script.trim_start_matches("./")));
        state.fail(if state.phase.get_untracked() == Phase::Starting {
            format!("The training worker failed to start: {what}")
        } else {
            format!("The training worker crashed: {what}. Reload the page to start again.")
        });
    });
    worker.set_onerror(Some(onerror.as_ref().unchecked_ref()));
    onerror.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
    BUILD.with(|b| b.set(Some(build)));
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    set_timeout(
        move || {
            let current = GENERATION.with(|g| g.get()) == generation;
            if current && state.phase.get_untracked() == Phase::Starting {
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
