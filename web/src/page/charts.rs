//! One figure on a canvas: drawn by the shared figure code through plotters-canvas, with a hover
//! read-out and (for the neuron overview) click-to-select.

use std::cell::RefCell;
use std::rc::Rc;

use hidden_neurons::figures::{
    Band, Curve, CurveFigure, EvolutionFigure, Figure, Histogram, HistogramFigure, HistogramPanel, PlotArea, describe, draw_figure_mapped,
    render_svg, summarize,
};
use leptos::html::Canvas;
use leptos::prelude::*;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;

use super::download;
use super::link;
use super::state::AppState;
use crate::protocol::{View, WorkerInput};
use crate::url_state::FigureId;

/// Canvas height when not embedded.
const HEIGHT: u32 = 340;

#[component]
pub fn FigureCard(id: FigureId, #[prop(optional)] embed: bool) -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas = NodeRef::<Canvas>::new();
    let plots: Rc<RefCell<Vec<PlotArea>>> = Rc::default();
    let (readout, set_readout) = signal(String::new());
    // What a screen reader says instead of the drawing: the drawn figure's summary, or the hint.
    let (summary, set_summary) = signal(format!("{}: no data yet", id.heading()));
    let drawn = plots.clone();
    let pending = Rc::new(std::cell::Cell::new(false));
    Effect::new(move |_| {
        // Track the figure here; draw in a task of its own, so that a live update of several
        // figures never makes one long main-thread task, and several updates draw once.
        state.figure(id);
        if matches!(id, FigureId::Fig2 | FigureId::Fig2At) {
            state.live.track(); // its hint names the traced neurons
        }
        if pending.replace(true) {
            return;
        }
        let (drawn, pending) = (drawn.clone(), pending.clone());
        set_timeout(
            move || {
                pending.set(false);
                if let Some(c) = canvas.get_untracked() {
                    let started = now_ms();
                    let hint = empty_text(id, state);
                    let fig = state.figure_untracked(id);
                    set_summary.set(match &fig {
                        Some(f) => summarize(f),
                        None => format!("{}: {hint}", id.heading()),
                    });
                    *drawn.borrow_mut() = draw(&c, fig.as_ref(), id, &hint, embed);
                    note_draw_time(id, now_ms() - started);
                }
            },
            std::time::Duration::ZERO,
        );
    });
    let at = move |ev: &web_sys::MouseEvent| -> Option<(usize, f64)> {
        let (px, py) = (ev.offset_x(), ev.offset_y());
        plots.borrow().iter().find_map(|p| p.data_at(px, py).map(|(x, _)| (p.panel, x)))
    };
    let hover_at = at.clone();
    let on_move = move |ev: web_sys::MouseEvent| {
        let text = hover_at(&ev).and_then(|(panel, x)| state.figure_untracked(id).and_then(|f| describe(&f, panel, x))).unwrap_or_default();
        set_readout.set(text);
    };
    let on_click = move |ev: web_sys::MouseEvent| {
        if id != FigureId::Neurons {
            return;
        }
        let Some((_, x)) = at(&ev) else { return };
        let neurons = state.live.with_untracked(|l| l.as_ref().map(|l| l.neuron_outer_fraction.len()).unwrap_or(0));
        if neurons == 0 {
            return;
        }
        let neuron = (x.round().max(0.0) as usize).min(neurons - 1);
        select_neuron(state, neuron);
    };
    let save_svg = move |_| {
        if let Some(named) = state.named(id) {
            let (w, h) = hidden_neurons::figures::default_size(&named.figure);
            if let Ok(svg) = render_svg(&named.figure, w, h) {
                download::text(&format!("{}.svg", id.name()), "image/svg+xml", &svg);
            }
        }
    };
    let save_png = move |_| {
        if let Some(c) = canvas.get_untracked() {
            download::canvas_png(&format!("{}.png", id.name()), &c);
        }
    };
    let class = if embed { "card embed" } else { "card" };
    view! {
        <section class=class data-figure=id.name()>
            <Show when=move || !embed>
                <h3>{id.heading()}</h3>
            </Show>
            <canvas node_ref=canvas class="figure" role="img" aria-label=summary class:clickable=move || id == FigureId::Neurons
                on:mousemove=on_move on:mouseleave=move |_| set_readout.set(String::new()) on:click=on_click></canvas>
            <div class="readout">{readout}</div>
            <Show when=move || !embed>
                <div class="card-actions">
                    <button on:click=save_svg>"SVG"</button>
                    <button on:click=save_png>"PNG"</button>
                </div>
            </Show>
        </section>
    }
}

