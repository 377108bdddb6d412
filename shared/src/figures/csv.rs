//! The numbers behind each figure as tidy CSV (RFC 4180): one header row, one row per data
//! point, so a reader can re-plot them with any tool.

use std::fmt::Write;

use super::{Band, CurveFigure, EvolutionFigure, Figure, HistogramFigure};

/// The figure's data as CSV text, lines ending in `\n`.
///
/// - histograms: `panel,bin_lo,bin_hi,count`
/// - evolution: `step,series,sample,value`, series one of `high_p10`, `high_p50`, `high_p90`,
///   `low_p10`, `low_p50`, `low_p90`, `highlight` (`sample` is set only for `highlight`)
/// - curves: `curve,x,accuracy,reference,marker` (`reference`/`marker` empty when absent)
///
/// Numbers use Rust's shortest round-trip formatting; non-finite values appear as `NaN`,
/// `inf`, `-inf`. Series longer than `steps` (or `xs` than `ys`) are cut to the shorter length.
pub fn figure_csv(fig: &Figure) -> String {
    let mut out = Csv::default();
    match fig {
        Figure::Histograms(f) => histograms(&mut out, f),
        Figure::Evolution(f) => evolution(&mut out, f),
        Figure::Curves(f) => curves(&mut out, f),
    }
    out.text
}

fn histograms(out: &mut Csv, fig: &HistogramFigure) {
    out.row(&["panel", "bin_lo", "bin_hi", "count"]);
    for panel in &fig.panels {
        let h = &panel.histogram;
        for (edge, count) in h.edges.windows(2).zip(&h.counts) {
            out.row(&[
                &panel.label,
                &edge[0].to_string(),
                &edge[1].to_string(),
                &count.to_string(),
            ]);
        }
    }
}

fn evolution(out: &mut Csv, fig: &EvolutionFigure) {
    out.row(&["step", "series", "sample", "value"]);
    let mut series = |name: &str, sample: &str, values: &[f32]| {
        for (step, v) in fig.steps.iter().zip(values) {
            out.row(&[&step.to_string(), name, sample, &v.to_string()]);
        }
    };
    for (prefix, band) in [("high", &fig.high), ("low", &fig.low)] {
        for (suffix, values) in band_series(band) {
            series(&format!("{prefix}_{suffix}"), "", values);
        }
    }
    for t in &fig.highlighted {
        series("highlight", &t.sample.to_string(), &t.values);
    }
}

fn band_series(band: &Band) -> [(&'static str, &[f32]); 3] {
    [("p10", &band.p10), ("p50", &band.p50), ("p90", &band.p90)]
}

fn curves(out: &mut Csv, fig: &CurveFigure) {
    out.row(&["curve", "x", "accuracy", "reference", "marker"]);
    let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for c in &fig.curves {
        let (reference, marker) = (optional(c.reference), optional(c.marker));
        for (x, y) in c.xs.iter().zip(&c.ys) {
            out.row(&[
                &c.label,
                &x.to_string(),
                &y.to_string(),
                &reference,
                &marker,
            ]);
        }
    }
}

#[derive(Default)]
struct Csv {
    text: String,
}

impl Csv {
    fn row(&mut self, fields: &[&str]) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            push_field(&mut self.text, field);
        }
        self.text.push('\n');
    }
}

