//! Files a run leaves behind, each written whole or not at all.

use std::io::Write;
use std::path::Path;

use crate::metrics::EpochMetrics;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

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
