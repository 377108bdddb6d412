//! Drawing figures on any plotters backend.
//!
//! Only plotters core APIs are used (no backend-specific calls) so the same code draws into SVG,
//! bitmaps and a browser canvas. Every function tolerates degenerate data (no panels, no steps,
//! NaN values, a single point): it draws empty axes rather than failing.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    Band, CurveFigure, EvolutionFigure, Figure, FigureError, HistogramFigure, HistogramPanel,
};

/// A pixel-addressed drawing area, as every figure starts from.
type Area<DB> = DrawingArea<DB, Shift>;

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(33, 37, 41);
const BAR: RGBColor = RGBColor(0, 114, 178);
const HIGH: RGBColor = RGBColor(213, 94, 0);
const LOW: RGBColor = RGBColor(0, 114, 178);
const HIGHLIGHT: RGBColor = RGBColor(30, 30, 30);
const NEUTRAL: RGBColor = RGBColor(110, 110, 110);
/// Okabe & Ito's palette (distinguishable with the common colour-vision deficiencies), then
/// Paul Tol's muted scheme (also colour-blind safe), so that the 12 CIFAR layers or 17 ResNet50
/// blocks of Figures 3 and 4 still get distinct colours; the figures' line styles and legends
/// carry the names too.
pub const PALETTE: [RGBColor; 16] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
    RGBColor(51, 34, 136),
    RGBColor(136, 204, 238),
    RGBColor(68, 170, 153),
    RGBColor(17, 119, 51),
    RGBColor(153, 153, 51),
    RGBColor(221, 204, 119),
    RGBColor(204, 102, 119),
    RGBColor(136, 34, 85),
];

/// Histogram panels per row: beyond this they get too narrow to read, so they wrap.
pub(crate) const MAX_PANELS_PER_ROW: usize = 6;

/// Below this size (pixels, either side) nothing legible fits: we only paint the background,
/// which also keeps plotters' layout code away from negative sizes.
const MIN_SIDE: u32 = 80;

/// Where one panel's plotting rectangle landed and what it shows, so that a pointer position
/// can be turned back into data (hover read-outs, clicks in the page).
#[derive(Clone, Debug, PartialEq)]
pub struct PlotArea {
    /// Index of the panel within the figure (0 for single-panel figures).
    pub panel: usize,
    /// Pixel extent on the backend, left..right and top..bottom.
    pub px_x: Range<i32>,
    pub px_y: Range<i32>,
    /// Data extent: x left to right, y bottom to top.
    pub x: Range<f64>,
    pub y: Range<f64>,
}

impl PlotArea {
    /// The data coordinates under pixel `(px, py)`, if it is inside the rectangle.
    pub fn data_at(&self, px: i32, py: i32) -> Option<(f64, f64)> {
        if !self.px_x.contains(&px) || !self.px_y.contains(&py) {
            return None;
        }
        let fx = (px - self.px_x.start) as f64 / (self.px_x.end - self.px_x.start).max(1) as f64;
        let fy = (self.px_y.end - py) as f64 / (self.px_y.end - self.px_y.start).max(1) as f64;
        Some((self.x.start + fx * (self.x.end - self.x.start), self.y.start + fy * (self.y.end - self.y.start)))
    }
}

thread_local! {
    /// Plot rectangles of the figure being drawn (see [`draw_figure_mapped`]).
    static PLOTS: std::cell::RefCell<Vec<PlotArea>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn note_plot((px_x, px_y): (Range<i32>, Range<i32>), x: Range<f64>, y: Range<f64>) {
    PLOTS.with(|p| {
        let mut p = p.borrow_mut();
        let panel = p.len();
        p.push(PlotArea { panel, px_x, px_y, x, y });
    });
}

/// [`draw_figure`], also returning where each panel's plot rectangle is.
pub fn draw_figure_mapped<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<Vec<PlotArea>, FigureError> {
    PLOTS.with(|p| p.borrow_mut().clear());
    draw_figure(area, fig)?;
    Ok(PLOTS.with(|p| std::mem::take(&mut *p.borrow_mut())))
}

/// Draws any figure on `area`, filling it entirely (white background, title on top).
pub fn draw_figure<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
) -> Result<(), FigureError> {
    match fig {
        Figure::Histograms(f) => draw_histograms(area, f),
        Figure::Evolution(f) => draw_evolution(area, f),
        Figure::Curves(f) => draw_curves(area, f),
    }
}

