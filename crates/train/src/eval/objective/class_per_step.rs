//! One class per step: softmax and cross-entropy at every valid step, padding masked out.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::{Objective, ints};
use crate::eval::score::Score;

/// One class per step, `[batch, time]` (0 past each length). A sequence is right when every
/// valid step is.
#[derive(Debug, Clone, Copy)]
pub struct ClassPerStep<'a> {
    /// The class to train towards at each step.
    pub classes: &'a [i64],
    /// `[batch, time, classes]`: which arg-max predictions count as right at each step;
    /// only `classes` itself when `None`.
    pub accepted: Option<&'a [bool]>,
}

impl Objective for ClassPerStep<'_> {
    fn loss<B: Backend>(
        &self,
        y: Tensor<B, 3>,
        lengths: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, 1>, Score) {
        let [size, time, outputs] = y.dims();
        let log_p = burn::tensor::activation::log_softmax(y.reshape([size * time, outputs]), 1);
        let picked = log_p
            .clone()
            .gather(1, ints::<B>(self.classes, [size * time, 1], device))
            .reshape([size * time]);
        let mask: Vec<f32> = (0..size * time)
            .map(|row| f32::from(u8::from(row % time < lengths[row / time])))
            .collect();
        let valid_steps: usize = lengths.iter().sum();
        let mask = Tensor::<B, 1>::from_data(TensorData::new(mask, [size * time]), device);
        let loss = (picked * mask)
            .sum()
            .neg()
            .div_scalar(valid_steps.max(1) as f64);
        let predicted: Vec<i64> = log_p.argmax(1).into_data().iter::<i64>().collect();
        (loss, self.score(&predicted, lengths, [size, time, outputs]))
    }
}

impl ClassPerStep<'_> {
    /// Per class, the valid steps right; per sequence, whether all of its steps are.
    fn score(&self, predicted: &[i64], lengths: &[usize], shape: [usize; 3]) -> Score {
        let [size, time, outputs] = shape;
        let mut score = Score {
            sequences: size,
            per_class: vec![(0, 0); outputs],
            ..Score::default()
        };
        for (b, &length) in lengths.iter().enumerate().take(size) {
            let mut all_right = true;
            for row in b * time..b * time + length {
                let p = predicted[row] as usize;
                let right = match self.accepted {
                    Some(accepted) => accepted[row * outputs + p],
                    None => p as i64 == self.classes[row],
                };
                all_right &= right;
                let class = self.classes[row] as usize;
                score.per_class[class].0 += usize::from(right);
                score.per_class[class].1 += 1;
            }
            score.correct += usize::from(all_right);
        }
        score
    }
}
