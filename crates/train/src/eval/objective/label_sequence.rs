//! A label sequence per sequence, unsegmented: CTC over the softmax at every valid step,
//! scored by best-path decoding.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::Objective;
use crate::eval::ctc::{self, Decoding, Emitted};
use crate::eval::decode_batch;
use crate::eval::score::Score;

/// Label sequences trained with CTC (class 0 the blank). A sequence is right when its
/// best-path decoding is its labels.
#[derive(Debug, Clone, Copy)]
pub struct LabelSequence<'a> {
    /// Each sequence's labels, as class indices (1 and up).
    pub targets: &'a [Vec<usize>],
}

impl Objective for LabelSequence<'_> {
    fn loss<B: Backend>(
        &self,
        y: Tensor<B, 3>,
        lengths: &[usize],
        _device: &B::Device,
    ) -> (Tensor<B, 1>, Score) {
        let [size, _, _] = y.dims();
        let decoded = decode_batch(y.clone(), lengths, Decoding::BestPath);
        let mut score = Score {
            sequences: size,
            ..Score::default()
        };
        for (emitted, target) in decoded.iter().zip(self.targets) {
            let (right, errors) = sequence_outcome(emitted, target);
            score.correct += usize::from(right);
            score.label_errors += errors;
            score.reference_labels += target.len();
        }
        // Loading keeps only examples with at least as many frames as labels.
        let losses = ctc::ctc_loss(y, self.targets, lengths, ctc::BLANK)
            .expect("a batch of loadable examples fits the CTC loss");
        (ctc::mean_over_target_lengths(losses, self.targets), score)
    }
}

/// Whether a decoding is its reference exactly, and its edit distance from it.
pub fn sequence_outcome(emitted: &[Emitted], reference: &[usize]) -> (bool, usize) {
    let decoded: Vec<usize> = emitted.iter().map(|e| e.label).collect();
    (
        decoded == reference,
        ctc::edit_distance(reference, &decoded),
    )
}
