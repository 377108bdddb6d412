//! The page: controls, status, and the figures, on the main thread. All training happens in the
//! worker; the page only draws what the worker sends.

mod charts;
mod download;
mod link;
mod state;

use hidden_neurons::backend::BackendChoice;
use hidden_neurons::model::Activation;
use leptos::prelude::*;

use crate::form::Field;
use crate::protocol::{DataChoice, ModelKind, WorkerInput};
use crate::url_state::{FigureId, UrlState};
use charts::{FigureCard, select_neuron, send_view};
use state::{AppState, Phase};

/// The page binary's entry point.
pub fn start() {
    console_error_panic_hook::set_once();
    let query = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
    let url = UrlState::parse(&query);
    leptos::mount::mount_to_body(move || view! { <App url=url.clone()/> });
}

#[component]
fn App(url: UrlState) -> impl IntoView {
    let embed = url.embed;
    let state = AppState::new(url);
    provide_context(state);
    // The address bar always holds the current view, ready to share.
    Effect::new(move |_| {
        let q = state.url.with(|u| u.to_query());
        if let Some(w) = web_sys::window() {
            if let Ok(h) = w.history() {
                let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&q));
            }
        }
    });
    link::start(state);
    // `autostart=1`: train as soon as the data is there; likewise a run that waited for the
    // other worker build.
    Effect::new(move |started: Option<bool>| {
        let ready = state.phase.get() == Phase::Ready;
        let started = started.unwrap_or(false);
        if ready && state.pending_start.get_untracked() {
            state.pending_start.set(false);
            start_training(state);
            return true;
        }
        if ready && !started && state.url.with_untracked(|u| u.autostart) {
            start_training(state);
            return true;
        }
        started
    });
    match embed {
        Some(id) => view! { <Embedded id=id/> }.into_any(),
        None => view! { <FullPage/> }.into_any(),
    }
}

fn start_training(state: AppState) {
    if !state.settings_valid() {
        return;
    }
    // A run on WebGPU needs the worker build with burn's wgpu stack, one on the CPU the lighter
    // build: swap them first (the data is loaded again; the run starts once it is there).
    let build = link::WorkerBuild::for_state(state);
    if link::running_build() != Some(build) {
        state.pending_start.set(true);
        state.clear_run();
        link::spawn(state, build);
        return;
    }
    // Train pressed while the data is still on its way: the run starts once it is there.
    if state.phase.get_untracked() == Phase::Loading {
        state.pending_start.set(true);
        return;
    }
    state.clear_run();
    state.phase.set(Phase::Training);
    let (settings, view) = state.url.with_untracked(|u| (u.settings.clone(), u.view));
    link::send(&WorkerInput::Start { settings, view });
}

fn analyze(state: AppState) {
    state.before_analysis.set(state.phase.get_untracked());
    state.phase.set(Phase::Analyzing);
    link::send(&WorkerInput::Analyze { workers: state.url.with_untracked(|u| u.workers) });
}

#[component]
fn Status() -> impl IntoView {
    let state = expect_context::<AppState>();
    let progress = move || {
        state.points.with(|p| match p.last() {
            Some(p) => format!(
                "step {}/{}, epoch {:.2}, loss {:.4}, train acc {:.3}{}, {:.0} samples/s",
                p.step,
                p.total_steps,
                p.epoch,
                p.loss,
                p.train_accuracy,
                state.points.with(|ps| ps.iter().rev().find_map(|q| q.test_accuracy)).map(|a| format!(", test acc {a:.4}")).unwrap_or_default(),
                p.samples_per_second
            ),
            None => String::new(),
        })
    };
    let phase = move || match state.phase.get() {
        Phase::Starting => "starting the worker…".to_string(),
        Phase::Loading => format!(
            "loading {}…{}",
            state.url.with(|u| u.settings.data.label()),
            if state.pending_start.get() { " training starts when it is here" } else { "" }
        ),
        Phase::NoData => match state.url.with(|u| u.settings.data) {
            DataChoice::Own => "drop your four IDX files (training and test images and labels) onto the page, or pick them: they stay in your browser".into(),
            _ => "no data loaded: choose a data set".into(),
        },
        Phase::Ready => state.data.get().map(|(name, a, b)| format!("{name} loaded ({a} train, {b} test images): ready")).unwrap_or_default(),
        Phase::Training => "training".into(),
        Phase::Paused => "paused".into(),
        Phase::Trained => "trained".into(),
        Phase::Analyzing => state
            .analysis_progress
            .get()
            .map(|(d, t, w)| format!("analyzing: {d}/{t} ({w})"))
            .unwrap_or_else(|| "analyzing…".into()),
        Phase::Broken => "stopped by an error".into(),
        Phase::Stopped => "the run stopped on an error: Train starts a new one".into(),
    };
    view! {
        <div class="status" data-phase=move || format!("{:?}", state.phase.get()).to_lowercase()>
            <span class="backend">"Backend: " {move || state.backend.get()}</span>
            <span class="backend-note">{move || state.backend_note.get()}</span>
            <span class="phase">{phase}</span>
            <span class="progress">{progress}</span>
        </div>
        <Show when=move || state.errors.with(|e| !e.is_empty())>
            <div class="errors" role="alert">
                <For each=move || state.errors.get().into_iter().enumerate() key=|(i, _)| *i let:e>
                    <p>{e.1}</p>
                </For>
            </div>
        </Show>
    }
}

