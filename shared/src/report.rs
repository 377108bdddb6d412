//! The written results: Table 1 as Markdown, and a static HTML report that shows every figure
//! (as the SVG files saved next to it) with links to their CSV data.

use std::fmt::Write;

use crate::figures::NamedFigure;

/// One row of Table 1.
#[derive(Clone, Debug, PartialEq)]
pub struct ZeroRankRow {
    pub model: String,
    pub layer: String,
    /// Average over the layer's neurons of the percentile rank (0..100) of pre-activation 0.
    pub zero_percentile_rank: f64,
}

/// The results of one model: key facts and its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSection {
    /// Model id, also the folder holding its figure files (`<model>/<stem>.svg`).
    pub model: String,
    /// Key/value facts shown above the figures (accuracy, epochs, recordings, ...).
    pub summary: Vec<(String, String)>,
    pub figures: Vec<NamedFigure>,
}

const TABLE1_TITLE: &str = "Table 1: average percentile rank of the zero pre-activation";

/// Table 1 as a Markdown table (title in bold above it), ranks with one decimal.
pub fn table1_markdown(rows: &[ZeroRankRow]) -> String {
    let mut md = format!("**{TABLE1_TITLE}**\n\n");
    md.push_str("| model | layer | zero pre-activation percentile rank |\n");
    md.push_str("|---|---|---:|\n");
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            markdown_cell(&r.model),
            markdown_cell(&r.layer),
            format_rank(r.zero_percentile_rank)
        );
    }
    md
}