/// Sizes the canvas to its box and draws `fig`, or `hint` on the figure's empty axes.
fn draw(c: &web_sys::HtmlCanvasElement, fig: Option<&Figure>, id: FigureId, hint: &str, embed: bool) -> Vec<PlotArea> {
    let width = c.client_width().max(320) as u32;
    let height = if embed { c.client_height().max(200) as u32 } else { HEIGHT };
    // Resizing clears and reallocates the canvas: only when its box changed.
    if c.width() != width || c.height() != height {
        c.set_width(width);
        c.set_height(height);
    }
    let Some(backend) = CanvasBackend::with_canvas_object(c.clone()) else { return Vec::new() };
    let area = backend.into_drawing_area();
    let placed = match fig {
        Some(f) => draw_figure_mapped(&area, f).unwrap_or_default(),
        // Empty axes of the figure's own kind, saying what will come. Before the first of them,
        // the same kind of figure with made-up data is drawn and painted over: V8 compiles the
        // drawing code's large (LTO-inlined) functions on first use, a one-off 50-150 ms that
        // would otherwise land in the middle of training, when its first data arrives.
        None => {
            if WARMED.with(|w| w.borrow_mut().insert(id)) {
                let _ = draw_figure_mapped(&area, &with_data(placeholder(id, "warm-up")));
            }
            let _ = draw_figure_mapped(&area, &placeholder(id, hint));
            Vec::new()
        }
    };
    let _ = area.present();
    placed
}

thread_local! {
    /// Figures whose drawing code has run once with data (see [`draw`]).
    static WARMED: RefCell<std::collections::HashSet<FigureId>> = RefCell::default();
}

/// `fig` (a placeholder) with made-up data in every part the real figure draws: bars, lines,
/// points, bands, reference lines, markers and legends.
fn with_data(fig: Figure) -> Figure {
    match fig {
        Figure::Histograms(mut h) => {
            for p in &mut h.panels {
                p.histogram.counts = (1..=p.histogram.counts.len() as u64).collect();
            }
            Figure::Histograms(h)
        }
        Figure::Curves(mut c) => {
            for curve in &mut c.curves {
                curve.label = "warm-up".into();
                curve.ys = (0..curve.xs.len()).map(|i| 0.4 + 0.1 * i as f64).collect();
                curve.reference = Some(0.5);
                curve.marker = curve.xs.first().copied();
            }
            Figure::Curves(c)
        }
        Figure::Evolution(mut e) => {
            e.layer = "warm-up".into();
            e.steps = vec![0, 1, 2];
            for (band, at) in [(&mut e.high, 1.0), (&mut e.low, -1.0)] {
                band.samples = 1;
                band.p10 = vec![at - 0.5; 3];
                band.p50 = vec![at; 3];
                band.p90 = vec![at + 0.5; 3];
            }
            Figure::Evolution(e)
        }
    }
}

