//! Experiment runner: sequence classification with a softmax over the per-step outputs
//! `y_t` of the [`models`] crate, on CPU (`ndarray`) or GPU (`wgpu`) by one flag.
//!
//! The [`experiment`](../experiment/index.html) binary reads an experiment's TOML file,
//! trains, and writes the resolved configuration and per-epoch metrics beside each other.

mod averaging;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod clip;
pub mod config;
pub mod corpus;
pub mod ctc;
pub mod datasets;
pub mod inference;
pub mod loader;
pub mod metrics;
pub mod output;
pub mod peers;
pub mod plot;
pub mod run_dir;
pub mod store;
pub mod task;
pub mod trainer;
pub mod vanishing;

pub use backend::{BackendKind, OnBackend, run_on, wgpu_adapter};
pub use config::ExperimentConfig;
