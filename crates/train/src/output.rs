//! Files a run leaves behind, each written whole or not at all.

use std::io::Write;
use std::path::Path;

use crate::trainer::EpochMetrics;

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

/// Per-epoch metrics as CSV with a header row.
pub fn metrics_csv(history: &[EpochMetrics]) -> String {
    let mut csv =
        String::from("epoch,train_loss,train_accuracy,valid_loss,valid_accuracy,seconds\n");
    for m in history {
        csv.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}\n",
            m.epoch, m.train_loss, m.train_accuracy, m.valid_loss, m.valid_accuracy, m.seconds
        ));
    }
    csv
}