/// A self-contained HTML page (inline CSS, no scripts, no external resources besides the
/// figure files it links to, relative to the page).
pub fn report_html(
    title: &str,
    intro: &str,
    sections: &[ReportSection],
    table1: &[ZeroRankRow],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    push_paragraphs(&mut h, intro);
    push_contents(&mut h, sections, !table1.is_empty());
    for section in sections {
        push_section(&mut h, section);
    }
    if !table1.is_empty() {
        push_table1(&mut h, table1);
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

const STYLE: &str = "
:root { --ink: #212529; --muted: #6c757d; --line: #dee2e6; --accent: #1f77b4; --bg: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 16px/1.55 system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; margin: 0 0 .75rem; }
h2 { font-size: 1.4rem; margin: 2.5rem 0 1rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
a { color: var(--accent); }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem .6rem; }
nav a { display: inline-block; padding: .15rem .6rem; border: 1px solid var(--line);
  border-radius: 999px; background: #fff; text-decoration: none; font-size: .9rem; }
table { border-collapse: collapse; background: #fff; margin: .5rem 0 1.5rem; font-size: .95rem; }
th, td { padding: .35rem .8rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { background: #eef1f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary th { background: none; color: var(--muted); font-weight: 500; }
figure { margin: 0 0 2rem; padding: 1rem; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
figure img { display: block; width: 100%; height: auto; }
figcaption { margin-top: .6rem; color: var(--muted); font-size: .93rem; }
figcaption .data { margin-left: .5rem; font-size: .85rem; white-space: nowrap; }
.rank { display: inline-block; position: relative; width: 120px; height: 8px; margin-left: .6rem;
  background: var(--line); border-radius: 4px; vertical-align: middle; }
.rank span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--accent); border-radius: 4px; }
.rank::after { content: ''; position: absolute; left: 50%; top: -3px; bottom: -3px; width: 1px; background: var(--ink); }
";

fn push_paragraphs(h: &mut String, text: &str) {
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let _ = writeln!(h, "<p>{}</p>", escape(para));
    }
}

fn push_contents(h: &mut String, sections: &[ReportSection], has_table1: bool) {
    if sections.is_empty() && !has_table1 {
        return;
    }
    h.push_str("<nav><ul>\n");
    for s in sections {
        let _ = writeln!(
            h,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(&anchor(&s.model)),
            escape(&s.model)
        );
    }
    if has_table1 {
        h.push_str("<li><a href=\"#table1\">Table 1</a></li>\n");
    }
    h.push_str("</ul></nav>\n");
}

fn push_section(h: &mut String, s: &ReportSection) {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h2>{}</h2>",
        escape(&anchor(&s.model)),
        escape(&s.model)
    );
    if !s.summary.is_empty() {
        h.push_str("<table class=\"summary\">\n");
        for (key, value) in &s.summary {
            let _ = writeln!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            );
        }
        h.push_str("</table>\n");
    }
    for f in &s.figures {
        push_figure(h, &s.model, f);
    }
    h.push_str("</section>\n");
}

fn push_figure(h: &mut String, model: &str, f: &NamedFigure) {
    let base = format!("{}/{}", url_segment(model), url_segment(&f.stem));
    let _ = writeln!(
        h,
        "<figure id=\"{id}\">\n<img src=\"{base}.svg\" alt=\"{alt}\" loading=\"lazy\">\n\
         <figcaption>{caption}<a class=\"data\" href=\"{base}.csv\">data (CSV)</a></figcaption>\n</figure>",
        id = escape(&anchor(&format!("{model}-{}", f.stem))),
        base = escape(&base),
        alt = escape(f.figure.title()),
        caption = escape(&f.caption),
    );
}

fn push_table1(h: &mut String, rows: &[ZeroRankRow]) {
    let _ = writeln!(
        h,
        "<section id=\"table1\">\n<h2>{}</h2>",
        escape(TABLE1_TITLE)
    );
    h.push_str(
        "<table>\n<thead><tr><th>model</th><th>layer</th>\
         <th>zero pre-activation percentile rank</th></tr></thead>\n<tbody>\n",
    );
    for r in rows {
        // A bar against the 50th-percentile tick shows at a glance how far zero is from the middle.
        let bar = if r.zero_percentile_rank.is_finite() {
            let width = r.zero_percentile_rank.clamp(0.0, 100.0);
            format!("<span class=\"rank\"><span style=\"width:{width:.1}%\"></span></span>")
        } else {
            String::new()
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}{bar}</td></tr>",
            escape(&r.model),
            escape(&r.layer),
            escape(&format_rank(r.zero_percentile_rank)),
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// One decimal; a missing value (no pre-activations seen) shows as a dash rather than "NaN".
fn format_rank(rank: f64) -> String {
    if rank.is_finite() {
        format!("{rank:.1}")
    } else {
        "–".into()
    }
}

/// Text for HTML element content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A pipe would end the Markdown cell and a newline the row.
fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a model id or stem is
/// always one literal path segment.
fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An id attribute value: letters, digits and dashes only.
fn anchor(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{Figure, fixtures};

    fn rows() -> Vec<ZeroRankRow> {
        vec![
            ZeroRankRow {
                model: "mlp-relu".into(),
                layer: "dense1-relu".into(),
                zero_percentile_rank: 71.24,
            },
            ZeroRankRow {
                model: "cnn-linear".into(),
                layer: "stage0layer0-<none>|x".into(),
                zero_percentile_rank: 49.96,
            },
            ZeroRankRow {
                model: "resnet50".into(),
                layer: "conv1".into(),
                zero_percentile_rank: f64::NAN,
            },
        ]
    }

    #[test]
    fn table1_markdown_rows() {
        let md = table1_markdown(&rows());
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "**Table 1: average percentile rank of the zero pre-activation**"
        );
        assert_eq!(
            lines[2],
            "| model | layer | zero pre-activation percentile rank |"
        );
        assert_eq!(lines[3], "|---|---|---:|");
        assert_eq!(lines[4], "| mlp-relu | dense1-relu | 71.2 |");
        assert_eq!(lines[5], "| cnn-linear | stage0layer0-<none>\\|x | 50.0 |");
        assert_eq!(lines[6], "| resnet50 | conv1 | – |");
        assert_eq!(lines.len(), 7);
        assert_eq!(table1_markdown(&[]).lines().count(), 4);
    }

    fn section() -> ReportSection {
        ReportSection {
            model: "mlp-relu".into(),
            summary: vec![
                ("test accuracy".into(), "0.981".into()),
                ("note".into(), "<b>not bold</b> & \"quoted\"".into()),
            ],
            figures: vec![
                NamedFigure {
                    stem: "fig1_one_neuron".into(),
                    caption: "Average sign per sample; x < 0 means \"high\".".into(),
                    figure: Figure::Histograms(fixtures::histograms()),
                },
                NamedFigure {
                    stem: "fig3 quant".into(),
                    caption: "Quantization".into(),
                    figure: Figure::Curves(fixtures::curves()),
                },
            ],
        }
    }

    #[test]
    fn report_html_lists_figures_summary_and_table() {
        let html = report_html(
            "Hidden <neurons>",
            "First paragraph.\n\nSecond & last.",
            &[section()],
            &rows(),
        );
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(html.contains("<title>Hidden &lt;neurons&gt;</title>"));
        assert!(html.contains("<p>First paragraph.</p>\n<p>Second &amp; last.</p>"));
        assert!(html.contains("<tr><th scope=\"row\">test accuracy</th><td>0.981</td></tr>"));
        assert!(html.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; &quot;quoted&quot;"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("<img src=\"mlp-relu/fig1_one_neuron.svg\""));
        assert!(html.contains("href=\"mlp-relu/fig1_one_neuron.csv\""));
        assert!(html.contains("<img src=\"mlp-relu/fig3%20quant.svg\""));
        assert!(html.contains("x &lt; 0 means &quot;high&quot;."));
        assert!(html.contains(&format!("alt=\"{}\"", fixtures::histograms().title)));
        assert_eq!(html.matches("<figure ").count(), 2);
        assert!(html.contains("<td>stage0layer0-&lt;none&gt;|x</td><td class=\"num\">50.0"));
        assert!(html.contains("<td>conv1</td><td class=\"num\">–</td>"));
        assert!(html.contains("href=\"#table1\"") && html.contains("href=\"#mlp-relu\""));
    }

    #[test]
    fn report_html_is_self_contained() {
        let html = report_html("t", "", &[section()], &rows());
        assert!(!html.contains("<script"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<link"));
    }

    #[test]
    fn report_html_without_content() {
        let html = report_html("Empty", "", &[], &[]);
        assert!(html.contains("<h1>Empty</h1>"));
        assert!(!html.contains("<nav>") && !html.contains("Table 1"));
    }
}
