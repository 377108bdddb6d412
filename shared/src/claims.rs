//! The paper's claims as explicit criteria on a run's `results.json`: the numbers each claim is
//! judged by ([`Metric`]), and the rule that turns them into a verdict ([`Claim::verdict`]).
//! `trainer study` applies them to a grid of runs, averaged over seeds.
//!
//! The thresholds are ours (the paper states its claims in words); each [`Claim::criterion`]
//! says them in one sentence, and that sentence is what the study's report prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::experiments::at_rank;
use crate::figures::Histogram;
use crate::results::{LayerResults, Results};

/// A number measured on one layer of one run. Accuracies and shares are fractions in [0, 1],
/// ranks percentile ranks in [0, 100].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The model's test accuracy, unquantized: the reference of the quantization claim.
    TestAccuracy,
    /// Share of (sample, neuron) pairs with |average sign| >= 0.8.
    Outer,
    /// Share of pairs with average sign below -0.8 (clearly "high").
    OuterHigh,
    /// Share of pairs with average sign at or above 0.8 (clearly "low").
    OuterLow,
    /// Share of pairs in the high category (average sign below 0).
    HighShare,
    /// Test accuracy with the layer quantized at rank 50.
    Q50,
    /// Reference minus the quantized accuracy at rank 50.
    Q50Drop,
    /// Test accuracy with the layer's activations (not pre-activations) quantized at rank 50.
    Q50Post,
    /// Share of neurons whose two quantized pre-activation values at rank 50 lie on the same side
    /// of 0 (under ReLU, two values at or below 0 make a constant neuron).
    SameSide50,
    /// The largest drop over ranks 30 to 80.
    QWorstDrop,
    /// The middle of the ranks whose quantized accuracy is within [`BEST_RANK_TOLERANCE`] of the
    /// best (one rank's accuracy above another's by less than that is noise).
    BestRank,
    /// The lowest and highest of those ranks: the best rank as a range.
    BestRankLow,
    BestRankHigh,
    /// 1 when the zero pre-activation's rank lies within the best ranks' range, else 0 (the mean
    /// over seeds is the share of runs where it does).
    ZeroInBestRange,
    /// Sliding-window accuracy at the lowest and the highest centre.
    WindowLowEnd,
    WindowHighEnd,
    /// Mean sliding-window accuracy over centres 40 to 60.
    WindowMiddle,
    /// The lower end minus the middle: positive for a U.
    WindowDepth,
    /// |lowest end - highest end|.
    WindowAsymmetry,
    /// The zero pre-activation's percentile rank (Table 1).
    ZeroRank,
    /// |zero rank - 50|.
    ZeroRankDistance,
    /// Share of (neuron, class) pairs whose class lies for at least 90% in one category.
    ClearClasses,
}

impl Metric {
    pub fn label(self) -> &'static str {
        match self {
            Metric::TestAccuracy => "test accuracy",
            Metric::Outer => "pairs with |avg sign| >= 0.8",
            Metric::OuterHigh => "pairs with avg sign < -0.8",
            Metric::OuterLow => "pairs with avg sign >= 0.8",
            Metric::HighShare => "pairs in the high category",
            Metric::Q50 => "quantized accuracy at r = 50",
            Metric::Q50Drop => "accuracy drop at r = 50",
            Metric::Q50Post => "post-activation quantized accuracy at r = 50",
            Metric::SameSide50 => "neurons with both values on one side of 0, r = 50",
            Metric::QWorstDrop => "worst drop, r = 30..80",
            Metric::BestRank => "best quantization rank (middle of the range)",
            Metric::BestRankLow => "lowest rank within 0.2 points of the best",
            Metric::BestRankHigh => "highest rank within 0.2 points of the best",
            Metric::ZeroInBestRange => "zero rank within the best ranks' range",
            Metric::WindowLowEnd => "window accuracy, lowest centre",
            Metric::WindowHighEnd => "window accuracy, highest centre",
            Metric::WindowMiddle => "window accuracy, centres 40..60",
            Metric::WindowDepth => "min(ends) - middle",
            Metric::WindowAsymmetry => "|low end - high end|",
            Metric::ZeroRank => "zero pre-activation rank",
            Metric::ZeroRankDistance => "|zero rank - 50|",
            Metric::ClearClasses => "(neuron, class) pairs >= 90% in one category",
        }
    }
}

