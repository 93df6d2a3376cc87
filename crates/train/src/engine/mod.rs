//! The training engine: one loop, generic over the backend, that knows nothing of what it
//! trains. It draws batches (`batches`), asks the batch's objective for the loss
//! ([`crate::eval::objective`]), takes the optimiser step (`step`: peers' gradient sum,
//! [`clip`]ping), keeps the weight average (`averaging`), validates, and saves checkpoints
//! ([`checkpoint`]) after every epoch.
//!
//! ```text
//! fit::train_with ── per epoch ─▶ batches::weighted_batches ─▶ step::optimise_step ─▶ averaging::blend
//!        │                                                       │
//!        └──────── eval::validate, checkpoint::Checkpoints ◀─────┘ peers::PeerGroup (data-parallel)
//! ```

mod averaging;
mod batches;
pub mod checkpoint;
pub mod clip;
mod fit;
pub mod peers;
mod step;

use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use models::SequenceClassifier;

use crate::data::corpus::{CorpusError, TaskData};
use crate::data::store::StoreError;
use crate::optim::OptimizerConfig;
pub use crate::optim::TrainSpec;
use crate::report::metrics::{Confusion, EpochMetrics, RunSummary, SplitReport};
use checkpoint::{CheckpointError, Checkpoints};
use peers::{PeerError, Peers};

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("loss is {value} at epoch {epoch}, step {step}; stopping")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss.
        value: f64,
    },
    /// The corpus could not be loaded.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A peer of a data-parallel run went away, or the collective operations failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A training batch could not be read from the feature store.
    #[error("reading batch {step} of epoch {epoch}: {source}")]
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// What went wrong.
        #[source]
        source: StoreError,
    },
}

/// Watches a run's progress: told after every batch and every epoch. A pair of closures
/// `(on_step, on_epoch)` is one; `()` watches nothing.
pub trait Observer {
    /// After batch `step` (1-based) of `epoch` (1-based).
    fn on_step(&mut self, _epoch: usize, _step: usize) {}
    /// After each epoch, with its metrics.
    fn on_epoch(&mut self, _metrics: &EpochMetrics) {}
}

impl Observer for () {}

impl<O: Observer + ?Sized> Observer for &mut O {
    fn on_step(&mut self, epoch: usize, step: usize) {
        (**self).on_step(epoch, step)
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) {
        (**self).on_epoch(metrics)
    }
}

impl<S: FnMut(usize, usize), E: FnMut(&EpochMetrics)> Observer for (S, E) {
    fn on_step(&mut self, epoch: usize, step: usize) {
        (self.0)(epoch, step)
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) {
        (self.1)(metrics)
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct TrainOutcome<B: AutodiffBackend> {
    /// The model after the last epoch.
    pub model: SequenceClassifier<B>,
    /// One entry per epoch.
    pub history: Vec<EpochMetrics>,
    /// The epoch whose model the reports and confusions score: the best validation
    /// accuracy (the latest on ties), the model `best.mpk` holds and `eval`/`predict` load.
    pub best_epoch: usize,
    /// Accuracy on each report split, in all and per speaker, of the best epoch's model.
    pub reports: Vec<SplitReport>,
    /// Confusion matrices of `valid` and each report split (corpus tasks), of that model.
    pub confusions: Vec<Confusion>,
}

impl<B: AutodiffBackend> TrainOutcome<B> {
    /// Everything but the model: what `metrics.json` holds.
    pub fn into_summary(self) -> RunSummary {
        RunSummary {
            best_epoch: self.best_epoch,
            confusions: self.confusions,
            history: self.history,
            reports: self.reports,
        }
    }
}

/// Where a run keeps its checkpoints and whether it continues from them.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Save a checkpoint after every epoch here.
    pub checkpoints: Option<Checkpoints>,
    /// Continue from the latest checkpoint (a fresh start when there is none).
    pub resume: bool,
    /// Train as one peer of a data-parallel run ([`peers`]); alone when `None`.
    pub peers: Option<Peers>,
}

/// Trains the experiment on backend `B`, calling `on_step` after each batch and
/// `on_epoch` after each epoch.
///
/// Every epoch draws its batch order and dropout masks from seeds derived from the
/// experiment's seed and the epoch number, so a run resumed from a checkpoint ends with
/// exactly the metrics of an uninterrupted one (on ndarray).
pub fn train<B: AutodiffBackend>(
    spec: TrainSpec<'_>,
    data: &TaskData,
    device: &B::Device,
    run: &RunOptions,
    mut observer: impl Observer,
) -> Result<TrainOutcome<B>, TrainError> {
    let job = (spec, data, device, run);
    let observer = &mut observer;
    match spec.training.optimizer {
        OptimizerConfig::Adam => fit::train_with(job, || AdamConfig::new().init(), observer),
        OptimizerConfig::AdamW { weight_decay } => fit::train_with(
            job,
            || {
                AdamWConfig::new()
                    .with_weight_decay(weight_decay as f32)
                    .init()
            },
            observer,
        ),
        OptimizerConfig::Sgd { momentum, nesterov } => fit::train_with(
            job,
            || {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                });
                SgdConfig::new().with_momentum(momentum).init()
            },
            observer,
        ),
    }
}
