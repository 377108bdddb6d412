//! Rendering figures to SVG text and PNG bytes.

use std::sync::Once;

use plotters::prelude::*;

use super::draw::panel_grid;
use super::{Figure, FigureError, draw_figure};

/// Largest accepted image side, in pixels: beyond it the RGB buffer gets unreasonable.
pub(crate) const MAX_SIDE: u32 = 16_384;

/// Makes the bundled DejaVu Sans the "sans-serif" font plotters measures and rasterizes text
/// with. Without it, plotters (built with `ab_glyph`, no system fonts) cannot lay out any text.
/// Safe to call any number of times, from any thread.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // In a browser plotters measures text through the canvas and has no registry.
        #[cfg(not(any(target_arch = "wasm32", target_os = "wasi")))]
        {
            use plotters::style::{FontStyle, register_font};
            static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
            // Bold maps to the same face: a synthetic bold is not worth a second font file.
            for style in [FontStyle::Normal, FontStyle::Bold] {
                if register_font("sans-serif", style, DEJAVU_SANS).is_err() {
                    panic!("the bundled assets/DejaVuSans.ttf is not a valid font");
                }
            }
        }
    });
}

/// A size that suits each figure kind: histogram figures grow with their panel grid.
pub fn default_size(fig: &Figure) -> (u32, u32) {
    match fig {
        Figure::Histograms(f) => {
            let (rows, cols) = panel_grid(f.panels.len());
            ((380 * cols as u32).clamp(640, 1900), 70 + 350 * rows as u32)
        }
        Figure::Evolution(_) | Figure::Curves(_) => (960, 540),
    }
}

/// The figure as a standalone SVG document.
pub fn render_svg(fig: &Figure, width: u32, height: u32) -> Result<String, FigureError> {
    check_size(width, height)?;
    register_fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw_figure(&root, fig)?;
        root.present()?;
    }
    Ok(svg)
}

/// The figure as PNG file bytes (8-bit RGB).
pub fn render_png(fig: &Figure, width: u32, height: u32) -> Result<Vec<u8>, FigureError> {
    check_size(width, height)?;
    register_fonts();
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw_figure(&root, fig)?;
        root.present()?;
    }
    encode_png(&rgb, width, height)
}

fn check_size(width: u32, height: u32) -> Result<(), FigureError> {
    let ok = |side: u32| (1..=MAX_SIDE).contains(&side);
    if ok(width) && ok(height) {
        Ok(())
    } else {
        Err(FigureError::Size { width, height })
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, FigureError> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgb, width, height, image::ColorType::Rgb8)
        .map_err(|e| FigureError::Encode(e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::fixtures;

    fn all_fixtures() -> Vec<(&'static str, Figure)> {
        vec![
            ("histograms", Figure::Histograms(fixtures::histograms())),
            ("evolution", Figure::Evolution(fixtures::evolution())),
            ("curves", Figure::Curves(fixtures::curves())),
        ]
    }

    #[test]
    fn svg_is_a_document_with_the_title() {
        for (_, fig) in all_fixtures() {
            let svg = render_svg(&fig, 800, 450).unwrap();
            assert!(
                svg.trim_start().starts_with("<svg"),
                "{}",
                &svg[..80.min(svg.len())]
            );
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains(r#"width="800""#) && svg.contains(r#"height="450""#));
            assert!(
                svg.contains(fig.title()),
                "title missing from SVG of {}",
                fig.title()
            );
            assert!(svg.contains("<text"));
        }
    }

    #[test]
    fn svg_escapes_markup_in_labels() {
        let mut fig = fixtures::curves();
        fig.title = "a < b & \"c\"".into();
        let svg = render_svg(&Figure::Curves(fig), 600, 400).unwrap();
        assert!(!svg.contains("a < b &"));
        assert!(svg.contains("a &lt; b &amp;"));
    }

    #[test]
    fn png_has_signature_and_requested_size() {
        for (_, fig) in all_fixtures() {
            for (w, h) in [(640, 360), (333, 211), (1, 1)] {
                let png = render_png(&fig, w, h).unwrap();
                assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
                let img =
                    image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
                assert_eq!((img.width(), img.height()), (w, h));
            }
        }
    }

    #[test]
    fn png_is_not_blank() {
        let png = render_png(&Figure::Curves(fixtures::curves()), 400, 300).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        let total = (img.width() * img.height()) as usize;
        assert!(white > total / 2, "background should be white");
        assert!(white < total, "something should be drawn");
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        let fig = Figure::Curves(fixtures::curves());
        for (w, h) in [(0, 10), (10, 0), (MAX_SIDE + 1, 10)] {
            let err = render_png(&fig, w, h).unwrap_err();
            assert!(matches!(err, FigureError::Size { .. }));
            assert!(err.to_string().contains(&format!("{w}x{h}")));
            assert!(render_svg(&fig, w, h).is_err());
        }
    }

    #[test]
    fn register_fonts_is_idempotent() {
        register_fonts();
        register_fonts();
        std::thread::spawn(register_fonts).join().unwrap();
    }
}
