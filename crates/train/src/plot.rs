//! PNG pictures of a run: learning curves, confusion matrices and log-scale lines, drawn on
//! a pixel buffer with titles, axis labels, tick values and legends in the public-domain
//! 8×8 bitmap font of `font8x8` (no plotting or font-rendering dependency), written
//! atomically.

use std::path::Path;

use crate::metrics::EpochMetrics;
use crate::output::write_atomic;

/// Width and height of a character, in pixels.
const GLYPH: usize = 8;

/// The font's rows of each character (bit 0 is the leftmost pixel).
fn glyphs(text: &str) -> impl Iterator<Item = [u8; GLYPH]> + '_ {
    text.chars().map(|c| {
        let code = if c.is_ascii() && !c.is_ascii_control() {
            c as usize
        } else {
            '?' as usize
        };
        font8x8::legacy::BASIC_LEGACY[code]
    })
}

/// Width of `text` in pixels.
fn text_width(text: &str) -> usize {
    text.chars().count() * GLYPH
}

/// An RGB canvas.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.pixels[at..at + 3].copy_from_slice(&colour);
        }
    }

    fn fill(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, colour: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                self.set(x as i64, y as i64, colour);
            }
        }
    }

    /// A line two pixels thick (Bresenham).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), colour: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut error) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, colour);
            self.set(x, y + 1, colour);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * error;
            if e2 >= dy {
                error += dy;
                x += sx;
            }
            if e2 <= dx {
                error += dx;
                y += sy;
            }
        }
    }

    /// `text` with its top-left corner at (x, y), left to right; characters outside
    /// ASCII are drawn as `?`.
    fn text(&mut self, (x, y): (i64, i64), text: &str, colour: [u8; 3]) {
        for (i, glyph) in glyphs(text).enumerate() {
            for (row, bits) in glyph.iter().enumerate() {
                for column in 0..GLYPH {
                    if bits >> column & 1 == 1 {
                        self.set(x + (i * GLYPH + column) as i64, y + row as i64, colour);
                    }
                }
            }
        }
    }

    /// `text` centred on (x, y).
    fn text_centred(&mut self, (x, y): (i64, i64), text: &str, colour: [u8; 3]) {
        let half = (text_width(text) / 2) as i64;
        self.text((x - half, y - GLYPH as i64 / 2), text, colour);
    }

    /// `text` ending just left of x, vertically centred on y (tick values of a y axis).
    fn text_right_aligned(&mut self, (x, y): (i64, i64), text: &str, colour: [u8; 3]) {
        self.text(
            (x - text_width(text) as i64, y - GLYPH as i64 / 2),
            text,
            colour,
        );
    }

    /// `text` turned a quarter left (read bottom to top), centred on (x, y).
    fn text_upwards(&mut self, (x, y): (i64, i64), text: &str, colour: [u8; 3]) {
        let bottom = y + (text_width(text) / 2) as i64;
        let left = x - GLYPH as i64 / 2;
        for (i, glyph) in glyphs(text).enumerate() {
            for (row, bits) in glyph.iter().enumerate() {
                for column in 0..GLYPH {
                    if bits >> column & 1 == 1 {
                        self.set(
                            left + row as i64,
                            bottom - (i * GLYPH + column) as i64,
                            colour,
                        );
                    }
                }
            }
        }
    }

    fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
            writer
                .write_image_data(&self.pixels)
                .map_err(std::io::Error::other)?;
        }
        write_atomic(path, &bytes)
    }
}

/// One plotted quantity of an epoch.
type Value<'a> = Box<dyn Fn(&EpochMetrics) -> f64 + 'a>;

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];
const GREY: [u8; 3] = [200, 200, 200];
const BLACK: [u8; 3] = [0, 0, 0];

/// Size of a learning-curve panel, and the space around the panels for labels.
const PANEL: usize = 320;
const LEFT: usize = 72;
const GAP: usize = 88;
const TOP: usize = 40;
const BOTTOM: usize = 44;
const RIGHT: usize = 16;

