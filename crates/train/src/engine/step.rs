//! One optimiser step: loss, gradients (summed over the peers), clipping, update.

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use models::{Pooling, SequenceClassifier};

use super::clip::{clip_global_norm, clip_value};
use super::peers::{PeerError, PeerGroup};
use crate::data::batch::Batch;
use crate::eval::batch_loss;
use crate::eval::score::Score;
use crate::optim::TrainingConfig;

/// Why an optimiser step was not taken.
pub(super) enum StepError {
    /// The loss is NaN or infinite (nothing is updated).
    NonFinite(f64),
    /// The peers could not sum their gradients.
    Peer(PeerError),
}

/// One optimiser step on `batch`: the loss, its gradients (summed over the peers of a
/// data-parallel run, each peer's loss weighted by its `share` of the batch; clipped as
/// configured) and the update. Returns the updated model, the loss and the batch's score.
pub(super) fn optimise_step<B, O>(
    model: SequenceClassifier<B>,
    optimizer: &mut O,
    (batch, share): (&Batch, f64),
    learning_rate: f64,
    (t, pooling): (&TrainingConfig, Pooling),
    device: &B::Device,
    group: Option<&PeerGroup>,
) -> Result<(SequenceClassifier<B>, f64, Score), StepError>
where
    B: AutodiffBackend,
    O: Optimizer<SequenceClassifier<B>, B>,
{
    let (mut loss, mut score) = batch_loss(&model, batch, pooling, device);
    let mut value = loss.clone().into_scalar().elem::<f64>();
    if group.is_some() {
        loss = loss.mul_scalar(share);
        value *= share;
        if share == 0.0 {
            score = Score {
                per_class: vec![(0, 0); score.per_class.len()],
                ..Score::default()
            };
        }
    }
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    if let Some(group) = group {
        (grads, value, score) = group
            .sum_step(&model, grads, (value, score), device)
            .map_err(StepError::Peer)?;
    }
    // A peer's NaN makes the sum NaN, so every peer refuses the step alike.
    if !value.is_finite() {
        return Err(StepError::NonFinite(value));
    }
    if let Some(max) = t.clip_grad_value {
        clip_value::<B, _>(&model, &mut grads, max);
    }
    if let Some(max_norm) = t.clip_grad_norm {
        clip_global_norm::<B, _>(&model, &mut grads, max_norm);
    }
    Ok((optimizer.step(learning_rate, model, grads), value, score))
}
