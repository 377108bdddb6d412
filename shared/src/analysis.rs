//! From recorded counts and experiment results to the figures' data.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::CLASSES;
use crate::figures::{
    Band, Curve, CurveFigure, EvolutionFigure, Figure, Histogram, HistogramFigure, HistogramPanel, NamedFigure,
    Trajectory,
};
use crate::recording::{Recorder, RecordingMode, TrackedSet};
use crate::results::{PositionSigns, Results};
use crate::stats::{average_sign, class_low_fractions, outer_fraction_per_neuron, read_f32, sign_histogram};

/// Bins of every average-sign histogram (the results.json schema fixes 20 over [-1, 1]).
pub const SIGN_BINS: usize = 20;
/// |average sign| from which a (sample, neuron) pair counts as clear-cut: the two outermost
/// histogram bins on each side.
pub const OUTER_SIGN: f32 = 0.8;
/// How many high-category samples figure 2 highlights.
pub const HIGHLIGHTED: usize = 5;

/// What the sign counts of one layer say.
#[derive(Clone, Debug)]
pub struct LayerSigns {
    pub name: String,
    pub histogram: Histogram,
    pub example_neuron: usize,
    pub example_histogram: Histogram,
    pub outer_fraction: f64,
    /// Per neuron: the share of its defined samples with |avg sign| >= [`OUTER_SIGN`].
    pub neuron_outer_fraction: Vec<f64>,
    pub class_low_fraction: Histogram,
    /// Per snapshot neuron, per tracked sample: its average sign (None when undefined).
    pub tracked_signs: Vec<Vec<Option<f32>>>,
    /// Where counted: the signs per (sample, position, neuron).
    pub position: Option<PositionSigns>,
}

/// Summarises the recorder's counts layer by layer. `item_labels` are the labels of the count
/// rows (tracked samples, or the whole training set in online mode). Each layer's figure-1
/// neuron is its first snapshot neuron.
pub fn layer_signs(recorder: &Recorder, tracked: &TrackedSet, item_labels: &[u8], device: &Device) -> Vec<LayerSigns> {
    let examples: Vec<usize> = recorder.snapshot_neurons.iter().map(|n| n.first().copied().unwrap_or(0)).collect();
    layer_signs_with(recorder, tracked, item_labels, device, &examples)
}

/// [`layer_signs`] with a chosen figure-1 neuron per layer (`examples[l]`, clamped into range).
pub fn layer_signs_with(
    recorder: &Recorder,
    tracked: &TrackedSet,
    item_labels: &[u8],
    device: &Device,
    examples: &[usize],
) -> Vec<LayerSigns> {
    let inner = device.clone().inner();
    let labels: Vec<i64> = item_labels.iter().map(|&l| l as i64).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [item_labels.len()]), &inner);
    let tracked_rows: Vec<i64> = match recorder.mode {
        RecordingMode::Tracked => (0..tracked.len() as i64).collect(),
        RecordingMode::Online => tracked.indices.iter().map(|&i| i as i64).collect(),
    };
    let tracked_rows = Tensor::<1, Int>::from_data(TensorData::new(tracked_rows, [tracked.len()]), &inner);
    recorder
        .layers
        .iter()
        .enumerate()
        .map(|(l, info)| {
            let (pos, neg) = recorder.counts(l);
            let (avg, defined) = average_sign(pos, neg);
            let histogram = sign_histogram(avg.clone(), defined.clone(), SIGN_BINS);
            let example_neuron = examples.get(l).copied().unwrap_or(0).min(info.neurons.saturating_sub(1));
            let col = |t: Tensor<2>| t.narrow(1, example_neuron, 1);
            let example_histogram = sign_histogram(col(avg.clone()), defined.clone().narrow(1, example_neuron, 1), SIGN_BINS);
            let neuron_outer_fraction = outer_fraction_per_neuron(avg.clone(), defined.clone(), OUTER_SIGN);
            let fractions = class_low_fractions(avg.clone(), defined.clone(), labels.clone(), CLASSES);
            let class_low_fraction =
                Histogram::from_values(fractions.iter().flatten().flatten().copied(), 0.0, 1.0, SIGN_BINS);
            let tracked_avg = avg.select(0, tracked_rows.clone());
            let tracked_def = defined.select(0, tracked_rows.clone());
            let tracked_signs = recorder.snapshot_neurons[l]
                .iter()
                .map(|&n| {
                    let a = read_f32(tracked_avg.clone().narrow(1, n, 1));
                    let d = read_f32(tracked_def.clone().narrow(1, n, 1).float());
                    a.into_iter().zip(d).map(|(a, d)| (d > 0.0).then_some(a)).collect()
                })
                .collect();
            let position = recorder.position_counts_of(l).map(|(pos, neg, k)| {
                let (avg, defined) = average_sign(pos, neg);
                let h = sign_histogram(avg, defined, SIGN_BINS);
                PositionSigns { positions_per_neuron: k, outer_fraction: outer_share(&h), avg_sign_histogram: h }
            });
            let outer_fraction = outer_share(&histogram);
            LayerSigns {
                position,
                name: info.name.clone(),
                histogram,
                example_neuron,
                example_histogram,
                outer_fraction,
                neuron_outer_fraction,
                class_low_fraction,
                tracked_signs,
            }
        })
        .collect()
}