/// Figures 1, 5, 8: one histogram panel per entry, side by side (wrapping into rows of at most
/// [`MAX_PANELS_PER_ROW`] when there are more, e.g. the 12 CIFAR layers).
pub fn draw_histograms<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &HistogramFigure,
) -> Result<(), FigureError> {
    let Some((body, theme)) = start_figure(area, &fig.title)? else {
        return Ok(());
    };
    if fig.panels.is_empty() {
        return draw_no_data(&body, &theme);
    }
    let (rows, cols) = panel_grid(fig.panels.len());
    let cells = body.split_evenly((rows, cols));
    for (i, (cell, panel)) in cells.iter().zip(&fig.panels).enumerate() {
        // Panels share the y meaning: naming it once per row leaves more room for the bars.
        let y_label = if i % cols == 0 {
            fig.y_label.as_str()
        } else {
            ""
        };
        draw_histogram_panel(cell, panel, &fig.x_label, y_label, &theme)?;
    }
    Ok(())
}

/// Figures 2, 6, 7: percentile bands of the high and low categories over training, plus the
/// trajectories of a few highlighted samples.
pub fn draw_evolution<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &EvolutionFigure,
) -> Result<(), FigureError> {
    let Some((body, theme)) = start_figure(area, &fig.title)? else {
        return Ok(());
    };
    let legend = evolution_legend(fig);
    let (plot, legend_area) = split_off_legend(&body, &legend, &theme)?;

    let xs: Vec<f64> = fig.steps.iter().map(|&s| s as f64).collect();
    let x = padded_range(xs.iter().copied(), 0.0);
    let bands = [&fig.high, &fig.low];
    let band_values = bands
        .iter()
        .flat_map(|b| b.p10.iter().chain(&b.p50).chain(&b.p90));
    let traj_values = fig.highlighted.iter().flat_map(|t| &t.values);
    let y = padded_range(band_values.chain(traj_values).map(|&v| v as f64), 0.05);

    // An empty figure (a page's placeholder) names no neuron.
    let subtitle = if fig.layer.is_empty() { String::new() } else { format!("{}, neuron {}", fig.layer, fig.neuron) };
    let room = plot.dim_in_pixel().0.saturating_sub(2 * theme.px(10.0));
    let (subtitle, subtitle_style) = theme.fit(&plot, &subtitle, 16.0, room)?;
    let mut chart = ChartBuilder::on(&plot)
        .caption(subtitle, subtitle_style)
        .margin(theme.px(10.0))
        .x_label_area_size(theme.px(48.0))
        .y_label_area_size(theme.px(56.0))
        .build_cartesian_2d(x.clone(), y.clone())?;
    note_plot(chart.plotting_area().get_pixel_range(), x, y);
    draw_line_mesh(&mut chart, "training step", "pre-activation", 8, &theme)?;

    // Order matters: fills first, then trajectories, medians last so they stay visible.
    draw_band_fill(&mut chart, &xs, &fig.high, HIGH)?;
    draw_band_fill(&mut chart, &xs, &fig.low, LOW)?;
    for t in &fig.highlighted {
        let style = HIGHLIGHT.mix(0.7).stroke_width(1);
        draw_polyline(&mut chart, &xs, &t.values, style)?;
    }
    let median = |c: RGBColor| c.stroke_width(theme.px(2.0).max(1));
    draw_polyline(&mut chart, &xs, &fig.high.p50, median(HIGH))?;
    draw_polyline(&mut chart, &xs, &fig.low.p50, median(LOW))?;

    if let Some(legend_area) = legend_area {
        draw_legend(&legend_area, &legend, &theme)?;
    }
    Ok(())
}

