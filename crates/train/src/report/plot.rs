//! PNG pictures of a run (learning curves, confusion matrices, log-scale lines), drawn by
//! the [`plots`] crate and written atomically.

use std::path::Path;

use crate::report::metrics::EpochMetrics;
use features::write_atomic;

pub use plots::{CONFUSION_CELL, PANEL_SIZE, Series, confusion_colour};

/// Training in blue, validation in orange (matplotlib's first two colours).
pub const TRAIN_COLOUR: [u8; 3] = [31, 119, 180];
pub const VALID_COLOUR: [u8; 3] = [255, 127, 14];

fn write_png(path: &Path, png: Result<Vec<u8>, plots::PlotError>) -> std::io::Result<()> {
    write_atomic(path, &png.map_err(std::io::Error::other)?)
}

/// Two panels side by side: the loss per epoch (left, from 0) and the accuracy in percent
/// (right, 0–100), training in [`TRAIN_COLOUR`] and validation in [`VALID_COLOUR`].
pub fn learning_curves(path: &Path, history: &[EpochMetrics]) -> std::io::Result<()> {
    let series = |name: &str, colour, value: &dyn Fn(&EpochMetrics) -> f64| {
        let points = history.iter().map(|m| (m.epoch as f64, value(m))).collect();
        Series::new(name, colour, points)
    };
    let loss = plots::Panel::new(
        "loss",
        "epoch",
        "loss (mean per example)",
        vec![
            series("train", TRAIN_COLOUR, &|m| m.train_loss),
            series("valid", VALID_COLOUR, &|m| m.valid_loss),
        ],
    );
    let accuracy = plots::Panel::new(
        "accuracy",
        "epoch",
        "accuracy (%)",
        vec![
            series("train", TRAIN_COLOUR, &|m| 100.0 * m.train_accuracy),
            series("valid", VALID_COLOUR, &|m| 100.0 * m.valid_accuracy),
        ],
    )
    .with_y_scale(plots::Scale::Linear(Some((0.0, 100.0))))
    .with_legend(plots::Corner::LowerRight);
    write_png(path, plots::line_panels(&[loss, accuracy]))
}

/// A confusion matrix (row = true class, column = predicted), each cell with its count and
/// shaded by its share of the row ([`confusion_colour`]).
pub fn confusion_matrix(
    path: &Path,
    counts: &[Vec<usize>],
    class_names: &[String],
) -> std::io::Result<()> {
    write_png(path, plots::confusion_matrix(counts, class_names))
}

/// Lines of positive values on a log₁₀ scale against their index `0, 1, …`, with
/// `x_label` under the x axis, `y_label` up the y axis and a legend.
pub fn log_lines(
    path: &Path,
    title: &str,
    series: &[(String, [u8; 3], Vec<f64>)],
    x_label: &str,
    y_label: &str,
) -> std::io::Result<()> {
    let series = series
        .iter()
        .map(|(name, colour, values)| {
            let points = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, *v))
                .collect();
            Series::new(name.as_str(), *colour, points)
        })
        .collect();
    let panel =
        plots::Panel::new(title, x_label, y_label, series).with_y_scale(plots::Scale::Log10);
    write_png(path, plots::line_panels(&[panel]))
}