/// Share of a [`SIGN_BINS`]-bin average-sign histogram in its two outermost bins on each side.
fn outer_share(h: &Histogram) -> f64 {
    let outer = h.counts[..2].iter().chain(&h.counts[SIGN_BINS - 2..]).sum::<u64>() as f64;
    outer / h.total().max(1) as f64
}

/// Figure 2/6 data for snapshot neuron `j` of layer `l`.
pub fn evolution(recorder: &Recorder, signs: &LayerSigns, l: usize, j: usize, title: String) -> EvolutionFigure {
    let k = recorder.snapshot_neurons[l].len();
    let tracked = signs.tracked_signs[j].len();
    let value = |rec: usize, s: usize| recorder.snapshots[l][rec][s * k + j];
    let (mut high, mut low) = (Vec::new(), Vec::new());
    for (s, sign) in signs.tracked_signs[j].iter().enumerate() {
        match sign {
            Some(a) if *a < 0.0 => high.push(s),
            Some(a) if *a > 0.0 => low.push(s),
            _ => {}
        }
    }
    let band = |members: &[usize]| {
        let mut b = Band { samples: members.len(), p10: vec![], p50: vec![], p90: vec![] };
        for rec in 0..recorder.steps.len() {
            let mut v: Vec<f32> = members.iter().map(|&s| value(rec, s)).collect();
            v.sort_by(f32::total_cmp);
            let at = |r: f64| if v.is_empty() { f32::NAN } else { v[crate::stats::percentile_index(r, v.len())] };
            b.p10.push(at(10.0));
            b.p50.push(at(50.0));
            b.p90.push(at(90.0));
        }
        b
    };
    let last = recorder.steps.len().saturating_sub(1);
    let mut top = high.clone();
    if !recorder.steps.is_empty() {
        top.sort_by(|&a, &b| value(last, b).total_cmp(&value(last, a)));
    }
    top.truncate(HIGHLIGHTED);
    debug_assert!(tracked == 0 || recorder.snapshots[l].iter().all(|r| r.len() == tracked * k));
    EvolutionFigure {
        title,
        layer: signs.name.clone(),
        neuron: recorder.snapshot_neurons[l][j],
        steps: recorder.steps.clone(),
        high: band(&high),
        low: band(&low),
        highlighted: top
            .into_iter()
            .map(|s| Trajectory { sample: s, values: (0..recorder.steps.len()).map(|r| value(r, s)).collect() })
            .collect(),
    }
}

/// The paper's name for what a recording mode means, for captions.
fn mode_word(mode: RecordingMode) -> &'static str {
    match mode {
        RecordingMode::Tracked => "tracked",
        RecordingMode::Online => "online",
    }
}

fn histogram_figure(title: String, x: &str, panels: Vec<HistogramPanel>) -> Figure {
    Figure::Histograms(HistogramFigure { title, x_label: x.into(), y_label: "count".into(), panels })
}

/// Figure 1: the average-sign histogram of each layer's example neuron.
pub fn one_neuron_figure(model: &str, mode: RecordingMode, signs: &[&LayerSigns]) -> NamedFigure {
    NamedFigure {
        stem: "fig1_one_neuron".into(),
        caption: format!(
            "Figure 1 ({model}, {} recording): average gradient sign over the tracked samples for one neuron of each layer. Negative: the gradient pushes the activation up (high category).",
            mode_word(mode)
        ),
        figure: histogram_figure(
            format!("{model}: average sign, one neuron per layer"),
            "average sign of dLoss/dActivation",
            signs
                .iter()
                .map(|s| HistogramPanel { label: format!("{}, neuron {}", s.name, s.example_neuron), histogram: s.example_histogram.clone() })
                .collect(),
        ),
    }
}

