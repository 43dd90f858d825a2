//! Charts: drawing on an [`RgbImage`] (shapes and a bitmap font), the scatter plot of latent
//! codes, and the SVG line chart of training curves, both on one [`Axis`] type (span, ticks).
//! Pure drawing: callers pass numbers in and get an image out.

use font8x8::{BASIC_FONTS, UnicodeFonts};

use crate::engine::Matrix;
use crate::html::escape as esc;
pub use crate::image::{Rgb, RgbImage};

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [150, 150, 150];

/// Ten colours that stay distinct side by side (the "tab10" palette of matplotlib and D3).
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Height of a line of text at scale 1, in pixels.
pub const GLYPH: usize = 8;

/// Drawing on a canvas.
impl RgbImage {
    /// Sets one pixel; outside the canvas nothing happens.
    pub fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Fills the rectangle `[x, x + w) x [y, y + h)`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, colour);
            }
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, cx: i64, cy: i64, radius: i64, colour: Rgb) {
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                if dx * dx + dy * dy <= radius * radius {
                    self.set(cx + dx, cy + dy, colour);
                }
            }
        }
    }

    /// Text with its top-left corner at `(x, y)`, each font pixel `scale x scale`. Characters
    /// outside the font's basic Latin show as blanks.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, colour: Rgb) {
        let s = scale.max(1) as i64;
        for (i, ch) in text.chars().enumerate() {
            let Some(glyph) = BASIC_FONTS.get(ch) else {
                continue;
            };
            let ox = x + i as i64 * GLYPH as i64 * s;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(ox + col as i64 * s, y + row as i64 * s, s, s, colour);
                    }
                }
            }
        }
    }

    /// Text rotated a quarter turn anticlockwise (reading bottom to top), its glyphs' top
    /// facing left; `(x, y)` is the bottom-left corner.
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: usize, colour: Rgb) {
        let s = scale.max(1) as i64;
        for (i, ch) in text.chars().enumerate() {
            let Some(glyph) = BASIC_FONTS.get(ch) else {
                continue;
            };
            let oy = y - i as i64 * GLYPH as i64 * s;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(x + row as i64 * s, oy - (col as i64 + 1) * s, s, s, colour);
                    }
                }
            }
        }
    }

    /// Width in pixels of `text` at `scale`.
    pub fn text_width(text: &str, scale: usize) -> i64 {
        (text.chars().count() * GLYPH * scale.max(1)) as i64
    }
}

/// Tick positions covering `[lo, hi]` at a "nice" step (1, 2 or 5 times a power of ten).
fn nice_ticks(lo: f64, hi: f64, about: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-12);
    let raw = span / about.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// One axis of a chart, whichever way it is drawn (the raster scatter plot, the SVG line
/// chart): the span of data it shows and its ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
}

impl Axis {
    /// The span of the finite `values` (`empty` when there are none), widened by `pad` of it
    /// on each side (at least 1e-6) so that no mark sits on the frame.
    pub fn covering(values: impl IntoIterator<Item = f64>, pad: f64, empty: (f64, f64)) -> Axis {
        let (mut lo, mut hi) = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            (lo, hi) = empty;
        }
        let pad = ((hi - lo) * pad).max(1e-6);
        Axis {
            lo: lo - pad,
            hi: hi + pad,
        }
    }

    /// Where `v` falls along the axis: 0 at `lo`, 1 at `hi`.
    pub fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// About `about` ticks at round values within the span, each with its label.
    pub fn ticks(&self, about: usize) -> Vec<(f64, String)> {
        nice_ticks(self.lo, self.hi, about)
            .into_iter()
            .map(|t| (t, tick_label(t)))
            .collect()
    }
}

