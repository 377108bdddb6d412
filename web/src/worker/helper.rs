//! A helper worker: the same binary as the training worker, started by it under
//! [`HELPER_NAME`] to run some of an analysis' units side by side with other helpers. It holds
//! a copy of the trained model and of the data the units read, and answers each unit with its
//! result; the training worker merges them ([`super::pool`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use hidden_neurons::data::{Dataset, Normalization};
use hidden_neurons::model::MlpOrCnn;
use hidden_neurons::run::{self, InMemorySets, RunSpec, Unit, UnitResult};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::device::cpu;
use super::js;
use crate::protocol::{HELPER_NAME, HelperInput, HelperOutput, Setup};

/// Whether this worker was started as a helper.
pub fn is_helper() -> bool {
    js::scope().name() == HELPER_NAME
}

fn post(msg: &HelperOutput) {
    js::post_bytes(&msg.to_bytes());
}

/// The helper's entry point (instead of the training worker's loop).
pub fn start() {
    let inbox: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
    let queue = inbox.clone();
    let onmessage = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        queue.borrow_mut().push_back(js_sys::Uint8Array::new(&ev.data()).to_vec());
    });
    js::scope().set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
    onmessage.forget();
    wasm_bindgen_futures::spawn_local(serve(inbox));
}

/// What the units of one analysis read.
struct Work {
    spec: RunSpec,
    norm: Normalization,
    model: MlpOrCnn,
    sets: InMemorySets,
    test: Dataset,
    device: Device,
}

async fn serve(inbox: Rc<RefCell<VecDeque<Vec<u8>>>>) {
    post(&HelperOutput::Ready);
    let mut work: Option<Work> = None;
    loop {
        let Some(bytes) = inbox.borrow_mut().pop_front() else {
            js::sleep_ms(5).await;
            continue;
        };
        match HelperInput::from_bytes(&bytes) {
            Err(e) => post(&HelperOutput::Failed { unit: None, message: format!("a helper got a message it cannot read ({e})") }),
            Ok(HelperInput::Setup(setup)) => match Work::new(*setup) {
                Ok(w) => {
                    work = Some(w);
                    post(&HelperOutput::SetUp);
                }
                Err(message) => post(&HelperOutput::Failed { unit: None, message }),
            },
            Ok(HelperInput::Unit(unit)) => post(&match work.as_ref() {
                None => HelperOutput::Failed { unit: None, message: "a helper got a unit before the model and data".into() },
                Some(w) => match w.run(unit) {
                    Ok(result) => HelperOutput::Done { unit, result },
                    Err(message) => HelperOutput::Failed { unit: Some(unit), message },
                },
            }),
        }
    }
}

impl Work {
    fn new(setup: Setup) -> Result<Self, String> {
        let Setup { spec, norm, model, train, test } = setup;
        // Training is over: the autodiff device only serves the retrained suffixes, as the
        // training worker's own analysis does.
        let device = cpu().autodiff();
        let fresh = spec.network.mlp_or_cnn(&device).ok_or("a helper analyses MLPs and CNNs only")?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(model)).map_err(|e| format!("the model's record is unreadable: {e}"))?;
        let model = fresh.load_record(record);
        let train = train.into_dataset().map_err(|e| format!("training samples: {e}"))?;
        let sets = InMemorySets::new(&train, &spec.experiments);
        Ok(Self { spec, norm, model, sets, test: test.into_dataset().map_err(|e| format!("test samples: {e}"))?, device })
    }

    fn run(&self, unit: Unit) -> Result<UnitResult, String> {
        self.sets
            .with(&self.test, self.norm, |data| {
                run::analyze_unit(&self.model, data, &self.spec.experiments, unit, &self.device, &mut |what| post(&HelperOutput::Tick { unit, what: what.to_string() }))
            })
            .map_err(|e| e.to_string())
    }
}
