//! PNG pictures of a run: learning curves and a confusion matrix, drawn on a pixel
//! buffer (no plotting dependency) and written atomically.

use std::path::Path;

use crate::output::write_atomic;
use crate::trainer::EpochMetrics;

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

/// Two panels side by side: loss (left) and accuracy (right) per epoch; blue is
/// training, orange is validation. Loss is scaled to its own maximum, accuracy to 0–1;
/// grey lines mark quarters.
pub fn learning_curves(path: &Path, history: &[EpochMetrics]) -> std::io::Result<()> {
    let (panel, margin) = (320usize, 20usize);
    let mut canvas = Canvas::new(2 * panel + 3 * margin, panel + 2 * margin);
    let max_loss = history
        .iter()
        .flat_map(|m| [m.train_loss, m.valid_loss])
        .fold(f64::MIN_POSITIVE, f64::max);
    // (panel, value in 0..1, colour)
    let series: [(usize, Value<'_>, [u8; 3]); 4] = [
        (0, Box::new(|m| m.train_loss / max_loss), BLUE),
        (0, Box::new(|m| m.valid_loss / max_loss), ORANGE),
        (1, Box::new(|m| m.train_accuracy), BLUE),
        (1, Box::new(|m| m.valid_accuracy), ORANGE),
    ];
    for p in 0..2 {
        let left = margin + p * (panel + margin);
        for q in 0..=4 {
            let y = margin + q * panel / 4;
            canvas.fill(left, y, left + panel, y + 1, GREY);
        }
        canvas.fill(left, margin, left + 1, margin + panel, GREY);
    }
    let point = |p: usize, i: usize, value: f64| -> (i64, i64) {
        let left = margin + p * (panel + margin);
        let x = left + i * (panel - 1) / history.len().saturating_sub(1).max(1);
        let y = margin as f64 + (1.0 - value.clamp(0.0, 1.0)) * (panel - 1) as f64;
        (x as i64, y as i64)
    };
    for (p, value, colour) in &series {
        for i in 1..history.len() {
            let a = point(*p, i - 1, value(&history[i - 1]));
            let b = point(*p, i, value(&history[i]));
            canvas.line(a, b, *colour);
        }
    }
    canvas.save(path)
}

/// A confusion matrix as a grid: row = true class (top to bottom), column = predicted
/// class; the darker the cell, the larger the share of its row.
pub fn confusion_matrix(path: &Path, counts: &[Vec<usize>]) -> std::io::Result<()> {
    let (cell, margin) = (32usize, 8usize);
    let n = counts.len();
    let mut canvas = Canvas::new(n * cell + 2 * margin, n * cell + 2 * margin);
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
            let (x, y) = (margin + column * cell, margin + row * cell);
            canvas.fill(x + 1, y + 1, x + cell - 1, y + cell - 1, colour);
        }
    }
    canvas.save(path)
}

/// Lines of positive values on a log₁₀ scale against their index (left to right); grey
/// lines mark each power of ten.
pub fn log_lines(path: &Path, series: &[(Vec<f64>, [u8; 3])]) -> std::io::Result<()> {
    let (width, height, margin) = (640usize, 360usize, 20usize);
    let mut canvas = Canvas::new(width + 2 * margin, height + 2 * margin);
    let logs: Vec<Vec<f64>> = series
        .iter()
        .map(|(values, _)| values.iter().map(|v| v.max(1e-30).log10()).collect())
        .collect();
    let (low, high) = logs
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (low, high) = (low.floor(), high.ceil().max(low.floor() + 1.0));
    let y_of = |v: f64| margin as f64 + (high - v) / (high - low) * (height - 1) as f64;
    for decade in low as i64..=high as i64 {
        let y = y_of(decade as f64) as usize;
        canvas.fill(margin, y, margin + width, y + 1, GREY);
    }
    for (values, (_, colour)) in logs.iter().zip(series) {
        let x_of = |i: usize| margin + i * (width - 1) / values.len().saturating_sub(1).max(1);
        for i in 1..values.len() {
            let a = (x_of(i - 1) as i64, y_of(values[i - 1]) as i64);
            let b = (x_of(i) as i64, y_of(values[i]) as i64);
            canvas.line(a, b, *colour);
        }
    }
    canvas.save(path)
}