/// RFC 4180: quote a field holding a separator, quote or line break; double inner quotes.
fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        let _ = write!(out, "\"{}\"", field.replace('"', "\"\""));
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::fixtures;
    use crate::figures::{Curve, Histogram, HistogramPanel, Trajectory};

    fn lines(csv: &str) -> Vec<&str> {
        assert!(csv.ends_with('\n'));
        csv.lines().collect()
    }

    #[test]
    fn histogram_rows() {
        let fig = fixtures::histograms();
        let csv = figure_csv(&Figure::Histograms(fig.clone()));
        let lines = lines(&csv);
        assert_eq!(lines[0], "panel,bin_lo,bin_hi,count");
        let bins: usize = fig.panels.iter().map(|p| p.histogram.counts.len()).sum();
        assert_eq!(lines.len(), 1 + bins);
        // Panel labels contain a comma, so they are quoted.
        assert!(
            lines[1].starts_with("\"dense1-relu, neuron 3\",-1,-0.9,"),
            "{}",
            lines[1]
        );
        let total: u64 = lines[1..]
            .iter()
            .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            total,
            fig.panels.iter().map(|p| p.histogram.total()).sum::<u64>()
        );
    }

    #[test]
    fn histogram_with_mismatched_lengths_uses_complete_bins() {
        let fig = HistogramFigure {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            panels: vec![
                HistogramPanel {
                    label: "a".into(),
                    histogram: Histogram {
                        edges: vec![0.0, 1.0],
                        counts: vec![1, 2],
                    },
                },
                HistogramPanel {
                    label: "b".into(),
                    histogram: Histogram {
                        edges: vec![],
                        counts: vec![],
                    },
                },
            ],
        };
        assert_eq!(
            figure_csv(&Figure::Histograms(fig)),
            "panel,bin_lo,bin_hi,count\na,0,1,1\n"
        );
    }

    #[test]
    fn evolution_rows() {
        let fig = fixtures::evolution();
        let n = fig.steps.len();
        let csv = figure_csv(&Figure::Evolution(fig.clone()));
        let lines = lines(&csv);
        assert_eq!(lines[0], "step,series,sample,value");
        assert_eq!(lines.len(), 1 + 6 * n + fig.highlighted.len() * n);
        assert_eq!(lines[1], format!("0,high_p10,,{}", fig.high.p10[0]));
        let highlight = format!("highlight,{},", fig.highlighted[0].sample);
        assert_eq!(lines.iter().filter(|l| l.contains(&highlight)).count(), n);
        for series in [
            "high_p10", "high_p50", "high_p90", "low_p10", "low_p50", "low_p90",
        ] {
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.contains(&format!(",{series},,")))
                    .count(),
                n
            );
        }
    }

    #[test]
    fn evolution_with_no_steps_has_only_a_header() {
        let mut fig = fixtures::evolution();
        fig.steps.clear();
        fig.highlighted.push(Trajectory {
            sample: 1,
            values: vec![f32::NAN],
        });
        assert_eq!(
            figure_csv(&Figure::Evolution(fig)),
            "step,series,sample,value\n"
        );
    }

    #[test]
    fn curve_rows() {
        let mut fig = fixtures::curves();
        fig.curves.push(Curve {
            label: "say \"hi\"".into(),
            xs: vec![5.0, 50.0, 95.0],
            ys: vec![0.5, f64::NAN],
            reference: None,
            marker: None,
        });
        let csv = figure_csv(&Figure::Curves(fig.clone()));
        let lines = lines(&csv);
        assert_eq!(lines[0], "curve,x,accuracy,reference,marker");
        let points: usize = fig.curves.iter().map(|c| c.xs.len().min(c.ys.len())).sum();
        assert_eq!(lines.len(), 1 + points);
        let c0 = &fig.curves[0];
        let expected = format!("dense1-relu,0,{},0.981,37.5", c0.ys[0]);
        assert_eq!(lines[1], expected);
        assert_eq!(lines[lines.len() - 2], "\"say \"\"hi\"\"\",5,0.5,,");
        assert_eq!(lines[lines.len() - 1], "\"say \"\"hi\"\"\",50,NaN,,");
    }

    #[test]
    fn fields_are_quoted_per_rfc4180() {
        let mut s = String::new();
        for f in ["plain", "a,b", "q\"", "line\nbreak", ""] {
            push_field(&mut s, f);
            s.push('|');
        }
        assert_eq!(s, "plain|\"a,b\"|\"q\"\"\"|\"line\nbreak\"||");
    }
}