/// One layer's metrics; a metric the run could not measure (no quantization ran on the layer,
/// say) is absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics(pub BTreeMap<Metric, f64>);

impl Metrics {
    pub fn get(&self, m: Metric) -> Option<f64> {
        self.0.get(&m).copied().filter(|v| v.is_finite())
    }

    fn put(&mut self, m: Metric, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.0.insert(m, v);
        }
    }

    /// The metrics of one layer of a run.
    pub fn of_layer(reference: f64, l: &LayerResults) -> Self {
        let mut m = Metrics::default();
        let signs = &l.avg_sign_histogram;
        let total = signs.total() as f64;
        let share = |keep: &dyn Fn(f64, f64) -> bool| (total > 0.0).then(|| mass(signs, keep) / total);
        m.put(Metric::TestAccuracy, Some(reference));
        m.put(Metric::Outer, Some(l.outer_fraction));
        m.put(Metric::OuterHigh, share(&|_, hi| hi <= -0.8 + EPS));
        m.put(Metric::OuterLow, share(&|lo, _| lo >= 0.8 - EPS));
        m.put(Metric::HighShare, share(&|_, hi| hi <= EPS));

        let q = |r: f64| at_rank(&l.quantization, r).map(|q| q.test_accuracy);
        m.put(Metric::Q50, q(50.0));
        m.put(Metric::Q50Drop, q(50.0).map(|a| reference - a));
        m.put(Metric::Q50Post, at_rank(&l.post_quantization, 50.0).map(|q| q.test_accuracy));
        m.put(Metric::SameSide50, at_rank(&l.quantization, 50.0).and_then(|q| q.same_side_share));
        let drops = l.quantization.iter().filter(|q| (30.0 - EPS..=80.0 + EPS).contains(&q.rank)).map(|q| reference - q.test_accuracy);
        m.put(Metric::QWorstDrop, drops.reduce(f64::max));
        let points: Vec<(f64, f64)> = l.quantization.iter().map(|q| (q.rank, q.test_accuracy)).collect();
        m.put(Metric::BestRank, best_rank(&points));
        if let Some((lo, hi)) = best_ranks(&points) {
            m.put(Metric::BestRankLow, Some(lo));
            m.put(Metric::BestRankHigh, Some(hi));
            let z = l.zero_percentile_rank;
            m.put(Metric::ZeroInBestRange, z.is_finite().then_some(if (lo..=hi).contains(&z) { 1.0 } else { 0.0 }));
        }

        let mut window: Vec<(f64, f64)> = l.sliding_window.iter().map(|w| (w.center, w.test_accuracy)).filter(|(_, a)| a.is_finite()).collect();
        window.sort_by(|a, b| a.0.total_cmp(&b.0));
        let middle: Vec<f64> = window.iter().filter(|(c, _)| (40.0 - EPS..=60.0 + EPS).contains(c)).map(|w| w.1).collect();
        let middle = (!middle.is_empty()).then(|| middle.iter().sum::<f64>() / middle.len() as f64);
        if window.len() >= 3 {
            let (low, high) = (window[0].1, window[window.len() - 1].1);
            m.put(Metric::WindowLowEnd, Some(low));
            m.put(Metric::WindowHighEnd, Some(high));
            m.put(Metric::WindowMiddle, middle);
            m.put(Metric::WindowDepth, middle.map(|mid| low.min(high) - mid));
            m.put(Metric::WindowAsymmetry, Some((low - high).abs()));
        }

        m.put(Metric::ZeroRank, Some(l.zero_percentile_rank));
        m.put(Metric::ZeroRankDistance, Some((l.zero_percentile_rank - 50.0).abs()));
        let classes = &l.class_low_fraction_histogram;
        let n = classes.total() as f64;
        m.put(Metric::ClearClasses, (n > 0.0).then(|| mass(classes, &|lo, hi| hi <= 0.1 + EPS || lo >= 0.9 - EPS) / n));
        m
    }

    /// Per metric, the mean over `runs` of those that have it.
    pub fn mean(runs: &[&Metrics]) -> Self {
        let mut sums: BTreeMap<Metric, (f64, usize)> = BTreeMap::new();
        for r in runs {
            for (&k, &v) in &r.0 {
                let e = sums.entry(k).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
        Metrics(sums.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect())
    }
}

/// Every layer of a run, keyed by its name without the activation suffix (`dense1`,
/// `stage3layer2`), so that the ReLU and sigmoid models' layers line up.
pub fn run_metrics(r: &Results) -> BTreeMap<String, Metrics> {
    r.layers.iter().map(|(name, l)| (layer_base(name).to_string(), Metrics::of_layer(r.test_accuracy, l))).collect()
}

/// `dense1-relu` -> `dense1`.
pub fn layer_base(name: &str) -> &str {
    name.split('-').next().unwrap_or(name)
}

const EPS: f64 = 1e-9;

/// Counts of the bins `[lo, hi)` that `keep(lo, hi)` selects.
fn mass(h: &Histogram, keep: &dyn Fn(f64, f64) -> bool) -> f64 {
    h.counts.iter().enumerate().filter(|(i, _)| keep(h.edges[*i], h.edges[*i + 1])).map(|(_, &c)| c as f64).sum()
}

/// How far below the best quantized accuracy a rank may be and still count among the best: 0.2
/// points, about the seed spread of one rank's accuracy on MNIST (an exact tie rule made "the best
/// rank" swing with noise).
pub const BEST_RANK_TOLERANCE: f64 = 0.002;

/// The ranks whose accuracy is within [`BEST_RANK_TOLERANCE`] of the best.
fn ranks_near_best(points: &[(f64, f64)]) -> Option<Vec<f64>> {
    let best = points.iter().map(|p| p.1).filter(|a| a.is_finite()).reduce(f64::max)?;
    Some(points.iter().filter(|p| p.1.is_finite() && p.1 >= best - BEST_RANK_TOLERANCE - 1e-12).map(|p| p.0).collect())
}

/// The best rank: the mean of the ranks within [`BEST_RANK_TOLERANCE`] of the best accuracy.
pub fn best_rank(points: &[(f64, f64)]) -> Option<f64> {
    let near = ranks_near_best(points)?;
    Some(near.iter().sum::<f64>() / near.len() as f64)
}

/// The best ranks as a range: the lowest and highest rank within [`BEST_RANK_TOLERANCE`] of the
/// best accuracy.
pub fn best_ranks(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let near = ranks_near_best(points)?;
    Some((near.iter().copied().fold(f64::INFINITY, f64::min), near.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
}

/// Pearson's correlation of `pairs`, when it is defined (at least 3 pairs, neither side constant).
pub fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    if pairs.len() < 3 {
        return None;
    }
    let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// How a claim fares on some metrics: holds (green), partly (amber), fails (red), or cannot be
/// judged because a number it needs was not measured (grey).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    Partly,
    Fails,
    Unknown,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Partly => "partly",
            Verdict::Fails => "fails",
            Verdict::Unknown => "not measured",
        }
    }

    /// The colour of the verdict matrix's cell.
    pub fn colour(self) -> &'static str {
        match self {
            Verdict::Holds => "#1a9850",
            Verdict::Partly => "#f0a030",
            Verdict::Fails => "#d73027",
            Verdict::Unknown => "#bbbbbb",
        }
    }

    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Holds => "🟢",
            Verdict::Partly => "🟡",
            Verdict::Fails => "🔴",
            Verdict::Unknown => "⚪",
        }
    }
}

