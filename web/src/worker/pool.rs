//! A pool of helper workers ([`super::helper`]) that share an analysis' units out over the
//! machine's cores: WebAssembly threads would need a cross-origin isolated page (which an
//! embedded figure on a blog is not) and a std built with atomics; workers need neither. The
//! training worker only coordinates: it hands each idle helper the costliest unit left, passes
//! the helpers' progress on, and runs what is left itself if no helper starts or all of them
//! crash. Units are independent ([`hidden_neurons::run::Unit`]), so the results are the same as
//! the analysis run in one worker (tests/analysis_units.rs).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use hidden_neurons::run::{Unit, UnitResult};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker, WorkerOptions};

use super::js;
use crate::protocol::{HELPER_NAME, HelperInput, HelperOutput};

/// How long a helper may take to start and take the model and data in before its share goes to
/// the others, or to the training worker (a helper compiles the worker's WebAssembly, usually
/// from the browser's cache).
const READY_MS: f64 = 20_000.0;

enum Incoming {
    Message(HelperOutput),
    /// The helper died (a panic, out of memory) or could not be started; why, in words.
    Lost(String),
}

struct Helper {
    worker: Worker,
    /// Said it has the model and data ([`HelperOutput::SetUp`]): units go only to such helpers.
    set_up: bool,
    /// Units it finished.
    done: usize,
    alive: bool,
    unit: Option<Unit>,
    _closures: (Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(web_sys::Event)>),
}

pub struct Pool {
    helpers: Vec<Helper>,
    inbox: Rc<RefCell<VecDeque<(usize, Incoming)>>>,
}

/// The CPU build of the worker, next to whichever build runs this code (the WebGPU build's
/// helpers analyse on the CPU, as it does).
fn helper_script() -> Option<String> {
    // Through Reflect: web-sys' `WorkerLocation` feature would rebuild web-sys and everything
    // on it (burn's wgpu stack in the WebGPU build) for this one string.
    let location = js_sys::Reflect::get(&js::scope(), &"location".into()).ok()?;
    let here = js_sys::Reflect::get(&location, &"href".into()).ok()?.as_string()?;
    web_sys::Url::new_with_base("worker_loader.js", &here).ok().map(|u| u.href())
}

