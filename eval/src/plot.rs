//! The figures as PNGs: accuracy curves of several runs overlaid (the paper's Figure 3) and
//! t-SNE scatter panels side by side (Figure 4). plotters draws into an RGB buffer with an
//! embedded DejaVu Sans (no system fonts needed; licence in `assets/`), `image` writes the PNG.

use std::path::Path;
use std::sync::Once;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::EvalError;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the embedded font as `sans-serif` (once); [`png`] calls it first.
fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, FONT)
                .unwrap_or_else(|_| panic!("the embedded font parses"));
        }
    });
}

/// Distinct line and point colours (Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A plotting failure as [`EvalError::Plot`].
pub fn plot_error(e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot(e.to_string())
}

/// Writes an RGB buffer of `w × h` pixels as a PNG.
fn save(buf: Vec<u8>, (w, h): (u32, u32), path: &Path) -> Result<(), EvalError> {
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| plot_error("buffer size"))?;
    save_png(&img, path)
}

/// Writes `img` as a PNG atomically: encoded in memory, written to a temporary name, synced
/// and renamed into place, so a kill or power cut leaves the old file or the new one, whole.
pub fn save_png(img: &image::RgbImage, path: &Path) -> Result<(), EvalError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| plot_error(format!("{}: {e}", path.display())))?;
    write_file(path, bytes.get_ref())
}

/// Writes `bytes` to `path` atomically (as [`save_png`]).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), EvalError> {
    sipl_shards::write_atomic(path, bytes).map_err(|e| EvalError::Data(e.to_string()))
}

/// A figure of `size` pixels drawn by `draw` on a white canvas (the embedded font
/// registered) and written to `path` as a PNG: every figure of the project is made here.
pub fn png(
    size: (u32, u32),
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    register_font();
    let mut buf = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    save(buf, size, path)
}

/// The series' legend in the figures' style: lower right, on a light box with a border.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), EvalError>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(plot_error)
}

/// One named curve: (epoch, held-out accuracy in [0, 1]); with several seeds, the mean and a
/// shaded band (epoch, low, high), e.g. the 95% t-interval of the mean per epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Option<Vec<(f64, f64, f64)>>,
}

/// Held-out accuracy (%) against epoch, one line per curve, legend with each best value.
pub fn curves_png(curves: &[Curve], title: &str, path: &Path) -> Result<(), EvalError> {
    png((960, 600), path, |root| {
        let max_epoch =
            curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)).fold(1.0, f64::max);
        let band_top = curves.iter().flat_map(|c| c.band.iter().flatten().map(|b| 100.0 * b.2));
        let max_acc = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| 100.0 * p.1))
            .chain(band_top)
            .fold(1.0, f64::max)
            .min(100.0);
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..max_epoch, 0.0..(max_acc * 1.1).ceil())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("held-out accuracy (%)")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(plot_error)?;
        for (i, c) in curves.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            if let Some(band) = c.band.as_ref().filter(|b| !b.is_empty()) {
                let outline: Vec<(f64, f64)> = band
                    .iter()
                    .map(|&(e, _, hi)| (e, 100.0 * hi.min(1.0)))
                    .chain(band.iter().rev().map(|&(e, lo, _)| (e, 100.0 * lo.max(0.0))))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, colour.mix(0.2).filled())))
                    .map_err(plot_error)?;
            }
            let best = c.points.iter().map(|p| 100.0 * p.1).fold(0.0, f64::max);
            chart
                .draw_series(LineSeries::new(
                    c.points.iter().map(|&(e, a)| (e, 100.0 * a)),
                    colour.stroke_width(2),
                ))
                .map_err(plot_error)?
                .label(format!("{} (best {best:.1}%)", c.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart)
    })
}

/// One point of a t-SNE panel: position, class (colour) and style draw (marker).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScatterPoint {
    pub x: f64,
    pub y: f64,
    pub class: usize,
    pub style: usize,
}

/// One t-SNE panel.
pub struct Panel {
    pub title: String,
    pub points: Vec<ScatterPoint>,
}

