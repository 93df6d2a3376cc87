//! The audio task's options ([`AudioClassification`]): which corpus, which labels, which
//! features, and what they say about the pipeline, the classes and the augmented versions.

use serde::{Deserialize, Serialize};

use crate::checks::{ConfigProblem, InvalidValue};
use crate::data::augment::Augment;
pub use crate::data::cmvn::CausalCmvn;
use crate::data::sources::{
    DatasetError, KeywordTask, NoiseMix, Utterance, free_spoken_digits, keyword_spotting,
    read_manifest, speech_commands,
};

/// What an audio task's labels are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// One class per utterance (a softmax over the pooled `y_t`).
    Classes,
    /// A string per utterance, each character a class, trained with CTC.
    Sequences,
}

/// The name of the blank class of label-sequence tasks, first in their class list.
pub const BLANK_NAME: &str = "<blank>";

/// Classification of recordings (spoken digits, keywords, any label set): features →
/// recurrent stack → `y_t` → one softmax per utterance (pooled over its valid steps).
///
/// The utterances come from `manifest` (a CSV, the shorthand the digit experiments use)
/// or `corpus` (any [`CorpusSource`]); exactly one is given. The classes are `labels` when
/// given, otherwise [`AudioClassification::resolve_labels`] takes them from the corpus;
/// a run saves them in its `config.toml`, so `predict` prints the same names.
///
/// ```toml
/// [task]
/// kind = "audio_classification"
/// corpus = { kind = "speech_commands", root = "data/speech_commands_v0.02", version = 2, task = "12class" }
/// preset = "kaldi"
/// sample_rate = 16000
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioClassification {
    /// Manifest CSV (`path,label,speaker,split,…`), relative to the working directory; its
    /// paths are relative to the manifest's folder. Short for
    /// `corpus = { kind = "manifest", path = … }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<std::path::PathBuf>,
    /// Where the utterances come from, when not `manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corpus: Option<CorpusSource>,
    /// The class names in output order; utterances with other labels are skipped (and
    /// reported). Taken from the corpus when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Feature preset: `kaldi`, `librosa` or `htk`.
    pub preset: features::Preset,
    /// Rate the features are computed at (Hz); files at other rates are resampled.
    pub sample_rate: u32,
    /// `mfcc` (the default) or `log_mel` (the filterbank energies, Kaldi's fbank).
    #[serde(default)]
    pub features: FeatureKind,
    /// Lowest mel band edge in Hz, instead of the preset's (e.g. 300 for telephone speech).
    #[serde(default)]
    pub fmin: Option<f32>,
    /// Highest mel band edge in Hz, instead of the preset's; negative counts down from
    /// Nyquist (Kaldi's `--high-freq`), e.g. 3400 or −400 at 8 kHz for telephone speech.
    #[serde(default)]
    pub fmax: Option<f32>,
    /// Append Δ and ΔΔ (Kaldi's add-deltas, window 2).
    #[serde(default)]
    pub deltas: bool,
    /// Per-utterance mean and variance normalisation of the features.
    #[serde(default)]
    pub cmvn: bool,
    /// Causal normalisation instead, e.g. `{ window = 300, variance = true }`: each frame
    /// less the mean of the last `window` frames, itself included, and with `variance` over
    /// their standard deviation (`features::Cmvn::Causal`). Unlike `cmvn`, which needs the
    /// whole utterance, it can run live, so streaming models use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_cmvn: Option<CausalCmvn>,
    /// Consecutive frames joined into one model step (default 1, none joined): with 3, the
    /// model reads frames 0–2, 3–5, … as rows of three frames' values and runs at a third of
    /// the frame rate, as Sak et al.'s (2015) stacking with a reduced frame rate does
    /// ([`features::stack_frames`]). Joined after the normalisation and SpecAugment's masks;
    /// a last, partial step is completed with zeros.
    #[serde(default = "one_frame", skip_serializing_if = "is_one_frame")]
    pub stack_frames: usize,
    /// How `y_t` becomes one prediction per utterance: `mean` or `max` over valid steps, or `last`.
    #[serde(default)]
    pub pooling: models::Pooling,
    /// Folder for cached features (none when absent).
    #[serde(default)]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Splits scored once after training, besides `valid` every epoch (e.g. `["test", "real"]`).
    #[serde(default)]
    pub report_splits: Vec<String>,
    /// Stop on an unreadable file instead of skipping it with a report.
    #[serde(default)]
    pub strict: bool,
    /// Training-only augmentation (none by default).
    #[serde(default)]
    pub augment: Augment,
    /// Read the training split from a feature store on disk during training instead of
    /// holding every version of every utterance in memory (see [`StreamOptions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamOptions>,
}

