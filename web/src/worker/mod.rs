//! The training worker: owns the data, the model and the recorder; trains in slices of about
//! 100 ms and yields between them so that the page's messages (pause, view, ...) get through.

mod device;
mod js;
mod session;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use hidden_neurons::data::{MNIST_FILES, MnistBytes, Split};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::protocol::{WorkerInput, WorkerOutput, check_bench, page_message};
use device::Devices;
use session::Session;

/// Where the page serves MNIST (trunk copies the repository's `data/mnist/`).
const DATA_DIR: &str = "data/mnist";
/// Work done between two yields to the worker's event loop.
const SLICE_MS: f64 = 100.0;

/// The worker binary's entry point.
pub fn start() {
    console_error_panic_hook::set_once();
    let inbox: Rc<RefCell<VecDeque<WorkerInput>>> = Rc::default();
    let queue = inbox.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        let text = ev.data().as_string().unwrap_or_default();
        match WorkerInput::from_json(&text) {
            Ok(msg) => queue.borrow_mut().push_back(msg),
            Err(e) => js::post(&WorkerOutput::Error { message: format!("the worker got a message it cannot read ({e}): {text:.80}") }),
        }
    });
    js::scope().set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    wasm_bindgen_futures::spawn_local(run(inbox));
}

async fn run(inbox: Rc<RefCell<VecDeque<WorkerInput>>>) {
    // Messages wait in the inbox meanwhile: the page sends nothing before Ready anyway.
    let mut devices = Devices::probe().await;
    js::post(&WorkerOutput::Ready { webgpu: devices.adapter.clone() });
    let split = match load_mnist().await {
        Ok(s) => s,
        Err(message) => {
            js::post(&WorkerOutput::Error { message });
            return;
        }
    };
    js::post(&WorkerOutput::DataLoaded { train: split.train.len(), test: split.test.len() });
    let split = Rc::new(split);
    let mut session: Option<Session> = None;
    loop {
        let next = inbox.borrow_mut().pop_front();
        if let Some(msg) = next {
            if let Err(message) = handle(msg, &split, &mut session, &mut devices).await {
                stop_run(session.as_mut(), message);
            }
            continue;
        }
        match session.as_mut() {
            Some(s) if s.wants_to_run() => {
                let until = js::now() + SLICE_MS;
                let mut outcome = Ok(());
                while outcome.is_ok() && s.wants_to_run() && js::now() < until {
                    outcome = s.step().await;
                }
                if outcome.is_ok() {
                    outcome = s.after_slice().await;
                }
                if let Err(message) = outcome {
                    stop_run(Some(s), message);
                }
                js::sleep_ms(0).await;
            }
            _ => js::sleep_ms(30).await,
        }
    }
}

/// Ends the run after an error it cannot go on from, and tells the page why.
fn stop_run(session: Option<&mut Session>, message: String) {
    if let Some(s) = session {
        s.stop();
    }
    js::post(&WorkerOutput::Stopped { message });
}

/// One message from the page; an `Err` stops the current run and is shown to the user.
async fn handle(msg: WorkerInput, split: &Rc<Split>, session: &mut Option<Session>, devices: &mut Devices) -> Result<(), String> {
    match msg {
        WorkerInput::Start { settings, view } => {
            *session = None;
            // The page sends only settings that pass; anything else (`window.hnSend`) is refused
            // here rather than panicking inside burn (a panic aborts the worker).
            settings.validate().map_err(|e| page_message(&e))?;
            let settings = settings.sanitized();
            let backend = devices.resolve(settings.backend).await;
            js::post(&WorkerOutput::Backend { name: backend.plan.name.clone(), note: backend.plan.note.clone() });
            *session = Some(Session::new(split.clone(), settings, view, backend));
        }
        WorkerInput::Pause => {
            if let Some(s) = session {
                s.paused = true;
                js::post(&WorkerOutput::Paused);
            }
        }
        WorkerInput::Resume => {
            if let Some(s) = session {
                s.paused = false;
                js::post(&WorkerOutput::Resumed);
            }
        }
        WorkerInput::Reset => {
            *session = None;
            js::post(&WorkerOutput::Reset);
        }
        WorkerInput::View { view } => {
            if let Some(s) = session {
                s.view = view;
                s.post_live().await?;
            }
        }
        WorkerInput::Analyze => match session {
            Some(s) => s.analyze().await?,
            None => js::post(&WorkerOutput::Error { message: "train a model first: the analysis needs one".into() }),
        },
        WorkerInput::Export => match session {
            Some(s) => js::post(&WorkerOutput::Results { json: s.results().await?.to_json() }),
            None => js::post(&WorkerOutput::Error { message: "nothing to export yet: train a model first".into() }),
        },
        WorkerInput::Bench { steps, batch_size, recording, backend } => {
            if let Err(message) = check_bench(steps, batch_size) {
                js::post(&WorkerOutput::Error { message });
                return Ok(());
            }
            let backend = devices.resolve(backend).await;
            js::post(&session::bench(split, backend, steps, batch_size, recording).await);
        }
    }
    Ok(())
}

/// Fetches and parses the four MNIST files; the error names the file and what went wrong.
async fn load_mnist() -> Result<Split, String> {
    let mut files = Vec::with_capacity(4);
    for name in MNIST_FILES {
        let url = format!("{DATA_DIR}/{name}");
        files.push(js::fetch_bytes(&url).await.map_err(|e| format!("could not load MNIST file {url}: {e}"))?);
    }
    MnistBytes { train_images: &files[0], train_labels: &files[1], test_images: &files[2], test_labels: &files[3] }
        .parse("mnist")
        .map_err(|e| format!("could not parse MNIST served from {DATA_DIR}/: {e}"))
}