impl Pool {
    /// Starts `n` helpers; fewer (or none) where the browser cannot start a worker from a worker.
    pub fn start(n: usize) -> Self {
        let inbox: Rc<RefCell<VecDeque<(usize, Incoming)>>> = Rc::default();
        let mut helpers = Vec::new();
        let Some(script) = helper_script() else { return Self { helpers, inbox } };
        for i in 0..n {
            let opts = WorkerOptions::new();
            opts.set_name(HELPER_NAME);
            let Ok(worker) = Worker::new_with_options(&script, &opts) else { break };
            let q = inbox.clone();
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let bytes = js_sys::Uint8Array::new(&ev.data()).to_vec();
                q.borrow_mut().push_back((
                    i,
                    match HelperOutput::from_bytes(&bytes) {
                        Ok(m) => Incoming::Message(m),
                        Err(e) => Incoming::Lost(format!("unreadable message ({e})")),
                    },
                ));
            });
            let q = inbox.clone();
            let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
                ev.prevent_default();
                let message = js_sys::Reflect::get(&ev, &"message".into()).ok().and_then(|m| m.as_string());
                q.borrow_mut().push_back((i, Incoming::Lost(message.unwrap_or_else(|| "its script did not load".into()))));
            });
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            helpers.push(Helper { worker, set_up: false, done: 0, alive: true, unit: None, _closures: (on_message, on_error) });
        }
        Self { helpers, inbox }
    }

    /// Helpers started (some may not have started up yet).
    pub fn len(&self) -> usize {
        self.helpers.len()
    }

    /// Helpers that finished at least one unit.
    pub fn helped(&self) -> usize {
        self.helpers.iter().filter(|h| h.done > 0).count()
    }

    fn lose(&mut self, i: usize, queue: &mut VecDeque<Unit>, why: &str) {
        let h = &mut self.helpers[i];
        if !h.alive {
            return;
        }
        web_sys::console::warn_1(&format!("analysis helper {i} lost ({why}); its work goes to the others").into());
        h.alive = false;
        h.worker.terminate();
        if let Some(u) = h.unit.take() {
            queue.push_front(u);
        }
    }

    /// Runs `units` (in hand-out order) on the helpers, which first get `setup` (a
    /// [`HelperInput::Setup`] as bytes); `tick` hears of each experiment done, once per unit
    /// and experiment even where a lost helper's unit is run again; `local` runs a unit in this
    /// worker when no helper is left. An experiment's error ends the whole analysis, as it
    /// would in one worker.
    pub async fn run(
        &mut self,
        setup: &[u8],
        units: Vec<Unit>,
        mut tick: impl FnMut(Unit, &str),
        mut local: impl FnMut(Unit, &mut dyn FnMut(&str)) -> Result<UnitResult, String>,
    ) -> Result<Vec<(Unit, UnitResult)>, String> {
        let total = units.len();
        let mut queue: VecDeque<Unit> = units.into();
        let mut results = Vec::with_capacity(total);
        // Ticks heard per unit in its current run, and reported so far (over all its runs).
        let (mut heard, mut told): (HashMap<Unit, usize>, HashMap<Unit, usize>) = Default::default();
        let mut pass_on = |unit: Unit, what: &str, heard: &mut HashMap<Unit, usize>| {
            let h = heard.entry(unit).or_default();
            *h += 1;
            let t = told.entry(unit).or_default();
            if *h > *t {
                *t = *h;
                tick(unit, what);
            }
        };
        let started = js::now();
        while results.len() < total {
            if js::now() - started > READY_MS {
                for i in 0..self.helpers.len() {
                    if !self.helpers[i].set_up {
                        self.lose(i, &mut queue, "it did not start in time");
                    }
                }
            }
            if !self.helpers.iter().any(|h| h.alive) {
                while let Some(unit) = queue.pop_front() {
                    heard.insert(unit, 0);
                    let result = local(unit, &mut |what| pass_on(unit, what, &mut heard))?;
                    results.push((unit, result));
                }
                break;
            }
            let idle: Vec<usize> = (0..self.helpers.len()).filter(|&i| self.helpers[i].alive && self.helpers[i].set_up && self.helpers[i].unit.is_none()).collect();
            for i in idle {
                let Some(unit) = queue.pop_front() else { break };
                heard.insert(unit, 0);
                self.helpers[i].unit = Some(unit);
                if !post(&self.helpers[i].worker, &HelperInput::Unit(unit).to_bytes()) {
                    self.lose(i, &mut queue, "a message to it could not be posted");
                }
            }
            js::sleep_ms(10).await;
            let messages: Vec<(usize, Incoming)> = self.inbox.borrow_mut().drain(..).collect();
            for (i, incoming) in messages {
                if !self.helpers[i].alive {
                    continue;
                }
                // Answers about a unit other than the one it was given would lose that one.
                let about = |unit: &Unit| self.helpers[i].unit != Some(*unit);
                match incoming {
                    Incoming::Message(HelperOutput::Tick { unit, .. } | HelperOutput::Done { unit, .. } | HelperOutput::Failed { unit: Some(unit), .. }) if about(&unit) => {
                        self.lose(i, &mut queue, &format!("it answered for {unit:?}, which it was not given"))
                    }
                    Incoming::Message(HelperOutput::Ready) => {
                        if !post(&self.helpers[i].worker, setup) {
                            self.lose(i, &mut queue, "the model and data could not be posted to it");
                        }
                    }
                    Incoming::Message(HelperOutput::SetUp) => self.helpers[i].set_up = true,
                    Incoming::Message(HelperOutput::Tick { unit, what }) => pass_on(unit, &what, &mut heard),
                    Incoming::Message(HelperOutput::Done { unit, result }) => {
                        self.helpers[i].unit = None;
                        self.helpers[i].done += 1;
                        results.push((unit, result));
                    }
                    Incoming::Message(HelperOutput::Failed { unit: Some(_), message }) => return Err(message),
                    // The helper could not take the model or data in: the others (or this
                    // worker) do its share.
                    Incoming::Message(HelperOutput::Failed { unit: None, message }) => self.lose(i, &mut queue, &message),
                    Incoming::Lost(why) => self.lose(i, &mut queue, &why),
                }
            }
        }
        Ok(results)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for h in &self.helpers {
            // No event may reach the handlers once their closures are gone.
            h.worker.set_onmessage(None);
            h.worker.set_onerror(None);
            h.worker.terminate();
        }
    }
}

/// Posts `bytes` to `worker`, handing over a copy's buffer instead of cloning it again; false
/// when the browser refused the message.
fn post(worker: &Worker, bytes: &[u8]) -> bool {
    let array = js_sys::Uint8Array::from(bytes);
    worker.post_message_with_transfer(&array, &js_sys::Array::of1(&array.buffer())).is_ok()
}
