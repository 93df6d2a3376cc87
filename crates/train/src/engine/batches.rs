//! One epoch's training batches, each with its share of the loss, and a peer's part of
//! each batch in a data-parallel run.

use rand::rngs::StdRng;

use super::peers::PeerSetup;
use crate::data::batch::Batch;
use crate::data::corpus::TaskData;
use crate::data::loader;
use crate::data::store::StoreError;
use crate::optim::TrainingConfig;

/// Training batches, each with its share of the loss, as they are read.
type WeightedBatches<'a> = Box<dyn Iterator<Item = Result<(Batch, f64), StoreError>> + 'a>;

/// One epoch's training batches, each with its share of the loss (1 when training alone):
/// fresh draws for a generated task; for a corpus, the training utterances shuffled, each as
/// one of its versions with SpecAugment's masks (see [`crate::data::loader`]). A peer of a
/// data-parallel run gets its part of each batch ([`PeerSetup::rows_read`]).
pub(super) fn weighted_batches<'a>(
    data: &'a TaskData,
    t: &TrainingConfig,
    rng: &mut StdRng,
    setup: Option<&PeerSetup>,
) -> Result<WeightedBatches<'a>, StoreError> {
    match data {
        TaskData::Generated { task, .. } => {
            let drawn: Vec<(Batch, f64)> = (0..t.steps_per_epoch)
                .map(|_| {
                    let batch = task.sample(rng, t.batch_size);
                    match setup {
                        None => (batch, 1.0),
                        Some(setup) => {
                            let part = batch.rows(setup.rows_read(batch.size()));
                            let share = setup.share(
                                batch.size(),
                                part.loss_normalizer(),
                                batch.loss_normalizer(),
                            );
                            (part, share)
                        }
                    }
                })
                .collect();
            Ok(Box::new(drawn.into_iter().map(Ok)))
        }
        TaskData::Corpus(corpus) => {
            let draws = loader::draw_epoch(&corpus.train, &corpus.augment, corpus.blocks, rng);
            let (examples, batch_size) = (draws.len(), t.batch_size.max(1));
            let setup = setup.cloned();
            let part = {
                let setup = setup.clone();
                move |rows: usize| setup.as_ref().map_or(0..rows, |s| s.rows_read(rows))
            };
            let sizes = (batch_size, corpus.stack_frames);
            let batches = loader::epoch_batches(&corpus.train, draws, sizes, part)?;
            Ok(Box::new(batches.enumerate().map(move |(index, batch)| {
                let rows = batch_size.min(examples - index * batch_size);
                let share = setup
                    .as_ref()
                    .map_or(1.0, |s| s.share(rows, s.part(rows).len(), rows));
                batch.map(|batch| (batch, share))
            })))
        }
    }
}
