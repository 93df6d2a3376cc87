//! Using a finished run: its saved configuration and best weights, on any backend. This
//! depends on the run folder's format ([`crate::report::run_dir`]), the model and the data
//! layer's feature pipeline, never on the training engine.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use models::SequenceClassifier;
use serde::Serialize;

use crate::config::ExperimentConfig;
use crate::data::audio::{AudioClassification, LabelKind};
use crate::data::corpus::{load_labelled, stacked};
use crate::data::sources::{DatasetError, Utterance};
use crate::eval::ctc::{Decoding, Emitted};
use crate::eval::score::Score;
use crate::eval::{evaluate, sequence_report};
use crate::model::{WeightsError, load_model};
use crate::report::metrics::SplitReport;
use crate::report::run_dir::{CONFIG_FILE, best_weights};

/// Why a run could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The run's configuration could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The best weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The run's task does not take audio.
    #[error("run {0} is not an audio classification experiment")]
    NotAudio(String),
    /// The run saved no class names, and its corpus could not be listed to find them.
    #[error("run {run}: cannot list its corpus for the class names")]
    Labels {
        /// The run folder.
        run: String,
        /// Why the corpus could not be listed.
        source: DatasetError,
    },
    /// The model could not be run at the precision asked for.
    #[error("cannot run the model at that precision: {0}")]
    Quantize(#[from] models::QuantizeError),
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
#[derive(Clone)]
pub struct Recogniser<B: Backend> {
    /// The run's resolved configuration.
    pub config: ExperimentConfig,
    /// The task options (features, pooling).
    pub task: AudioClassification,
    /// The class names, in output order (the blank first for label sequences).
    pub labels: Vec<String>,
    /// Whether it outputs a label sequence (CTC) rather than one class.
    pub objective: LabelKind,
    /// The best checkpoint's model.
    pub model: SequenceClassifier<B>,
    /// How [`Recogniser::predict`] reads a label sequence (CTC): best path unless set.
    pub decoding: Decoding,
}

/// One file's best labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The WAV file.
    pub path: String,
    /// The `k` most probable labels, most probable first (classification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<LabelProbability>,
    /// The decoded string (label sequences).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Each label of `text` with the time span of the frames that emitted it on the best
    /// path (label sequences).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<TimedLabel>,
}