/// The paper's six claims about a hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    ConstantSigns,
    EqualCategories,
    Quantization,
    UShapedWindow,
    ZeroRankFar,
    ClassesWhole,
}

impl Claim {
    pub const ALL: [Claim; 6] = [
        Claim::ConstantSigns,
        Claim::EqualCategories,
        Claim::Quantization,
        Claim::UShapedWindow,
        Claim::ZeroRankFar,
        Claim::ClassesWhole,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Claim::ConstantSigns => "1. signs are constant",
            Claim::EqualCategories => "2. categories of nearly equal size",
            Claim::Quantization => "3. quantization keeps the accuracy",
            Claim::UShapedWindow => "4. sliding window is U-shaped",
            Claim::ZeroRankFar => "5. zero's rank is far from 50",
            Claim::ClassesWhole => "6. classes fall wholly in one category",
        }
    }

    /// The rule, in words; the thresholds are the ones [`Claim::verdict`] applies.
    pub fn criterion(self) -> &'static str {
        match self {
            Claim::ConstantSigns => {
                "holds when at least 70% of (sample, neuron) pairs have |average sign| >= 0.8 and each extreme (below -0.8, at or above 0.8) holds at least 15% of them; partly at 50% and 5%"
            }
            Claim::EqualCategories => "holds when the high category (average sign below 0) holds 40-60% of the pairs; partly at 30-70%",
            Claim::Quantization => {
                "holds when two-value quantization at every rank r = 30..80 stays within 3 points of the unquantized test accuracy; partly when only r = 50 does"
            }
            Claim::UShapedWindow => {
                "holds when both end windows (lowest and highest centre) beat the mean of the centres 40..60 by at least half a point and differ from each other by at most 3 points; partly when both ends beat the middle but not symmetrically"
            }
            Claim::ZeroRankFar => {
                "holds when the zero pre-activation's percentile rank is at least 15 away from 50; partly at 5. Across the grid, the study also reports the correlation between a layer's zero rank and its best quantization rank (the paper: the best rank is not tied to it)"
            }
            Claim::ClassesWhole => "holds when at least 60% of (neuron, class) pairs have at least 90% of the class in one category (Figure 8's mass near 0 and 1); partly at 40%",
        }
    }

    /// A headline number as the cells show it: shares and accuracies in percent, ranks as they
    /// are.
    pub fn show(self, v: f64) -> String {
        match self {
            Claim::ZeroRankFar => format!("{v:.1}"),
            Claim::Quantization | Claim::UShapedWindow => format!("{:+.1}", v * 100.0),
            _ => format!("{:.0}%", v * 100.0),
        }
    }

    /// The number a verdict cell shows.
    pub fn headline(self) -> Metric {
        match self {
            Claim::ConstantSigns => Metric::Outer,
            Claim::EqualCategories => Metric::HighShare,
            Claim::Quantization => Metric::Q50Drop,
            Claim::UShapedWindow => Metric::WindowDepth,
            Claim::ZeroRankFar => Metric::ZeroRank,
            Claim::ClassesWhole => Metric::ClearClasses,
        }
    }

    pub fn verdict(self, m: &Metrics) -> Verdict {
        let tiers = |holds: bool, partly: bool| {
            if holds {
                Verdict::Holds
            } else if partly {
                Verdict::Partly
            } else {
                Verdict::Fails
            }
        };
        let get = |k| m.get(k);
        match self {
            Claim::ConstantSigns => {
                let (Some(outer), Some(high), Some(low)) = (get(Metric::Outer), get(Metric::OuterHigh), get(Metric::OuterLow)) else {
                    return Verdict::Unknown;
                };
                let side = high.min(low);
                tiers(outer >= 0.7 && side >= 0.15, outer >= 0.5 && side >= 0.05)
            }
            Claim::EqualCategories => {
                let Some(h) = get(Metric::HighShare) else { return Verdict::Unknown };
                tiers((h - 0.5).abs() <= 0.1 + EPS, (h - 0.5).abs() <= 0.2 + EPS)
            }
            Claim::Quantization => {
                let (Some(at50), Some(worst)) = (get(Metric::Q50Drop), get(Metric::QWorstDrop)) else {
                    return Verdict::Unknown;
                };
                tiers(worst <= 0.03 + EPS, at50 <= 0.03 + EPS)
            }
            Claim::UShapedWindow => {
                let (Some(depth), Some(asym)) = (get(Metric::WindowDepth), get(Metric::WindowAsymmetry)) else {
                    return Verdict::Unknown;
                };
                tiers(depth >= 0.005 && asym <= 0.03 + EPS, depth >= 0.005)
            }
            Claim::ZeroRankFar => {
                let Some(d) = get(Metric::ZeroRankDistance) else { return Verdict::Unknown };
                tiers(d >= 15.0, d >= 5.0)
            }
            Claim::ClassesWhole => {
                let Some(c) = get(Metric::ClearClasses) else { return Verdict::Unknown };
                tiers(c >= 0.6, c >= 0.4)
            }
        }
    }
}