/// Figures 3, 4: accuracy against a percentile, one curve per layer, with each curve's
/// reference accuracy (dashed, horizontal) and marker (dotted, vertical) in its own colour.
pub fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &CurveFigure,
) -> Result<(), FigureError> {
    let Some((body, theme)) = start_figure(area, &fig.title)? else {
        return Ok(());
    };
    let legend = curve_legend(fig);
    let (plot, legend_area) = split_off_legend(&body, &legend, &theme)?;

    let xs = fig
        .curves
        .iter()
        .flat_map(|c| c.xs.iter().copied().chain(c.marker));
    let x = padded_range(xs, 0.03);
    let y = accuracy_range(fig);

    let mut chart = ChartBuilder::on(&plot)
        .margin(theme.px(10.0))
        .margin_top(theme.px(16.0))
        .x_label_area_size(theme.px(48.0))
        .y_label_area_size(theme.px(56.0))
        .build_cartesian_2d(x.clone(), y.clone())?;
    note_plot(chart.plotting_area().get_pixel_range(), x.clone(), y.clone());
    draw_line_mesh(&mut chart, &fig.x_label, &fig.y_label, 11, &theme)?;

    for (i, curve) in fig.curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let guide = color.mix(0.8).stroke_width(theme.px(1.5).max(1));
        if let Some(r) = curve.reference.filter(|&r| within(&y, r)) {
            let dash = DashedLineSeries::new(
                [(x.start, r), (x.end, r)],
                theme.px(8.0),
                theme.px(5.0),
                guide,
            );
            chart.draw_series(dash)?;
        }
        if let Some(m) = curve.marker.filter(|&m| within(&x, m)) {
            let dots = DashedLineSeries::new(
                [(m, y.start), (m, y.end)],
                theme.px(2.0).max(2),
                theme.px(4.0).max(3),
                guide,
            );
            chart.draw_series(dots)?;
        }
        let points: Vec<(f64, f64)> = curve
            .xs
            .iter()
            .zip(&curve.ys)
            .map(|(&x, &y)| (x, y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(theme.px(2.0).max(1)),
        ))?;
        let radius = theme.px(3.5).max(2);
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, radius, color.filled())),
        )?;
    }

    if let Some(legend_area) = legend_area {
        draw_legend(&legend_area, &legend, &theme)?;
    }
    Ok(())
}

/// Axes, tick labels and grid of the line figures (evolution and curves).
fn draw_line_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x_desc: &str,
    y_desc: &str,
    x_labels: usize,
    theme: &Theme,
) -> Result<(), FigureError> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style(theme.tick())
        .axis_desc_style(theme.axis_desc())
        .bold_line_style(INK.mix(0.1))
        .light_line_style(INK.mix(0.03))
        .draw()?;
    Ok(())
}

/// `(rows, columns)` for `n` histogram panels: one row up to [`MAX_PANELS_PER_ROW`], otherwise
/// the fewest rows, filled as evenly as possible.
pub(crate) fn panel_grid(n: usize) -> (usize, usize) {
    let rows = n.div_ceil(MAX_PANELS_PER_ROW).max(1);
    (rows, n.div_ceil(rows).max(1))
}

// ---------------------------------------------------------------------------------------------
// Layout and styling shared by all figures.

/// Font and line sizes scale with the drawing area so thumbnails and large exports both stay
/// legible; 1.0 corresponds to roughly 680x440 pixels.
#[derive(Clone, Copy, Debug)]
struct Theme {
    scale: f64,
}

impl Theme {
    fn for_size((w, h): (u32, u32)) -> Self {
        let scale = (h as f64 / 440.0).min(w as f64 / 680.0).clamp(0.6, 3.0);
        Theme { scale }
    }

    fn px(&self, base: f64) -> u32 {
        (base * self.scale).round() as u32
    }

    fn font(&self, base: f64) -> TextStyle<'static> {
        (FONT, base * self.scale).into_font().color(&INK)
    }

    /// The font of `base` size, shrunk (to at most 70%) and then the text cut with an ellipsis
    /// until it fits `max_w` pixels: long layer names must not run into the next panel.
    fn fit<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        text: &str,
        base: f64,
        max_w: u32,
    ) -> Result<(String, TextStyle<'static>), FigureError> {
        let width = |t: &str, style: &TextStyle| area.estimate_text_size(t, style).map(|(w, _)| w);
        let mut style = self.font(base);
        for shrink in [0.9, 0.8, 0.7] {
            if width(text, &style)? <= max_w {
                return Ok((text.to_string(), style));
            }
            style = self.font(base * shrink);
        }
        let chars: Vec<char> = text.chars().collect();
        for keep in (0..chars.len()).rev() {
            let cut: String = chars[..keep].iter().collect::<String>() + "…";
            if width(&cut, &style)? <= max_w {
                return Ok((cut, style));
            }
        }
        Ok((String::new(), style))
    }

    fn title(&self) -> TextStyle<'static> {
        self.font(22.0)
    }
    fn caption(&self) -> TextStyle<'static> {
        self.font(16.0)
    }
    fn axis_desc(&self) -> TextStyle<'static> {
        self.font(15.0)
    }
    fn tick(&self) -> TextStyle<'static> {
        self.font(13.0)
    }
    fn legend(&self) -> TextStyle<'static> {
        self.font(14.0)
    }
}

