//! The data as the training loop sees it ([`TaskData`]): a generated task, or a fixed corpus
//! of utterances with the audio classification task's configuration (which corpus, which
//! labels), loading and caching its features per split, training augmentation, and padding
//! examples into batches.

use std::collections::HashMap;
use std::sync::Arc;

use models::Pooling;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigProblem, DataSource, ExperimentConfig, InvalidValue};
use crate::datasets::{
    DatasetError, Example, FeatureCache, KeywordTask, Loaded, NoiseMix, Utterance,
    free_spoken_digits, keyword_spotting, load_examples, read_manifest, speech_commands,
};
use crate::store::{FeatureStore, StoreError, StoreWriter, StoredExample};
use crate::task::{Batch, SequenceTask, Targets};

/// Why a corpus could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The manifest or a file in it could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// A split the experiment needs has no usable utterances.
    #[error("split {0:?} has no usable utterances")]
    EmptySplit(String),
    /// The training split's feature store could not be written or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The data of an experiment, ready for the loop.
#[derive(Debug)]
pub enum TaskData {
    /// Fresh sequences every batch, and one fixed validation batch.
    Generated {
        /// The generator.
        task: Box<dyn SequenceTask>,
        /// Drawn once from `seed + 1`.
        validation: Batch,
    },
    /// A fixed corpus, split by speaker.
    Corpus(Corpus),
}

impl TaskData {
    /// Generates or loads the data an experiment describes.
    pub fn prepare(config: &ExperimentConfig) -> Result<Self, CorpusError> {
        match config.task.source() {
            DataSource::Generated(task) => Ok(TaskData::Generated {
                validation: task.sample(
                    &mut StdRng::seed_from_u64(config.seed + 1),
                    config.training.validation_size,
                ),
                task: task.boxed(),
            }),
            DataSource::Corpus(task, objective) => {
                load_corpus(task, objective).map(TaskData::Corpus)
            }
        }
    }

    /// Input width and number of classes.
    pub fn sizes(&self) -> (usize, usize) {
        match self {
            TaskData::Generated { task, .. } => task.sizes(),
            TaskData::Corpus(corpus) => (corpus.train.dim(), corpus.labels.len()),
        }
    }

    /// The class names, in output order (none for regression).
    pub fn class_names(&self) -> Vec<String> {
        match self {
            TaskData::Generated { task, .. } => task.class_names(),
            TaskData::Corpus(corpus) => corpus.labels.clone(),
        }
    }

    /// Batches per epoch.
    pub fn steps_per_epoch(&self, config: &ExperimentConfig) -> usize {
        match self {
            TaskData::Generated { .. } => config.training.steps_per_epoch,
            TaskData::Corpus(corpus) => corpus.train.len().div_ceil(config.training.batch_size),
        }
    }

    /// How `y_t` becomes one prediction per sequence (the last step for generated tasks).
    pub fn pooling(&self) -> Pooling {
        match self {
            TaskData::Generated { .. } => Pooling::Last,
            TaskData::Corpus(corpus) => corpus.pooling,
        }
    }
}

/// A corpus's examples by split.
#[derive(Debug)]
pub struct Corpus {
    /// The class names, in output order (for label sequences, the blank first).
    pub labels: Vec<String>,
    /// Whether examples are labelled with sequences (CTC) rather than one class.
    pub sequences: bool,
    /// Training examples, in memory or in a feature store on disk.
    pub train: TrainSet,
    /// Scored after every epoch.
    pub valid: Vec<Example>,
    /// Scored once after training, by split name.
    pub reports: Vec<(String, Vec<Example>)>,
    /// Files that could not be used, with why.
    pub skipped: Vec<(std::path::PathBuf, String)>,
    /// How `y_t` is pooled.
    pub pooling: Pooling,
    /// Training augmentation; its SpecAugment masks are applied as batches are drawn.
    pub augment: Augment,
    /// Equal column blocks of a feature row (3 with Δ and ΔΔ), for the frequency masks.
    pub blocks: usize,
}

