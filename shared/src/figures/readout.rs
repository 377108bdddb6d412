//! What a pointer at data coordinate `x` of a panel points at, in words (the page's hover
//! read-out; the same text for every backend).

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
    use super::super::fixtures;
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