/// A layer of one setting judged over its seeds: every claim's verdict on the mean of the seeds'
/// metrics, and each headline number's range over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    pub mean: Metrics,
    pub verdicts: BTreeMap<Claim, Verdict>,
    /// Per claim: the lowest and highest headline number over seeds.
    pub spread: BTreeMap<Claim, (f64, f64)>,
}

impl LayerSummary {
    pub fn judge(per_seed: &[&Metrics]) -> Self {
        let mean = Metrics::mean(per_seed);
        let verdicts = Claim::ALL.iter().map(|&c| (c, c.verdict(&mean))).collect();
        let spread = Claim::ALL
            .iter()
            .filter_map(|&c| {
                let v: Vec<f64> = per_seed.iter().filter_map(|m| m.get(c.headline())).collect();
                let lo = v.iter().copied().reduce(f64::min)?;
                Some((c, (lo, v.iter().copied().fold(lo, f64::max))))
            })
            .collect();
        Self { mean, verdicts, spread }
    }

    /// A verdict cell: the verdict, and the headline's mean with its range over seeds.
    pub fn cell(&self, c: Claim) -> (Verdict, String) {
        let text = match (self.mean.get(c.headline()), self.spread.get(&c)) {
            (Some(m), Some(&(lo, hi))) if hi > lo => format!("{} ({}..{})", c.show(m), c.show(lo), c.show(hi)),
            (Some(m), _) => c.show(m),
            _ => "-".into(),
        };
        (self.verdicts[&c], text)
    }
}

