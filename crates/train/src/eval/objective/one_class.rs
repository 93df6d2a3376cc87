//! One class per sequence: `y_t` pooled over the valid steps, softmax and cross-entropy.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use models::Pooling;

use super::{Objective, ints};
use crate::eval::score::Score;

/// One class per sequence, from `y_t` pooled with `pooling`.
#[derive(Debug, Clone, Copy)]
pub struct OneClass<'a> {
    /// Each sequence's class.
    pub labels: &'a [i64],
    /// How `y_t` becomes one output per sequence.
    pub pooling: Pooling,
}

impl Objective for OneClass<'_> {
    fn loss<B: Backend>(
        &self,
        y: Tensor<B, 3>,
        lengths: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, 1>, Score) {
        let [size, _, outputs] = y.dims();
        let logits = self.pooling.pool(y, Some(lengths));
        let predicted = logits.clone().argmax(1).into_data();
        let mut score = Score {
            sequences: size,
            per_class: vec![(0, 0); outputs],
            ..Score::default()
        };
        for (p, &label) in predicted.iter::<i64>().zip(self.labels) {
            let right = p == label;
            score.correct += usize::from(right);
            score.per_class[label as usize].0 += usize::from(right);
            score.per_class[label as usize].1 += 1;
        }
        let targets = ints::<B>(self.labels, [size, 1], device).reshape([size]);
        let loss = CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, targets);
        (loss, score)
    }
}
