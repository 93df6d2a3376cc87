//! The data as the training loop sees it ([`TaskData`]): a generated task, or a fixed corpus
//! of utterances loaded by split, with every augmented version of the training utterances,
//! in memory or in a feature store on disk.

use std::collections::HashMap;
use std::sync::Arc;

use models::Pooling;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::DataSource;
use crate::data::audio::{AudioClassification, LabelKind, StreamOptions};
use crate::data::augment::Augment;
use crate::data::batch::Batch;
use crate::data::example::{Example, FeatureCache, Loaded, load_examples, stable_hash};
use crate::data::generated::SequenceTask;
use crate::data::sources::{DatasetError, Utterance};
use crate::data::store::{FeatureStore, StoreError, StoreWriter, StoredExample};

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
    /// Generates or loads the data `source` describes: for a generated task, a validation
    /// batch of `validation_size` sequences drawn from `seed + 1`.
    pub fn prepare(
        source: DataSource<'_>,
        seed: u64,
        validation_size: usize,
    ) -> Result<Self, CorpusError> {
        match source {
            DataSource::Generated(task) => Ok(TaskData::Generated {
                validation: task.sample(&mut StdRng::seed_from_u64(seed + 1), validation_size),
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
            TaskData::Corpus(corpus) => (
                corpus.train.dim() * corpus.stack_frames,
                corpus.labels.len(),
            ),
        }
    }

    /// The class names, in output order (none for regression).
    pub fn class_names(&self) -> Vec<String> {
        match self {
            TaskData::Generated { task, .. } => task.class_names(),
            TaskData::Corpus(corpus) => corpus.labels.clone(),
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
    /// Frames joined into one model step ([`AudioClassification::stack_frames`]): `valid`
    /// and `reports` hold them joined already, the training set frame by frame (its masks
    /// are drawn over frames), joined as batches are drawn.
    pub stack_frames: usize,
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
    objective: LabelKind,
) -> Result<Corpus, CorpusError> {
    load_listed_corpus(task, objective, task.utterances()?)
}

/// [`load_corpus`] over `utterances`, the task's listing made already.
pub fn load_listed_corpus(
    task: &AudioClassification,
    objective: LabelKind,
    utterances: Vec<Utterance>,
) -> Result<Corpus, CorpusError> {
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
        Ok(stacked(loaded.examples, task.stack_frames))
    };
    let valid = load("valid")?;
    let reports = task
        .report_splits
        .iter()
        .map(|name| load(name).map(|examples| (name.clone(), examples)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Corpus {
        labels: names,
        sequences: objective == LabelKind::Sequences,
        train,
        valid,
        reports,
        skipped,
        pooling: task.pooling,
        augment: task.augment.clone(),
        blocks: task.feature_blocks(),
        stack_frames: task.stack_frames,
    })
}

/// `examples` with every `n` frames joined into one step ([`features::stack_frames`]).
pub fn stacked(mut examples: Vec<Example>, n: usize) -> Vec<Example> {
    for example in &mut examples {
        let frames = std::mem::replace(&mut example.features, features::Features::empty(0));
        example.features = features::stack_frames(frames, n);
    }
    examples
}

/// Training utterances stored this many at a time: their versions' features are in memory
/// together while they are written.
const STORE_CHUNK: usize = 512;

/// Loads utterances of one corpus as examples labelled for its task.
struct SplitLoader<'a> {
    task: &'a AudioClassification,
    names: &'a [String],
    objective: LabelKind,
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
                .map(|e| ((e.origin.path, format!("{:?}", e.origin.clip)), e.features))
                .collect();
            for example in &mut loaded.examples {
                let key = (
                    example.origin.path.clone(),
                    format!("{:?}", example.origin.clip),
                );
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
                    origin: example.origin,
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
        stable_hash(text.as_bytes())
    }
}

/// Loads `chosen` as [`load_examples`] does, labelled by class `names` for `objective`:
/// one class each, or the sequence of their label's characters (`names[0]` the blank).
pub fn load_labelled(
    chosen: &[&Utterance],
    names: &[String],
    objective: LabelKind,
    pipeline: &features::FilePipeline,
    cache: Option<&FeatureCache>,
    strict: bool,
) -> Result<Loaded, DatasetError> {
    if objective == LabelKind::Classes {
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
        let text = &strings[example.origin.label];
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
                example.origin.path,
                format!(
                    "label {text:?} has a character that is not one of {:?}",
                    &names[1..]
                ),
            )),
            Some(sequence) if sequence.len() > example.features.num_frames => {
                loaded.skipped.push((
                    example.origin.path,
                    format!(
                        "{} frames cannot hold the {} labels of {text:?}",
                        example.features.num_frames,
                        sequence.len()
                    ),
                ))
            }
            Some(sequence) => {
                example.origin.label = 0;
                example.origin.sequence = Some(sequence);
                kept.push(example);
            }
        }
    }
    loaded.examples = kept;
    loaded
}