/// Paints the background and the title; returns the area left for the body, or `None` when the
/// area is too small to hold anything legible.
fn start_figure<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
) -> Result<Option<(Area<DB>, Theme)>, FigureError> {
    area.fill(&WHITE)?;
    let (w, h) = area.dim_in_pixel();
    if w < MIN_SIDE || h < MIN_SIDE {
        return Ok(None);
    }
    let theme = Theme::for_size((w, h));
    let m = theme.px(8.0);
    let padded = area.margin(m, m, m, m);
    let body = if title.trim().is_empty() {
        padded
    } else {
        padded.titled(title, theme.title())?
    };
    Ok(Some((body, theme)))
}

fn draw_no_data<DB: DrawingBackend>(area: &Area<DB>, theme: &Theme) -> Result<(), FigureError> {
    let (w, h) = area.dim_in_pixel();
    let style = theme
        .caption()
        .color(&NEUTRAL)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text("no data", &style, (w as i32 / 2, h as i32 / 2))?;
    Ok(())
}

/// `(lo..hi)` covering the finite `values`, widened by `pad` of its span on each side. An empty
/// or single-valued input gets a unit-wide range so plotters always has a non-empty axis.
fn padded_range(values: impl IntoIterator<Item = f64>, pad: f64) -> Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let span = hi - lo;
    if span <= 1e-9 * lo.abs().max(1.0) {
        return (lo - 0.5)..(hi + 0.5);
    }
    (lo - pad * span)..(hi + pad * span)
}

/// Accuracy axis: the curves and their references, padded, but never outside [0, 1]. Curves of
/// another quantity that leaves [0, 1] (a training loss) get 0 to their maximum instead.
fn accuracy_range(fig: &CurveFigure) -> Range<f64> {
    let finite = || fig.curves.iter().flat_map(|c| c.ys.iter().copied().chain(c.reference)).filter(|v| v.is_finite());
    if let Some(top) = finite().filter(|&v| v > 1.0).reduce(f64::max) {
        return 0.0_f64.min(finite().fold(0.0, f64::min))..top * 1.05;
    }
    let values = fig
        .curves
        .iter()
        .flat_map(|c| c.ys.iter().copied().chain(c.reference))
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(0.0, 1.0));
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    // A flat curve still deserves a readable axis a couple of points wide.
    const MIN_SPAN: f64 = 0.02;
    if hi - lo < MIN_SPAN {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = (mid - MIN_SPAN / 2.0, mid + MIN_SPAN / 2.0);
    }
    let pad = 0.08 * (hi - lo);
    (lo, hi) = (lo - pad, hi + pad);
    // Shift rather than clip so the padding survives next to 0 or 1.
    if hi > 1.0 {
        (lo, hi) = ((lo - (hi - 1.0)).max(0.0), 1.0);
    }
    if lo < 0.0 {
        (lo, hi) = (0.0, (hi - lo).min(1.0));
    }
    lo..hi
}

/// Inclusive containment: a reference of exactly 1.0 sits on the top edge and is still drawn.
fn within(range: &Range<f64>, v: f64) -> bool {
    range.start <= v && v <= range.end
}

/// Tick labels without float noise: "0.25", "1200", "1.5e6".
fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Counts on a histogram axis, kept short: "950", "12.5k", "3.2M".
fn compact_count(v: u64) -> String {
    let trim = |s: String| s.trim_end_matches(".0").to_string();
    match v {
        0..10_000 => v.to_string(),
        10_000..1_000_000 => trim(format!("{:.1}", v as f64 / 1e3)) + "k",
        _ => trim(format!("{:.1}", v as f64 / 1e6)) + "M",
    }
}

/// Index ranges over which `is_finite(i)` holds, so lines and bands break at NaN gaps instead
/// of bridging them.
fn finite_runs(len: usize, is_finite: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for i in 0..len {
        match (is_finite(i), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..len);
    }
    runs
}

fn draw_polyline<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    xs: &[f64],
    ys: &[f32],
    style: ShapeStyle,
) -> Result<(), FigureError> {
    let n = xs.len().min(ys.len());
    for run in finite_runs(n, |i| ys[i].is_finite()) {
        let points = run.map(|i| (xs[i], ys[i] as f64));
        chart.draw_series(LineSeries::new(points, style))?;
    }
    Ok(())
}