/// Formats a tick value without trailing noise (`0.5`, `-2`, `10`).
fn tick_label(v: f64) -> String {
    let s = format!("{:.2}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// What a scatter plot of codes shows.
#[derive(Clone, Debug)]
pub struct Scatter<'a> {
    /// n x 2.
    pub points: &'a Matrix,
    /// A class per point, indexing `class_names` and [`PALETTE`].
    pub labels: &'a [u8],
    pub class_names: &'a [String],
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A line under the title (e.g. how the codes were projected).
    pub note: Option<String>,
}

const PLOT_W: i64 = 560;
const PLOT_H: i64 = 560;
const LEFT: i64 = 90;
const TOP: i64 = 70;
const LEGEND_W: i64 = 200;
const BOTTOM: i64 = 70;

/// Where a chart's data lands on the canvas: the plot area at (`LEFT`, `TOP`), `PLOT_W` x
/// `PLOT_H` pixels, spanned by two axes.
struct Frame {
    x: Axis,
    y: Axis,
}

impl Frame {
    fn px(&self, x: f64) -> i64 {
        LEFT + (self.x.fraction(x) * PLOT_W as f64).round() as i64
    }

    fn py(&self, y: f64) -> i64 {
        TOP + PLOT_H - (self.y.fraction(y) * PLOT_H as f64).round() as i64
    }

    /// The title, the note under it, and the ticks with their labels (and light grid lines
    /// across the plot when `grid`).
    fn draw_axes(&self, img: &mut RgbImage, title: &str, note: Option<&str>, grid: bool) {
        img.text(LEFT, 14, title, 2, BLACK);
        if let Some(note) = note {
            img.text(LEFT, 40, note, 1, GREY);
        }
        for (t, label) in self.x.ticks(6) {
            let x = self.px(t);
            if grid {
                img.fill_rect(x, TOP, 1, PLOT_H, [235, 235, 235]);
            }
            img.fill_rect(x, TOP + PLOT_H, 1, 6, BLACK);
            let w = RgbImage::text_width(&label, 2);
            img.text(x - w / 2, TOP + PLOT_H + 10, &label, 2, BLACK);
        }
        for (t, label) in self.y.ticks(6) {
            let y = self.py(t);
            if grid {
                img.fill_rect(LEFT, y, PLOT_W, 1, [235, 235, 235]);
            }
            img.fill_rect(LEFT - 6, y, 6, 1, BLACK);
            img.text(LEFT - 10 - RgbImage::text_width(&label, 2), y - 8, &label, 2, BLACK);
        }
    }

    /// The frame around the plot, and the axis labels.
    fn draw_frame(&self, img: &mut RgbImage, x_label: &str, y_label: &str) {
        for (x, y, w, h) in [
            (LEFT, TOP, PLOT_W, 1),
            (LEFT, TOP + PLOT_H, PLOT_W + 1, 1),
            (LEFT, TOP, 1, PLOT_H),
            (LEFT + PLOT_W, TOP, 1, PLOT_H),
        ] {
            img.fill_rect(x, y, w, h, BLACK);
        }
        let xw = RgbImage::text_width(x_label, 2);
        img.text(LEFT + (PLOT_W - xw) / 2, TOP + PLOT_H + 40, x_label, 2, BLACK);
        let yw = RgbImage::text_width(y_label, 2);
        img.text_vertical(14, TOP + (PLOT_H + yw) / 2, y_label, 2, BLACK);
    }
}

/// Draws a scatter plot of `scatter.points` coloured by label, with axes, ticks, axis labels,
/// a title and a legend.
pub fn scatter_plot(scatter: &Scatter) -> RgbImage {
    let width = (LEFT + PLOT_W + LEGEND_W) as usize;
    let height = (TOP + PLOT_H + BOTTOM) as usize;
    let mut img = RgbImage::new(width, height, WHITE);
    let p = scatter.points;
    let axis = |c: usize| Axis::covering((0..p.rows).map(|r| p.row(r)[c] as f64), 0.05, (-1.0, 1.0));
    let frame = Frame { x: axis(0), y: axis(1) };
    // Ticks and grid lines, then the points, then the frame on top.
    frame.draw_axes(&mut img, &scatter.title, scatter.note.as_deref(), true);
    for r in 0..p.rows {
        let (x, y) = (p.row(r)[0] as f64, p.row(r)[1] as f64);
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let colour = PALETTE[scatter.labels.get(r).copied().unwrap_or(0) as usize % PALETTE.len()];
        img.disc(frame.px(x), frame.py(y), 2, colour);
    }
    frame.draw_frame(&mut img, &scatter.x_label, &scatter.y_label);
    // Legend: names too long for the large font all take the small one, and one too long
    // for that is cut; classes beyond the plot's height are counted, not drawn.
    let lx = LEFT + PLOT_W + 24;
    let room = LEGEND_W - 24 - 24;
    let rows = ((PLOT_H - 10) / 26).max(1) as usize;
    let names = scatter.class_names;
    let scale = if names.iter().all(|n| RgbImage::text_width(n, 2) <= room) {
        2
    } else {
        1
    };
    let fits = (room / (GLYPH * scale) as i64) as usize;
    for (i, name) in names
        .iter()
        .enumerate()
        .take(if names.len() > rows { rows - 1 } else { rows })
    {
        let y = TOP + 10 + i as i64 * 26;
        img.fill_rect(lx, y, 16, 16, PALETTE[i % PALETTE.len()]);
        let shown: String = match name.chars().count() > fits {
            true => name.chars().take(fits - 1).chain(['.']).collect(),
            false => name.clone(),
        };
        img.text(lx + 24, y + 8 - 4 * scale as i64, &shown, scale, BLACK);
    }
    if names.len() > rows {
        let more = format!("+{} more", names.len() - (rows - 1));
        img.text(lx, TOP + 10 + (rows - 1) as i64 * 26, &more, 2, BLACK);
    }
    img
}

/// What a density plot of codes shows.
#[derive(Clone, Debug)]
pub struct Density<'a> {
    /// n x 2.
    pub points: &'a Matrix,
    /// Circles drawn over the density, `(centre, radius)` in data units (a prior's contours).
    pub rings: &'a [([f64; 2], f64)],
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub note: Option<String>,
    /// Lines of the legend, beside the plot.
    pub legend: Vec<String>,
}