/// A decoded label and when it was said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedLabel {
    /// The class name.
    pub label: String,
    /// Start of its first frame, in seconds (to the millisecond).
    pub start: f64,
    /// End of its last frame's shift, in seconds (to the millisecond).
    pub end: f64,
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
        let config = ExperimentConfig::load(&run_dir.join(CONFIG_FILE), &[])?;
        let Some((task, objective)) = config.task.audio() else {
            return Err(InferenceError::NotAudio(run_dir.display().to_string()));
        };
        let task = task.clone();
        let labels =
            task.saved_or_resolved_labels(objective)
                .map_err(|source| InferenceError::Labels {
                    run: run_dir.display().to_string(),
                    source,
                })?;
        let input_size = task.model_input_size();
        let model = config.model.init::<B>((input_size, labels.len()), device);
        let model = load_model(model, &best_weights(run_dir), device)?;
        Ok(Self {
            config,
            task,
            labels,
            objective,
            model,
            decoding: Decoding::BestPath,
        })
    }

    /// This recogniser with its recurrent layers run at `precision` (int8 or bf16 weights;
    /// see [`models::QuantizedRecurrent`]); [`models::Precision::F32`] leaves it unchanged.
    ///
    /// # Errors
    /// [`InferenceError::Quantize`] off burn-ndarray, or for non-finite weights.
    pub fn with_precision(mut self, precision: models::Precision) -> Result<Self, InferenceError> {
        self.model = self.model.quantize(precision)?;
        Ok(self)
    }

    /// The `k` most probable labels for one WAV file.
    pub fn predict(
        &self,
        path: &Path,
        k: usize,
        device: &B::Device,
    ) -> Result<Prediction, InferenceError> {
        let features = self.task.pipeline().run(path);
        self.predict_features(path, features, k, device)
    }

    /// [`Recogniser::predict`] for decoded audio (resampled to the run's rate when it
    /// differs); `name` stands for the file in the prediction and its errors.
    pub fn predict_audio(
        &self,
        audio: features::Audio,
        name: &Path,
        k: usize,
        device: &B::Device,
    ) -> Result<Prediction, InferenceError> {
        let features = self.task.pipeline().run_audio(audio);
        self.predict_features(name, features, k, device)
    }

    fn predict_features(
        &self,
        path: &Path,
        features: Result<features::Features, features::FeatureError>,
        k: usize,
        device: &B::Device,
    ) -> Result<Prediction, InferenceError> {
        let features = features.map_err(|source| InferenceError::Features {
            path: path.to_path_buf(),
            source,
        })?;
        if features.num_frames == 0 {
            return Err(InferenceError::Features {
                path: path.to_path_buf(),
                source: features::FeatureError::ShorterThanOneFrame,
            });
        }
        let y = self.forward(features, device);
        if self.objective == LabelKind::Sequences {
            let shift = self
                .step_shift()
                .map_err(|source| InferenceError::Features {
                    path: path.to_path_buf(),
                    source,
                })?;
            let frames = y.dims()[1];
            let emitted = crate::eval::decode_batch(y, &[frames], self.decoding).remove(0);
            let labels = timed_labels(&emitted, &self.labels, (0, shift));
            return Ok(Prediction {
                path: path.display().to_string(),
                top: Vec::new(),
                text: Some(text_of(&labels)),
                labels,
            });
        }
        let logits = self.task.pooling.pool(y, None);
        let probabilities: Vec<f32> = softmax(logits, 1).into_data().iter::<f32>().collect();
        let mut ranked: Vec<(usize, f32)> = probabilities.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Prediction {
            path: path.display().to_string(),
            text: None,
            labels: Vec::new(),
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

impl<B: Backend> Recogniser<B> {
    /// Every step's softmax over the classes for decoded audio, `[steps, classes]`
    /// row-major: the whole-file forward pass that a live stream reproduces
    /// ([`crate::listen`]).
    pub fn posteriors(
        &self,
        audio: features::Audio,
        device: &B::Device,
    ) -> Result<Vec<f32>, features::FeatureError> {
        let features = self.task.pipeline().run_audio(audio)?;
        let mut values: Vec<f32> = self
            .forward(features, device)
            .into_data()
            .iter::<f32>()
            .collect();
        softmax_rows(&mut values, self.labels.len());
        Ok(values)
    }

    /// Seconds between the starts of consecutive frames.
    pub fn frame_shift(&self) -> Result<f64, features::FeatureError> {
        let options = self.task.pipeline().options;
        Ok(options.hop_length()? as f64 / options.frame.sample_rate as f64)
    }

    /// Seconds between the starts of consecutive model steps: the frame shift once per
    /// stacked frame ([`AudioClassification::stack_frames`]).
    pub fn step_shift(&self) -> Result<f64, features::FeatureError> {
        Ok(self.frame_shift()? * self.task.stack_frames as f64)
    }

    /// The per-step outputs `[1, steps, classes]` of one utterance's features (frames,
    /// joined into steps here).
    fn forward(&self, features: features::Features, device: &B::Device) -> Tensor<B, 3> {
        let features = features::stack_frames(features, self.task.stack_frames);
        let shape = [1, features.num_frames, features.dim];
        let x = Tensor::<B, 3>::from_data(TensorData::new(features.data, shape), device);
        self.model.forward(x, None)
    }
}

/// Decoded labels with their names and times: frame `f` of the decoding is frame
/// `first + f` of the stream, `shift` seconds apart.
pub fn timed_labels(
    emitted: &[Emitted],
    names: &[String],
    (first, shift): (usize, f64),
) -> Vec<TimedLabel> {
    let seconds = |frame: usize| seconds_to_ms((first + frame) as f64 * shift);
    emitted
        .iter()
        .map(|e| TimedLabel {
            label: names[e.label].clone(),
            start: seconds(e.start),
            end: seconds(e.end),
        })
        .collect()
}

/// The labels' names joined: the decoded text.
pub fn text_of(labels: &[TimedLabel]) -> String {
    labels.iter().map(|l| l.label.as_str()).collect()
}

/// The softmax of each row of `values` (`[rows, classes]` row-major), in place.
///
/// ```
/// let mut rows = [0.0f32, 0.0, 1.0, 1.0, 1.0, 1.0];
/// train::inference::softmax_rows(&mut rows, 2);
/// assert_eq!(rows, [0.5; 6]);
/// ```
pub fn softmax_rows(values: &mut [f32], classes: usize) {
    for row in values.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for x in row.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        row.iter_mut().for_each(|x| *x /= sum);
    }
}

/// Seconds rounded to the millisecond, as times are reported: frame shifts are whole
/// milliseconds or fractions of them.
pub fn seconds_to_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// A run's loss and score on one split, as `experiment eval` prints it.
#[derive(Debug, Clone)]
pub struct SplitScore {
    /// The split's name.
    pub split: String,
    /// Mean loss over its utterances.
    pub loss: f64,
    /// How many came out right.
    pub score: Score,
    /// Utterances scored.
    pub utterances: usize,
    /// Files that could not be used.
    pub skipped: usize,
    /// Label sequences (CTC) only: string accuracy per speaker and the label error rate, read
    /// by the given decoding.
    pub sequences: Option<(Decoding, SplitReport)>,
}

impl<B: Backend> Recogniser<B> {
    /// Scores the utterances of `split` among `utterances`; label sequences are also read by
    /// `decoding` for a per-speaker report.
    pub fn score_split(
        &self,
        split: &str,
        utterances: &[Utterance],
        decoding: Decoding,
        device: &B::Device,
    ) -> Result<SplitScore, DatasetError> {
        let chosen: Vec<_> = utterances.iter().filter(|u| u.split == split).collect();
        let pipeline = self.task.pipeline();
        let loaded = load_labelled(
            &chosen,
            &self.labels,
            self.objective,
            &pipeline,
            None,
            false,
        )?;
        let examples = &stacked(loaded.examples, self.task.stack_frames);
        let (loss, score) = evaluate(&self.model, examples, 64, self.task.pooling, device);
        let sequences = (self.objective == LabelKind::Sequences).then(|| {
            let report = sequence_report(&self.model, split, examples, (64, decoding), device);
            (decoding, report)
        });
        Ok(SplitScore {
            split: split.to_string(),
            loss,
            score,
            utterances: examples.len(),
            skipped: loaded.skipped.len(),
            sequences,
        })
    }
}

impl std::fmt::Display for SplitScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let error_rate = self
            .score
            .label_error_rate()
            .map(|rate| format!(", label error rate {:.1}%", 100.0 * rate))
            .unwrap_or_default();
        write!(
            f,
            "{}: accuracy {:.1}% ({} right){error_rate}, loss {:.4} ({} utterances, {} skipped)",
            self.split,
            100.0 * self.score.accuracy(),
            self.score.correct,
            self.loss,
            self.utterances,
            self.skipped
        )?;
        match &self.sequences {
            Some((Decoding::BestPath, report)) => write!(f, "\n{report}"),
            Some((Decoding::PrefixBeam { width }, report)) => {
                write!(f, "\nprefix beam search, width {width}:\n{report}")
            }
            None => Ok(()),
        }
    }
}