/// The p10..p90 region as translucent polygons (one per NaN-free stretch).
fn draw_band_fill<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    xs: &[f64],
    band: &Band,
    color: RGBColor,
) -> Result<(), FigureError> {
    let n = xs.len().min(band.p10.len()).min(band.p90.len());
    let finite = |i: usize| band.p10[i].is_finite() && band.p90[i].is_finite();
    for run in finite_runs(n, finite).into_iter().filter(|r| r.len() >= 2) {
        let upper = run.clone().map(|i| (xs[i], band.p90[i] as f64));
        let lower = run.rev().map(|i| (xs[i], band.p10[i] as f64));
        let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            color.mix(0.2).filled(),
        )))?;
    }
    Ok(())
}

fn draw_histogram_panel<DB: DrawingBackend>(
    area: &Area<DB>,
    panel: &HistogramPanel,
    x_label: &str,
    y_label: &str,
    theme: &Theme,
) -> Result<(), FigureError> {
    let h = &panel.histogram;
    // Bars with a non-finite or empty extent cannot be placed: skip them.
    let bars: Vec<(f64, f64, u64)> = h
        .edges
        .windows(2)
        .zip(&h.counts)
        .map(|(e, &c)| (e[0], e[1], c))
        .filter(|(lo, hi, _)| lo.is_finite() && hi.is_finite() && hi > lo)
        .collect();
    let x = padded_range(bars.iter().flat_map(|&(lo, hi, _)| [lo, hi]), 0.0);
    let max_count = bars.iter().map(|b| b.2).max().unwrap_or(0);
    // Headroom above the tallest bar; an all-zero histogram still gets a 0..1 axis.
    let y_top = max_count + max_count / 10 + 1;

    let (caption, caption_style) = theme.fit(
        area,
        &panel.label,
        16.0,
        area.dim_in_pixel().0.saturating_sub(2 * theme.px(8.0)),
    )?;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, caption_style)
        .margin(theme.px(8.0))
        .x_label_area_size(theme.px(48.0))
        .y_label_area_size(theme.px(if y_label.is_empty() { 44.0 } else { 66.0 }))
        .build_cartesian_2d(x.clone(), 0u64..y_top)?;
    note_plot(chart.plotting_area().get_pixel_range(), x, 0.0..y_top as f64);
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_labels(5)
        .y_labels(6)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| compact_count(*v))
        .x_desc(x_label)
        .label_style(theme.tick())
        .axis_desc_style(theme.axis_desc())
        .bold_line_style(INK.mix(0.1))
        .light_line_style(INK.mix(0.03));
    if !y_label.is_empty() {
        mesh.y_desc(y_label);
    }
    mesh.draw()?;

    // A one-pixel gap separates bars, unless they are too thin to afford it.
    let plot_w = chart.plotting_area().dim_in_pixel().0;
    let gap = u32::from(plot_w as usize >= 5 * bars.len().max(1));
    chart.draw_series(bars.iter().map(|&(lo, hi, c)| {
        let mut bar = Rectangle::new([(lo, 0), (hi, c)], BAR.filled());
        bar.set_margin(0, 0, 0, gap);
        bar
    }))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Legends are drawn by hand in a column right of the plot: plotters' built-in legend lives
// inside the plot, where it would hide the U-shaped curves and the bands.

#[derive(Clone, Copy, Debug)]
enum Swatch {
    Band,
    Line,
    LineWithPoint,
    Dashed,
    Dotted,
}

#[derive(Clone, Debug)]
struct LegendEntry {
    label: String,
    color: RGBColor,
    swatch: Swatch,
}

fn evolution_legend(fig: &EvolutionFigure) -> Vec<LegendEntry> {
    if fig.steps.is_empty() {
        return Vec::new();
    }
    let mut entries = vec![
        LegendEntry {
            label: format!("high (n={})", fig.high.samples),
            color: HIGH,
            swatch: Swatch::Band,
        },
        LegendEntry {
            label: format!("low (n={})", fig.low.samples),
            color: LOW,
            swatch: Swatch::Band,
        },
    ];
    if !fig.highlighted.is_empty() {
        let label = "top high samples".to_string();
        entries.push(LegendEntry {
            label,
            color: HIGHLIGHT,
            swatch: Swatch::Line,
        });
    }
    entries.push(LegendEntry {
        label: "median, p10-p90".into(),
        color: NEUTRAL,
        swatch: Swatch::Band,
    });
    entries
}