/// The most frames [`AudioClassification::stack_frames`] joins into one step.
pub const MAX_STACK_FRAMES: usize = 16;

fn one_frame() -> usize {
    1
}

fn is_one_frame(frames: &usize) -> bool {
    *frames == 1
}

/// Training from disk: the training split's features, every augmented version included,
/// are written once to a sharded feature store ([`crate::data::store`]) and read back batch by
/// batch by worker threads. Memory then grows with `batch_size × num_workers ×
/// prefetch_factor`, not with the corpus. The batches are the ones the in-memory path
/// draws, in the same order, so a run (and its resumption) gives the same figures either way.
///
/// The store is named by a key over the features' configuration, the augmentation, the
/// labels and every training utterance (its file's size and modification time included):
/// a later run with the same data reuses it, and a change builds a new one beside it. The
/// validation and report splits stay in memory.
///
/// ```toml
/// [task.stream]
/// dir = "runs/feature-store"
/// num_workers = 1
/// prefetch_factor = 2
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Folder of feature stores (each in a subfolder named by its key).
    pub dir: std::path::PathBuf,
    /// Threads that read and pad batches ahead of the training loop (PyTorch's
    /// `DataLoader(num_workers=…)`).
    #[serde(default = "StreamOptions::default_num_workers")]
    pub num_workers: usize,
    /// Batches each worker keeps ready (PyTorch's `prefetch_factor`).
    #[serde(default = "StreamOptions::default_prefetch_factor")]
    pub prefetch_factor: usize,
    /// Largest shard file, in MiB.
    #[serde(default = "StreamOptions::default_shard_mb")]
    pub shard_mb: usize,
}

impl StreamOptions {
    fn default_num_workers() -> usize {
        1
    }

    fn default_prefetch_factor() -> usize {
        2
    }

    fn default_shard_mb() -> usize {
        256
    }
}

/// What [`AudioClassification`] feeds the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Cepstra (the preset's `n_mfcc`).
    #[default]
    Mfcc,
    /// Log-mel filterbank energies (the preset's `n_mels`).
    LogMel,
}

/// A corpus an [`AudioClassification`] task reads, named in its TOML.
///
/// ```toml
/// corpus = { kind = "manifest", path = "datasets/synthetic/manifest.csv" }
/// corpus = { kind = "fsdd", root = "data/free-spoken-digit-dataset" }
/// corpus = { kind = "speech_commands", root = "data/speech_commands_v0.02", version = 2, task = "35words" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CorpusSource {
    /// A manifest CSV ([`read_manifest`]).
    Manifest {
        /// The CSV, relative to the working directory.
        path: std::path::PathBuf,
    },
    /// The Free Spoken Digit Dataset ([`free_spoken_digits`]): labels `0`…`9`.
    Fsdd {
        /// The clone of its repository, or its `recordings` folder.
        root: std::path::PathBuf,
    },
    /// Google Speech Commands, split by its `validation_list.txt` and `testing_list.txt`.
    SpeechCommands {
        /// The extracted archive: one folder per word, the two lists, `_background_noise_`.
        root: std::path::PathBuf,
        /// 1 (`speech_commands_v0.01`, 30 words) or 2 (`v0.02`, 35 words).
        version: u8,
        /// `"12class"` (the default) or `"35words"`.
        #[serde(default)]
        task: SpeechCommandsTask,
    },
}