/// Panels side by side; class by colour, style by marker (circle, triangle, cross, square).
pub fn scatter_png(panels: &[Panel], legend: &[String], path: &Path) -> Result<(), EvalError> {
    let side = 560u32;
    let foot = 12 + 22 * legend.len() as u32;
    let size = (side * panels.len().max(1) as u32, side + foot);
    png(size, path, |root| {
        let (body, foot) = root.split_vertically(side);
        for (i, line) in legend.iter().enumerate() {
            foot.draw(&Text::new(line.as_str(), (12, 4 + 22 * i as i32), ("sans-serif", 16)))
                .map_err(plot_error)?;
        }
        for (area, panel) in body.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            let range = |f: fn(&ScatterPoint) -> f64| {
                let (lo, hi) = panel
                    .points
                    .iter()
                    .map(f)
                    .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
                let pad = ((hi - lo) * 0.05).max(1e-6);
                (lo - pad)..(hi + pad)
            };
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 18))
                .margin(12)
                .build_cartesian_2d(range(|p| p.x), range(|p| p.y))
                .map_err(plot_error)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(0)
                .y_labels(0)
                .draw()
                .map_err(plot_error)?;
            for p in &panel.points {
                let c = PALETTE[p.class % PALETTE.len()];
                let at = (p.x, p.y);
                match p.style % 4 {
                    0 => chart.plotting_area().draw(&Circle::new(at, 4, c.filled())),
                    1 => chart.plotting_area().draw(&TriangleMarker::new(at, 6, c.filled())),
                    2 => chart.plotting_area().draw(&Cross::new(at, 5, c.stroke_width(2))),
                    _ => chart
                        .plotting_area()
                        .draw(&Rectangle::new([(p.x, p.y), (p.x, p.y)], c.stroke_width(6))),
                }
                .map_err(plot_error)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_and_scatter_render_to_png() {
        let tmp = tempfile::tempdir().expect("tmp");
        let curves = vec![
            Curve {
                name: "a".into(),
                points: vec![(1.0, 0.05), (2.0, 0.10), (3.0, 0.12)],
                band: Some(vec![(1.0, 0.03, 0.07), (2.0, 0.08, 0.12), (3.0, 0.1, 0.14)]),
            },
            Curve {
                name: "b".into(),
                points: vec![(1.0, 0.02), (2.0, 0.04), (3.0, 0.03)],
                band: None,
            },
        ];
        let path = tmp.path().join("c.png");
        curves_png(&curves, "downstream", &path).expect("curves");
        let img = image::open(&path).expect("png").to_rgb8();
        assert_eq!(img.dimensions(), (960, 600));
        let coloured = |c: RGBColor| img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
        assert!(coloured(PALETTE[0]) > 100 && coloured(PALETTE[1]) > 100, "both lines drawn");
        let panel = |t: &str| Panel {
            title: t.into(),
            points: (0..8)
                .map(|i| ScatterPoint {
                    x: i as f64,
                    y: (i * i) as f64,
                    class: i % 2,
                    style: i / 4,
                })
                .collect(),
        };
        let path = tmp.path().join("s.png");
        scatter_png(&[panel("x"), panel("y")], &["legend".into()], &path).expect("scatter");
        assert_eq!(image::open(&path).expect("png").to_rgb8().dimensions(), (1120, 594));
    }

    #[test]
    fn a_figure_written_again_replaces_the_file_whole_by_a_rename() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("f.png");
        let img = image::RgbImage::new(4, 3);
        save_png(&img, &path).expect("first");
        let first = std::fs::metadata(&path).expect("meta").ino();
        save_png(&img, &path).expect("second");
        // A new file took the old one's name: a reader (or a kill) never sees it half written.
        assert_ne!(std::fs::metadata(&path).expect("meta").ino(), first);
        let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("list").flatten().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
        assert_eq!(image::open(&path).expect("png").to_rgb8().dimensions(), (4, 3));
    }
}
