//! The page's state in its URL, so that a view can be shared and embedded:
//! `?model=relu&layer=1&neuron=17&epochs=1&batch=128&lr=0.001&seed=1&backend=wgpu&embed=fig5`.

use hidden_neurons::backend::BackendChoice;
use hidden_neurons::model::Activation;

use crate::protocol::{DataChoice, MAX_WORKERS, ModelKind, Settings, View};

/// The figures the page shows, by their URL name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FigureId {
    Loss,
    /// Train and test accuracy.
    Accuracy,
    /// Layer rotation (Carbonnelle & De Vleeschouwer, arXiv 1806.01603).
    Rotation,
    /// Per-neuron overview of the viewed layer (click to select).
    Neurons,
    Fig1,
    Fig5,
    Fig2,
    /// Figure 2's distributions at the scrubbed recording.
    Fig2At,
    Fig3,
    Fig4,
    Fig8,
}

impl FigureId {
    pub const ALL: [FigureId; 11] = [
        FigureId::Loss,
        FigureId::Accuracy,
        FigureId::Rotation,
        FigureId::Neurons,
        FigureId::Fig1,
        FigureId::Fig5,
        FigureId::Fig2,
        FigureId::Fig2At,
        FigureId::Fig3,
        FigureId::Fig4,
        FigureId::Fig8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FigureId::Loss => "loss",
            FigureId::Accuracy => "accuracy",
            FigureId::Rotation => "rotation",
            FigureId::Neurons => "neurons",
            FigureId::Fig1 => "fig1",
            FigureId::Fig5 => "fig5",
            FigureId::Fig2 => "fig2",
            FigureId::Fig2At => "fig2at",
            FigureId::Fig3 => "fig3",
            FigureId::Fig4 => "fig4",
            FigureId::Fig8 => "fig8",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// A heading for the page.
    pub fn heading(self) -> &'static str {
        match self {
            FigureId::Loss => "Training loss",
            FigureId::Accuracy => "Train and test accuracy",
            FigureId::Rotation => "Layer rotation: cosine distance of each layer's weights to their start",
            FigureId::Neurons => "Neurons of the layer: share of clear-cut samples (click one)",
            FigureId::Fig1 => "Figure 1: average gradient sign, one neuron",
            FigureId::Fig5 => "Figure 5: average gradient sign, whole layer",
            FigureId::Fig2 => "Figure 2: pre-activations over training, by category",
            FigureId::Fig2At => "Figure 2 at one moment: pre-activation distributions",
            FigureId::Fig3 => "Figure 3: two-value quantization",
            FigureId::Fig4 => "Figure 4: sliding-window binarization",
            FigureId::Fig8 => "Figure 8: classes vs categories",
        }
    }
}

/// Everything the URL holds.
#[derive(Clone, Debug, PartialEq)]
pub struct UrlState {
    pub settings: Settings,
    pub view: View,
    /// Only this figure, sized to its frame (for iframes in blog posts).
    pub embed: Option<FigureId>,
    /// Start training as soon as the data is there.
    pub autostart: bool,
    /// Workers the analysis runs on (`workers=1`: the training worker alone); by default as
    /// many as the browser reports cores.
    pub workers: Option<usize>,
}

impl Default for UrlState {
    fn default() -> Self {
        Self { settings: Settings::default(), view: View::default(), embed: None, autostart: false, workers: None }
    }
}

