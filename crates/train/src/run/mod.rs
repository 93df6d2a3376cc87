//! The library API over the layers: what `experiment train` does, step by step, for programs
//! and tests that train without the binary.
//!
//! 1. [`Run::load`] reads the TOML with its overrides and checks everything that can be
//!    checked before any audio is read: every range, the corpus listing, the class names
//!    and the warm-up against the run's length.
//! 2. [`RunFolder::open`] takes the run's folder (locked while it lives).
//! 3. [`Run::prepare`] generates or loads the data.
//! 4. [`Prepared::fit`] saves `config.toml`, trains on the configured backend, telling an
//!    [`Observer`] of each step and epoch, and writes `metrics.csv`, `metrics.json` and the
//!    plots.

mod cmvn_stats;
mod corpus_info;
mod launch;
mod summary;

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;

pub use cmvn_stats::{CmvnStats, cmvn_stats};
pub use corpus_info::corpus_table;
pub use launch::{LaunchError, launch_local};
pub use summary::{epoch_line, per_class, summary_text};

use crate::backend::{BackendError, BackendKind, OnBackend, run_on};
use crate::checks::InvalidValue;
use crate::config::{ConfigError, ExperimentConfig};
use crate::data::audio::LabelKind;
use crate::data::corpus::{CorpusError, TaskData, load_listed_corpus};
use crate::data::sources::{DatasetError, Utterance};
pub use crate::engine::Observer;
use crate::engine::checkpoint::Checkpoints;
use crate::engine::peers::Peers;
use crate::engine::{RunOptions, TrainError, train};
use crate::report::files::{OutputError, write_run_files};
use crate::report::metrics::RunSummary;
pub use crate::report::run_dir::RunMode;
use crate::report::run_dir::{CHECKPOINTS, CONFIG_FILE, RunDir, RunDirError};

