//! The data behind every figure: what a test checks, what the CSV holds, what gets drawn.
//!
//! These types depend on nothing but serde so that the web page, the native trainer and the
//! tests all read the same structures.

use serde::{Deserialize, Serialize};

/// A histogram with explicit bin edges (`edges.len() == counts.len() + 1`).
/// Bins are half-open `[e_i, e_{i+1})` except the last, which is closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(with = "crate::json::opt_f64s")]
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// `bins` equal bins over `[lo, hi]`, all counts zero.
    pub fn empty(lo: f64, hi: f64, bins: usize) -> Self {
        let edges = (0..=bins)
            .map(|i| lo + (hi - lo) * i as f64 / bins as f64)
            .collect();
        Self { edges, counts: vec![0; bins] }
    }

    /// Counts `values` into `bins` equal bins over `[lo, hi]`; values outside are clamped in,
    /// non-finite values are skipped.
    pub fn from_values(values: impl IntoIterator<Item = f64>, lo: f64, hi: f64, bins: usize) -> Self {
        let mut h = Self::empty(lo, hi, bins);
        for v in values {
            h.add(v);
        }
        h
    }

    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let bins = self.counts.len();
        let lo = self.edges[0];
        let hi = self.edges[bins];
        let i = ((v - lo) / (hi - lo) * bins as f64).floor();
        let i = (i.max(0.0) as usize).min(bins - 1);
        self.counts[i] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// One labelled histogram panel (one neuron, or one whole layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramPanel {
    /// e.g. "dense2-relu, neuron 17" or "dense2-relu (all neurons)"
    pub label: String,
    pub histogram: Histogram,
}

/// Figures 1, 5 and 8: a row of histogram panels sharing an x axis meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramFigure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub panels: Vec<HistogramPanel>,
}

/// Percentile band of a set of samples' pre-activations at each recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Number of samples in the category (constant over time: categories come from the final
    /// average signs).
    pub samples: usize,
    /// Percentiles per recording; `null` (NaN in memory) where the category is empty.
    #[serde(with = "crate::json::opt_f32s")]
    pub p10: Vec<f32>,
    #[serde(with = "crate::json::opt_f32s")]
    pub p50: Vec<f32>,
    #[serde(with = "crate::json::opt_f32s")]
    pub p90: Vec<f32>,
}

/// One highlighted sample's trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Index of the sample within the tracked set.
    pub sample: usize,
    #[serde(with = "crate::json::opt_f32s")]
    pub values: Vec<f32>,
}

/// Figures 2, 6, 7: one neuron's pre-activations over training, split by category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvolutionFigure {
    pub title: String,
    pub layer: String,
    pub neuron: usize,
    /// Training step (batch index) of each recording; all series below have this length.
    pub steps: Vec<u64>,
    /// Samples whose average sign is negative (the gradient pushes the activation up).
    pub high: Band,
    /// Samples whose average sign is positive.
    pub low: Band,
    /// The high-category samples with the largest final pre-activation.
    pub highlighted: Vec<Trajectory>,
}

/// One curve of accuracy against an x value (percentile rank or window centre).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub label: String,
    #[serde(with = "crate::json::opt_f64s")]
    pub xs: Vec<f64>,
    #[serde(with = "crate::json::opt_f64s")]
    pub ys: Vec<f64>,
    /// Horizontal reference (the unquantized test accuracy).
    pub reference: Option<f64>,
    /// Vertical marker (the zero pre-activation's average percentile rank).
    pub marker: Option<f64>,
}

/// Figures 3 and 4: accuracy curves, one per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveFigure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
    /// What the curves' vertical markers mean in the legend (default: the zero pre-activation's
    /// percentile rank, as in figure 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker_label: Option<String>,
}

/// Any figure this project draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Figure {
    Histograms(HistogramFigure),
    Evolution(EvolutionFigure),
    Curves(CurveFigure),
}

impl Figure {
    pub fn title(&self) -> &str {
        match self {
            Figure::Histograms(f) => &f.title,
            Figure::Evolution(f) => &f.title,
            Figure::Curves(f) => &f.title,
        }
    }
}

/// A figure with the file stem it is saved under and a caption for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedFigure {
    /// File stem, e.g. "fig1_one_neuron"; the files are `<stem>.svg`, `<stem>.png`, `<stem>.csv`.
    pub stem: String,
    pub caption: String,
    pub figure: Figure,
}