/// Width and height of the learning-curves picture.
pub const LEARNING_CURVES_SIZE: (usize, usize) =
    (LEFT + 2 * PANEL + GAP + RIGHT, TOP + PANEL + BOTTOM);

/// A short tick value: three significant digits, scientific outside 0.01–9999.
fn tick(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if (0.01..1e4).contains(&value.abs()) {
        let decimals = (2 - value.abs().log10().floor() as i32).clamp(0, 4) as usize;
        format!("{value:.decimals$}")
    } else {
        format!("{value:.1e}")
    }
}

/// Up to five evenly spaced indices of `0..len` (first and last included) to label on an x axis.
fn index_ticks(len: usize) -> Vec<usize> {
    let mut ticks: Vec<usize> = (0..5).map(|k| k * len.saturating_sub(1) / 4).collect();
    ticks.dedup();
    ticks
}

/// Two panels side by side: loss (left, 0 to its largest value) and accuracy (right,
/// 0–100%) per epoch, blue for training and orange for validation, with tick values, axis
/// names and a legend.
pub fn learning_curves(path: &Path, history: &[EpochMetrics]) -> std::io::Result<()> {
    let (width, height) = LEARNING_CURVES_SIZE;
    let mut canvas = Canvas::new(width, height);
    let max_loss = history
        .iter()
        .flat_map(|m| [m.train_loss, m.valid_loss])
        .filter(|loss| loss.is_finite())
        .fold(f64::MIN_POSITIVE, f64::max);
    // (panel, value in 0..1, colour)
    let series: [(usize, Value<'_>, [u8; 3]); 4] = [
        (0, Box::new(|m| m.train_loss / max_loss), BLUE),
        (0, Box::new(|m| m.valid_loss / max_loss), ORANGE),
        (1, Box::new(|m| m.train_accuracy), BLUE),
        (1, Box::new(|m| m.valid_accuracy), ORANGE),
    ];
    let left_of = |p: usize| LEFT + p * (PANEL + GAP);
    let point = |p: usize, i: usize, value: f64| -> (i64, i64) {
        let x = left_of(p) + i * (PANEL - 1) / history.len().saturating_sub(1).max(1);
        let y = TOP as f64 + (1.0 - value.clamp(0.0, 1.0)) * (PANEL - 1) as f64;
        (x as i64, y as i64)
    };
    for (p, title) in ["loss", "accuracy"].into_iter().enumerate() {
        let left = left_of(p);
        for q in 0..=4 {
            let y = TOP + q * PANEL / 4;
            canvas.fill(left, y, left + PANEL, y + 1, GREY);
            let share = 1.0 - q as f64 / 4.0;
            let label = if p == 0 {
                tick(share * max_loss)
            } else {
                format!("{}%", 100.0 * share)
            };
            canvas.text_right_aligned((left as i64 - 4, y as i64), &label, BLACK);
        }
        canvas.fill(left, TOP, left + 1, TOP + PANEL, GREY);
        for i in index_ticks(history.len()) {
            let (x, _) = point(p, i, 0.0);
            let bottom = (TOP + PANEL) as i64;
            canvas.fill(
                x as usize,
                bottom as usize,
                x as usize + 1,
                bottom as usize + 4,
                BLACK,
            );
            let epoch = history.get(i).map_or(i + 1, |m| m.epoch);
            canvas.text_centred((x, bottom + 12), &epoch.to_string(), BLACK);
        }
        let centre = (left + PANEL / 2) as i64;
        canvas.text_centred((centre, TOP as i64 / 2), title, BLACK);
        canvas.text_centred((centre, (TOP + PANEL + 32) as i64), "epoch", BLACK);
    }
    let legend = (width - RIGHT - text_width("train  valid")) as i64;
    canvas.text((legend, 8), "train", BLUE);
    canvas.text((legend + text_width("train  ") as i64, 8), "valid", ORANGE);
    for (p, value, colour) in &series {
        for i in 1..history.len() {
            let a = point(*p, i - 1, value(&history[i - 1]));
            let b = point(*p, i, value(&history[i]));
            canvas.line(a, b, *colour);
        }
    }
    canvas.save(path)
}

/// Side of a confusion-matrix cell, in pixels.
pub const CONFUSION_CELL: usize = 40;

/// Where the grid of a confusion matrix of these classes starts: (left, top) margins,
/// which hold the axis names and the class names.
pub fn confusion_origin(class_names: &[String]) -> (usize, usize) {
    let longest = class_names.iter().map(|n| text_width(n)).max().unwrap_or(0);
    (2 * GLYPH + 8 + longest + 8, 2 * GLYPH + 8 + longest + 8)
}

/// A confusion matrix as a grid: row = true class (top to bottom), column = predicted
/// class, each cell with its count; the darker the cell, the larger the share of its row
/// (blue on the diagonal, red off it). Class names label rows and (upwards) columns.
pub fn confusion_matrix(
    path: &Path,
    counts: &[Vec<usize>],
    class_names: &[String],
) -> std::io::Result<()> {
    let cell = CONFUSION_CELL;
    let n = counts.len();
    let (left, top) = confusion_origin(class_names);
    let mut canvas = Canvas::new(left + n * cell + 8, top + n * cell + 8);
    canvas.text_centred(((left + n * cell / 2) as i64, 8), "predicted", BLACK);
    canvas.text_upwards((8, (top + n * cell / 2) as i64), "true", BLACK);
    for (i, name) in class_names.iter().enumerate().take(n) {
        let centre = (i * cell + cell / 2) as i64;
        canvas.text_right_aligned((left as i64 - 6, top as i64 + centre), name, BLACK);
        let up = top as i64 - 6 - (text_width(name) / 2) as i64;
        canvas.text_upwards((left as i64 + centre, up), name, BLACK);
    }
    for (row, line) in counts.iter().enumerate() {
        let total = line.iter().sum::<usize>().max(1) as f64;
        for (column, &count) in line.iter().enumerate() {
            let share = count as f64 / total;
            let shade = (255.0 * (1.0 - share)) as u8;
            let colour = if row == column {
                [shade, shade, 255]
            } else {
                [255, shade, shade]
            };
            let (x, y) = (left + column * cell, top + row * cell);
            canvas.fill(x + 1, y + 1, x + cell - 1, y + cell - 1, colour);
            if count > 0 {
                let ink = if share > 0.5 { [255, 255, 255] } else { BLACK };
                let centre = ((x + cell / 2) as i64, (y + cell / 2) as i64);
                canvas.text_centred(centre, &count.to_string(), ink);
            }
        }
    }
    canvas.save(path)
}

/// One line of [`log_lines`].
pub struct Series {
    /// The legend's name for it.
    pub name: String,
    /// Positive values, one per x position.
    pub values: Vec<f64>,
    /// RGB colour of the line and its legend entry.
    pub colour: [u8; 3],
}

/// Lines of positive values on a log₁₀ scale against their index (left to right), with
/// `x_label` under the x axis, `y_label` up the y axis, a label at every power of ten and
/// a legend on the right.
pub fn log_lines(
    path: &Path,
    series: &[Series],
    x_label: &str,
    y_label: &str,
) -> std::io::Result<()> {
    let (width, height) = (640usize, 360usize);
    let (left, top, bottom) = (LEFT, 24usize, BOTTOM);
    let legend_width = series
        .iter()
        .map(|s| text_width(&s.name))
        .max()
        .unwrap_or(0)
        + 24;
    let mut canvas = Canvas::new(left + width + legend_width + RIGHT, top + height + bottom);
    let logs: Vec<Vec<f64>> = series
        .iter()
        .map(|s| s.values.iter().map(|v| v.max(1e-30).log10()).collect())
        .collect();
    let (low, high) = logs
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (low, high) = if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    };
    let (low, high) = (low.floor(), high.ceil().max(low.floor() + 1.0));
    let y_of = |v: f64| top as f64 + (high - v) / (high - low) * (height - 1) as f64;
    let decades = (high - low) as i64;
    let every = (decades + 11) / 12; // at most a dozen labels
    for decade in low as i64..=high as i64 {
        let y = y_of(decade as f64) as usize;
        canvas.fill(left, y, left + width, y + 1, GREY);
        if (decade - low as i64) % every == 0 {
            canvas.text_right_aligned((left as i64 - 4, y as i64), &format!("1e{decade}"), BLACK);
        }
    }
    let points = logs.iter().map(Vec::len).max().unwrap_or(0);
    let x_of = |i: usize| left + i * (width - 1) / points.saturating_sub(1).max(1);
    for i in index_ticks(points) {
        let x = x_of(i);
        canvas.fill(x, top + height, x + 1, top + height + 4, BLACK);
        canvas.text_centred(
            (x as i64, (top + height + 12) as i64),
            &i.to_string(),
            BLACK,
        );
    }
    canvas.text_centred(
        ((left + width / 2) as i64, (top + height + 32) as i64),
        x_label,
        BLACK,
    );
    canvas.text_upwards((12, (top + height / 2) as i64), y_label, BLACK);
    for (k, (values, s)) in logs.iter().zip(series).enumerate() {
        let legend_y = (top + 8 + k * 2 * GLYPH) as i64;
        let legend_x = (left + width + 8) as i64;
        canvas.line(
            (legend_x, legend_y + 3),
            (legend_x + 10, legend_y + 3),
            s.colour,
        );
        canvas.text((legend_x + 14, legend_y), &s.name, s.colour);
        for i in 1..values.len() {
            let a = (x_of(i - 1) as i64, y_of(values[i - 1]) as i64);
            let b = (x_of(i) as i64, y_of(values[i]) as i64);
            canvas.line(a, b, s.colour);
        }
    }
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_sets_exactly_the_font_pixels() {
        let mut canvas = Canvas::new(40, 20);
        canvas.text((3, 5), "A1", BLACK);
        let inked = canvas
            .pixels
            .chunks_exact(3)
            .filter(|p| *p == BLACK)
            .count();
        let expected: u32 = ['A', '1']
            .iter()
            .flat_map(|&c| font8x8::legacy::BASIC_LEGACY[c as usize])
            .map(u8::count_ones)
            .sum();
        assert_eq!(inked as u32, expected);
        // The top row of 'A' (0x0C: pixels 2 and 3) lands at x = 5, 6 of row 5.
        let at = |x: usize, y: usize| &canvas.pixels[(y * 40 + x) * 3..][..3];
        assert_eq!(
            (at(5, 5), at(6, 5), at(4, 5)),
            (&BLACK[..], &BLACK[..], &[255u8; 3][..])
        );
    }

    #[test]
    fn upward_text_is_the_same_glyphs_turned() {
        let (mut flat, mut turned) = (Canvas::new(40, 40), Canvas::new(40, 40));
        flat.text((0, 0), "Ab", BLACK);
        turned.text_upwards((4, 20), "Ab", BLACK);
        let ink = |c: &Canvas| c.pixels.chunks_exact(3).filter(|p| *p == BLACK).count();
        assert_eq!(ink(&flat), ink(&turned));
        assert!(ink(&flat) > 0);
    }

    #[test]
    fn tick_values_are_short() {
        assert_eq!(tick(2.3456), "2.35");
        assert_eq!(tick(0.5), "0.500");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(1234.0), "1234");
        assert_eq!(tick(0.00012), "1.2e-4");
    }
}