/// Why a run could not be set up, trained or reported.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration could not be read, or holds a value out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The corpus could not be listed to find the class names and the run's length.
    #[error("cannot list the corpus")]
    Listing(#[source] DatasetError),
    /// A value that only the corpus's size shows to be wrong (the warm-up).
    #[error("invalid configuration: {0}")]
    Invalid(#[from] InvalidValue),
    /// The run folder could not be opened or locked.
    #[error(transparent)]
    Folder(#[from] RunDirError),
    /// The corpus could not be loaded.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// A training utterance's features could not be computed (`cmvn_stats`).
    #[error("cannot compute a training utterance's features")]
    Features(#[source] features::FeatureError),
    /// A file of the run could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The backend could not be started.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Training stopped.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// An experiment, loaded and checked before any data is read.
#[derive(Debug, Clone)]
pub struct Run {
    /// The resolved configuration: overrides applied, and for a corpus the class names it
    /// will use (saved with the run, so `predict` and `eval` use the same order).
    pub config: ExperimentConfig,
    /// The corpus's utterances, listed once by [`Run::new`] (none for a generated task).
    listing: Option<Vec<Utterance>>,
}

impl Run {
    /// Reads `path`, applies `--set` style `overrides` and `backend` over the file's, and
    /// checks the result ([`Run::new`]).
    pub fn load(
        path: &Path,
        overrides: &[String],
        backend: Option<BackendKind>,
    ) -> Result<Self, RunError> {
        Self::new(ExperimentConfig::load(path, overrides)?.with_backend(backend))
    }

    /// Checks a parsed configuration: for a corpus task, lists the corpus (no audio but
    /// Speech Commands' noise recordings is read), fills in its class names, and refuses a
    /// warm-up longer than the run (counted over the listed training utterances that have
    /// a class; files that turn out unreadable can only shorten it).
    pub fn new(mut config: ExperimentConfig) -> Result<Self, RunError> {
        let Some((task, kind)) = config.task.audio() else {
            return Ok(Self {
                config,
                listing: None,
            });
        };
        let utterances = task.utterances().map_err(RunError::Listing)?;
        let labels = task.resolve_labels(&utterances, kind);
        let train = utterances
            .iter()
            .filter(|u| u.split == "train")
            .filter(|u| kind == LabelKind::Sequences || labels.contains(&u.label))
            .count();
        let t = &config.training;
        t.check_warmup(t.epochs * train.div_ceil(t.batch_size))?;
        let saved = labels[usize::from(kind == LabelKind::Sequences)..].to_vec();
        if let Some(task) = config.task.audio_mut() {
            task.labels = Some(saved);
        }
        Ok(Self {
            config,
            listing: Some(utterances),
        })
    }

    /// The folder name of peer `peer_id`'s copy of the run: `NAME` for peer 0, `NAME.peer-I`
    /// for the others (the same weights: every peer can resume on its own).
    pub fn folder_name(&self, peer_id: usize) -> String {
        match peer_id {
            0 => self.config.name.clone(),
            id => format!("{}.peer-{id}", self.config.name),
        }
    }

    /// Generates or loads the data (a corpus from the listing [`Run::new`] made).
    pub fn prepare(self) -> Result<Prepared, RunError> {
        let Run { config, listing } = self;
        let data = match (config.task.audio(), listing) {
            (Some((task, kind)), Some(listing)) => {
                TaskData::Corpus(load_listed_corpus(task, kind, listing)?)
            }
            _ => config.prepare_data()?,
        };
        Ok(Prepared { config, data })
    }
}

/// A run's folder, locked for this process while the value lives.
#[derive(Debug)]
pub struct RunFolder {
    dir: RunDir,
    mode: RunMode,
}

impl RunFolder {
    /// Opens (creating it if need be) and locks `out_dir/name`: refused when it holds a run,
    /// unless `mode` says to resume or overwrite it.
    pub fn open(out_dir: &Path, name: &str, mode: RunMode) -> Result<Self, RunError> {
        let dir = RunDir::open(&out_dir.join(name), mode)?;
        Ok(Self { dir, mode })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// An experiment with its data, ready to train.
#[derive(Debug)]
pub struct Prepared {
    /// The resolved configuration.
    pub config: ExperimentConfig,
    /// The data.
    pub data: TaskData,
}

impl Prepared {
    /// Batches in the whole run.
    pub fn total_steps(&self) -> usize {
        let t = &self.config.training;
        t.epochs * t.batches_per_epoch(&self.data)
    }

    /// Saves `config.toml` (the first file of a run), trains on the configured backend with
    /// a checkpoint after every epoch (from the latest one when the folder was opened to
    /// resume), as one of `peers` when given, and writes the metrics files and plots.
    pub fn fit(
        &self,
        folder: &RunFolder,
        peers: Option<Peers>,
        observer: &mut dyn Observer,
    ) -> Result<RunSummary, RunError> {
        let path = folder.path().join(CONFIG_FILE);
        features::write_atomic(&path, self.config.to_toml().as_bytes())
            .map_err(|source| OutputError { path, source })?;
        let options = RunOptions {
            checkpoints: Some(Checkpoints::new(folder.path().join(CHECKPOINTS))),
            resume: folder.mode == RunMode::Resume,
            peers,
        };
        let job = FitJob {
            prepared: self,
            options,
            observer,
        };
        let summary = run_on(self.config.backend, job)??;
        write_run_files(folder.path(), &summary, &self.data.class_names())?;
        Ok(summary)
    }
}

/// [`Prepared::fit`]'s training, on whichever backend [`run_on`] picks.
struct FitJob<'a> {
    prepared: &'a Prepared,
    options: RunOptions,
    observer: &'a mut dyn Observer,
}

impl OnBackend for FitJob<'_> {
    type Output = Result<RunSummary, TrainError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let Prepared { config, data } = self.prepared;
        let outcome = train::<B>(config.spec(), data, &device, &self.options, self.observer)?;
        Ok(outcome.into_summary())
    }
}
