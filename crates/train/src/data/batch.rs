//! The one batch type every task feeds the network: padded inputs, lengths and [`Targets`].

use crate::data::example::Example;

/// A padded batch of sequences and what the network should output for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Row-major `[batch, time, features]`, zero past each sequence's length.
    pub inputs: Vec<f32>,
    /// `[batch, time, features]`.
    pub shape: [usize; 3],
    /// Valid steps of each sequence.
    pub lengths: Vec<usize>,
    /// The targets, per sequence or per step.
    pub targets: Targets,
}

impl Batch {
    /// Number of sequences.
    pub fn size(&self) -> usize {
        self.shape[0]
    }

    /// What the batch's loss is a mean over: valid steps for per-step classes, sequences
    /// otherwise. A part of a batch weighs its own count over the whole batch's.
    pub fn loss_normalizer(&self) -> usize {
        match &self.targets {
            Targets::StepClasses { .. } => self.lengths.iter().sum(),
            _ => self.size(),
        }
    }

    /// Sequences `rows` of the batch, padded as they are here.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Batch {
        let [_, time, features] = self.shape;
        let steps = |per_step: usize| rows.start * time * per_step..rows.end * time * per_step;
        let targets = match &self.targets {
            Targets::Classes(classes) => Targets::Classes(classes[rows.clone()].to_vec()),
            Targets::StepClasses { classes, accepted } => Targets::StepClasses {
                classes: classes[steps(1)].to_vec(),
                accepted: accepted.as_ref().map(|accepted| {
                    let outputs = accepted.len() / classes.len().max(1);
                    accepted[steps(outputs)].to_vec()
                }),
            },
            Targets::Sequences(sequences) => Targets::Sequences(sequences[rows.clone()].to_vec()),
            Targets::Values { values, tolerance } => Targets::Values {
                values: values[rows.clone()].to_vec(),
                tolerance: *tolerance,
            },
        };
        Batch {
            inputs: self.inputs[steps(features)].to_vec(),
            shape: [rows.len(), time, features],
            lengths: self.lengths[rows].to_vec(),
            targets,
        }
    }

    /// The per-sequence classes, when the targets are per-sequence classes.
    pub fn sequence_classes(&self) -> Option<&[i64]> {
        match &self.targets {
            Targets::Classes(classes) => Some(classes),
            _ => None,
        }
    }
}

/// What the network is trained to output, and what counts as right.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class per sequence, from `y_t` pooled over its valid steps (softmax + cross-entropy).
    Classes(Vec<i64>),
    /// One class per step, `[batch, time]` (0 past each length): softmax + cross-entropy at
    /// every valid step, padding masked out. A sequence is right when every valid step is.
    StepClasses {
        /// The class to train towards at each step.
        classes: Vec<i64>,
        /// `[batch, time, classes]`: which arg-max predictions count as right at each step
        /// (several next symbols can be legal); only `classes` itself when `None`.
        accepted: Option<Vec<bool>>,
    },
    /// A sequence of labels per sequence, unsegmented, from the softmax over `y_t` at every
    /// valid step with Connectionist Temporal Classification ([`crate::eval::ctc`]; class 0 is the
    /// blank). A sequence is right when its best-path decoding is its labels.
    Sequences(Vec<Vec<usize>>),
    /// One real number per sequence, regressed from `y` (first unit) at its last valid step
    /// with squared error. A sequence is right when its absolute error is below `tolerance`.
    Values {
        /// The targets.
        values: Vec<f32>,
        /// Largest absolute error that counts as right (the paper's 0.04 for the adding problem).
        tolerance: f32,
    },
}

/// Pads examples into one batch (zeros past each sequence's length).
pub fn pad_batch(examples: &[&Example]) -> Batch {
    let dim = examples.first().map_or(0, |e| e.features.dim);
    let time = examples
        .iter()
        .map(|e| e.features.num_frames)
        .max()
        .unwrap_or(0);
    let mut inputs = vec![0.0; examples.len() * time * dim];
    for (b, example) in examples.iter().enumerate() {
        let start = b * time * dim;
        inputs[start..start + example.features.data.len()].copy_from_slice(&example.features.data);
    }
    Batch {
        inputs,
        shape: [examples.len(), time, dim],
        lengths: examples.iter().map(|e| e.features.num_frames).collect(),
        targets: match examples.iter().map(|e| e.origin.sequence.clone()).collect() {
            Some(sequences) => Targets::Sequences(sequences),
            None => Targets::Classes(examples.iter().map(|e| e.origin.label as i64).collect()),
        },
    }
}
