//! One real number per sequence, regressed from `y` at its last valid step.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use models::Pooling;

use super::Objective;
use crate::eval::score::Score;

/// Squared error of `y`'s first unit at each sequence's last valid step. A sequence is
/// right when its absolute error is below `tolerance`.
#[derive(Debug, Clone, Copy)]
pub struct Regression<'a> {
    /// The targets.
    pub values: &'a [f32],
    /// Largest absolute error that counts as right.
    pub tolerance: f32,
}

impl Objective for Regression<'_> {
    fn loss<B: Backend>(
        &self,
        y: Tensor<B, 3>,
        lengths: &[usize],
        device: &B::Device,
    ) -> (Tensor<B, 1>, Score) {
        let [size, _, _] = y.dims();
        let output = Pooling::Last
            .pool(y, Some(lengths))
            .narrow(1, 0, 1)
            .reshape([size]);
        let target =
            Tensor::<B, 1>::from_data(TensorData::new(self.values.to_vec(), [size]), device);
        let error = output - target;
        let correct = error
            .clone()
            .into_data()
            .iter::<f32>()
            .filter(|e| e.abs() < self.tolerance)
            .count();
        let score = Score {
            correct,
            sequences: size,
            ..Score::default()
        };
        (error.powi_scalar(2).mean(), score)
    }
}
