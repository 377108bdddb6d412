//! Figures in words: what a pointer at data coordinate `x` of a panel points at (the page's
//! hover read-out), and a whole figure's summary for screen readers (the same text for every
//! backend).

use super::{Figure, Histogram};

/// The read-out for `x` in panel `panel`, or `None` where there is no data.
pub fn describe(fig: &Figure, panel: usize, x: f64) -> Option<String> {
    match fig {
        Figure::Histograms(f) => {
            let p = f.panels.get(panel)?;
            let i = bin_at(&p.histogram, x)?;
            let e = &p.histogram.edges;
            Some(format!("{}: [{:.2}, {:.2}): {}", p.label, e[i], e[i + 1], p.histogram.counts[i]))
        }
        Figure::Curves(f) => {
            let parts: Vec<String> = f
                .curves
                .iter()
                .filter_map(|c| {
                    let i = nearest(&c.xs, x)?;
                    Some(format!("{}: {:.4} at {}", c.label, c.ys[i], trim(c.xs[i])))
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Figure::Evolution(f) => {
            let xs: Vec<f64> = f.steps.iter().map(|&s| s as f64).collect();
            let i = nearest(&xs, x)?;
            let at = |v: &[f32]| v.get(i).map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
            Some(format!(
                "step {}: high median {} ({} samples), low median {} ({} samples)",
                f.steps[i],
                at(&f.high.p50),
                f.high.samples,
                at(&f.low.p50),
                f.low.samples
            ))
        }
    }
}

/// The figure in a few sentences: what it shows and its key numbers (each histogram's total and
/// its share in the outer fifths, each curve's range and where it peaks, each category's median
/// at the first and last recording). What a screen reader says instead of the drawing.
pub fn summarize(fig: &Figure) -> String {
    let mut out = format!("{}.", fig.title());
    match fig {
        Figure::Histograms(f) => {
            out += &format!(" Histograms of {} ({}).", f.x_label, f.y_label);
            for p in &f.panels {
                let total = p.histogram.total();
                if total == 0 {
                    out += &format!(" {}: no data yet.", p.label);
                    continue;
                }
                let bins = p.histogram.counts.len();
                let fifth = bins.div_ceil(5);
                let share = |r: std::ops::Range<usize>| 100.0 * p.histogram.counts[r].iter().sum::<u64>() as f64 / total as f64;
                out += &format!(
                    " {}: {total} values, {:.0}% in the lowest fifth of the axis, {:.0}% in the highest.",
                    p.label,
                    share(0..fifth.min(bins)),
                    share(bins.saturating_sub(fifth)..bins)
                );
            }
        }
        Figure::Curves(f) => {
            out += &format!(" {} against {}.", f.y_label, f.x_label);
            if f.curves.is_empty() {
                out += " No data yet.";
            }
            for c in &f.curves {
                let points: Vec<(f64, f64)> = c.xs.iter().zip(&c.ys).map(|(&x, &y)| (x, y)).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
                let (Some(first), Some(last)) = (points.first(), points.last()) else {
                    out += &format!(" {}: no data yet.", c.label);
                    continue;
                };
                let best = points.iter().copied().fold(*first, |b, p| if p.1 > b.1 { p } else { b });
                let worst = points.iter().copied().fold(*first, |w, p| if p.1 < w.1 { p } else { w });
                out += &format!(
                    " {}: {} points from {} to {}, highest {:.4} at {}, lowest {:.4} at {}, last {:.4}.",
                    c.label,
                    points.len(),
                    trim(first.0),
                    trim(last.0),
                    best.1,
                    trim(best.0),
                    worst.1,
                    trim(worst.0),
                    last.1
                );
            }
            if let Some(r) = f.curves.iter().find_map(|c| c.reference) {
                out += &format!(" Reference: {r:.4}.");
            }
        }
        Figure::Evolution(f) => {
            let (Some(&first), Some(&last)) = (f.steps.first(), f.steps.last()) else {
                return out + " No recordings yet.";
            };
            let median = |b: &super::Band, i: usize| b.p50.get(i).filter(|v| v.is_finite()).map(|v| format!("{v:.3}")).unwrap_or_else(|| "none".into());
            let n = f.steps.len() - 1;
            out += &format!(
                " Pre-activations of neuron {} of {} over {} recordings (steps {first} to {last}). High category ({} samples): median {} at the start, {} at the end. Low category ({} samples): median {} at the start, {} at the end.",
                f.neuron,
                f.layer,
                f.steps.len(),
                f.high.samples,
                median(&f.high, 0),
                median(&f.high, n),
                f.low.samples,
                median(&f.low, 0),
                median(&f.low, n)
            );
        }
    }
    out
}

/// The bin of `h` that contains `x` (the last bin is closed).
pub fn bin_at(h: &Histogram, x: f64) -> Option<usize> {
    let bins = h.counts.len();
    if bins == 0 || !(h.edges[0] <= x && x <= h.edges[bins]) {
        return None;
    }
    (0..bins).find(|&i| x < h.edges[i + 1]).or(Some(bins - 1))
}

/// Index of the value of `xs` closest to `x`.
pub fn nearest(xs: &[f64], x: f64) -> Option<usize> {
    xs.iter().enumerate().filter(|(_, v)| v.is_finite()).min_by(|a, b| (a.1 - x).abs().total_cmp(&(b.1 - x).abs())).map(|(i, _)| i)
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

#[cfg(test)]
mod tests {
    use super::super::{CurveFigure, fixtures};
    use super::*;

    #[test]
    fn histogram_readout_names_the_bin_under_the_pointer() {
        let fig = Figure::Histograms(fixtures::histograms());
        let Figure::Histograms(h) = &fig else { unreachable!() };
        let p = &h.panels[0].histogram;
        let x = (p.edges[0] + p.edges[1]) / 2.0;
        let text = describe(&fig, 0, x).expect("inside");
        assert!(text.ends_with(&format!(": {}", p.counts[0])), "{text}");
        assert_eq!(describe(&fig, 0, p.edges[0] - 1.0), None);
        assert_eq!(describe(&fig, 99, x), None);
        assert_eq!(bin_at(p, *p.edges.last().unwrap()), Some(p.counts.len() - 1));
    }

    #[test]
    fn summaries_give_each_figure_s_key_numbers() {
        let fig = Figure::Histograms(fixtures::histograms());
        let Figure::Histograms(h) = &fig else { unreachable!() };
        let text = summarize(&fig);
        assert!(text.starts_with(&h.title), "{text}");
        for p in &h.panels {
            assert!(text.contains(&format!("{}: {} values", p.label, p.histogram.total())), "{text}");
        }
        let fig = Figure::Curves(fixtures::curves());
        let Figure::Curves(c) = &fig else { unreachable!() };
        let text = summarize(&fig);
        let best = c.curves[0].ys.iter().copied().filter(|y| y.is_finite()).fold(f64::MIN, f64::max);
        assert!(text.contains(&format!("highest {best:.4}")), "{text}");
        let fig = Figure::Evolution(fixtures::evolution());
        let Figure::Evolution(e) = &fig else { unreachable!() };
        let text = summarize(&fig);
        assert!(text.contains(&format!("{} recordings", e.steps.len())) && text.contains(&format!("({} samples)", e.high.samples)), "{text}");
        let empty = Figure::Curves(CurveFigure { curves: vec![], ..fixtures::curves() });
        assert!(summarize(&empty).ends_with("No data yet."));
    }

    #[test]
    fn curve_and_evolution_readouts_pick_the_nearest_point() {
        let fig = Figure::Curves(fixtures::curves());
        let Figure::Curves(c) = &fig else { unreachable!() };
        let text = describe(&fig, 0, c.curves[0].xs[1] + 0.1).unwrap();
        assert!(text.contains(&format!("{:.4}", c.curves[0].ys[1])), "{text}");
        let fig = Figure::Evolution(fixtures::evolution());
        let Figure::Evolution(e) = &fig else { unreachable!() };
        let text = describe(&fig, 0, e.steps[0] as f64).unwrap();
        assert!(text.starts_with(&format!("step {}:", e.steps[0])), "{text}");
        assert_eq!(nearest(&[], 1.0), None);
    }
}