/// Which of Speech Commands' tasks a run trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpeechCommandsTask {
    /// The ten command words, `_unknown_` and `_silence_` ([`keyword_spotting`] with
    /// [`KeywordTask::twelve_class`]): the task of Warden (2018) and most papers since.
    #[default]
    #[serde(rename = "12class")]
    TwelveClass,
    /// Every word its own class ([`speech_commands`]); v2 only, which has 35.
    #[serde(rename = "35words")]
    AllWords,
}

impl CorpusSource {
    /// Lists the corpus's utterances (no audio is read, except `_background_noise_`).
    pub fn utterances(&self) -> Result<Vec<Utterance>, DatasetError> {
        match self {
            CorpusSource::Manifest { path } => read_manifest(path),
            CorpusSource::Fsdd { root } => free_spoken_digits(root),
            CorpusSource::SpeechCommands { root, task, .. } => match task {
                SpeechCommandsTask::TwelveClass => {
                    keyword_spotting(root, &KeywordTask::twelve_class())
                }
                SpeechCommandsTask::AllWords => speech_commands(root),
            },
        }
    }
}

impl AudioClassification {
    /// Delta order and window with `deltas = true` (Kaldi's add-deltas defaults).
    pub const DELTAS: (usize, usize) = (2, 2);

    /// The corpus, with the `manifest` shorthand spelled out.
    pub fn source(&self) -> CorpusSource {
        match (&self.corpus, &self.manifest) {
            (Some(corpus), _) => corpus.clone(),
            (None, Some(path)) => CorpusSource::Manifest { path: path.clone() },
            // `validate` refuses a task with neither.
            (None, None) => CorpusSource::Manifest {
                path: std::path::PathBuf::new(),
            },
        }
    }

    /// Lists the task's utterances.
    pub fn utterances(&self) -> Result<Vec<Utterance>, DatasetError> {
        self.source().utterances()
    }