/// What a verdict cell's number is, per claim.
pub const HEADLINE_NOTE: &str = "Cells: the verdict on the mean over seeds, then the headline number's mean and, in brackets, its range over seeds. Headlines: 1 the share of pairs with |avg sign| >= 0.8; 2 the share of pairs in the high category; 3 the accuracy drop at r = 50, in points (negative: quantized is better); 4 min(end windows) - middle, in points; 5 the zero pre-activation's rank; 6 the share of (neuron, class) pairs with the class at least 90% in one category.";

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(Metric, f64)]) -> Metrics {
        Metrics(pairs.iter().copied().collect())
    }

    #[test]
    fn a_layer_is_judged_on_the_mean_over_seeds_with_the_range_beside_it() {
        use Metric::*;
        // Seed 1 alone holds claim 1, seed 2 alone is partly: the mean (0.7, 0.2, 0.2) holds.
        let a = metrics(&[(Outer, 0.8), (OuterHigh, 0.3), (OuterLow, 0.3)]);
        let b = metrics(&[(Outer, 0.6), (OuterHigh, 0.1), (OuterLow, 0.1)]);
        assert_eq!(Claim::ConstantSigns.verdict(&b), Verdict::Partly);
        let s = LayerSummary::judge(&[&a, &b]);
        assert!((s.mean.get(Outer).unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(s.verdicts[&Claim::ConstantSigns], Verdict::Holds);
        assert_eq!(s.verdicts[&Claim::ZeroRankFar], Verdict::Unknown, "not measured");
        assert_eq!(s.spread[&Claim::ConstantSigns], (0.6, 0.8));
        assert_eq!(s.cell(Claim::ConstantSigns), (Verdict::Holds, "70% (60%..80%)".to_string()));
        assert_eq!(s.cell(Claim::ZeroRankFar).1, "-");
        let one = LayerSummary::judge(&[&a]);
        assert_eq!(one.cell(Claim::ConstantSigns).1, "80%", "no range for one seed");
    }

    #[test]
    fn each_claim_has_three_outcomes_and_needs_its_numbers() {
        use Metric::*;
        let c = Claim::ConstantSigns;
        assert_eq!(c.verdict(&metrics(&[(Outer, 0.8), (OuterHigh, 0.4), (OuterLow, 0.4)])), Verdict::Holds);
        // Constant but one-sided: every pair near -1 is not two categories.
        assert_eq!(c.verdict(&metrics(&[(Outer, 0.8), (OuterHigh, 0.78), (OuterLow, 0.02)])), Verdict::Fails);
        assert_eq!(c.verdict(&metrics(&[(Outer, 0.6), (OuterHigh, 0.3), (OuterLow, 0.3)])), Verdict::Partly);
        assert_eq!(c.verdict(&metrics(&[(Outer, 0.8)])), Verdict::Unknown);

        let q = Claim::Quantization;
        assert_eq!(q.verdict(&metrics(&[(Q50Drop, 0.01), (QWorstDrop, 0.029)])), Verdict::Holds);
        assert_eq!(q.verdict(&metrics(&[(Q50Drop, 0.01), (QWorstDrop, 0.2)])), Verdict::Partly);
        assert_eq!(q.verdict(&metrics(&[(Q50Drop, 0.6), (QWorstDrop, 0.6)])), Verdict::Fails);

        let u = Claim::UShapedWindow;
        assert_eq!(u.verdict(&metrics(&[(WindowDepth, 0.05), (WindowAsymmetry, 0.01)])), Verdict::Holds);
        assert_eq!(u.verdict(&metrics(&[(WindowDepth, 0.05), (WindowAsymmetry, 0.1)])), Verdict::Partly);
        assert_eq!(u.verdict(&metrics(&[(WindowDepth, -0.02), (WindowAsymmetry, 0.0)])), Verdict::Fails);

        assert_eq!(Claim::ZeroRankFar.verdict(&metrics(&[(ZeroRankDistance, 33.0)])), Verdict::Holds);
        assert_eq!(Claim::ZeroRankFar.verdict(&metrics(&[(ZeroRankDistance, 2.0)])), Verdict::Fails);
        assert_eq!(Claim::EqualCategories.verdict(&metrics(&[(HighShare, 0.45)])), Verdict::Holds);
        assert_eq!(Claim::EqualCategories.verdict(&metrics(&[(HighShare, 0.75)])), Verdict::Fails);
        assert_eq!(Claim::ClassesWhole.verdict(&metrics(&[(ClearClasses, 0.5)])), Verdict::Partly);
    }

    #[test]
    fn a_layer_s_metrics_come_from_its_histograms_and_curves() {
        use crate::experiments::{CentreAccuracy, RankAccuracy};
        // Average signs: 30 below -0.8, 10 in [-0.8, 0), 20 in [0, 0.8), 40 at or above 0.8.
        let mut signs = Histogram::empty(-1.0, 1.0, 20);
        for (v, n) in [(-0.95, 30), (-0.3, 10), (0.0, 5), (0.5, 15), (0.8, 40)] {
            (0..n).for_each(|_| signs.add(v));
        }
        let mut classes = Histogram::empty(0.0, 1.0, 20);
        for (v, n) in [(0.02, 3), (0.5, 4), (0.95, 3)] {
            (0..n).for_each(|_| classes.add(v));
        }
        let l = LayerResults {
            neurons: 4,
            avg_sign_histogram: signs.clone(),
            example_neuron: 0,
            example_neuron_histogram: signs,
            outer_fraction: 0.7,
            zero_percentile_rank: 80.0,
            quantization: [(0.0, 0.1), (30.0, 0.90), (50.0, 0.96), (80.0, 0.97), (90.0, 0.97), (100.0, 0.1)]
                .map(|(rank, test_accuracy)| RankAccuracy { rank, test_accuracy, same_side_share: None })
                .to_vec(),
            post_quantization: Vec::new(),
            sliding_window: [(95.0, 0.90), (5.0, 0.93), (45.0, 0.80), (55.0, 0.84), (75.0, 0.88)]
                .map(|(center, test_accuracy)| CentreAccuracy { center, test_accuracy, retrain_epochs: None })
                .to_vec(),
            class_low_fraction_histogram: classes,
            position_signs: None,
        };
        let m = Metrics::of_layer(0.98, &l);
        let near = |k: Metric, v: f64| assert!((m.get(k).unwrap() - v).abs() < 1e-9, "{k:?}: {:?} != {v}", m.get(k));
        near(Metric::OuterHigh, 0.30);
        near(Metric::OuterLow, 0.40);
        near(Metric::HighShare, 0.40);
        near(Metric::Q50Drop, 0.02);
        near(Metric::QWorstDrop, 0.08);
        near(Metric::BestRank, 85.0);
        near(Metric::WindowLowEnd, 0.93);
        near(Metric::WindowHighEnd, 0.90);
        near(Metric::WindowMiddle, 0.82);
        near(Metric::WindowDepth, 0.08);
        near(Metric::ZeroRankDistance, 30.0);
        near(Metric::ClearClasses, 0.6);
        assert_eq!(Claim::Quantization.verdict(&m), Verdict::Partly);
        assert_eq!(Claim::UShapedWindow.verdict(&m), Verdict::Holds);
    }

    #[test]
    fn correlation_and_best_rank() {
        assert!((correlation(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.1)]).unwrap() - 1.0).abs() < 1e-3);
        assert!((correlation(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None);
        assert_eq!(correlation(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(best_rank(&[(10.0, 0.5), (20.0, 0.9), (30.0, 0.9), (40.0, 0.1)]), Some(25.0));
        assert_eq!(best_rank(&[]), None);
        assert_eq!(best_ranks(&[]), None);
    }

    /// Ranks within 0.2 points of the best count among the best; 0.21 points below does not.
    #[test]
    fn best_rank_is_a_range_within_the_tolerance() {
        use crate::experiments::RankAccuracy;
        let points = [(30.0, 0.9400), (40.0, 0.9500), (50.0, 0.9515), (60.0, 0.9496), (70.0, 0.9494), (80.0, 0.9510), (90.0, 0.9300)];
        assert_eq!(best_ranks(&points), Some((40.0, 80.0)));
        assert_eq!(best_rank(&points), Some((40.0 + 50.0 + 60.0 + 80.0) / 4.0));
        // Noise of 0.05 points moves the single best rank from 50 to 80, not the range.
        let mut noisy = points;
        noisy[5].1 = 0.9516;
        assert_eq!(best_ranks(&noisy), Some((40.0, 80.0)));
        let l = |zero: f64| LayerResults {
            zero_percentile_rank: zero,
            quantization: points.map(|(rank, test_accuracy)| RankAccuracy { rank, test_accuracy, same_side_share: None }).to_vec(),
            post_quantization: Vec::new(),
            sliding_window: Vec::new(),
            neurons: 1,
            avg_sign_histogram: Histogram::empty(-1.0, 1.0, 20),
            example_neuron: 0,
            example_neuron_histogram: Histogram::empty(-1.0, 1.0, 20),
            outer_fraction: 0.5,
            class_low_fraction_histogram: Histogram::empty(0.0, 1.0, 20),
            position_signs: None,
        };
        assert_eq!(Metrics::of_layer(0.96, &l(55.0)).get(Metric::ZeroInBestRange), Some(1.0));
        assert_eq!(Metrics::of_layer(0.96, &l(85.0)).get(Metric::ZeroInBestRange), Some(0.0));
    }

    #[test]
    fn means_skip_runs_without_the_metric() {
        let a = metrics(&[(Metric::Outer, 0.2), (Metric::Q50, 0.9)]);
        let b = metrics(&[(Metric::Outer, 0.4)]);
        let m = Metrics::mean(&[&a, &b]);
        assert!((m.get(Metric::Outer).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(m.get(Metric::Q50), Some(0.9));
    }
}
