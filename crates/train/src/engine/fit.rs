//! The loop: epochs of optimiser steps, validation, checkpoints and early stopping.

use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use models::{Pooling, SequenceClassifier};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::averaging::blend;
use super::batches::weighted_batches;
use super::checkpoint::{CheckpointError, best_model_index};
use super::peers::PeerGroup;
use super::step::{StepError, optimise_step};
use super::{Observer, RunOptions, TrainError, TrainOutcome, TrainSpec};
use crate::data::corpus::TaskData;
use crate::eval::score::Score;
use crate::eval::{score_splits, validate};
use crate::model::load_model;
use crate::report::metrics::EpochMetrics;

/// The weights a run carries from step to step.
struct Weights<B: AutodiffBackend, O> {
    model: SequenceClassifier<B>,
    optimizer: O,
    /// The moving average of the weights, when `training.ema_decay` is set.
    averaged: Option<SequenceClassifier<B::InnerBackend>>,
}

/// What every step of a run shares.
struct Context<'a, B: AutodiffBackend> {
    spec: TrainSpec<'a>,
    data: &'a TaskData,
    device: &'a B::Device,
    group: Option<&'a PeerGroup>,
    pooling: Pooling,
    steps_per_epoch: usize,
}

/// [`super::train`] with a given optimiser.
pub(super) fn train_with<B, O>(
    (spec, data, device, run): (TrainSpec<'_>, &TaskData, &B::Device, &RunOptions),
    new_optimizer: impl Fn() -> O,
    observer: &mut impl Observer,
) -> Result<TrainOutcome<B>, TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    B::seed(device, spec.seed);
    let t = spec.training;
    let model = spec.model.init::<B>(data.sizes(), device);
    // Parameters are drawn lazily on first use; draw them now, from the experiment's seed.
    model.state_dict();
    let Restored {
        model,
        optimizer,
        mut history,
        mut best,
        averaged,
    } = restore(model, new_optimizer, run, device)?;
    let averaged = t
        .ema_decay
        .map(|_| averaged.unwrap_or_else(|| model.valid()));
    let mut weights = Weights {
        model,
        optimizer,
        averaged,
    };
    let group = join_peers::<B>(run, history.len(), device)?;
    let context = Context {
        spec,
        data,
        device,
        group: group.as_ref(),
        pooling: data.pooling(),
        steps_per_epoch: t.batches_per_epoch(data),
    };
    for epoch in history.len() + 1..=t.epochs {
        if let Some(patience) = t.early_stopping_patience
            && epochs_since_best(&history) >= patience
        {
            break;
        }
        let started = Instant::now();
        let (trained, loss_sum, train_score, steps) =
            train_epoch(weights, epoch, &context, observer)?;
        weights = trained;
        let inference = weights
            .averaged
            .clone()
            .unwrap_or_else(|| weights.model.valid());
        let (valid_loss, valid_score) = validate(&inference, data, t.batch_size, device);
        let metrics = EpochMetrics {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            train_accuracy: train_score.accuracy(),
            valid_loss,
            valid_accuracy: valid_score.accuracy(),
            valid_class_accuracy: valid_score.class_accuracy(),
            valid_label_error_rate: valid_score.label_error_rate(),
            seconds: started.elapsed().as_secs_f64(),
        };
        observer.on_epoch(&metrics);
        let solved = t
            .stop_at_accuracy
            .is_some_and(|target| metrics.valid_accuracy >= target);
        history.push(metrics);
        if best_model_index(&history) == Some(history.len() - 1) {
            best = Some((epoch, inference));
        }
        if let Some(checkpoints) = &run.checkpoints {
            let saved = (&weights.model, weights.averaged.as_ref());
            checkpoints.save(saved, &weights.optimizer, &history)?;
        }
        if solved {
            break;
        }
    }
    let Weights {
        model, averaged, ..
    } = weights;
    let (best_epoch, best_model) =
        best.unwrap_or_else(|| (0, averaged.unwrap_or_else(|| model.valid())));
    let (reports, confusions) = match data {
        TaskData::Corpus(corpus) => score_splits(&best_model, corpus, t.batch_size, device),
        TaskData::Generated { .. } => (Vec::new(), Vec::new()),
    };
    if let Some(group) = group {
        group.finish::<B::InnerBackend>()?;
    }
    Ok(TrainOutcome {
        model,
        history,
        best_epoch,
        reports,
        confusions,
    })
}