    /// The class names in output order.
    ///
    /// One class per utterance: `labels` when given; for Speech Commands' 12-class task the
    /// reference's order (`_silence_`, `_unknown_`, then the command words); otherwise
    /// every label of the `train` split in sorted (byte) order, so digits are `0`…`9`.
    ///
    /// Label sequences: the blank, then `labels` (the symbols) when given, otherwise every
    /// character of the `train` split's labels, sorted.
    pub fn resolve_labels(&self, utterances: &[Utterance], objective: LabelKind) -> Vec<String> {
        fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
            let distinct: std::collections::BTreeSet<String> = names.collect();
            distinct.into_iter().collect()
        }
        let train = utterances.iter().filter(|u| u.split == "train");
        match objective {
            LabelKind::Classes => match (&self.labels, self.source()) {
                (Some(labels), _) => labels.clone(),
                (
                    None,
                    CorpusSource::SpeechCommands {
                        task: SpeechCommandsTask::TwelveClass,
                        ..
                    },
                ) => KeywordTask::twelve_class().labels(),
                (None, _) => sorted(train.map(|u| u.label.clone())),
            },
            LabelKind::Sequences => {
                let symbols = match &self.labels {
                    Some(labels) => labels.clone(),
                    None => sorted(train.flat_map(|u| u.label.chars().map(String::from))),
                };
                std::iter::once(BLANK_NAME.to_string())
                    .chain(symbols)
                    .collect()
            }
        }
    }

    /// The class names a trained run was saved with, or else those the corpus gives.
    pub fn saved_or_resolved_labels(
        &self,
        objective: LabelKind,
    ) -> Result<Vec<String>, DatasetError> {
        // Given labels need no listing of the corpus.
        let utterances = match self.labels {
            Some(_) => Vec::new(),
            None => self.utterances()?,
        };
        Ok(self.resolve_labels(&utterances, objective))
    }

    /// The feature pipeline these options describe.
    pub fn pipeline(&self) -> features::FilePipeline {
        let mut options = features::FeatureOptions::preset(self.preset);
        options.frame.sample_rate = self.sample_rate;
        if let Some(fmin) = self.fmin {
            options.mel.fmin = fmin;
        }
        if self.fmax.is_some() {
            options.mel.fmax = self.fmax;
        }
        let mut pipeline = features::FilePipeline::new(options);
        pipeline.output = match self.features {
            FeatureKind::Mfcc => features::Output::Mfcc,
            FeatureKind::LogMel => features::Output::LogMel,
        };
        pipeline.deltas = self.deltas.then_some(Self::DELTAS);
        pipeline.cmvn = match &self.causal_cmvn {
            Some(CausalCmvn {
                window, variance, ..
            }) => Some(features::Cmvn::Causal {
                window: *window,
                variance: *variance,
            }),
            None => self
                .cmvn
                .then_some(features::Cmvn::Utterance { variance: true }),
        };
        pipeline.cmvn_prior = self.causal_cmvn.as_ref().and_then(|c| c.prior.clone());
        pipeline
    }

    /// Equal column blocks of a feature row: the static features, then Δ and ΔΔ with deltas.
    pub fn feature_blocks(&self) -> usize {
        if self.deltas { Self::DELTAS.0 + 1 } else { 1 }
    }

    /// Values per frame of [`AudioClassification::pipeline`]'s output: the preset's MFCCs or mel
    /// bands, once per [`AudioClassification::feature_blocks`].
    pub fn features_per_frame(&self) -> usize {
        let options = features::FeatureOptions::preset(self.preset);
        let n = match self.features {
            FeatureKind::Mfcc => options.cepstral.n_mfcc,
            FeatureKind::LogMel => options.mel.n_mels,
        };
        n * self.feature_blocks()
    }

    /// Values per model step: [`AudioClassification::features_per_frame`] once per stacked
    /// frame ([`AudioClassification::stack_frames`]).
    pub fn model_input_size(&self) -> usize {
        self.features_per_frame() * self.stack_frames
    }

    /// Checks the corpus, the labels, the feature options and the augmentation before any
    /// file is read.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        self.validate_corpus()?;
        if self.sample_rate == 0 {
            return Err(InvalidValue::new("task.sample_rate", "must be positive").into());
        }
        if let Some(causal) = &self.causal_cmvn {
            causal.validate(self.cmvn, self.features_per_frame())?;
        }
        if !(1..=MAX_STACK_FRAMES).contains(&self.stack_frames) {
            return Err(InvalidValue::new(
                "task.stack_frames",
                format!("must be 1 to {MAX_STACK_FRAMES} frames per step"),
            )
            .into());
        }
        self.validate_augment()?;
        std::iter::once(self.pipeline())
            .chain(self.augmented_pipelines())
            .try_for_each(|pipeline| pipeline.options.validate())
            .map_err(ConfigProblem::from)
    }

    /// Exactly one corpus, distinct labels, a Speech Commands version and task that exist.
    fn validate_corpus(&self) -> Result<(), InvalidValue> {
        if self.manifest.is_some() == self.corpus.is_some() {
            return Err(InvalidValue::new(
                "task.manifest and task.corpus",
                "must be given one at a time: exactly one of them says where the utterances are",
            ));
        }
        if let Some(labels) = &self.labels {
            let distinct: std::collections::BTreeSet<_> = labels.iter().collect();
            if labels.len() < 2 || distinct.len() != labels.len() {
                return Err(InvalidValue::new(
                    "task.labels",
                    format!("must hold at least two different names, each once, got {labels:?}"),
                ));
            }
        }
        if let Some(CorpusSource::SpeechCommands { version, task, .. }) = &self.corpus {
            if !matches!(version, 1 | 2) {
                return Err(InvalidValue::new(
                    "task.corpus.version",
                    format!("must be 1 or 2 (Speech Commands v0.01 or v0.02), got {version}"),
                ));
            }
            if *version == 1 && *task == SpeechCommandsTask::AllWords {
                return Err(InvalidValue::new(
                    "task.corpus.task",
                    "\"35words\" needs version = 2 (v0.01 has 30 words)",
                ));
            }
        }
        Ok(())
    }

    /// Positive speeds, finite SNRs, a noise folder, workers and mask widths in range.
    fn validate_augment(&self) -> Result<(), InvalidValue> {
        if let Some(bad) = self
            .augment
            .speeds
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            return Err(InvalidValue::new(
                "task.augment.speeds",
                format!("must be positive factors, got {bad}"),
            ));
        }
        if let Some(bad) = self
            .augment
            .noise_snrs
            .iter()
            .chain(&self.augment.background_snrs)
            .find(|s| !s.is_finite())
        {
            return Err(InvalidValue::new(
                "task.augment.noise_snrs and background_snrs",
                format!("must be finite, got {bad} dB"),
            ));
        }
        let a = &self.augment;
        if !a.background_snrs.is_empty() && self.background_noise_folder().is_none() {
            return Err(InvalidValue::new(
                "task.augment.background_noise",
                "must name a folder of noise WAVs for background_snrs (only a Speech Commands corpus has its own)",
            ));
        }
        if let Some(stream) = &self.stream {
            for (name, value) in [
                ("num_workers", stream.num_workers),
                ("prefetch_factor", stream.prefetch_factor),
                ("shard_mb", stream.shard_mb),
            ] {
                if value == 0 {
                    return Err(InvalidValue::new(
                        format!("task.stream.{name}"),
                        "must be ≥ 1",
                    ));
                }
            }
        }
        if a.time_masks > 0 && a.time_mask_width == 0 {
            return Err(InvalidValue::new(
                "task.augment.time_mask_width",
                "must be ≥ 1 with time_masks",
            ));
        }
        if a.feature_masks > 0 {
            let columns = self.features_per_frame() / self.feature_blocks();
            if a.feature_mask_width == 0 || a.feature_mask_width > columns {
                return Err(InvalidValue::new(
                    "task.augment.feature_mask_width",
                    format!(
                        "must be in 1..={columns} (the columns of one block) with feature_masks, got {}",
                        a.feature_mask_width
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The folder of noise recordings for `augment.background_snrs`, if any.
    pub fn background_noise_folder(&self) -> Option<std::path::PathBuf> {
        match (&self.augment.background_noise, self.source()) {
            (Some(folder), _) => Some(folder.clone()),
            (None, CorpusSource::SpeechCommands { root, .. }) => {
                Some(root.join("_background_noise_"))
            }
            (None, _) => None,
        }
    }

    /// For each of `augment.background_snrs`, the utterances with a noise stretch to mix in.
    pub fn background_versions(
        &self,
        utterances: &[&Utterance],
    ) -> Result<Vec<Vec<Utterance>>, DatasetError> {
        let snrs = &self.augment.background_snrs;
        let Some(folder) = self.background_noise_folder().filter(|_| !snrs.is_empty()) else {
            return Ok(Vec::new());
        };
        let files = crate::data::sources::wav_files(&folder)?;
        if files.is_empty() {
            return Err(DatasetError::Layout(format!(
                "task.augment.background_noise: no .wav files in {}",
                folder.display()
            )));
        }
        Ok(snrs
            .iter()
            .map(|&snr_db| {
                utterances
                    .iter()
                    .map(|u| {
                        let key = format!("{}{:?}{snr_db}", u.path.display(), u.clip);
                        let hash = crate::data::example::stable_hash(key.as_bytes());
                        Utterance {
                            noise: Some(NoiseMix {
                                path: files[(hash % files.len() as u64) as usize].clone(),
                                offset: (hash >> 11) as f64 / (1u64 << 53) as f64,
                                snr_db,
                            }),
                            ..(*u).clone()
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// One pipeline per augmented version of a training utterance (see [`Augment`]).
    pub fn augmented_pipelines(&self) -> Vec<features::FilePipeline> {
        let warped = self.augment.vtln_warps.iter().map(|&warp| {
            let mut pipeline = self.pipeline();
            pipeline.options.mel.vtln = Some(features::Vtln {
                warp,
                ..features::Vtln::default()
            });
            pipeline
        });
        let sped = self.augment.speeds.iter().map(|&speed| {
            let mut pipeline = self.pipeline();
            pipeline.speed = speed;
            pipeline
        });
        let noisy = self.augment.noise_snrs.iter().map(|&snr| {
            let mut pipeline = self.pipeline();
            pipeline.noise_snr_db = Some(snr);
            pipeline
        });
        warped.chain(sped).chain(noisy).collect()
    }
}