#[component]
fn Controls() -> impl IntoView {
    let state = expect_context::<AppState>();
    let phase = move || state.phase.get();
    let busy = move || matches!(phase(), Phase::Starting | Phase::Loading | Phase::NoData | Phase::Broken | Phase::Analyzing);
    // Train may be pressed while the data loads (the run waits for it).
    let train_blocked = move || matches!(phase(), Phase::Starting | Phase::NoData | Phase::Broken | Phase::Analyzing) || state.pending_start.get();
    let layers = move || state.live.with(|l| l.as_ref().map(|l| l.layers.clone())).unwrap_or_else(|| state.url.with(|u| u.settings.layer_names()));
    let data_locked = move || phase().data_locked();
    let (embed_pick, set_embed_pick) = signal(FigureId::Fig5);
    let (snippet, set_snippet) = signal(String::new());
    let copy_embed = move |_| {
        let Some(w) = web_sys::window() else { return };
        let loc = w.location();
        let page = format!("{}{}", loc.origin().unwrap_or_default(), loc.pathname().unwrap_or_default());
        let snip = state.url.with_untracked(|u| u.embed_snippet(&page, embed_pick.get_untracked()));
        let _ = w.navigator().clipboard().write_text(&snip);
        set_snippet.set(snip);
    };
    view! {
        <div class="controls">
            <fieldset>
                <legend>"Model and training"</legend>
                <label>"data "
                    <select id="data" disabled=data_locked prop:value=move || state.url.with(|u| u.settings.data.id().to_string())
                        on:change=move |ev| { if let Some(d) = DataChoice::parse(&event_target_value(&ev)) { link::choose_data(state, d) } }>
                        {DataChoice::ALL.into_iter().map(|d| view! { <option value=d.id()>{d.label()}</option> }).collect_view()}
                    </select>
                </label>
                <Show when=move || state.url.with(|u| u.settings.data == DataChoice::Own)>
                    <label>"IDX files "
                        <input id="data-files" type="file" multiple disabled=data_locked
                            aria-describedby="data-files-help"
                            on:change=move |ev| {
                                let input: web_sys::HtmlInputElement = event_target(&ev);
                                if let Some(files) = input.files() {
                                    link::load_own_files(state, &files);
                                }
                            }/>
                    </label>
                    <span id="data-files-help" class="hint">"four files named like MNIST's (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or not), 28x28 images, labels 0 to 9"</span>
                </Show>
                <label>"model "
                    <select id="model" prop:value=move || state.url.with(|u| u.settings.model.id().to_string())
                        on:change=move |ev| {
                            if let Some(m) = ModelKind::parse(&event_target_value(&ev)) {
                                state.url.update(|u| {
                                    u.settings.model = m;
                                    u.view.layer = u.view.layer.min(m.layers() - 1);
                                });
                            }
                        }>
                        {ModelKind::ALL.into_iter().map(|m| view! { <option value=m.id()>{m.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>"activation "
                    <select prop:value=move || state.url.with(|u| u.settings.activation.suffix().to_string())
                        on:change=move |ev| { if let Ok(a) = event_target_value(&ev).parse::<Activation>() { state.url.update(|u| u.settings.activation = a) } }>
                        <option value="relu">"ReLU"</option>
                        <option value="sigmoid">"sigmoid"</option>
                    </select>
                </label>
                {Field::ALL.into_iter().map(|field| view! { <SettingInput field=field/> }).collect_view()}
                <label>"backend "
                    <select id="backend" prop:value=move || state.url.with(|u| u.settings.backend.name().to_string())
                        on:change=move |ev| {
                            if let Ok(b) = event_target_value(&ev).parse::<BackendChoice>() {
                                state.url.update(|u| u.settings.backend = b);
                                // A run, finished or not, keeps its device; the next one follows the choice.
                                if phase() == Phase::Ready {
                                    state.show_planned_backend();
                                }
                            }
                        }>
                        <option value="auto">"auto"</option>
                        <option value="wgpu">"WebGPU"</option>
                        <option value="cpu">"CPU"</option>
                    </select>
                </label>
                <SettingsError/>
                <div class="buttons">
                    <button id="train" disabled=move || train_blocked() || !state.settings_valid() on:click=move |_| start_training(state)>"Train"</button>
                    <button id="pause" disabled=move || phase() != Phase::Training on:click=move |_| link::send(&WorkerInput::Pause)>"Pause"</button>
                    <button id="resume" disabled=move || phase() != Phase::Paused on:click=move |_| link::send(&WorkerInput::Resume)>"Resume"</button>
                    <button id="reset" disabled=move || busy() on:click=move |_| link::send(&WorkerInput::Reset)>"Reset"</button>
                    <button id="analyze" disabled=move || !matches!(phase(), Phase::Training | Phase::Paused | Phase::Trained)
                        on:click=move |_| analyze(state)>"Analyze"</button>
                    <button id="export" disabled=move || !matches!(phase(), Phase::Training | Phase::Paused | Phase::Trained)
                        on:click=move |_| { state.export_pending.set(true); link::send(&WorkerInput::Export) }>"Download results.json"</button>
                </div>
            </fieldset>
            <fieldset>
                <legend>"What the figures show"</legend>
                <label>"layer "
                    <select prop:value=move || state.url.with(|u| u.view.layer.to_string())
                        on:change=move |ev| { if let Ok(l) = event_target_value(&ev).parse() { state.url.update(|u| u.view.layer = l); send_view(state) } }>
                        {move || layers().into_iter().enumerate().map(|(i, (name, n))| view! { <option value=i.to_string()>{format!("{name} ({n} neurons)")}</option> }).collect_view()}
                    </select>
                </label>
                <label>"neuron "
                    <input id="neuron" type="number" min="0" prop:value=move || state.url.with(|u| u.view.neuron.to_string())
                        on:change=move |ev| { if let Ok(n) = event_target_value(&ev).parse::<usize>() { select_neuron(state, n) } }/>
                </label>
                <span class="traced">{move || state.live.with(|l| l.as_ref().map(|l| {
                    let traced = l.traced.clone();
                    view! {
                        "traced for figure 2 (click one): "
                        {traced.into_iter().map(|n| view! { <button class="neuron-link" aria-label=format!("view neuron {n}") on:click=move |_| select_neuron(state, n)>{n.to_string()}</button> }).collect_view()}
                    }
                }))}</span>
            </fieldset>
            <fieldset>
                <legend>"Embed in a blog post"</legend>
                <select on:change=move |ev| if let Some(f) = FigureId::parse(&event_target_value(&ev)) { set_embed_pick.set(f) } prop:value=move || embed_pick.get().name()>
                    {FigureId::ALL.into_iter().map(|f| view! { <option value=f.name()>{f.heading()}</option> }).collect_view()}
                </select>
                <button id="copy-embed" on:click=copy_embed>"Copy embed code"</button>
                <Show when=move || !snippet.get().is_empty()>
                    <textarea readonly class="snippet">{snippet}</textarea>
                </Show>
            </fieldset>
        </div>
    }
}

/// One text field of the settings form: it keeps what the user typed (see [`crate::form`]).
#[component]
fn SettingInput(field: Field) -> impl IntoView {
    let state = expect_context::<AppState>();
    let invalid = move || state.settings_error.with(|e| e.as_ref().is_some_and(|e| e.field == Some(field)));
    view! {
        <label>{field.label()} " "
            <input id=field.id() type="text" size="8" style="width:6.5em" autocomplete="off" spellcheck="false"
                inputmode=if field == Field::LearningRate { "text" } else { "numeric" }
                aria-describedby="settings-error" aria-invalid=move || invalid().to_string()
                prop:value=move || state.form.with(|f| f.text(field).to_string())
                on:input=move |ev| state.edit_setting(field, event_target_value(&ev))/>
        </label>
    }
}

/// The form's one message while its settings cannot train (empty and hidden otherwise).
#[component]
fn SettingsError() -> impl IntoView {
    let state = expect_context::<AppState>();
    let message = move || state.settings_error.with(|e| e.as_ref().map(|e| e.message.clone()).unwrap_or_default());
    view! {
        <p id="settings-error" class="settings-error" role="alert" hidden=move || message().is_empty()
            style="flex-basis:100%;margin:0;color:var(--bad)">{message}</p>
    }
}

#[component]
fn Scrubber() -> impl IntoView {
    let state = expect_context::<AppState>();
    let recordings = move || state.live.with(|l| l.as_ref().and_then(|l| l.fig2.as_ref()).map(|f| match &f.figure {
        hidden_neurons::figures::Figure::Evolution(e) => e.steps.len(),
        _ => 0,
    })).unwrap_or(0);
    let value = move || state.url.with(|u| u.view.recording).unwrap_or(recordings().saturating_sub(1));
    view! {
        <label class="scrubber">"recording "
            <input id="scrubber" type="range" min="0" prop:max=move || recordings().saturating_sub(1).to_string() prop:value=move || value().to_string()
                on:input=move |ev| {
                    if let Ok(r) = event_target_value(&ev).parse::<usize>() {
                        let last = recordings().saturating_sub(1);
                        state.url.update(|u| u.view.recording = (r < last).then_some(r));
                        send_view(state);
                    }
                }/>
            {move || format!("{} of {}", value() + 1, recordings())}
        </label>
    }
}

#[component]
fn FullPage() -> impl IntoView {
    let state = expect_context::<AppState>();
    // Files dropped anywhere on the page become the data set (the browser would open them).
    let _ = window_event_listener(leptos::ev::dragover, |ev| ev.prevent_default());
    let _ = window_event_listener(leptos::ev::drop, move |ev| {
        ev.prevent_default();
        let Some(files) = ev.data_transfer().and_then(|d| d.files()) else { return };
        if files.length() == 0 || state.phase.get_untracked().data_locked() {
            return;
        }
        link::load_own_files(state, &files);
    });
    view! {
        <header>
            <h1>"Hidden neurons are binary classifiers"</h1>
            <p class="lede">"A network (the paper's MLP, or a small CNN) learns MNIST, Fashion-MNIST or your own data in your browser. While it trains, every few batches the gradient of the loss with respect to each hidden neuron's activation is recorded for a fixed set of training samples. Its average sign splits the samples of each neuron into two categories: the network pushes one group's activation up and the other's down, like a binary classifier. Reproduces \"Discovering the mechanics of hidden neurons\" (Carbonnelle & De Vleeschouwer)."</p>
        </header>
        <Status/>
        <Controls/>
        <main class="grid">
            <FigureCard id=FigureId::Loss/>
            <FigureCard id=FigureId::Accuracy/>
            <FigureCard id=FigureId::Rotation/>
            <FigureCard id=FigureId::Fig1/>
            <FigureCard id=FigureId::Fig5/>
            <FigureCard id=FigureId::Neurons/>
            <div class="stack">
                <FigureCard id=FigureId::Fig2/>
                <Scrubber/>
            </div>
            <FigureCard id=FigureId::Fig2At/>
            <FigureCard id=FigureId::Fig8/>
            <FigureCard id=FigureId::Fig3/>
            <FigureCard id=FigureId::Fig4/>
        </main>
        <footer>"hidden-neurons: Rust, burn, Leptos and plotters, compiled to WebAssembly. Figures 3, 4 and 8 need a trained model: press Analyze."</footer>
    }
}

/// `?embed=<figure>`: that figure alone, filling its frame, with a small Train button.
#[component]
fn Embedded(id: FigureId) -> impl IntoView {
    let state = expect_context::<AppState>();
    let full = move || state.url.with(|u| UrlState { embed: None, autostart: false, ..u.clone() }.to_query());
    let needs_analysis = matches!(id, FigureId::Fig3 | FigureId::Fig4 | FigureId::Fig8);
    view! {
        <div class="embed-frame">
            <FigureCard id=id embed=true/>
            <div class="embed-bar">
                <button id="train" disabled=move || !matches!(state.phase.get(), Phase::Ready | Phase::Trained | Phase::Stopped) || !state.settings_valid()
                    on:click=move |_| start_training(state)>"Train"</button>
                <Show when=move || needs_analysis>
                    <button id="analyze" disabled=move || state.phase.get() != Phase::Trained
                        on:click=move |_| analyze(state)>"Analyze"</button>
                </Show>
                <span class="embed-status">{move || state.errors.with(|e| e.last().cloned()).unwrap_or_else(|| format!("{:?}", state.phase.get()).to_lowercase())}</span>
                <a href=full target="_blank">"hidden-neurons"</a>
            </div>
        </div>
    }
}
