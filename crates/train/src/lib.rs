//! Experiment runner: recurrent sequence models trained from one TOML file per experiment,
//! on CPU (`ndarray`) or GPU (`wgpu`) by one flag, and finished runs used for inference.
//!
//! # Layers
//!
//! Each layer imports only the ones below it (`tests/layers.rs` at the workspace root fails
//! on any import that goes up or round, and on an import cycle between these modules):
//!
//! ```text
//! run, vanishing, bench   the library API (load and check, prepare, fit, report) and studies
//! listen         live recognition: a causal run hears audio in chunks, state carried
//! export         a finished run as one ONNX file
//! inference      a finished run: scores and predictions from WAV files (no training code)
//! config         the experiment's TOML: composes every layer's options, --set overrides
//! engine         the loop, optimiser step, weight average, clipping, checkpoints, peers
//! eval           an objective per target kind (loss, score, decoding), evaluation, CTC
//! optim, report  how a run optimises (options only); metrics, metrics files, plots, run folder
//! data           sources, corpus, augmentation, feature store, loader, Example, Batch
//! model, checks, backend   the network, the configuration error vocabulary, the backends
//! ```
//!
//! The data flows down the page's right side: `data` makes [`data::batch::Batch`]es,
//! `engine` asks `eval`'s objective for their loss and steps the optimiser, `report` writes
//! what came out, and `inference` reads a finished run folder with `config`, `model`, `data`
//! and `eval` alone.
//!
//! `listen` runs a finished causal run over audio as it arrives (`experiment listen`);
//! `export` writes a finished run as an ONNX model (`experiment export`).
//! `bench` and `vanishing` are the `experiment bench` and `experiment vanishing` studies,
//! built on the layers above.
//!
//! # Example
//!
//! ```no_run
//! use train::run::{Run, RunFolder, RunMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Load and check everything (ranges, labels, warm-up) before any audio is read.
//! let run = Run::load("experiments/spoken-digits-demo.toml".as_ref(), &[], None)?;
//! let folder = RunFolder::open("runs".as_ref(), &run.folder_name(0), RunMode::New)?;
//! let prepared = run.prepare()?;
//! // `()` watches nothing; a pair of closures or any `Observer` sees every step and epoch.
//! let summary = prepared.fit(&folder, None, &mut ())?;
//! println!("best epoch {}", summary.best_epoch);
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod bench;
mod checks;
pub mod config;
pub mod data;
pub mod engine;
pub mod eval;
pub mod export;
pub mod inference;
pub mod listen;
pub mod model;
pub mod optim;
pub mod report;
pub mod run;
pub mod vanishing;

pub use backend::{BackendKind, OnBackend, run_on, wgpu_adapter};
pub use config::ExperimentConfig;
pub use run::Run;