impl UrlState {
    /// Reads a query string (with or without the leading `?`). Unknown keys and unreadable values
    /// are ignored: a shared link from an older version still opens.
    pub fn parse(query: &str) -> Self {
        let mut st = Self::default();
        for pair in query.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let s = &mut st.settings;
            match k {
                // `mlp-relu`, `cnn-sigmoid`; older links say only the activation (`relu`).
                "model" => {
                    let (kind, activation) = v.split_once('-').unwrap_or(("", v));
                    if let Some(m) = ModelKind::parse(kind).or_else(|| ModelKind::parse(v)) {
                        s.model = m;
                    }
                    if let Ok(a) = activation.parse::<Activation>() {
                        s.activation = a;
                    }
                }
                "data" => {
                    if let Some(d) = DataChoice::parse(v) {
                        s.data = d;
                    }
                }
                "epochs" => set(&mut s.epochs, v),
                "batch" => set(&mut s.batch_size, v),
                "lr" => set(&mut s.learning_rate, v),
                "seed" => set(&mut s.seed, v),
                "every" => set(&mut s.every_batches, v),
                "tracked" => set(&mut s.tracked_samples, v),
                "backend" => set(&mut s.backend, v),
                "layer" => set(&mut st.view.layer, v),
                "neuron" => set(&mut st.view.neuron, v),
                "embed" => st.embed = FigureId::parse(v),
                "autostart" => st.autostart = v != "0" && v != "false",
                "workers" => st.workers = v.parse::<usize>().ok().map(|n| n.clamp(1, MAX_WORKERS)),
                _ => {}
            }
        }
        st.settings = st.settings.sanitized();
        st.view.layer = st.view.layer.min(st.settings.model.layers() - 1);
        st
    }

    /// The query string (with `?`) that [`UrlState::parse`] reads back.
    pub fn to_query(&self) -> String {
        let s = &self.settings;
        let mut q = format!(
            "?model={}&data={}&layer={}&neuron={}&epochs={}&batch={}&lr={}&seed={}&every={}&tracked={}",
            s.model_id(),
            s.data.id(),
            self.view.layer,
            self.view.neuron,
            s.epochs,
            s.batch_size,
            s.learning_rate,
            s.seed,
            s.every_batches,
            s.tracked_samples
        );
        if s.backend != BackendChoice::Auto {
            q.push_str("&backend=");
            q.push_str(s.backend.name());
        }
        if let Some(e) = self.embed {
            q.push_str("&embed=");
            q.push_str(e.name());
        }
        if self.autostart {
            q.push_str("&autostart=1");
        }
        if let Some(n) = self.workers {
            q.push_str(&format!("&workers={n}"));
        }
        q
    }

    /// The `<iframe>` snippet that embeds `figure` of this view, served from `page_url` (the
    /// page's address without its query).
    pub fn embed_snippet(&self, page_url: &str, figure: FigureId) -> String {
        let st = Self { embed: Some(figure), ..self.clone() };
        format!(
            r#"<iframe src="{page_url}{}" width="720" height="440" style="border:0;max-width:100%" loading="lazy" title="hidden-neurons: {}"></iframe>"#,
            st.to_query(),
            figure.heading()
        )
    }
}

fn set<T: std::str::FromStr>(field: &mut T, v: &str) {
    if let Ok(x) = v.parse() {
        *field = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips() {
        let mut st = UrlState::default();
        st.settings.activation = Activation::Sigmoid;
        st.settings.model = ModelKind::Cnn;
        st.settings.data = DataChoice::FashionMnist;
        st.settings.epochs = 3;
        st.settings.learning_rate = 0.0005;
        st.settings.backend = BackendChoice::Wgpu;
        st.view = View { layer: 2, neuron: 12, recording: None };
        st.embed = Some(FigureId::Fig5);
        st.autostart = true;
        st.workers = Some(1);
        assert_eq!(UrlState::parse(&st.to_query()), st);
    }

    #[test]
    fn bad_values_fall_back_instead_of_failing() {
        let st = UrlState::parse("?model=tanh&epochs=-3&layer=9&embed=fig99&neuron=x&batch=0");
        assert_eq!(st.settings.activation, Activation::Relu);
        assert_eq!(st.settings.epochs, 1);
        assert_eq!(st.settings.batch_size, 1);
        assert_eq!(st.view.layer, 1);
        assert_eq!(st.view.neuron, 0);
        assert_eq!(st.embed, None);
        assert_eq!(st.workers, None);
        assert_eq!((UrlState::parse("?workers=0").workers, UrlState::parse("?workers=99").workers), (Some(1), Some(MAX_WORKERS)));
        assert_eq!((st.settings.model, st.settings.data), (ModelKind::Mlp, DataChoice::Mnist));
        // The CNN has a third layer; an unknown data set stays MNIST.
        let st = UrlState::parse("?model=cnn-sigmoid&layer=9&data=imagenet");
        assert_eq!((st.settings.model, st.settings.activation, st.view.layer, st.settings.data), (ModelKind::Cnn, Activation::Sigmoid, 2, DataChoice::Mnist));
        // Links from before the model choice name only the activation.
        let st = UrlState::parse("?model=sigmoid&data=own");
        assert_eq!((st.settings.model, st.settings.activation, st.settings.data), (ModelKind::Mlp, Activation::Sigmoid, DataChoice::Own));
    }

    #[test]
    fn embed_snippet_points_at_one_figure() {
        let snip = UrlState::default().embed_snippet("https://example.org/hn/", FigureId::Fig1);
        assert!(snip.starts_with(r#"<iframe src="https://example.org/hn/?model=mlp-relu&data=mnist"#), "{snip}");
        assert!(snip.contains("&embed=fig1"));
    }
}
