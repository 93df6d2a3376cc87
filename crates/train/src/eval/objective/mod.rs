//! One [`Objective`] per target kind: what the network's per-step outputs `y` are trained
//! towards, and how they are scored. [`batch_loss`] is the one place that picks the objective
//! from a batch's [`Targets`]; the training loop and evaluation call only it.

mod class_per_step;
mod label_sequence;
mod one_class;
mod regression;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use models::{Pooling, SequenceClassifier};

pub use class_per_step::ClassPerStep;
pub use label_sequence::{LabelSequence, sequence_outcome};
pub use one_class::OneClass;
pub use regression::Regression;

use crate::data::batch::{Batch, Targets};
use crate::eval::score::Score;

/// A target kind's loss and score over a batch's outputs.
pub trait Objective {
    /// The batch's mean loss and its [`Score`], from `y` (`[batch, time, outputs]`) over
    /// each sequence's `lengths` valid steps.
    fn loss<B: Backend>(
        &self,
        y: Tensor<B, 3>,
        lengths: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, 1>, Score);
}

/// The loss of one batch (mean cross-entropy of the softmax over `y`, CTC over label
/// sequences, or mean squared error for [`Targets::Values`]) and its [`Score`].
///
/// Per-sequence classes pool `y_t` with `pooling`; per-step classes are scored at every
/// valid step; values are read from `y` at each sequence's last valid step.
pub fn batch_loss<B: Backend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    pooling: Pooling,
    device: &B::Device,
) -> (Tensor<B, 1>, Score) {
    let y = forward(model, batch, device);
    let lengths = &batch.lengths;
    match &batch.targets {
        Targets::Classes(labels) => OneClass { labels, pooling }.loss(y, lengths, device),
        Targets::StepClasses { classes, accepted } => ClassPerStep {
            classes,
            accepted: accepted.as_deref(),
        }
        .loss(y, lengths, device),
        Targets::Sequences(targets) => LabelSequence { targets }.loss(y, lengths, device),
        Targets::Values { values, tolerance } => Regression {
            values,
            tolerance: *tolerance,
        }
        .loss(y, lengths, device),
    }
}

/// The model's per-step outputs `y` for a padded batch.
pub fn forward<B: Backend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    device: &B::Device,
) -> Tensor<B, 3> {
    let inputs =
        Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
    model.forward(inputs, Some(&batch.lengths))
}

/// Integer targets as a tensor.
fn ints<B: Backend>(values: &[i64], shape: [usize; 2], device: &B::Device) -> Tensor<B, 2, Int> {
    Tensor::<B, 2, Int>::from_data(TensorData::new(values.to_vec(), shape), device)
}
