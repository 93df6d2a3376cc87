//! Files a run leaves behind, each written whole or not at all.

use std::path::Path;

use crate::report::metrics::{EpochMetrics, RunSummary};
use crate::report::plot;
use features::write_atomic;

/// Per-epoch metrics as CSV with a header row; one `valid_accuracy_<class>` column per
/// class name in `classes` (none for regression).
pub fn metrics_csv(history: &[EpochMetrics], classes: &[String]) -> String {
    let mut csv = String::from("epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,seconds");
    for class in classes {
        csv.push_str(&format!(",valid_accuracy_{class}"));
    }
    csv.push('\n');
    for m in history {
        csv.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}",
            m.epoch, m.train_loss, m.train_accuracy, m.valid_loss, m.valid_accuracy, m.seconds
        ));
        for index in 0..classes.len() {
            let value = m
                .valid_class_accuracy
                .get(index)
                .copied()
                .unwrap_or(f64::NAN);
            csv.push_str(&format!(",{value:.6}"));
        }
        csv.push('\n');
    }
    csv
}

/// A run's report files in `run_dir`: `metrics.csv` (one row per epoch, one column per class
/// in `class_names`), `metrics.json` (the whole [`RunSummary`]), `learning_curves.png`, and
/// `confusion_<split>.png` for each confusion matrix. Each is written whole or not at all.
pub fn write_run_files(
    run_dir: &Path,
    summary: &RunSummary,
    class_names: &[String],
) -> Result<(), OutputError> {
    let failed = |file: &str| {
        let path = run_dir.join(file);
        move |source| OutputError { path, source }
    };
    let csv = metrics_csv(&summary.history, class_names);
    write_atomic(&run_dir.join("metrics.csv"), csv.as_bytes()).map_err(failed("metrics.csv"))?;
    let json = serde_json::to_string(summary).expect("metrics serialise");
    write_atomic(&run_dir.join("metrics.json"), json.as_bytes()).map_err(failed("metrics.json"))?;
    plot::learning_curves(&run_dir.join("learning_curves.png"), &summary.history)
        .map_err(failed("learning_curves.png"))?;
    for (split, counts) in &summary.confusions {
        let file = format!("confusion_{split}.png");
        plot::confusion_matrix(&run_dir.join(&file), counts, class_names).map_err(failed(&file))?;
    }
    Ok(())
}

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct OutputError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}