/// The training examples with every augmented version of each.
#[derive(Debug)]
pub enum TrainSet {
    /// Every version's features in memory.
    InMemory(Vec<Example>),
    /// Features in a sharded store on disk, read as batches are drawn ([`StreamOptions`]).
    Stored(StoredTrainSet),
}

/// A training split in a [`FeatureStore`], and how its batches are read.
#[derive(Debug, Clone)]
pub struct StoredTrainSet {
    /// The store (its examples are the training examples).
    pub store: Arc<FeatureStore>,
    /// Threads reading batches ahead of the training loop.
    pub num_workers: usize,
    /// Batches each of them keeps ready.
    pub prefetch_factor: usize,
}

impl TrainSet {
    /// Number of training examples (utterances, not versions).
    pub fn len(&self) -> usize {
        match self {
            TrainSet::InMemory(examples) => examples.len(),
            TrainSet::Stored(stored) => stored.store.examples().len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Versions of `example`, the original included.
    pub fn versions(&self, example: usize) -> usize {
        match self {
            TrainSet::InMemory(examples) => examples[example].augmented.len() + 1,
            TrainSet::Stored(stored) => stored.store.examples()[example].versions.len(),
        }
    }

    /// Frames of version `version` of `example` (0 the original).
    pub fn frames(&self, example: usize, version: usize) -> usize {
        match self {
            TrainSet::InMemory(examples) => examples[example].version_features(version).num_frames,
            TrainSet::Stored(stored) => {
                let store = &stored.store;
                store.entries()[store.examples()[example].versions[version]].frames as usize
            }
        }
    }

    /// Features per frame.
    pub fn dim(&self) -> usize {
        match self {
            TrainSet::InMemory(examples) => examples.first().map_or(0, |e| e.features.dim),
            TrainSet::Stored(stored) => stored.store.dim(),
        }
    }

    /// The examples, when they are in memory.
    pub fn in_memory(&self) -> Option<&[Example]> {
        match self {
            TrainSet::InMemory(examples) => Some(examples),
            TrainSet::Stored(_) => None,
        }
    }
}

impl Corpus {
    /// What the task's `labels` field holds for these classes, as a run saves it: the
    /// classes, or for label sequences the symbols (the blank is implied).
    pub fn labels_setting(&self) -> Vec<String> {
        self.labels[usize::from(self.sequences)..].to_vec()
    }
}

/// Loads the corpus `task` describes: every split's features (cached when `cache_dir` is
/// set) and the augmented versions of the training utterances.
pub fn load_corpus(
    task: &AudioClassification,
    objective: Objective,
) -> Result<Corpus, CorpusError> {
    let utterances = task.utterances()?;
    let names = task.resolve_labels(&utterances, objective);
    let cache = task.cache_dir.as_ref().map(FeatureCache::new);
    let loader = SplitLoader {
        task,
        names: &names,
        objective,
        pipeline: task.pipeline(),
        cache: cache.as_ref(),
    };
    let mut skipped = Vec::new();
    let split =
        |name: &str| -> Vec<&Utterance> { utterances.iter().filter(|u| u.split == name).collect() };
    let chosen = split("train");
    let train = match &task.stream {
        None => {
            let loaded = loader.with_versions(&chosen)?;
            skipped.extend(loaded.skipped);
            TrainSet::InMemory(loaded.examples)
        }
        Some(stream) => {
            let store = loader.stored(&chosen, stream)?;
            skipped.extend(store.skipped().iter().cloned());
            TrainSet::Stored(StoredTrainSet {
                store: Arc::new(store),
                num_workers: stream.num_workers,
                prefetch_factor: stream.prefetch_factor,
            })
        }
    };
    if train.is_empty() {
        return Err(CorpusError::EmptySplit("train".into()));
    }
    let mut load = |name: &str| -> Result<Vec<Example>, CorpusError> {
        let loaded = loader.load(&split(name), &loader.pipeline)?;
        skipped.extend(loaded.skipped);
        if loaded.examples.is_empty() {
            return Err(CorpusError::EmptySplit(name.to_string()));
        }
        Ok(loaded.examples)
    };
    let valid = load("valid")?;
    let reports = task
        .report_splits
        .iter()
        .map(|name| load(name).map(|examples| (name.clone(), examples)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Corpus {
        labels: names,
        sequences: objective == Objective::Sequences,
        train,
        valid,
        reports,
        skipped,
        pooling: task.pooling,
        augment: task.augment.clone(),
        blocks: task.feature_blocks(),
    })
}

/// Training utterances stored this many at a time: their versions' features are in memory
/// together while they are written.
const STORE_CHUNK: usize = 512;

/// Loads utterances of one corpus as examples labelled for its task.
struct SplitLoader<'a> {
    task: &'a AudioClassification,
    names: &'a [String],
    objective: Objective,
    pipeline: features::FilePipeline,
    cache: Option<&'a FeatureCache>,
}

impl SplitLoader<'_> {
    fn load(
        &self,
        chosen: &[&Utterance],
        pipeline: &features::FilePipeline,
    ) -> Result<Loaded, DatasetError> {
        load_labelled(
            chosen,
            self.names,
            self.objective,
            pipeline,
            self.cache,
            self.task.strict,
        )
    }

    /// `chosen` with the augmented versions of each (see [`Augment`]).
    fn with_versions(&self, chosen: &[&Utterance]) -> Result<Loaded, DatasetError> {
        let mut loaded = self.load(chosen, &self.pipeline)?;
        // Each augmented version joins its original: same file, same stretch of it.
        let mut add_versions = |versions: Loaded| {
            loaded.skipped.extend(versions.skipped);
            let versions: HashMap<_, _> = versions
                .examples
                .into_iter()
                .map(|e| ((e.path, format!("{:?}", e.clip)), e.features))
                .collect();
            for example in &mut loaded.examples {
                let key = (example.path.clone(), format!("{:?}", example.clip));
                example.augmented.extend(versions.get(&key).cloned());
            }
        };
        for augmented in self.task.augmented_pipelines() {
            add_versions(self.load(chosen, &augmented)?);
        }
        for noisy in self.task.background_versions(chosen)? {
            let refs: Vec<&Utterance> = noisy.iter().collect();
            add_versions(self.load(&refs, &self.pipeline)?);
        }
        Ok(loaded)
    }

    /// The feature store of `chosen` under `stream.dir`: opened when one with the same key
    /// is there, built otherwise, [`STORE_CHUNK`] utterances at a time.
    fn stored(
        &self,
        chosen: &[&Utterance],
        stream: &StreamOptions,
    ) -> Result<FeatureStore, CorpusError> {
        let key = format!("{:016x}", self.store_key(chosen));
        let dir = stream.dir.join(&key);
        match FeatureStore::open(&dir, &key) {
            Ok(Some(store)) => return Ok(store),
            // Missing, or damaged: (re)built below.
            Ok(None) | Err(StoreError::Damaged { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let shard_bytes = stream.shard_mb as u64 * (1 << 20);
        let mut writer = StoreWriter::create(&dir, &key, shard_bytes)?;
        // The store is the training split's cache: one .npy per version would be the
        // millions of small files it replaces.
        let uncached = SplitLoader {
            pipeline: self.pipeline.clone(),
            cache: None,
            ..*self
        };
        let (mut examples, mut skipped) = (Vec::new(), Vec::new());
        for part in chosen.chunks(STORE_CHUNK) {
            let loaded = uncached.with_versions(part)?;
            skipped.extend(loaded.skipped);
            for example in loaded.examples {
                let versions = std::iter::once(&example.features)
                    .chain(&example.augmented)
                    .map(|features| writer.append(features))
                    .collect::<Result<Vec<_>, _>>()?;
                examples.push(StoredExample {
                    label: example.label,
                    sequence: example.sequence,
                    path: example.path,
                    speaker: example.speaker,
                    clip: example.clip,
                    versions,
                });
            }
        }
        Ok(writer.finish(examples, skipped)?)
    }

    /// A key over everything that decides a store's contents: the feature pipelines, the
    /// augmentation, the labels, and each utterance (file, label, speaker, stretch, and the
    /// file's size and modification time).
    fn store_key(&self, chosen: &[&Utterance]) -> u64 {
        let task = self.task;
        let mut text = format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{}",
            self.pipeline,
            task.augmented_pipelines(),
            task.augment.background_snrs,
            task.background_noise_folder(),
            self.names,
            self.objective,
            task.strict,
        );
        for u in chosen {
            let stamp = std::fs::metadata(&u.path)
                .map(|m| format!("{}{:?}", m.len(), m.modified().ok()))
                .unwrap_or_default();
            text.push_str(&format!("\n{u:?}{stamp}"));
        }
        crate::datasets::stable_hash(text.as_bytes())
    }
}

/// Loads `chosen` as [`load_examples`] does, labelled by class `names` for `objective`:
/// one class each, or the sequence of their label's characters (`names[0]` the blank).
pub fn load_labelled(
    chosen: &[&Utterance],
    names: &[String],
    objective: Objective,
    pipeline: &features::FilePipeline,
    cache: Option<&FeatureCache>,
    strict: bool,
) -> Result<Loaded, DatasetError> {
    if objective == Objective::Classes {
        return load_examples(chosen, names, pipeline, cache, strict);
    }
    // Every whole label string is "known" while loading; its characters are checked
    // against the symbols afterwards.
    let strings: Vec<String> = chosen
        .iter()
        .map(|u| u.label.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let loaded = load_examples(chosen, &strings, pipeline, cache, strict)?;
    Ok(to_sequences(loaded, &strings, names))
}

/// Turns examples labelled with whole strings (indices into `strings`) into examples
/// labelled with the sequence of their characters' classes: `names[0]` is the blank, the
/// others the symbols. A label with another character, or with more characters than its
/// utterance has frames, is skipped with the reason.
fn to_sequences(mut loaded: Loaded, strings: &[String], names: &[String]) -> Loaded {
    let mut kept = Vec::with_capacity(loaded.examples.len());
    for mut example in loaded.examples {
        let text = &strings[example.label];
        let sequence: Option<Vec<usize>> = text
            .chars()
            .map(|c| {
                names
                    .iter()
                    .skip(1)
                    .position(|n| *n == c.to_string())
                    .map(|i| i + 1)
            })
            .collect();
        match sequence {
            None => loaded.skipped.push((
                example.path,
                format!(
                    "label {text:?} has a character that is not one of {:?}",
                    &names[1..]
                ),
            )),
            Some(sequence) if sequence.len() > example.features.num_frames => {
                loaded.skipped.push((
                    example.path,
                    format!(
                        "{} frames cannot hold the {} labels of {text:?}",
                        example.features.num_frames,
                        sequence.len()
                    ),
                ))
            }
            Some(sequence) => {
                example.label = 0;
                example.sequence = Some(sequence);
                kept.push(example);
            }
        }
    }
    loaded.examples = kept;
    loaded
}

/// What an audio task's labels are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
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

/// Training from disk: the training split's features, every augmented version included,
/// are written once to a sharded feature store ([`crate::store`]) and read back batch by
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

/// Extra versions of every training utterance. Each epoch trains on one version of each
/// utterance, drawn at random with the original among them; evaluation splits are never
/// augmented. The versions are computed once (and cached with the features).
///
/// SpecAugment's masks are drawn afresh for each utterance every epoch, on the version drawn.
///
/// ```toml
/// [task.augment]
/// vtln_warps = [0.9, 0.95, 1.05, 1.1]
/// speeds = [0.9, 1.1]
/// background_snrs = [10.0, 5.0]
/// time_masks = 2
/// time_mask_width = 10
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// VTLP (Jaitly & Hinton 2013): one version per factor with the mel filterbank warped
    /// by it, as Kaldi's `--vtln-warp` does ([`features::Vtln`]); 0.9–1.1 is usual.
    #[serde(default)]
    pub vtln_warps: Vec<f32>,
    /// Speed perturbation (Ko et al. 2015; Kaldi's recipes use 0.9 and 1.1): one version per
    /// factor, resampled so that it plays that many times faster, pitch included.
    #[serde(default)]
    pub speeds: Vec<f32>,
    /// Additive white noise: one version per signal-to-noise ratio in dB (e.g. 20 and 10).
    #[serde(default)]
    pub noise_snrs: Vec<f32>,
    /// SpecAugment (Park et al. 2019) time masks per utterance: each sets a run of up to
    /// `time_mask_width` frames (its width uniform in 0..=width) to zero, the mean after CMVN.
    #[serde(default)]
    pub time_masks: usize,
    /// Widest time mask, in frames.
    #[serde(default)]
    pub time_mask_width: usize,
    /// SpecAugment frequency masks per utterance: each zeroes a run of up to
    /// `feature_mask_width` feature columns, the same columns in the Δ and ΔΔ blocks.
    #[serde(default)]
    pub feature_masks: usize,
    /// Widest feature mask, in columns of the static block.
    #[serde(default)]
    pub feature_mask_width: usize,
    /// Background noise from recordings: one version per signal-to-noise ratio in dB, each
    /// with a stretch of one of the `background_noise` files mixed in (file and start chosen
    /// by a hash of the utterance and the ratio, so a run always gets the same mixes).
    #[serde(default)]
    pub background_snrs: Vec<f32>,
    /// The folder of noise WAVs for `background_snrs`; for Speech Commands, its
    /// `_background_noise_` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_noise: Option<std::path::PathBuf>,
}

impl Augment {
    /// Applies the SpecAugment masks to `features`, whose columns are `blocks` equal blocks
    /// (1, or 3 with Δ and ΔΔ). Draws nothing from `rng` when there are no masks.
    pub fn mask(&self, features: &mut features::Features, blocks: usize, rng: &mut impl rand::Rng) {
        self.draw_masks(features.num_frames, features.dim, blocks, rng)
            .apply(features);
    }

    /// Draws the SpecAugment masks for a `[frames, dim]` matrix of `blocks` column blocks,
    /// as [`Augment::mask`] would, without the matrix.
    pub fn draw_masks(
        &self,
        frames: usize,
        dim: usize,
        blocks: usize,
        rng: &mut impl rand::Rng,
    ) -> Masks {
        let mut masks = Masks {
            blocks,
            block: dim / blocks.max(1),
            ..Masks::default()
        };
        for _ in 0..self.time_masks {
            let width = rng.random_range(0..=self.time_mask_width.min(frames));
            let start = rng.random_range(0..=frames - width);
            masks.time.push((start, width));
        }
        for _ in 0..self.feature_masks {
            let width = rng.random_range(0..=self.feature_mask_width.min(masks.block));
            let start = rng.random_range(0..=masks.block - width);
            masks.feature.push((start, width));
        }
        masks
    }
}

/// SpecAugment masks drawn for one matrix ([`Augment::draw_masks`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Masks {
    /// (first frame, frames) of each time mask.
    time: Vec<(usize, usize)>,
    /// (first column within a block, columns) of each feature mask.
    feature: Vec<(usize, usize)>,
    blocks: usize,
    block: usize,
}

impl Masks {
    /// Zeroes the masked frames and columns of `features`.
    pub fn apply(&self, features: &mut features::Features) {
        let dim = features.dim;
        for &(start, width) in &self.time {
            features.data[start * dim..(start + width) * dim].fill(0.0);
        }
        for &(start, width) in &self.feature {
            for row in features.data.chunks_exact_mut(dim) {
                for b in 0..self.blocks {
                    row[b * self.block + start..b * self.block + start + width].fill(0.0);
                }
            }
        }
    }
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
    pub fn resolve_labels(&self, utterances: &[Utterance], objective: Objective) -> Vec<String> {
        fn sorted(names: impl Iterator<Item = String>) -> Vec<String> {
            let distinct: std::collections::BTreeSet<String> = names.collect();
            distinct.into_iter().collect()
        }
        let train = utterances.iter().filter(|u| u.split == "train");
        match objective {
            Objective::Classes => match (&self.labels, self.source()) {
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
            Objective::Sequences => {
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
        objective: Objective,
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
        pipeline.cmvn = self
            .cmvn
            .then_some(features::Cmvn::Utterance { variance: true });
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

    /// Checks the feature options and the augmentation before any file is read.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        if self.manifest.is_some() == self.corpus.is_some() {
            return Err(InvalidValue::new(
                "task.manifest and task.corpus",
                "must be given one at a time: exactly one of them says where the utterances are",
            )
            .into());
        }
        if let Some(labels) = &self.labels {
            let distinct: std::collections::BTreeSet<_> = labels.iter().collect();
            if labels.len() < 2 || distinct.len() != labels.len() {
                return Err(InvalidValue::new(
                    "task.labels",
                    format!("must hold at least two different names, each once, got {labels:?}"),
                )
                .into());
            }
        }
        if let Some(CorpusSource::SpeechCommands { version, task, .. }) = &self.corpus {
            if !matches!(version, 1 | 2) {
                return Err(InvalidValue::new(
                    "task.corpus.version",
                    format!("must be 1 or 2 (Speech Commands v0.01 or v0.02), got {version}"),
                )
                .into());
            }
            if *version == 1 && *task == SpeechCommandsTask::AllWords {
                return Err(InvalidValue::new(
                    "task.corpus.task",
                    "\"35words\" needs version = 2 (v0.01 has 30 words)",
                )
                .into());
            }
        }
        if self.sample_rate == 0 {
            return Err(InvalidValue::new("task.sample_rate", "must be positive").into());
        }
        if let Some(bad) = self
            .augment
            .speeds
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            return Err(InvalidValue::new(
                "task.augment.speeds",
                format!("must be positive factors, got {bad}"),
            )
            .into());
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
            )
            .into());
        }
        let a = &self.augment;
        if !a.background_snrs.is_empty() && self.background_noise_folder().is_none() {
            return Err(InvalidValue::new(
                "task.augment.background_noise",
                "must name a folder of noise WAVs for background_snrs (only a Speech Commands corpus has its own)",
            )
            .into());
        }
        if let Some(stream) = &self.stream {
            for (name, value) in [
                ("num_workers", stream.num_workers),
                ("prefetch_factor", stream.prefetch_factor),
                ("shard_mb", stream.shard_mb),
            ] {
                if value == 0 {
                    return Err(
                        InvalidValue::new(format!("task.stream.{name}"), "must be ≥ 1").into(),
                    );
                }
            }
        }
        if a.time_masks > 0 && a.time_mask_width == 0 {
            return Err(InvalidValue::new(
                "task.augment.time_mask_width",
                "must be ≥ 1 with time_masks",
            )
            .into());
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
                )
                .into());
            }
        }
        std::iter::once(self.pipeline())
            .chain(self.augmented_pipelines())
            .try_for_each(|pipeline| pipeline.options.validate())
            .map_err(ConfigProblem::from)
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
    fn background_versions(
        &self,
        utterances: &[&Utterance],
    ) -> Result<Vec<Vec<Utterance>>, DatasetError> {
        let snrs = &self.augment.background_snrs;
        let Some(folder) = self.background_noise_folder().filter(|_| !snrs.is_empty()) else {
            return Ok(Vec::new());
        };
        let files = crate::datasets::wav_files(&folder)?;
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
                        let hash = crate::datasets::stable_hash(key.as_bytes());
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

/// Pads examples into one batch (zeros past each sequence's length).
pub fn pad_batch(examples: &[&crate::datasets::Example]) -> Batch {
    let dim = examples.first().map_or(0, |e| e.features.dim);
    let time = examples
        .iter()
        .map(|e| e.features.num_frames)
        .max()
        .unwrap_or(0);
    let mut inputs = vec![0.0; examples.len() * time * dim];
    for (b, example) in examples.iter().enumerate() {
        let start = b * time * dim;
        inputs[start..start + example.features.data.len()].copy_from_slice(&example.features.data);
    }
    Batch {
        inputs,
        shape: [examples.len(), time, dim],
        lengths: examples.iter().map(|e| e.features.num_frames).collect(),
        targets: match examples.iter().map(|e| e.sequence.clone()).collect() {
            Some(sequences) => Targets::Sequences(sequences),
            None => Targets::Classes(examples.iter().map(|e| e.label as i64).collect()),
        },
    }
}