fn curve_legend(fig: &CurveFigure) -> Vec<LegendEntry> {
    // An unlabelled curve (a placeholder's, which only sets the axes) has no entry.
    let mut entries: Vec<LegendEntry> = fig
        .curves
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.label.is_empty())
        .map(|(i, c)| LegendEntry {
            label: c.label.clone(),
            color: PALETTE[i % PALETTE.len()],
            swatch: Swatch::LineWithPoint,
        })
        .collect();
    if fig.curves.iter().any(|c| c.reference.is_some()) {
        let label = "reference accuracy".to_string();
        entries.push(LegendEntry {
            label,
            color: NEUTRAL,
            swatch: Swatch::Dashed,
        });
    }
    if fig.curves.iter().any(|c| c.marker.is_some()) {
        let label = fig.marker_label.clone().unwrap_or_else(|| "zero pre-activation rank".into());
        entries.push(LegendEntry {
            label,
            color: NEUTRAL,
            swatch: Swatch::Dotted,
        });
    }
    entries
}

/// Legend geometry in pixels, derived from the theme.
struct LegendLayout {
    pad: i32,
    swatch_w: i32,
    row_h: i32,
    top: i32,
}

impl LegendLayout {
    fn new(theme: &Theme) -> Self {
        LegendLayout {
            pad: theme.px(8.0) as i32,
            swatch_w: theme.px(28.0) as i32,
            row_h: theme.px(24.0) as i32,
            // Roughly level with the top of the plot, below the panel caption.
            top: theme.px(40.0) as i32,
        }
    }
}

/// Splits a legend column (as wide as its longest label, at most 40% of the area) off the right.
fn split_off_legend<DB: DrawingBackend>(
    area: &Area<DB>,
    entries: &[LegendEntry],
    theme: &Theme,
) -> Result<(Area<DB>, Option<Area<DB>>), FigureError> {
    if entries.is_empty() {
        return Ok((area.clone(), None));
    }
    let font = theme.legend();
    let mut text_w = 0;
    for e in entries {
        text_w = text_w.max(area.estimate_text_size(&e.label, &font)?.0);
    }
    let l = LegendLayout::new(theme);
    let (w, _) = area.dim_in_pixel();
    let legend_w = (text_w + (l.swatch_w + 4 * l.pad) as u32).min(w * 2 / 5);
    let (plot, legend) = area.split_horizontally(w - legend_w);
    Ok((plot, Some(legend)))
}

fn draw_legend<DB: DrawingBackend>(
    area: &Area<DB>,
    entries: &[LegendEntry],
    theme: &Theme,
) -> Result<(), FigureError> {
    let l = LegendLayout::new(theme);
    let (w, _) = area.dim_in_pixel();
    let bottom = l.top + l.row_h * entries.len() as i32;
    let frame = [(0, l.top - l.pad), (w as i32 - l.pad, bottom + l.pad)];
    area.draw(&Rectangle::new(frame, INK.mix(0.2).stroke_width(1)))?;
    let anchor = Pos::new(HPos::Left, VPos::Center);
    let text_w = (w as i32 - l.swatch_w - 4 * l.pad).max(0) as u32;
    for (i, e) in entries.iter().enumerate() {
        let cy = l.top + l.row_h * i as i32 + l.row_h / 2;
        let (x0, x1) = (l.pad, l.pad + l.swatch_w);
        draw_swatch(area, e, (x0, x1), cy, theme)?;
        let (label, font) = theme.fit(area, &e.label, 14.0, text_w)?;
        area.draw_text(&label, &font.pos(anchor), (x1 + l.pad, cy))?;
    }
    Ok(())
}

