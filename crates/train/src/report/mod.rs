//! Reporting: what a run leaves in its folder. Plain data and files; no backend, no data
//! loading.
//!
//! - [`metrics`]: per-epoch metrics, the run summary (`metrics.json`), per-speaker reports
//!   with Wilson intervals.
//! - [`files`]: `metrics.csv`, `metrics.json` and the pictures, each written whole.
//! - [`plot`]: learning curves and confusion matrices as PNG.
//! - [`run_dir`]: the run folder, its lock, and where a finished run keeps each file.

pub mod files;
pub mod metrics;
pub mod plot;
pub mod run_dir;
