//! What `reproduce` writes: per model `results.json`, `figures.json` (every figure's data) and
//! each figure as CSV, SVG and PNG; at the top, `table1.md` and `report.html`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hidden_neurons::figures::{NamedFigure, default_size, figure_csv, render_png, render_svg};
use hidden_neurons::report::{ReportSection, ZeroRankRow, report_html, table1_markdown};
use hidden_neurons::results::Results;
use hidden_neurons::run::RunSpec;

use crate::files::{read, write_atomic};

pub fn write_model(dir: &Path, results: &Results, figs: &[NamedFigure]) -> Result<()> {
    // What we write we must be able to read back (`--resume`, `trainer validate`): checked before
    // a byte is written, so a bug shows as an error here rather than as an unreadable file later.
    let results_json = results.to_json();
    Results::from_json(&results_json).context("internal error: results.json would not read back")?;
    let figures_json = serde_json::to_string(figs)?;
    serde_json::from_str::<Vec<NamedFigure>>(&figures_json).context("internal error: figures.json would not read back")?;
    for f in figs {
        let (w, h) = default_size(&f.figure);
        write_atomic(&dir.join(format!("{}.csv", f.stem)), figure_csv(&f.figure).as_bytes())?;
        let svg = render_svg(&f.figure, w, h).with_context(|| format!("drawing {}", f.stem))?;
        write_atomic(&dir.join(format!("{}.svg", f.stem)), svg.as_bytes())?;
        let png = render_png(&f.figure, w, h).with_context(|| format!("drawing {}", f.stem))?;
        write_atomic(&dir.join(format!("{}.png", f.stem)), &png)?;
    }
    write_atomic(&dir.join("figures.json"), figures_json.as_bytes())?;
    // results.json last: its presence marks the model as finished for --resume.
    write_atomic(&dir.join("results.json"), results_json.as_bytes())?;
    Ok(())
}

/// What a model folder already holds for a run of `spec`.
pub enum Earlier {
    /// No results.
    Nothing,
    /// Finished with the same settings: its results and figures, kept.
    Finished(Results, Vec<NamedFigure>),
    /// Finished the same training with other experiment settings (its spec): the experiments run
    /// again on the trained network in the folder's checkpoint and replace the results.
    Retest(RunSpec),
}

/// What a model folder holds for `spec`, read once. Results of any other settings are an error,
/// never silently kept, and so are other experiment settings whose trained network is gone.
pub fn earlier_run(dir: &Path, spec: &RunSpec) -> Result<Earlier> {
    let results_path = dir.join("results.json");
    if !results_path.is_file() {
        return Ok(Earlier::Nothing);
    }
    let results = read_results(&results_path)?;
    let same_settings = results.settings.as_deref().is_some_and(|s| spec.owns(s));
    if let Some(previous) = results.spec.as_ref().filter(|s| !same_settings && s.training_fingerprint() == spec.training_fingerprint()) {
        if !crate::checkpoint::Checkpoint::new(dir).exists() {
            bail!(
                "{}: finished with other experiment settings, and its checkpoint (the trained network) is gone; use another --out, or remove that folder to train again",
                results_path.display()
            );
        }
        println!(
            "{}: finished with other experiment settings on the same training; the experiments run again on the trained network (its checkpoint) and replace it",
            results_path.display()
        );
        return Ok(Earlier::Retest(previous.clone()));
    }
    if !same_settings {
        bail!(
            "{}: finished with other settings ({}); this run: {}. Use another --out, or remove that folder to redo it",
            results_path.display(),
            results.settings.as_deref().unwrap_or("not recorded"),
            spec.fingerprint()
        );
    }
    let figs_path = dir.join("figures.json");
    let figs = serde_json::from_slice(&read(&figs_path)?).with_context(|| format!("{}: not a figures file", figs_path.display()))?;
    Ok(Earlier::Finished(results, figs))
}

pub fn summary(r: &Results) -> Vec<(String, String)> {
    let mut rows = vec![
        ("model".to_string(), r.model.clone()),
        ("architecture".into(), r.architecture.clone()),
        ("dataset".into(), r.dataset.clone()),
        ("preset".into(), r.preset.clone()),
        ("backend".into(), r.backend.clone()),
        ("test accuracy".into(), format!("{:.4}", r.test_accuracy)),
        (
            "recording".into(),
            match &r.recording {
                Some(rec) => format!("{:?}, every {} batches, {} recordings, {} samples", rec.mode, rec.every_batches, rec.recordings, rec.tracked_samples),
                None => "none: the paper studied ResNet50 through figures 3, 4 and Table 1 only".into(),
            },
        ),
        ("training time".into(), format!("{:.0} s", r.train_seconds)),
        ("experiments time".into(), format!("{:.0} s", r.experiment_seconds)),
    ];
    if !r.layer_rotation.is_empty() {
        let last = r.layer_rotation.iter().map(|l| format!("{} {:.3}", l.layer, l.per_epoch.last().copied().unwrap_or(f64::NAN))).collect::<Vec<_>>();
        rows.push(("layer rotation after the last epoch".into(), last.join(", ")));
    }
    for (name, l) in &r.layers {
        if l.outer_fraction.is_finite() {
            rows.push((format!("{name}: |avg sign| >= 0.8"), format!("{:.1}% of pairs", 100.0 * l.outer_fraction)));
        }
        if let Some(p) = &l.position_signs {
            rows.push((
                format!("{name}: |avg sign| >= 0.8, per position"),
                format!("{:.1}% of (sample, position, channel) triples ({} positions per channel)", 100.0 * p.outer_fraction, p.positions_per_neuron),
            ));
        }
        let at50 = |v| hidden_neurons::experiments::at_rank(v, 50.0);
        if let (Some(pre), Some(post)) = (at50(&l.quantization), at50(&l.post_quantization)) {
            let same = pre.same_side_share.map(|s| format!("; {:.0}% of neurons have both values on one side of 0", 100.0 * s)).unwrap_or_default();
            rows.push((
                format!("{name}: quantized at r = 50"),
                format!("{:.4} before the activation, {:.4} after it{same}", pre.test_accuracy, post.test_accuracy),
            ));
        }
    }
    rows
}

pub fn write_report(out: &Path, sections: &[ReportSection], table1: &[ZeroRankRow]) -> Result<()> {
    write_atomic(&out.join("table1.md"), table1_markdown(table1).as_bytes())?;
    let intro = "Reproduction of \"Discovering the mechanics of hidden neurons\" (Carbonnelle & De Vleeschouwer). \
                 Each figure's data is in the CSV beside it and in the model's figures.json; every number in results.json.";
    let html = report_html("Hidden neurons: reproduction report", intro, sections, table1);
    write_atomic(&out.join("report.html"), html.as_bytes())
}

/// Reads a results.json; every error names the file.
pub fn read_results(path: &Path) -> Result<Results> {
    let bytes = read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
    Results::from_json(text).with_context(|| format!("{} does not follow the results.json schema", path.display()))
}