/// Cells per side of a density plot's histogram: about `0.6·√n` for `n` points (some tens of
/// points in a typical occupied cell, so that an empty one means few codes go there, not
/// chance), within these bounds.
const DENSITY_BINS: std::ops::RangeInclusive<usize> = 24..=112;
/// The density's colours, from the emptiest occupied cell to the fullest (light to dark blue).
const DENSITY_LOW: Rgb = [222, 235, 247];
const DENSITY_HIGH: Rgb = [8, 48, 107];
const RING: Rgb = [214, 39, 40];

/// Draws the density of `density.points` as a histogram of square cells (white: no point at
/// all; light to dark blue: more points, on a log scale), with the rings over it, on axes of
/// equal scale so that a circle stays round.
pub fn density_plot(density: &Density) -> RgbImage {
    let width = (LEFT + PLOT_W + LEGEND_W) as usize;
    let height = (TOP + PLOT_H + BOTTOM) as usize;
    let mut img = RgbImage::new(width, height, WHITE);
    let p = density.points;
    let extent = |c: usize| {
        let ring_ends = density
            .rings
            .iter()
            .flat_map(move |(centre, r)| [centre[c] - r, centre[c] + r]);
        (0..p.rows).map(move |row| p.row(row)[c] as f64).chain(ring_ends)
    };
    // One span for both axes: the same length per unit across and up.
    let (x, y) = (
        Axis::covering(extent(0), 0.05, (-1.0, 1.0)),
        Axis::covering(extent(1), 0.05, (-1.0, 1.0)),
    );
    let half = 0.5 * (x.hi - x.lo).max(y.hi - y.lo);
    let centred = |a: Axis| {
        let mid = 0.5 * (a.lo + a.hi);
        Axis {
            lo: mid - half,
            hi: mid + half,
        }
    };
    let frame = Frame {
        x: centred(x),
        y: centred(y),
    };
    let bins = ((0.6 * (p.rows as f64).sqrt()).round() as usize).clamp(*DENSITY_BINS.start(), *DENSITY_BINS.end());
    let mut counts = vec![0u32; bins * bins];
    for r in 0..p.rows {
        let (fx, fy) = (
            frame.x.fraction(p.row(r)[0] as f64),
            frame.y.fraction(p.row(r)[1] as f64),
        );
        if (0.0..1.0).contains(&fx) && (0.0..1.0).contains(&fy) {
            let (i, j) = ((fx * bins as f64) as usize, (fy * bins as f64) as usize);
            counts[j * bins + i] += 1;
        }
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let cell = PLOT_W as f64 / bins as f64;
    for j in 0..bins {
        for i in 0..bins {
            let n = counts[j * bins + i];
            if n == 0 {
                continue;
            }
            let t = (1.0 + n as f64).ln() / (1.0 + most).ln();
            let colour: Rgb = std::array::from_fn(|k| {
                (DENSITY_LOW[k] as f64 + t * (DENSITY_HIGH[k] as f64 - DENSITY_LOW[k] as f64)).round() as u8
            });
            let (x0, x1) = ((i as f64 * cell).round() as i64, ((i + 1) as f64 * cell).round() as i64);
            let (y0, y1) = ((j as f64 * cell).round() as i64, ((j + 1) as f64 * cell).round() as i64);
            img.fill_rect(LEFT + x0, TOP + PLOT_H - y1, x1 - x0, y1 - y0, colour);
        }
    }
    frame.draw_axes(&mut img, &density.title, density.note.as_deref(), false);
    let pixels_per_unit = PLOT_W as f64 / (2.0 * half);
    for &(centre, radius) in density.rings {
        let steps = (2.0 * std::f64::consts::PI * radius * pixels_per_unit).ceil().max(16.0) as usize * 2;
        for k in 0..steps {
            let a = k as f64 / steps as f64 * 2.0 * std::f64::consts::PI;
            let (cx, cy) = (
                frame.px(centre[0] + radius * a.cos()),
                frame.py(centre[1] + radius * a.sin()),
            );
            // Two pixels thick, clipped to the plot.
            if (LEFT..LEFT + PLOT_W).contains(&cx) && (TOP..TOP + PLOT_H).contains(&cy) {
                img.fill_rect(cx, cy, 2, 2, RING);
            }
        }
    }
    frame.draw_frame(&mut img, &density.x_label, &density.y_label);
    let lx = LEFT + PLOT_W + 24;
    for (i, line) in density.legend.iter().enumerate() {
        img.text(lx, TOP + 10 + i as i64 * 14, line, 1, if i == 0 { RING } else { BLACK });
    }
    img
}

/// One line of a line chart.
#[derive(Clone, Debug)]
pub struct Series<'a> {
    pub name: &'a str,
    /// y values at x = 1, 2, …
    pub values: &'a [f64],
    pub colour: Rgb,
}

