//! One epoch of training batches from a corpus.
//!
//! The epoch's draw is made up front from its seed ([`draw_epoch`]): the order of the
//! examples, which version of each (the original or an augmented one) and its SpecAugment
//! masks. The batches are then assembled in that order ([`epoch_batches`]): from memory on the
//! training thread, or from a [`FeatureStore`] by worker threads that keep a few batches
//! ready ahead of the training loop. Both give the same batches, bit for bit.
//!
//! burn's `DataLoader` is not used for the second: its workers each read their own part of
//! the dataset and hand batches over in whatever order they finish, so the batch order, and
//! with it the run, would depend on thread timing.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::augment::{Augment, Masks};
use crate::data::batch::Batch;
use crate::data::batch::pad_batch;
use crate::data::corpus::{TrainSet, stacked};
use crate::data::example::{Example, draw_version_index};
use crate::data::store::{FeatureStore, StoreError};

/// One example as an epoch trains on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    /// Index into the training examples.
    pub example: usize,
    /// Which version: 0 the original, then the augmented ones in order.
    pub version: usize,
    /// The SpecAugment masks for that version.
    pub masks: Masks,
}

/// Shuffles the training examples and draws a version and masks for each, in one pass over
/// `rng`.
pub fn draw_epoch(
    train: &TrainSet,
    augment: &Augment,
    blocks: usize,
    rng: &mut StdRng,
) -> Vec<Draw> {
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(rng);
    order
        .into_iter()
        .map(|example| {
            let version = draw_version_index(train.versions(example), rng);
            let frames = train.frames(example, version);
            let masks = augment.draw_masks(frames, train.dim(), blocks, rng);
            Draw {
                example,
                version,
                masks,
            }
        })
        .collect()
}

/// The batches of `draws`, `batch_size` at a time, in order, every `stack_frames` frames
/// joined into one step after the masks ([`features::stack_frames`]); of each batch, only the
/// rows `part(rows)` gives (all of them for one process; see [`crate::engine::peers`]). Fails
/// only when a worker thread cannot be started.
pub fn epoch_batches(
    train: &TrainSet,
    draws: Vec<Draw>,
    (batch_size, stack_frames): (usize, usize),
    part: impl Fn(usize) -> std::ops::Range<usize>,
) -> Result<EpochBatches<'_>, StoreError> {
    let batches: Vec<Vec<Draw>> = draws
        .chunks(batch_size.max(1))
        .map(|chunk| chunk[part(chunk.len())].to_vec())
        .collect();
    match train {
        TrainSet::InMemory(examples) => Ok(EpochBatches::InMemory {
            examples,
            batches: batches.into_iter(),
            stack_frames,
        }),
        TrainSet::Stored(stored) => {
            let workers = stored.num_workers.max(1);
            let batches = Arc::new(batches);
            let (mut receivers, mut handles) = (Vec::new(), Vec::new());
            for worker in 0..workers {
                let (sender, receiver) = sync_channel(stored.prefetch_factor.max(1));
                let (store, batches) = (Arc::clone(&stored.store), Arc::clone(&batches));
                let handle = std::thread::Builder::new()
                    .name(format!("batch-loader-{worker}"))
                    .spawn(move || {
                        for draws in batches.iter().skip(worker).step_by(workers) {
                            if sender
                                .send(stored_batch(&store, draws, stack_frames))
                                .is_err()
                            {
                                return;
                            }
                        }
                    })
                    .map_err(|source| StoreError::Spawn { source })?;
                receivers.push(receiver);
                handles.push(handle);
            }
            Ok(EpochBatches::Workers {
                total: batches.len(),
                next: 0,
                receivers,
                handles,
            })
        }
    }
}

/// An epoch's batches, assembled as they are asked for (see [`epoch_batches`]).
#[derive(Debug)]
pub enum EpochBatches<'a> {
    /// From examples in memory, on the calling thread.
    InMemory {
        /// The training examples.
        examples: &'a [Example],
        /// The draws of each batch still to come.
        batches: std::vec::IntoIter<Vec<Draw>>,
        /// Frames joined into one step.
        stack_frames: usize,
    },
    /// From a feature store, read by worker threads: worker `w` assembles batches `w`,
    /// `w + workers`, …, keeping up to `prefetch_factor` of them ready.
    Workers {
        /// Batches in the epoch.
        total: usize,
        /// The next batch to hand out.
        next: usize,
        /// One channel per worker.
        receivers: Vec<Receiver<Result<Batch, StoreError>>>,
        /// The workers, joined when the epoch's batches are dropped.
        handles: Vec<JoinHandle<()>>,
    },
}

impl Iterator for EpochBatches<'_> {
    type Item = Result<Batch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EpochBatches::InMemory {
                examples,
                batches,
                stack_frames,
            } => {
                let draws = batches.next()?;
                Some(Ok(memory_batch(examples, &draws, *stack_frames)))
            }
            EpochBatches::Workers {
                total,
                next,
                receivers,
                ..
            } => {
                if *next == *total {
                    return None;
                }
                let worker = *next % receivers.len();
                *next += 1;
                Some(
                    receivers[worker]
                        .recv()
                        .unwrap_or(Err(StoreError::WorkerStopped { worker })),
                )
            }
        }
    }
}

impl Drop for EpochBatches<'_> {
    fn drop(&mut self) {
        if let EpochBatches::Workers {
            receivers, handles, ..
        } = self
        {
            // Closing the channels makes a worker waiting to hand over a batch stop.
            receivers.clear();
            for handle in handles.drain(..) {
                let _ = handle.join();
            }
        }
    }
}

fn memory_batch(examples: &[Example], draws: &[Draw], stack_frames: usize) -> Batch {
    let drawn: Vec<Example> = draws
        .iter()
        .map(|draw| {
            let mut example = examples[draw.example].version(draw.version);
            draw.masks.apply(&mut example.features);
            example
        })
        .collect();
    pad_batch(&stacked(drawn, stack_frames).iter().collect::<Vec<_>>())
}

fn stored_batch(
    store: &FeatureStore,
    draws: &[Draw],
    stack_frames: usize,
) -> Result<Batch, StoreError> {
    let drawn = draws
        .iter()
        .map(|draw| {
            let example = &store.examples()[draw.example];
            let mut features = store.read(example.versions[draw.version])?;
            draw.masks.apply(&mut features);
            Ok(example.with_features(features))
        })
        .collect::<Result<Vec<Example>, StoreError>>()?;
    Ok(pad_batch(
        &stacked(drawn, stack_frames).iter().collect::<Vec<_>>(),
    ))
}