/// One epoch's optimiser steps. Its batch order and dropout masks come from a seed derived
/// from the experiment's seed and `epoch`. Returns the weights after it, the sum of the
/// batches' losses, the training score and the number of steps.
fn train_epoch<B, O>(
    mut weights: Weights<B, O>,
    epoch: usize,
    context: &Context<'_, B>,
    observer: &mut impl Observer,
) -> Result<(Weights<B, O>, f64, Score, usize), TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    let (t, device) = (context.spec.training, context.device);
    let epoch_seed = context
        .spec
        .seed
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(epoch as u64);
    B::seed(device, epoch_seed);
    let mut rng = StdRng::seed_from_u64(epoch_seed);
    let (mut loss_sum, mut train_score) = (0.0, Score::default());
    let setup = context.group.map(PeerGroup::setup);
    let batch_error = |step| {
        move |source| TrainError::Batch {
            epoch,
            step,
            source,
        }
    };
    let batches = weighted_batches(context.data, t, &mut rng, setup).map_err(batch_error(1))?;
    let total_steps = t.epochs * context.steps_per_epoch;
    let mut steps = 0;
    for (index, batch) in batches.enumerate() {
        let step = index + 1;
        let (batch, share) = batch.map_err(batch_error(step))?;
        let learning_rate = t.learning_rate_at(
            (epoch - 1) * context.steps_per_epoch + index,
            epoch,
            total_steps,
        );
        let (updated, value, batch_score) = optimise_step(
            weights.model,
            &mut weights.optimizer,
            (&batch, share),
            learning_rate,
            (t, context.pooling),
            device,
            context.group,
        )
        .map_err(|e| match e {
            StepError::NonFinite(value) => TrainError::NonFiniteLoss { epoch, step, value },
            StepError::Peer(e) => TrainError::Peer(e),
        })?;
        weights.model = updated;
        if let (Some(decay), Some(average)) = (t.ema_decay, weights.averaged.take()) {
            weights.averaged = Some(blend(average, &weights.model.valid(), decay));
        }
        loss_sum += value;
        train_score.merge(batch_score);
        steps += 1;
        observer.on_step(epoch, step);
    }
    Ok((weights, loss_sum, train_score, steps))
}

/// Joins the run's peers, when it has any, and checks they start from the same epoch.
fn join_peers<B: AutodiffBackend>(
    run: &RunOptions,
    epochs_done: usize,
    device: &B::Device,
) -> Result<Option<PeerGroup>, TrainError> {
    let Some(peers) = &run.peers else {
        return Ok(None);
    };
    let on_lost = Arc::clone(&peers.on_lost);
    let joined =
        PeerGroup::join::<B::InnerBackend>(peers.setup.clone(), device, move |e| on_lost(e))?;
    joined.check_same_start::<B::InnerBackend>(epochs_done, device)?;
    Ok(Some(joined))
}

/// Epochs since the best validation accuracy so far (0 when the last epoch is the best).
fn epochs_since_best(history: &[EpochMetrics]) -> usize {
    let best =
        history
            .iter()
            .enumerate()
            .fold(None, |best: Option<(usize, f64)>, (i, m)| match best {
                Some((_, accuracy)) if accuracy >= m.valid_accuracy => best,
                _ => Some((i, m.valid_accuracy)),
            });
    best.map_or(0, |(i, _)| history.len() - 1 - i)
}

/// Where a run starts: fresh, or the latest checkpoint with its history and the best
/// epoch's model so far.
struct Restored<B: AutodiffBackend, O> {
    model: SequenceClassifier<B>,
    optimizer: O,
    history: Vec<EpochMetrics>,
    /// The best epoch's model, kept in memory for the reports (restored from best.mpk).
    best: Option<(usize, SequenceClassifier<B::InnerBackend>)>,
    /// The moving average of the weights from the checkpoint, when it has one.
    averaged: Option<SequenceClassifier<B::InnerBackend>>,
}

fn restore<B, O>(
    model: SequenceClassifier<B>,
    new_optimizer: impl Fn() -> O,
    run: &RunOptions,
    device: &B::Device,
) -> Result<Restored<B, O>, TrainError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    let fresh = |model| Restored {
        model,
        optimizer: new_optimizer(),
        history: Vec::new(),
        best: None,
        averaged: None,
    };
    let Some(checkpoints) = run.checkpoints.as_ref().filter(|_| run.resume) else {
        return Ok(fresh(model));
    };
    let Some(restored) = checkpoints.restore_latest(model.clone(), new_optimizer(), device)? else {
        return Ok(fresh(model));
    };
    let best = match best_model_index(&restored.history) {
        Some(index) => {
            let best_model = load_model(restored.model.valid(), &checkpoints.best_path(), device)
                .map_err(CheckpointError::from)?;
            Some((restored.history[index].epoch, best_model))
        }
        None => None,
    };
    Ok(Restored {
        model: restored.model,
        optimizer: restored.optimizer,
        history: restored.history,
        best,
        averaged: restored.averaged,
    })
}