fn draw_swatch<DB: DrawingBackend>(
    area: &Area<DB>,
    e: &LegendEntry,
    (x0, x1): (i32, i32),
    cy: i32,
    theme: &Theme,
) -> Result<(), FigureError> {
    let line = [(x0, cy), (x1, cy)];
    let thick = e.color.stroke_width(theme.px(2.0).max(1));
    let thin = e.color.stroke_width(theme.px(1.5).max(1));
    match e.swatch {
        Swatch::Band => {
            let half = theme.px(7.0) as i32;
            area.draw(&Rectangle::new(
                [(x0, cy - half), (x1, cy + half)],
                e.color.mix(0.2).filled(),
            ))?;
            area.draw(&PathElement::new(line, thick))?;
        }
        Swatch::Line => area.draw(&PathElement::new(line, e.color.mix(0.7).stroke_width(1)))?,
        Swatch::LineWithPoint => {
            area.draw(&PathElement::new(line, thick))?;
            let r = theme.px(3.5).max(2);
            area.draw(&Circle::new(((x0 + x1) / 2, cy), r, e.color.filled()))?;
        }
        Swatch::Dashed => area.draw(&DashedPathElement::new(
            line,
            theme.px(8.0),
            theme.px(5.0),
            thin,
        ))?,
        Swatch::Dotted => area.draw(&DashedPathElement::new(
            line,
            theme.px(2.0).max(2),
            theme.px(4.0).max(3),
            thin,
        ))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::fixtures;
    use crate::figures::{Curve, Histogram, Trajectory, register_fonts};

    /// Draws into both a vector and a raster backend, as the web page and the exporter do.
    fn draw_everywhere(fig: &Figure, (w, h): (u32, u32)) {
        register_fonts();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            draw_figure(&root, fig).unwrap();
            root.present().unwrap();
        }
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw_figure(&root, fig).unwrap();
        root.present().unwrap();
    }

    fn sizes() -> [(u32, u32); 4] {
        [(900, 500), (320, 200), (81, 81), (10, 10)]
    }

    #[test]
    fn degenerate_histograms_do_not_panic() {
        let zero = HistogramPanel {
            label: "all zero".into(),
            histogram: Histogram::empty(-1.0, 1.0, 20),
        };
        let empty = HistogramPanel {
            label: "no bins".into(),
            histogram: Histogram {
                edges: vec![],
                counts: vec![],
            },
        };
        let broken = HistogramPanel {
            label: "nan edges, mismatched lengths".into(),
            histogram: Histogram {
                edges: vec![f64::NAN, 0.0, 0.0, 1.0],
                counts: vec![5, 3, 7, 9, 11],
            },
        };
        let huge = HistogramPanel {
            label: "huge count".into(),
            histogram: Histogram {
                edges: vec![0.0, 1.0],
                counts: vec![u64::MAX / 4],
            },
        };
        for panels in [vec![], vec![zero, empty, broken, huge]] {
            let fig = Figure::Histograms(HistogramFigure {
                title: "".into(),
                x_label: "".into(),
                y_label: "".into(),
                panels,
            });
            for size in sizes() {
                draw_everywhere(&fig, size);
            }
        }
    }

    #[test]
    fn degenerate_evolution_does_not_panic() {
        let empty_band = Band {
            samples: 0,
            p10: vec![],
            p50: vec![],
            p90: vec![],
        };
        let one = |v: f32| Band {
            samples: 1,
            p10: vec![v],
            p50: vec![v],
            p90: vec![v],
        };
        let nan_band = Band {
            samples: 3,
            p10: vec![0.0, f32::NAN, 1.0, 2.0],
            p50: vec![1.0, f32::NAN, 2.0, f32::INFINITY],
            p90: vec![2.0, 3.0, 4.0],
        };
        let cases = [
            (vec![], empty_band.clone(), empty_band.clone(), vec![]),
            (
                vec![5],
                one(1.0),
                one(1.0),
                vec![Trajectory {
                    sample: 0,
                    values: vec![1.0],
                }],
            ),
            (
                vec![0, 10, 20, 30],
                nan_band,
                empty_band,
                vec![Trajectory {
                    sample: 2,
                    values: vec![f32::NAN; 4],
                }],
            ),
        ];
        for (steps, high, low, highlighted) in cases {
            let fig = Figure::Evolution(EvolutionFigure {
                title: "t".into(),
                layer: "l".into(),
                neuron: 0,
                steps,
                high,
                low,
                highlighted,
            });
            for size in sizes() {
                draw_everywhere(&fig, size);
            }
        }
    }

    #[test]
    fn degenerate_curves_do_not_panic() {
        let curve = |xs: Vec<f64>, ys: Vec<f64>, reference, marker| Curve {
            label: "c".into(),
            xs,
            ys,
            reference,
            marker,
        };
        let cases = [
            vec![],
            vec![curve(vec![], vec![], None, None)],
            vec![curve(vec![50.0], vec![0.9], Some(0.9), Some(50.0))],
            vec![curve(
                vec![0.0, 1.0, 2.0],
                vec![f64::NAN, 2.0, -1.0],
                Some(f64::INFINITY),
                Some(f64::NAN),
            )],
            (0..25)
                .map(|i| curve(vec![0.0, 100.0], vec![1.0, 1.0], Some(1.0), Some(i as f64)))
                .collect(),
        ];
        for curves in cases {
            let fig = Figure::Curves(CurveFigure {
                title: "curves".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                curves,
                marker_label: None,
            });
            for size in sizes() {
                draw_everywhere(&fig, size);
            }
        }
    }

    #[test]
    fn fixtures_draw() {
        draw_everywhere(&Figure::Histograms(fixtures::histograms()), (1200, 420));
        draw_everywhere(&Figure::Evolution(fixtures::evolution()), (900, 520));
        draw_everywhere(&Figure::Curves(fixtures::curves()), (900, 520));
    }

    #[test]
    fn mapped_drawing_reports_where_each_panel_landed() {
        super::super::register_fonts();
        for fig in [Figure::Curves(fixtures::curves()), Figure::Histograms(fixtures::histograms()), Figure::Evolution(fixtures::evolution())] {
            let mut svg = String::new();
            let plots = {
                let area = SVGBackend::with_string(&mut svg, (800, 400)).into_drawing_area();
                draw_figure_mapped(&area, &fig).unwrap()
            };
            let panels = match &fig {
                Figure::Histograms(h) => h.panels.len(),
                _ => 1,
            };
            assert_eq!(plots.len(), panels, "{}", fig.title());
            for (i, p) in plots.iter().enumerate() {
                assert_eq!(p.panel, i);
                assert!(p.px_x.start >= 0 && p.px_x.end <= 800 && p.px_y.start >= 0 && p.px_y.end <= 400, "{p:?}");
                assert!(p.px_x.end - p.px_x.start > 50 && p.px_y.end - p.px_y.start > 50, "{p:?}");
                let mid = ((p.px_x.start + p.px_x.end) / 2, (p.px_y.start + p.px_y.end) / 2);
                let (x, y) = p.data_at(mid.0, mid.1).expect("the centre is inside");
                assert!(p.x.start < x && x < p.x.end && p.y.start < y && y < p.y.end, "{p:?}");
                assert!(p.data_at(p.px_x.start - 1, mid.1).is_none());
                assert!(super::super::describe(&fig, i, x).is_some(), "{}: nothing under the centre", fig.title());
            }
        }
    }

    #[test]
    fn accuracy_range_stays_in_unit_interval() {
        let mut fig = fixtures::curves();
        let r = accuracy_range(&fig);
        assert!(r.start >= 0.0 && r.end <= 1.0 && r.start < r.end);
        assert!(r.contains(&0.981) && r.start < 0.5);
        fig.curves = vec![Curve {
            label: "flat".into(),
            xs: vec![0.0],
            ys: vec![1.0],
            reference: Some(1.0),
            marker: None,
        }];
        let r = accuracy_range(&fig);
        assert!(r.end == 1.0 && r.start < 0.99 && r.start > 0.9, "{r:?}");
        fig.curves[0].ys = vec![2.3, 0.4];
        let r = accuracy_range(&fig);
        assert!(r.start == 0.0 && r.contains(&2.3), "a loss keeps its scale: {r:?}");
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(1200.0), "1200");
        assert_eq!(tick_label(-0.0000001), "-1.0e-7");
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(compact_count(950), "950");
        assert_eq!(compact_count(12_500), "12.5k");
        assert_eq!(compact_count(3_000_000), "3M");
    }

    #[test]
    fn long_text_is_shrunk_then_cut_to_fit() {
        register_fonts();
        let mut svg = String::new();
        let root = SVGBackend::with_string(&mut svg, (400, 300)).into_drawing_area();
        let theme = Theme::for_size((400, 300));
        let (short, _) = theme.fit(&root, "dense1", 16.0, 300).unwrap();
        assert_eq!(short, "dense1");
        let long = "stage3layer2-relu (all neurons) ".repeat(4);
        let (cut, style) = theme.fit(&root, &long, 16.0, 150).unwrap();
        assert!(cut.ends_with('…') && cut.len() < long.len(), "{cut}");
        assert!(root.estimate_text_size(&cut, &style).unwrap().0 <= 150);
        let (nothing, _) = theme.fit(&root, &long, 16.0, 0).unwrap();
        assert_eq!(nothing, "");
    }

    #[test]
    fn panels_wrap_into_rows() {
        assert_eq!(panel_grid(0), (1, 1));
        assert_eq!(panel_grid(3), (1, 3));
        assert_eq!(panel_grid(6), (1, 6));
        assert_eq!(panel_grid(7), (2, 4));
        assert_eq!(panel_grid(12), (2, 6));
        assert_eq!(panel_grid(17), (3, 6));
    }

    #[test]
    fn finite_runs_split_at_gaps() {
        let v = [1.0, f32::NAN, 2.0, 3.0, f32::NAN];
        assert_eq!(finite_runs(v.len(), |i| v[i].is_finite()), vec![0..1, 2..4]);
        assert!(finite_runs(0, |_| true).is_empty());
    }
}
