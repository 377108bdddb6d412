//! Figures: the data behind them, drawing on any plotters backend, CSV export and SVG/PNG output.
//!
//! Drawing (`draw`) only uses plotters core APIs so the same code serves the native SVG/PNG
//! renderers (`render`) and a browser canvas.

mod csv;
mod data;
mod draw;
mod readout;
mod render;

pub use csv::figure_csv;
pub use data::*;
pub use draw::{PlotArea, draw_curves, draw_evolution, draw_figure, draw_figure_mapped, draw_histograms};
pub use readout::{bin_at, describe, nearest, summarize};
pub use render::{default_size, register_fonts, render_png, render_svg};

use plotters::drawing::DrawingAreaErrorKind;

/// Why a figure could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The plotting backend failed (layout, font or backend error), as plotters reported it.
    #[error("drawing the figure failed: {0}")]
    Draw(String),
    #[error("invalid image size {width}x{height} (each side must be 1..={max})", max = render::MAX_SIDE)]
    Size { width: u32, height: u32 },
    #[error("encoding the PNG failed: {0}")]
    Encode(String),
}

// plotters' errors are generic over the backend; flatten them to text so `FigureError` stays a
// plain type that every backend (SVG, bitmap, canvas) can return.
impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for FigureError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        FigureError::Draw(e.to_string())
    }
}

/// Small synthetic figures shared by the tests of this module and of the report.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// Deterministic noise in [0, 1) so fixtures need no rand dependency.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    pub fn histograms() -> HistogramFigure {
        let mut rng = Lcg(1);
        let panel = |label: &str, skew: f64, rng: &mut Lcg| {
            // Bimodal average signs near -1 and +1, like a trained dense2 neuron.
            let values = (0..2000).map(|_| {
                let side = if rng.next() < skew { -1.0 } else { 1.0 };
                side * (1.0 - rng.next().powi(3) * 1.2)
            });
            HistogramPanel {
                label: label.to_string(),
                histogram: Histogram::from_values(values.collect::<Vec<_>>(), -1.0, 1.0, 20),
            }
        };
        HistogramFigure {
            title: "Figure 1: average gradient sign per sample, one neuron per layer".into(),
            x_label: "average sign of dLoss/dActivation".into(),
            y_label: "samples".into(),
            panels: vec![
                panel("dense1-relu, neuron 3", 0.3, &mut rng),
                panel("dense2-relu, neuron 17", 0.5, &mut rng),
                panel("output, neuron 4", 0.9, &mut rng),
            ],
        }
    }

    pub fn evolution() -> EvolutionFigure {
        let mut rng = Lcg(7);
        let steps: Vec<u64> = (0..=200).map(|i| i * 10).collect();
        let t = |i: usize| i as f32 / 200.0;
        let band = |centre: &dyn Fn(f32) -> f32, spread: f32, samples: usize| Band {
            samples,
            p10: (0..steps.len())
                .map(|i| centre(t(i)) - spread * (0.3 + t(i)))
                .collect(),
            p50: (0..steps.len()).map(|i| centre(t(i))).collect(),
            p90: (0..steps.len())
                .map(|i| centre(t(i)) + spread * (0.3 + t(i)))
                .collect(),
        };
        let high = band(&|t| 0.2 + 2.5 * t.sqrt(), 1.0, 530);
        let low = band(&|t| 0.1 - 2.0 * t.sqrt(), 0.8, 470);
        let highlighted = (0..5)
            .map(|k| {
                let phase = rng.next() as f32;
                Trajectory {
                    sample: 100 + k * 37,
                    values: (0..steps.len())
                        .map(|i| -0.5 + (4.0 + k as f32 * 0.3) * t(i).powf(0.5 + phase))
                        .collect(),
                }
            })
            .collect();
        EvolutionFigure {
            title: "Figure 2: pre-activations of one neuron during training".into(),
            layer: "dense2-relu".into(),
            neuron: 17,
            steps,
            high,
            low,
            highlighted,
        }
    }

    pub fn curves() -> CurveFigure {
        let xs: Vec<f64> = (0..=10).map(|i| i as f64 * 10.0).collect();
        let curve = |label: &str, reference: f64, drop: f64, marker: Option<f64>| Curve {
            label: label.to_string(),
            xs: xs.clone(),
            ys: xs
                .iter()
                .map(|x| reference - drop * ((x - 60.0) / 60.0).powi(4))
                .collect(),
            reference: Some(reference),
            marker,
        };
        CurveFigure {
            title: "Figure 3: test accuracy after quantizing a layer to two values".into(),
            x_label: "threshold percentile rank r".into(),
            y_label: "test accuracy".into(),
            curves: vec![
                curve("dense1-relu", 0.981, 0.5, Some(37.5)),
                curve("dense2-relu", 0.981, 0.3, Some(62.0)),
            ],
            marker_label: None,
        }
    }
}
