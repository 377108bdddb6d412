//! The analysis split into units (what the page's pool of workers shares out) gives exactly the
//! analysis run whole: each unit run on its own copy of the model, rebuilt from the model's
//! record bytes (as a helper worker receives it), in the pool's order rather than layer by
//! layer, its result passed through CBOR (as it travels back), then merged.
//!
//! Exact equality is what the design promises: a unit depends on the model and the data only
//! (the window's retraining seeds come from the layer and the centre, not from the device's
//! random state left by earlier units), and the record carries every parameter and batch-norm
//! statistic bit for bit. Non-vacuity: the fresh model the record is loaded into predicts
//! differently before the load, and the accuracies vary across ranks and centres.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use hidden_neurons::data::Dataset;
use hidden_neurons::experiments::ExperimentConfig;
use hidden_neurons::model::{Activation, CnnConfig, MlpConfig, MlpOrCnn, TappedModel};
use hidden_neurons::run::{self, AnalysisData, Event, Network, Observer, ObserverError, Part, Unit, UnitResult};
use hidden_neurons::stats::read_f32;

#[path = "common/mod.rs"]
mod common;
use common::{TOY_NORM, labelled_by_model, random_draws, toy_samples, train_toy};

const SIDE: usize = 8;

fn images(n: usize, add: usize) -> Dataset {
    common::half_lit_images(n, add, SIDE)
}

fn config(seed: u64) -> ExperimentConfig {
    ExperimentConfig {
        ranks: vec![0.0, 20.0, 50.0, 80.0, 100.0],
        centres: vec![5.0, 35.0, 65.0, 95.0],
        retrain_epochs: 2,
        batch_size: 8,
        ..ExperimentConfig::paper(seed)
    }
}

/// Counts the analysis events and checks their running count.
#[derive(Default)]
struct Ticks {
    seen: usize,
    total: usize,
}

impl<M: TappedModel> Observer<M> for Ticks {
    fn on(&mut self, event: &Event<'_, M>) -> Result<(), ObserverError> {
        if let Event::Analysis { done, total, .. } = event {
            self.seen += 1;
            assert_eq!(*done, self.seen, "events count up by one");
            self.total = *total;
        }
        Ok(())
    }
}

fn units_match_whole(what: &str, network: Network, model: MlpOrCnn, train: &Dataset, test: &Dataset, cfg: &ExperimentConfig, device: &Device) {
    let layers: Vec<usize> = (0..model.layers().len()).collect();
    // The last layer gets its zero rank only, as a layer outside `experiment_layers` does.
    let experiment_layers = &layers[..layers.len() - 1];
    let sets = run::InMemorySets::new(train, cfg);
    let mut ticks = Ticks::default();
    let whole = sets.with(test, TOY_NORM, |data| run::analyze(&model, data, cfg, &layers, experiment_layers, device, &mut ticks)).unwrap();
    let units = run::units(&layers, experiment_layers);
    assert_eq!(ticks.seen, ticks.total, "{what}: one event per experiment");
    assert_eq!(ticks.total, units.iter().map(|u| u.ticks(cfg)).sum::<usize>(), "{what}: the units' ticks add up to the analysis' events");

    let order = run::costliest_first(&units);
    assert_eq!(order[0], Unit { layer: 0, part: Part::Quantization }, "{what}: the first layer's quantization goes first");
    assert!(order.iter().rev().take_while(|u| u.part == Part::ZeroRank).count() == layers.len(), "{what}: zero ranks go last");
    assert_ne!(order, units, "{what}: the pool's order differs from the layer-by-layer one, or the test shows little");

    let bytes = model.clone().into_record().into_bytes().unwrap().to_vec();
    let (x, _) = test.range_batch(0, test.len(), TOY_NORM, device);
    let before = read_f32(model.forward(x.clone()));
    let mut parts = Vec::new();
    for unit in order {
        device.seed(unit.layer as u64 * 31 + 17);
        let fresh = network.mlp_or_cnn(device).unwrap();
        assert_ne!(read_f32(fresh.forward(x.clone())), before, "{what}: a fresh model differs from the trained one before loading");
        let copy = fresh.load_record(ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.clone())).unwrap());
        assert_eq!(read_f32(copy.forward(x.clone())), before, "{what}: the copy answers as the trained model does");
        let mut n = 0;
        let result = sets.with(test, TOY_NORM, |data: &AnalysisData<'_>| run::analyze_unit(&copy, data, cfg, unit, device, &mut |_| n += 1)).unwrap();
        assert_eq!(n, unit.ticks(cfg), "{what}: {unit:?} ticks");
        // As the page's helper workers send it (CBOR keeps every f64 bit, as JSON text need not).
        let mut bytes = Vec::new();
        ciborium::into_writer(&result, &mut bytes).unwrap();
        let travelled: UnitResult = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(travelled, result, "{what}: {unit:?}'s result survives the trip");
        parts.push((unit, travelled));
    }
    let merged = run::merge(parts);
    assert_eq!(merged, whole, "{what}: the units merged equal the whole analysis");

    let first = &whole[&0];
    let accs: Vec<f64> = first.quantization.iter().chain(&first.post_quantization).map(|r| r.test_accuracy).collect();
    let windows: Vec<f64> = first.window.iter().map(|c| c.test_accuracy).collect();
    println!("{what}: quantization {accs:?}, window {windows:?}");
    assert_eq!((first.quantization.len(), first.window.len()), (cfg.ranks.len(), cfg.centres.len()));
    assert!(accs.iter().any(|&a| a != accs[0]) && windows.iter().any(|&a| a != windows[0]), "{what}: accuracies vary");
    assert!(whole[&(layers.len() - 1)].quantization.is_empty(), "{what}: the last layer had its zero rank only");
}

#[test]
fn cnn_units_equal_whole_analysis() {
    let _draws = random_draws();
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(7);
    let cfg = CnnConfig { channels: 1, side: SIDE, widths: vec![3, 4], classes: 3, activation: Activation::Relu, init: Default::default(), layers_per_stage: 1 };
    let model: MlpOrCnn = train_toy(cfg.init(&ad), &images(96, 0), 8, 16, &ad).into();
    let train = labelled_by_model(&model, images(48, 2), &device);
    let test = labelled_by_model(&model, images(40, 3), &device);
    units_match_whole("cnn", Network::Cnn(cfg), model, &train, &test, &ExperimentConfig { stats_samples: 24, retrain_samples: 48, ..config(4) }, &device);
}

#[test]
fn mlp_units_equal_whole_analysis() {
    let _draws = random_draws();
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(5);
    let cfg = MlpConfig { input: 5, hidden: vec![16, 16], classes: 3, activation: Activation::Relu, dropout: 0.2, first_index: 1, init: Default::default() };
    let model: MlpOrCnn = train_toy(cfg.init(&ad), &toy_samples(300, 37, 0, 255), 30, 16, &ad).into();
    let train = labelled_by_model(&model, toy_samples(120, 37, 3, 255), &device);
    let test = labelled_by_model(&model, toy_samples(90, 11, 101, 255), &device);
    units_match_whole("mlp", Network::Mlp(cfg), model, &train, &test, &ExperimentConfig { stats_samples: 80, retrain_samples: 120, ..config(3) }, &device);
}