/// A line chart as an SVG document (scales with the page, text stays sharp): one line per
/// series over x = 1..n, with ticks, axis labels, a title and a legend.
pub fn line_chart_svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    const W: f64 = 480.0;
    const H: f64 = 300.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 36.0;
    const B: f64 = 48.0;
    let y_axis = Axis::covering(series.iter().flat_map(|s| s.values.iter().copied()), 0.08, (0.0, 1.0));
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(1).max(2);
    let x_axis = Axis { lo: 1.0, hi: n as f64 };
    let x = |i: f64| L + x_axis.fraction(i) * (W - L - R);
    let y = |v: f64| T + (1.0 - y_axis.fraction(v)) * (H - T - B);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12"><title>{}</title><text x="{L}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title),
        esc(title)
    );
    for (t, label) in y_axis.ticks(5) {
        svg += &format!(
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            W - R,
            L - 6.0,
            y(t) + 4.0,
            y = y(t)
        );
    }
    // Epochs are whole: no tick between two.
    for (t, label) in x_axis.ticks(8).into_iter().filter(|(t, _)| t.fract() == 0.0) {
        svg += &format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(t),
            H - B + 16.0,
        );
    }
    svg += &format!(
        r#"<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="black"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        W - L - R,
        H - T - B,
        (L + W - R) / 2.0,
        H - 10.0,
        esc(x_label),
        (T + H - B) / 2.0,
        esc(y_label)
    );
    for (k, s) in series.iter().enumerate() {
        let colour = format!("rgb({},{},{})", s.colour[0], s.colour[1], s.colour[2]);
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i as f64 + 1.0), y(v)))
            .collect();
        svg += &format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = T + 14.0 + 16.0 * k as f64;
        svg += &format!(
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            W - R - 120.0,
            W - R - 100.0,
            W - R - 94.0,
            ly + 4.0,
            esc(s.name)
        );
    }
    svg + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(-3.2, 3.3, 10), vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(nice_ticks(0.0, 100.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(2.5), "2.5");
    }

    #[test]
    fn an_axis_covers_its_finite_values_with_room_to_spare() {
        let axis = Axis::covering([2.0, f64::NAN, 12.0, f64::INFINITY, 7.0], 0.1, (0.0, 1.0));
        assert_eq!(axis, Axis { lo: 1.0, hi: 13.0 });
        assert_eq!(axis.fraction(1.0), 0.0);
        assert_eq!(axis.fraction(7.0), 0.5);
        assert_eq!(axis.fraction(13.0), 1.0);
        let ticks: Vec<String> = axis.ticks(6).into_iter().map(|(_, label)| label).collect();
        assert_eq!(ticks, ["2", "4", "6", "8", "10", "12"]);
        // Nothing finite: the fallback span, padded alike.
        let empty = Axis::covering([f64::NAN], 0.5, (-1.0, 1.0));
        assert_eq!(empty, Axis { lo: -2.0, hi: 2.0 });
        // A single value still spans something.
        let one = Axis::covering([3.0], 0.05, (0.0, 1.0));
        assert!(one.lo < 3.0 && 3.0 < one.hi);
    }

    #[test]
    fn text_draws_glyph_pixels() {
        let mut img = RgbImage::new(40, 10, WHITE);
        img.text(0, 0, "1", 1, BLACK);
        let dark = img.pixels.chunks(3).filter(|p| p[0] == 0).count();
        // The digit 1 of the 8x8 font has a dozen or so set pixels.
        assert!((8..=20).contains(&dark), "{dark}");
    }
}