/// The figure's own axes, no data, `hint` as its title.
fn placeholder(id: FigureId, hint: &str) -> Figure {
    let title = hint.to_string();
    match id {
        FigureId::Fig1 | FigureId::Fig5 | FigureId::Fig2At | FigureId::Fig8 => {
            let (lo, x_label) = match id {
                FigureId::Fig8 => (0.0, "fraction of the class in the low category"),
                FigureId::Fig2At => (-1.0, "pre-activation"),
                _ => (-1.0, "average sign of dLoss/dActivation"),
            };
            Figure::Histograms(HistogramFigure {
                title,
                x_label: x_label.into(),
                y_label: "count".into(),
                panels: vec![HistogramPanel { label: "no data yet".into(), histogram: Histogram::empty(lo, 1.0, 20) }],
            })
        }
        FigureId::Fig2 => Figure::Evolution(EvolutionFigure {
            title,
            layer: String::new(),
            neuron: 0,
            steps: Vec::new(),
            high: Band { samples: 0, p10: Vec::new(), p50: Vec::new(), p90: Vec::new() },
            low: Band { samples: 0, p10: Vec::new(), p50: Vec::new(), p90: Vec::new() },
            highlighted: Vec::new(),
        }),
        _ => {
            let (x_label, y_label, xs) = match id {
                FigureId::Fig3 => ("percentile rank of the threshold", "test accuracy", [0.0, 100.0]),
                FigureId::Fig4 => ("window centre (percentile rank)", "test accuracy", [0.0, 100.0]),
                FigureId::Loss => ("epoch", "training loss", [0.0, 1.0]),
                FigureId::Rotation => ("epoch", "cosine distance to the initial weights", [0.0, 1.0]),
                FigureId::Neurons => ("neuron", "share of clear-cut samples", [0.0, 1.0]),
                _ => ("epoch", "accuracy", [0.0, 1.0]),
            };
            // An unlabelled curve with no finite point: it only sets the x axis.
            Figure::Curves(CurveFigure {
                title,
                x_label: x_label.into(),
                y_label: y_label.into(),
                curves: vec![Curve { label: String::new(), xs: xs.to_vec(), ys: vec![f64::NAN; 2], reference: None, marker: None }],
                marker_label: None,
            })
        }
    }
}

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0)
}

/// `window.hn.draw_ms[figure]`: the slowest drawing of each figure so far (the 50 ms budget of a
/// main-thread task is checked by the browser tests).
fn note_draw_time(id: FigureId, ms: f64) {
    use wasm_bindgen::JsValue;
    let Some(w) = web_sys::window() else { return };
    let Ok(hn) = js_sys::Reflect::get(&w, &"hn".into()) else { return };
    if !hn.is_object() {
        return;
    }
    let table = match js_sys::Reflect::get(&hn, &"draw_ms".into()) {
        Ok(t) if t.is_object() => t,
        _ => {
            let t: JsValue = js_sys::Object::new().into();
            let _ = js_sys::Reflect::set(&hn, &"draw_ms".into(), &t);
            t
        }
    };
    let key = JsValue::from_str(id.name());
    let old = js_sys::Reflect::get(&table, &key).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let _ = js_sys::Reflect::set(&table, &key, &JsValue::from_f64(old.max(ms)));
}

/// What to do to fill figure `id`, in words.
fn empty_text(id: FigureId, state: AppState) -> String {
    match id {
        FigureId::Fig3 | FigureId::Fig4 | FigureId::Fig8 => "Press Analyze (during or after training) to run this experiment".into(),
        FigureId::Fig2 | FigureId::Fig2At => state.live.with_untracked(|l| match l {
            Some(l) if !l.traced.contains(&l.view.neuron) => {
                format!("Neuron {} is not traced: pick a traced neuron (listed under the neuron selector)", l.view.neuron)
            }
            Some(_) => "Fills in at the first recording".into(),
            None => "Press Train: fills in as the network learns".into(),
        }),
        _ => "Press Train: fills in as the network learns".into(),
    }
}

/// Makes `neuron` the viewed one everywhere (URL, worker, figures).
pub fn select_neuron(state: AppState, neuron: usize) {
    state.url.update(|u| u.view.neuron = neuron);
    send_view(state);
}

/// Tells the worker what the figures look at.
pub fn send_view(state: AppState) {
    let view: View = state.url.with_untracked(|u| u.view);
    link::send(&WorkerInput::View { view });
}