/// Figure 5: the average-sign histogram of all (sample, neuron) pairs of each layer.
pub fn whole_layer_figure(model: &str, mode: RecordingMode, signs: &[&LayerSigns]) -> NamedFigure {
    NamedFigure {
        stem: "fig5_whole_layer".into(),
        caption: format!(
            "Figure 5 ({model}, {} recording): average gradient sign over all (sample, neuron) pairs of each layer.",
            mode_word(mode)
        ),
        figure: histogram_figure(
            format!("{model}: average sign, all neurons"),
            "average sign of dLoss/dActivation",
            signs
                .iter()
                .map(|s| HistogramPanel { label: format!("{} (all neurons)", s.name), histogram: s.histogram.clone() })
                .collect(),
        ),
    }
}

/// Figures 2, 6 (MLP) and 7 (CNN): snapshot neuron `j` of layer `l` over training. `paper_figure`
/// names it ("Figure 2", ...), `stem` starts its file name.
pub fn evolution_figure(model: &str, recorder: &Recorder, signs: &LayerSigns, l: usize, j: usize, stem: &str, paper_figure: &str) -> NamedFigure {
    let conv = recorder.layers[l].positions > 1;
    let e = evolution(recorder, signs, l, j, format!("{model}: {} neuron {} over training", signs.name, recorder.snapshot_neurons[l][j]));
    NamedFigure {
        stem: format!("{stem}_{}_neuron{}", signs.name, e.neuron),
        caption: format!(
            "{paper_figure} ({model}): pre-activations of {} neuron {} on the tracked samples during training{}, split by final category (bands: 10th-90th percentile, line: median); thin lines: the {HIGHLIGHTED} high-category samples with the largest final pre-activation.",
            signs.name,
            e.neuron,
            if conv { " (each sample's mean over spatial positions)" } else { "" }
        ),
        figure: Figure::Evolution(e),
    }
}

/// Bins of figure 2's distribution panel.
pub const DISTRIBUTION_BINS: usize = 30;

/// Snapshot neuron `j` of layer `l` at recording `rec`: histograms of the tracked samples'
/// pre-activations, one panel per category (high: negative average sign, low: positive), over a
/// shared range. Samples with no defined sign are left out.
pub fn distribution_at(model: &str, recorder: &Recorder, signs: &LayerSigns, l: usize, j: usize, rec: usize) -> NamedFigure {
    let k = recorder.snapshot_neurons[l].len();
    let neuron = recorder.snapshot_neurons[l][j];
    let rec = rec.min(recorder.steps.len().saturating_sub(1));
    let values: Vec<(f64, Option<f32>)> = match recorder.snapshots[l].get(rec) {
        Some(snap) => signs.tracked_signs[j].iter().enumerate().map(|(s, sign)| (snap[s * k + j] as f64, *sign)).collect(),
        None => Vec::new(),
    };
    let finite = values.iter().map(|v| v.0).filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !(lo < hi) {
        (lo, hi) = if lo.is_finite() { (lo - 0.5, lo + 0.5) } else { (-1.0, 1.0) };
    }
    let panel = |label: &str, keep: fn(f32) -> bool| {
        let members: Vec<f64> = values.iter().filter(|(_, s)| s.is_some_and(keep)).map(|v| v.0).collect();
        HistogramPanel { label: format!("{label} ({} samples)", members.len()), histogram: Histogram::from_values(members, lo, hi, DISTRIBUTION_BINS) }
    };
    let step = recorder.steps.get(rec).copied().unwrap_or(0);
    NamedFigure {
        stem: format!("fig2_at_{}_neuron{neuron}_step{step}", signs.name),
        caption: format!(
            "Pre-activations of {} neuron {neuron} ({model}) on the tracked samples at training step {step}, by final category.",
            signs.name
        ),
        figure: histogram_figure(
            format!("{model}: {} neuron {neuron} at step {step}", signs.name),
            "pre-activation",
            vec![panel("high category", |a| a < 0.0), panel("low category", |a| a > 0.0)],
        ),
    }
}

