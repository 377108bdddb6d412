//! The training worker: owns the data, the model and the recorder; trains in slices of about
//! 100 ms and yields between them so that the page's messages (pause, view, ...) get through.

mod device;
mod helper;
mod js;
mod pool;
mod session;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use hidden_neurons::data::{MAX_IDX_FILE_BYTES, MNIST_FILES, MnistBytes, Split, mnist_file_roles};
use hidden_neurons::settings::{MNIST_TAKES, MNIST_VALUES, check_image_values};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::protocol::{DataChoice, DataSource, WorkerInput, WorkerOutput, check_bench, page_message};
use device::Devices;
use session::Session;

/// Work done between two yields to the worker's event loop.
const SLICE_MS: f64 = 100.0;

/// The worker binary's entry point.
pub fn start() {
    console_error_panic_hook::set_once();
    if helper::is_helper() {
        return helper::start();
    }
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
    // The page asks for a data set (`Load`) once it knows which one its URL names.
    let mut data: Option<(DataChoice, Rc<Split>)> = None;
    let mut session: Option<Session> = None;
    loop {
        let next = inbox.borrow_mut().pop_front();
        if let Some(msg) = next {
            if let WorkerInput::Load { source } = msg {
                // The user's own files are checked before anything is dropped: a bad drop keeps
                // the loaded data and the run on it. A served data set replaces it at once (the
                // page has already let go of the old one).
                let keeps = matches!(source, DataSource::Files { .. }) && data.is_some();
                if !keeps {
                    session = None;
                    data = None;
                }
                match load(&source).await {
                    Ok(split) => {
                        session = None;
                        js::post(&WorkerOutput::DataLoaded { data: source.choice(), name: split.name.clone(), train: split.train.len(), test: split.test.len() });
                        data = Some((source.choice(), Rc::new(split)));
                    }
                    Err(message) => js::post(&WorkerOutput::DataFailed { data: source.choice(), message, kept: keeps }),
                }
                continue;
            }
            if let Err(message) = handle(msg, data.as_ref(), &mut session, &mut devices).await {
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
async fn handle(msg: WorkerInput, data: Option<&(DataChoice, Rc<Split>)>, session: &mut Option<Session>, devices: &mut Devices) -> Result<(), String> {
    let loaded = |wanted: Option<DataChoice>| match data {
        Some((choice, split)) if wanted.is_none_or(|w| w == *choice) => Ok(split.clone()),
        Some((choice, _)) => Err(format!("{} is loaded, not {}: choose the data set again", choice.label(), wanted.map(|w| w.label()).unwrap_or_default())),
        None => Err("no data set is loaded yet".to_string()),
    };
    match msg {
        WorkerInput::Load { .. } => unreachable!("run() loads data itself"),
        WorkerInput::Start { settings, view } => {
            *session = None;
            let split = loaded(Some(settings.data))?;
            // The page sends only settings that pass; anything else (`window.hnSend`) is refused
            // here rather than panicking inside burn (a panic aborts the worker).
            settings.validate_on(split.train.len(), split.test.len()).map_err(|e| page_message(&e))?;
            let settings = settings.sanitized();
            let backend = devices.resolve(settings.backend).await;
            js::post(&WorkerOutput::Backend { name: backend.plan.name.clone(), note: backend.plan.note.clone() });
            *session = Some(Session::new(split, settings, view, backend));
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
        WorkerInput::Analyze { workers } => match session {
            Some(s) => s.analyze(workers).await?,
            None => js::post(&WorkerOutput::Error { message: "train a model first: the analysis needs one".into() }),
        },
        WorkerInput::Export => match session {
            Some(s) => js::post(&WorkerOutput::Results { json: s.results().await?.to_json() }),
            None => js::post(&WorkerOutput::Error { message: "nothing to export yet: train a model first".into() }),
        },
        WorkerInput::Bench { steps, batch_size, recording, backend, model } => {
            if let Err(message) = check_bench(steps, batch_size) {
                js::post(&WorkerOutput::Error { message });
                return Ok(());
            }
            let split = loaded(None)?;
            let backend = devices.resolve(backend).await;
            js::post(&session::bench(&split, backend, model, steps, batch_size, recording).await);
        }
    }
    Ok(())
}

/// Fetches, parses and checks a data set's four IDX files; the error names the file and what
/// went wrong.
async fn load(source: &DataSource) -> Result<Split, String> {
    let (files, label): (Vec<(String, String)>, String) = match source {
        DataSource::Served { data } => {
            let dir = data.served_dir().ok_or("own data comes as four files dropped onto the page")?;
            (MNIST_FILES.iter().map(|f| (format!("{dir}/{f}"), format!("{dir}/{f}"))).collect(), data.label().to_string())
        }
        DataSource::Files { files } => {
            let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
            let roles = mnist_file_roles(&names)?;
            (roles.iter().map(|&i| files[i].clone()).collect(), "own files".to_string())
        }
    };
    let mut bytes = Vec::with_capacity(4);
    for (name, url) in &files {
        bytes.push(js::fetch_bytes(url, MAX_IDX_FILE_BYTES).await.map_err(|e| {
            let hint = if matches!(source, DataSource::Served { data: DataChoice::FashionMnist }) {
                " (this copy of the page does not serve Fashion-MNIST: scripts/build-web.sh copies it from Debian's dataset-fashion-mnist)"
            } else {
                ""
            };
            format!("could not load {name}: {e}{hint}")
        })?);
    }
    let names: [&str; 4] = std::array::from_fn(|i| files[i].0.as_str());
    let split = MnistBytes { train_images: &bytes[0], train_labels: &bytes[1], test_images: &bytes[2], test_labels: &bytes[3] }
        .parse_named(names, &label)
        .map_err(|e| format!("could not parse {label}: {e}"))?;
    check_image_values(split.train.features, MNIST_VALUES, MNIST_TAKES).map_err(|p| format!("{}: {p}", names[0]))?;
    Ok(split)
}
