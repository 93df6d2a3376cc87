//! Using a finished run: its saved configuration and best checkpoint, on any backend.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use models::SequenceClassifier;
use serde::Serialize;

use crate::checkpoint::{Checkpoints, load_model};
use crate::config::{ExperimentConfig, TaskConfig};
use crate::corpus::AudioClassification;
use crate::trainer::build_model;

/// Why a run could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The run's configuration could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The run's task does not take audio.
    #[error("run {0} is not an audio classification experiment")]
    NotAudio(String),
    /// The run saved no class names, and its corpus could not be listed to find them.
    #[error("run {run}: cannot list its corpus for the class names")]
    Labels {
        /// The run folder.
        run: String,
        /// Why the corpus could not be listed.
        source: crate::datasets::DatasetError,
    },
    /// A file could not be turned into features.
    #[error("{path}: {source}")]
    Features {
        /// The file.
        path: PathBuf,
        /// Why.
        source: features::FeatureError,
    },
}

/// A trained audio classifier with its feature pipeline and class names.
pub struct Recogniser<B: Backend> {
    /// The run's resolved configuration.
    pub config: ExperimentConfig,
    /// The task options (features, pooling).
    pub task: AudioClassification,
    /// The class names, in output order.
    pub labels: Vec<String>,
    /// The best checkpoint's model.
    pub model: SequenceClassifier<B>,
}

/// One file's best labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The WAV file.
    pub path: String,
    /// The `k` most probable labels, most probable first.
    pub top: Vec<LabelProbability>,
}

/// A label and its softmax probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelProbability {
    /// The class name.
    pub label: String,
    /// Its probability.
    pub probability: f32,
}

impl<B: Backend> Recogniser<B> {
    /// Loads `run_dir/config.toml` and `run_dir/checkpoints/best.mpk`.
    pub fn load(run_dir: &Path, device: &B::Device) -> Result<Self, InferenceError> {
        let config = ExperimentConfig::load(&run_dir.join("config.toml"), &[])?;
        let TaskConfig::AudioClassification(task) = config.task.clone() else {
            return Err(InferenceError::NotAudio(run_dir.display().to_string()));
        };
        let labels = task
            .saved_or_resolved_labels()
            .map_err(|source| InferenceError::Labels {
                run: run_dir.display().to_string(),
                source,
            })?;
        let input_size = task.features_per_frame();
        let path = Checkpoints::new(run_dir.join("checkpoints")).best_path();
        let model = build_model::<B>(&config, (input_size, labels.len()), device);
        let model = load_model(model, &path, device)?;
        Ok(Self {
            config,
            task,
            labels,
            model,
        })
    }

    /// The `k` most probable labels for one WAV file.
    pub fn predict(
        &self,
        path: &Path,
        k: usize,
        device: &B::Device,
    ) -> Result<Prediction, InferenceError> {
        let features =
            self.task
                .pipeline()
                .run(path)
                .map_err(|source| InferenceError::Features {
                    path: path.to_path_buf(),
                    source,
                })?;
        if features.num_frames == 0 {
            return Err(InferenceError::Features {
                path: path.to_path_buf(),
                source: features::FeatureError::ShorterThanOneFrame,
            });
        }
        let shape = [1, features.num_frames, features.dim];
        let x = Tensor::<B, 3>::from_data(TensorData::new(features.data, shape), device);
        let y = self.model.forward(x, None);
        let logits = self.task.pooling.pool(y, None);
        let probabilities: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
        let mut ranked: Vec<(usize, f32)> = probabilities.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Prediction {
            path: path.display().to_string(),
            top: ranked
                .into_iter()
                .take(k)
                .map(|(class, probability)| LabelProbability {
                    label: self.labels[class].clone(),
                    probability,
                })
                .collect(),
        })
    }
}