/// One accuracy curve per layer that has experiment results.
fn layer_curves(results: &Results, names: &[String], f: &dyn Fn(&str) -> (Vec<f64>, Vec<f64>, Option<f64>)) -> Vec<Curve> {
    names
        .iter()
        .filter(|name| results.layers.get(*name).is_some_and(|l| !l.quantization.is_empty()))
        .map(|name| {
            let (xs, ys, marker) = f(name);
            Curve { label: name.clone(), xs, ys, reference: Some(results.test_accuracy), marker }
        })
        .collect()
}

fn names(all_signs: &[LayerSigns]) -> Vec<String> {
    all_signs.iter().map(|s| s.name.clone()).collect()
}

/// Figure 3: accuracy after two-value quantization against the threshold's percentile rank.
pub fn quantization_figure(results: &Results, all_signs: &[LayerSigns]) -> NamedFigure {
    quantization_figure_of(results, &names(all_signs))
}

/// [`quantization_figure`] for the layers `names`, in that order (a model without recordings).
pub fn quantization_figure_of(results: &Results, names: &[String]) -> NamedFigure {
    let m = &results.model;
    NamedFigure {
        stem: "fig3_quantization".into(),
        caption: format!(
            "Figure 3 ({m}): test accuracy when one layer's pre-activations are quantized to two values (the means below and above each neuron's r-th percentile). Curves marked \"after the activation\" (where present) replace each activation by its side's mean activation instead. Horizontal line: unquantized accuracy; vertical line: average percentile rank of the zero pre-activation."
        ),
        figure: Figure::Curves(CurveFigure {
            title: format!("{m}: two-value quantization"),
            x_label: "percentile rank of the threshold".into(),
            y_label: "test accuracy".into(),
            curves: {
                let mut curves = layer_curves(results, names, &|name| {
                    let l = &results.layers[name];
                    (
                        l.quantization.iter().map(|q| q.rank).collect(),
                        l.quantization.iter().map(|q| q.test_accuracy).collect(),
                        Some(l.zero_percentile_rank),
                    )
                });
                // The post-activation variant, where it ran, beside the paper's.
                let post = names.iter().filter_map(|name| {
                    let l = results.layers.get(name).filter(|l| !l.post_quantization.is_empty())?;
                    Some(Curve {
                        label: format!("{name}, after the activation"),
                        xs: l.post_quantization.iter().map(|q| q.rank).collect(),
                        ys: l.post_quantization.iter().map(|q| q.test_accuracy).collect(),
                        reference: Some(results.test_accuracy),
                        marker: None,
                    })
                });
                curves.extend(post.collect::<Vec<_>>());
                curves
            },
            marker_label: None,
        }),
    }
}

/// Figure 4: accuracy after sliding-window binarization and retraining against the centre.
pub fn window_figure(results: &Results, all_signs: &[LayerSigns]) -> NamedFigure {
    window_figure_of(results, &names(all_signs))
}

/// [`window_figure`] for the layers `names`, in that order.
pub fn window_figure_of(results: &Results, names: &[String]) -> NamedFigure {
    let m = &results.model;
    NamedFigure {
        stem: "fig4_sliding_window".into(),
        caption: format!(
            "Figure 4 ({m}): test accuracy when one layer is binarized (1 inside a window {} percentile ranks wide, 0 outside) and the later layers are re-initialised and retrained (ResNet50: a linear classifier probe on each channel's fraction of positions inside the window).",
            results.experiments.window_width
        ),
        figure: Figure::Curves(CurveFigure {
            title: format!("{m}: sliding-window binarization"),
            x_label: "window centre (percentile rank)".into(),
            y_label: "test accuracy".into(),
            curves: layer_curves(results, names, &|name| {
                let l = &results.layers[name];
                (l.sliding_window.iter().map(|w| w.center).collect(), l.sliding_window.iter().map(|w| w.test_accuracy).collect(), None)
            }),
            marker_label: None,
        }),
    }
}