/// What a histogram shows: one or more sets of values over a shared axis, each its own
/// colour, drawn as outlines so that overlapping sets stay readable.
#[derive(Clone, Debug)]
pub struct Histogram<'a> {
    /// Each set's name (in the legend) and values.
    pub sets: &'a [(&'a str, &'a [f64])],
    pub title: String,
    pub x_label: String,
    pub note: Option<String>,
}

/// Bins of a histogram.
const HISTOGRAM_BINS: usize = 60;

/// Draws each set's histogram as the percentage of its items per bin (so sets of different sizes
/// compare), over the range all the sets' values cover (the 0.5th to the 99.5th percentile
/// of their values together, so a few outliers do not squeeze the rest into one bin).
pub fn histogram_plot(histogram: &Histogram) -> RgbImage {
    let width = (LEFT + PLOT_W + LEGEND_W) as usize;
    let height = (TOP + PLOT_H + BOTTOM) as usize;
    let mut img = RgbImage::new(width, height, WHITE);
    let mut all: Vec<f64> = histogram
        .sets
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    all.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        all.get(((all.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
    };
    let x = Axis::covering(
        [quantile(0.005), quantile(0.995)].into_iter().flatten(),
        0.02,
        (0.0, 1.0),
    );
    let width_of_bin = (x.hi - x.lo) / HISTOGRAM_BINS as f64;
    let shares: Vec<Vec<f64>> = histogram
        .sets
        .iter()
        .map(|(_, values)| {
            let mut counts = vec![0usize; HISTOGRAM_BINS];
            for v in values.iter().filter(|v| v.is_finite()) {
                let bin = ((v - x.lo) / width_of_bin).floor();
                if (0.0..HISTOGRAM_BINS as f64).contains(&bin) {
                    counts[bin as usize] += 1;
                }
            }
            let n = values.len().max(1) as f64;
            counts.iter().map(|&c| 100.0 * c as f64 / n).collect()
        })
        .collect();
    let top = shares.iter().flatten().copied().fold(0.0, f64::max);
    let frame = Frame {
        x,
        y: Axis {
            lo: 0.0,
            hi: (top * 1.08).max(1e-6),
        },
    };
    frame.draw_axes(&mut img, &histogram.title, histogram.note.as_deref(), true);
    for (s, share) in shares.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        let mut last_y = frame.py(0.0);
        for (b, &h) in share.iter().enumerate() {
            let (x0, x1) = (
                frame.px(x.lo + b as f64 * width_of_bin),
                frame.px(x.lo + (b + 1) as f64 * width_of_bin),
            );
            let y = frame.py(h);
            // The outline: a riser from the last bin's height, then this bin's top.
            img.fill_rect(x0, last_y.min(y), 2, (last_y - y).abs() + 1, colour);
            img.fill_rect(x0, y, x1 - x0 + 1, 2, colour);
            last_y = y;
        }
        let end = frame.px(x.hi);
        img.fill_rect(
            end,
            last_y.min(frame.py(0.0)),
            2,
            (frame.py(0.0) - last_y).abs() + 1,
            colour,
        );
    }
    frame.draw_frame(&mut img, &histogram.x_label, "% of items");
    let lx = LEFT + PLOT_W + 24;
    // Names too long for the legend keep their end (a path's file name).
    let fits = ((LEGEND_W - 24 - 24 - 8) / GLYPH as i64) as usize;
    for (s, (name, values)) in histogram.sets.iter().enumerate() {
        let y = TOP + 10 + s as i64 * 40;
        img.fill_rect(lx, y, 16, 16, PALETTE[s % PALETTE.len()]);
        let count = name.chars().count();
        let shown: String = match count > fits {
            true => "..".chars().chain(name.chars().skip(count + 2 - fits)).collect(),
            false => name.to_string(),
        };
        img.text(lx + 24, y, &shown, 1, BLACK);
        img.text(lx + 24, y + 12, &format!("{} items", values.len()), 1, GREY);
    }
    img
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn two_sets_are_drawn_in_their_colours_where_their_values_are() {
        let low: Vec<f64> = (0..1000).map(|i| (i % 100) as f64 / 100.0).collect();
        let high: Vec<f64> = low.iter().map(|v| v + 3.0).collect();
        let img = histogram_plot(&Histogram {
            sets: &[("low", &low), ("high", &high)],
            title: "t".into(),
            x_label: "x".into(),
            note: None,
        });
        let column_has = |x: i64, colour: Rgb| {
            (TOP..TOP + PLOT_H).any(|y| img.pixels[((y * img.width as i64 + x) * 3) as usize..][..3] == colour)
        };
        let frame_x = |v: f64| {
            let axis = Axis::covering([0.0, 3.99], 0.02, (0.0, 1.0));
            LEFT + (axis.fraction(v) * PLOT_W as f64).round() as i64
        };
        assert!(column_has(frame_x(0.5), PALETTE[0]) && !column_has(frame_x(0.5), PALETTE[1]));
        assert!(column_has(frame_x(3.5), PALETTE[1]) && !column_has(frame_x(3.5), PALETTE[0]));
        assert!(
            !column_has(frame_x(2.0), PALETTE[0]) && !column_has(frame_x(2.0), PALETTE[1]),
            "nothing between"
        );
    }
}
