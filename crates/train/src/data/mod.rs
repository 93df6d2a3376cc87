//! The data layer: where examples come from and how they reach the loop as [`batch::Batch`]es.
//! Nothing here knows about training or configuration files; the experiment's TOML is parsed
//! above it, in [`crate::config`], from the option types defined here.
//!
//! ```text
//! sources ──▶ Utterance ──▶ example::load_examples ──▶ Example ──▶ corpus::load_corpus ──▶ Corpus
//!  (manifest, FSDD,          (features, cache)          (+ augment versions)       │  (in memory, or
//!   Speech Commands)                                                                │   store on disk)
//! generated (1997 tasks) ─────────────────────────────────────────────────▶ TaskData ◀┘
//!                                              loader::epoch_batches ──▶ batch::Batch ──▶ engine
//! ```
//!
//! - [`audio`]: the audio task's options (corpus, labels, features) and what they resolve to.
//! - [`augment`]: augmented versions and SpecAugment masks.
//! - [`sources`]: utterance lists of each corpus format.
//! - [`example`]: one utterance's features and label; parallel loading and the feature cache.
//! - [`corpus`]: a corpus loaded by split, and [`corpus::TaskData`], what the loop trains on.
//! - [`store`]: the sharded feature store for corpora larger than memory.
//! - [`loader`]: an epoch's draws (versions, masks) and the batches, in memory or read ahead.
//! - [`batch`]: the padded batch and its [`batch::Targets`].
//! - [`generated`]: the 1997 tasks, drawn fresh from a seed.

pub mod audio;
pub mod augment;
pub mod batch;
pub mod cmvn;
pub mod corpus;
pub mod example;
pub mod generated;
pub mod loader;
pub mod sources;
pub mod store;

use audio::{AudioClassification, LabelKind};
use generated::SequenceTask;

/// Where a task's data comes from: drawn fresh by a generator, or read from a corpus.
#[derive(Debug, Clone, Copy)]
pub enum DataSource<'a> {
    /// A generated task.
    Generated(&'a dyn SequenceTask),
    /// A corpus of recordings, and what its labels are.
    Corpus(&'a AudioClassification, LabelKind),
}