/// Figure 8: for each (neuron, class) pair, the share of the class in the neuron's low category.
pub fn class_figure(model: &str, signs: &[&LayerSigns]) -> NamedFigure {
    NamedFigure {
        stem: "fig8_class_vs_category".into(),
        caption: format!(
            "Figure 8 ({model}): for each (neuron, class) pair, the fraction of the class's tracked samples in the neuron's low category."
        ),
        figure: histogram_figure(
            format!("{model}: classes vs categories"),
            "fraction of the class in the low category",
            signs.iter().map(|s| HistogramPanel { label: s.name.clone(), histogram: s.class_low_fraction.clone() }).collect(),
        ),
    }
}

/// Every figure of one model. Figures 1, 5, 8 and the pre-activation evolutions show the layers
/// `figure_layers`; figures 3 and 4 the layers that have experiment results.
pub fn figures(results: &Results, recorder: &Recorder, all_signs: &[LayerSigns], figure_layers: &[usize]) -> Vec<NamedFigure> {
    let m = &results.model;
    let mode = results.recording.as_ref().map_or(recorder.mode, |r| r.mode);
    let signs: Vec<&LayerSigns> = figure_layers.iter().filter_map(|&l| all_signs.get(l)).collect();
    // The MLPs' evolution figures are the paper's figures 2 and 6, the CNNs' its figure 7.
    let conv = recorder.layers.iter().any(|l| l.positions > 1);
    let mut out = vec![one_neuron_figure(m, mode, &signs), whole_layer_figure(m, mode, &signs)];
    for (i, &l) in figure_layers.iter().enumerate() {
        let Some(s) = all_signs.get(l) else { continue };
        for j in 0..recorder.snapshot_neurons[l].len() {
            // Every figure layer shows its first neuron; the last one shows all its snapshot
            // neurons (MLP) or is the only one shown (CNN, figure 7).
            let last_layer = i + 1 == figure_layers.len();
            if !last_layer && (j > 0 || conv) {
                continue;
            }
            let (stem, fig) = match (conv, j) {
                (true, _) => ("fig7", "Figure 7"),
                (false, 0) => ("fig2", "Figure 2"),
                (false, _) => ("fig6", "Figure 6"),
            };
            out.push(evolution_figure(m, recorder, s, l, j, stem, fig));
        }
    }
    if signs.iter().any(|s| s.position.is_some()) {
        out.push(position_figure(m, &signs));
    }
    if !results.layer_rotation.is_empty() {
        out.push(rotation_figure(results));
    }
    out.push(quantization_figure(results, all_signs));
    out.push(window_figure(results, all_signs));
    out.push(class_figure(m, &signs));
    out
}

/// Layer rotation: each weighted layer's cosine distance to its initial weights, per epoch.
pub fn rotation_figure(results: &Results) -> NamedFigure {
    let m = &results.model;
    NamedFigure {
        stem: "layer_rotation".into(),
        caption: format!(
            "Layer rotation ({m}): the cosine distance between each layer's weights (biases left out) and their initial values after each epoch (Carbonnelle & De Vleeschouwer, arXiv 1806.01603)."
        ),
        figure: Figure::Curves(CurveFigure {
            title: format!("{m}: layer rotation"),
            x_label: "epoch".into(),
            y_label: "cosine distance to the initial weights".into(),
            curves: results
                .layer_rotation
                .iter()
                .map(|r| Curve { label: r.layer.clone(), xs: (1..=r.per_epoch.len()).map(|e| e as f64).collect(), ys: r.per_epoch.clone(), reference: None, marker: None })
                .collect(),
            marker_label: None,
        }),
    }
}

/// Figure 5 with one sign per activation: (sample, position, channel) triples of the conv layers
/// counted per position.
pub fn position_figure(model: &str, signs: &[&LayerSigns]) -> NamedFigure {
    let k = signs.iter().find_map(|s| s.position.as_ref()).map_or(0, |p| p.positions_per_neuron);
    NamedFigure {
        stem: "fig5_positions".into(),
        caption: format!(
            "Figure 5, per position ({model}): average gradient sign of each (sample, position, channel) triple, at {k} fixed random positions per channel; Figure 5 proper sums each channel's derivative over its positions."
        ),
        figure: histogram_figure(
            format!("{model}: average sign per position"),
            "average sign of dLoss/dActivation",
            signs
                .iter()
                .filter_map(|s| Some(HistogramPanel { label: format!("{} (per position)", s.name), histogram: s.position.as_ref()?.avg_sign_histogram.clone() }))
                .collect(),
        ),
    }
}
