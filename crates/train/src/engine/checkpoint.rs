//! Checkpoints: after every epoch, the model, the optimiser state, the weight average (when
//! `training.ema_decay` is set) and the metrics so far, in `epoch-NNNN/` folders that appear
//! whole (written as `*.tmp`, then renamed), plus `best.mpk`, the model (or its average)
//! with the best validation accuracy.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::Recorder;
use burn::tensor::backend::AutodiffBackend;
use models::SequenceClassifier;

use crate::model::{FileRecorder, WeightsError, load_model};
use crate::report::metrics::EpochMetrics;
use crate::report::run_dir::BEST_WEIGHTS;

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file or folder could not be written, read or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// burn's recorder could not write or read a model or optimiser state.
    #[error("{path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// What the recorder said.
        source: burn::record::RecorderError,
    },
    /// The epoch history is not valid JSON.
    #[error("{path}: {source}")]
    History {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A model in the checkpoint could not be loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// The checkpoint folder of one run.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

/// What a checkpoint restores.
pub struct Restored<B: AutodiffBackend, O> {
    /// The model after the checkpoint's epoch.
    pub model: SequenceClassifier<B>,
    /// The optimiser with its moment estimates.
    pub optimizer: O,
    /// Metrics of every epoch so far.
    pub history: Vec<EpochMetrics>,
    /// The moving average of the weights, when the checkpoint has one (`averaged.mpk`).
    pub averaged: Option<SequenceClassifier<B::InnerBackend>>,
}

impl Checkpoints {
    /// Checkpoints in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `best.mpk`: the model of the epoch with the best validation accuracy (the latest, on ties).
    pub fn best_path(&self) -> PathBuf {
        self.dir.join(BEST_WEIGHTS)
    }

    fn epoch_dir(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:04}"))
    }

    /// Saves the state after `history.last()`'s epoch; also `best.mpk` when that epoch has
    /// the best validation accuracy so far (the average's weights when there is one, since
    /// validation scores the average then).
    pub fn save<B, O>(
        &self,
        (model, averaged): (
            &SequenceClassifier<B>,
            Option<&SequenceClassifier<B::InnerBackend>>,
        ),
        optimizer: &O,
        history: &[EpochMetrics],
    ) -> Result<(), CheckpointError>
    where
        B: AutodiffBackend,
        O: Optimizer<SequenceClassifier<B>, B>,
    {
        let last = history.last().expect("a checkpoint follows an epoch");
        let final_dir = self.epoch_dir(last.epoch);
        let staging = final_dir.with_extension("tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        let recorder = FileRecorder::new();
        let failed = |path: PathBuf| move |source| CheckpointError::Record { path, source };
        model
            .clone()
            .save_file(staging.join("model"), &recorder)
            .map_err(failed(staging.join("model.mpk")))?;
        if let Some(averaged) = averaged {
            averaged
                .clone()
                .save_file(staging.join("averaged"), &recorder)
                .map_err(failed(staging.join("averaged.mpk")))?;
        }
        recorder
            .record(optimizer.to_record(), staging.join("optimizer"))
            .map_err(failed(staging.join("optimizer.mpk")))?;
        let json = serde_json::to_string_pretty(history).expect("metrics serialise");
        std::fs::write(staging.join("history.json"), json).map_err(io(&staging))?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
        }
        std::fs::rename(&staging, &final_dir).map_err(io(&final_dir))?;

        if best_model_index(history) == Some(history.len() - 1) {
            let target = self.best_path();
            let partial = self.dir.join("best.mpk.tmp");
            let scored = if averaged.is_some() {
                "averaged.mpk"
            } else {
                "model.mpk"
            };
            std::fs::copy(final_dir.join(scored), &partial).map_err(io(&partial))?;
            std::fs::rename(&partial, &target).map_err(io(&target))?;
        }
        Ok(())
    }

    /// The latest complete checkpoint, if any, loaded into `model` and `optimizer`.
    pub fn restore_latest<B, O>(
        &self,
        model: SequenceClassifier<B>,
        optimizer: O,
        device: &B::Device,
    ) -> Result<Option<Restored<B, O>>, CheckpointError>
    where
        B: AutodiffBackend,
        O: Optimizer<SequenceClassifier<B>, B>,
    {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(None);
        };
        let latest = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("epoch-")?.parse::<usize>().ok()
            })
            .max();
        let Some(epoch) = latest else {
            return Ok(None);
        };
        let dir = self.epoch_dir(epoch);
        let recorder = FileRecorder::new();
        let failed = |path: PathBuf| move |source| CheckpointError::Record { path, source };
        let averaged_path = dir.join("averaged.mpk");
        let averaged = if averaged_path.exists() {
            Some(load_model(model.valid(), &averaged_path, device)?)
        } else {
            None
        };
        let model = load_model(model, &dir.join("model.mpk"), device)?;
        let record = recorder
            .load(dir.join("optimizer"), device)
            .map_err(failed(dir.join("optimizer.mpk")))?;
        let optimizer = optimizer.load_record(record);
        let path = dir.join("history.json");
        let text = std::fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        let history = serde_json::from_str(&text)
            .map_err(|source| CheckpointError::History { path, source })?;
        Ok(Some(Restored {
            model,
            optimizer,
            history,
            averaged,
        }))
    }
}

/// Index in `history` of the epoch whose model `best.mpk` holds: the best validation
/// accuracy, the latest on ties.
pub fn best_model_index(history: &[EpochMetrics]) -> Option<usize> {
    // `max_by` returns the last of equal maxima.
    (0..history.len()).max_by(|&a, &b| {
        history[a]
            .valid_accuracy
            .total_cmp(&history[b].valid_accuracy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_epoch_history_round_trips_through_its_json_bit_for_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut value =
            || f64::from_bits(rng.random_range(0x3c00_0000_0000_0000..0x4100_0000_0000_0000));
        let history: Vec<EpochMetrics> = (1..=2000)
            .map(|epoch| EpochMetrics {
                epoch,
                train_loss: value(),
                train_accuracy: value(),
                valid_loss: value(),
                valid_accuracy: value(),
                valid_class_accuracy: vec![value(), value()],
                seconds: value(),
                valid_label_error_rate: Some(value()),
            })
            .collect();
        let json = serde_json::to_string_pretty(&history).expect("serialises");
        let parsed: Vec<EpochMetrics> = serde_json::from_str(&json).expect("parses");
        for (a, b) in history.iter().zip(&parsed) {
            let bits = |m: &EpochMetrics| {
                let mut bits = vec![m.train_loss, m.train_accuracy, m.valid_loss];
                bits.extend([m.valid_accuracy, m.seconds]);
                bits.extend(&m.valid_class_accuracy);
                bits.extend(m.valid_label_error_rate);
                bits.into_iter().map(f64::to_bits).collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b), "epoch {}", a.epoch);
        }
    }
}
