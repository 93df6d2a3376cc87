//! One recurrent state over a stream's frames, with its causal normalisation and what reads
//! its outputs, started afresh when the listener says.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use features::{CausalCmvn, Features, stack_frames};
use models::{RecurrentState, SequenceClassifier};

use super::Spotter;
use crate::eval::ctc::{BLANK, GreedyDecoder};

/// How a lane's per-step outputs become events.
pub(super) enum Reader {
    /// Best-path CTC decoding of the softmax.
    Labels(GreedyDecoder),
    /// Keyword spotting on the logits.
    Keywords(Spotter),
}

impl Reader {
    /// The same reader, having heard nothing.
    fn fresh(&self) -> Reader {
        match self {
            Reader::Labels(_) => Reader::Labels(GreedyDecoder::new(BLANK)),
            Reader::Keywords(spotter) => Reader::Keywords(spotter.fresh()),
        }
    }
}

/// The model's state over the frames since [`Lane::start`].
pub(super) struct Lane<B: Backend> {
    cmn: Option<CausalCmvn>,
    state: Option<RecurrentState<B, 3>>,
    /// What reads the outputs.
    pub reader: Reader,
    /// The stream's frame at which the lane last started afresh.
    pub start: usize,
}

impl<B: Backend> Lane<B> {
    pub fn new(cmn: Option<CausalCmvn>, reader: Reader) -> Self {
        Lane {
            cmn,
            state: None,
            reader,
            start: 0,
        }
    }

    /// Normalises `frames`, joins them `stack` at a time into steps (a last, partial step
    /// completed with zeros, as [`features::stack_frames`] does for a whole file), and runs
    /// the model over them from the lane's state: every step's outputs (logits), row-major.
    pub fn run(
        &mut self,
        model: &SequenceClassifier<B>,
        (frames, stack): (&Features, usize),
        device: &B::Device,
    ) -> Vec<f32> {
        let mut normalised = frames.clone();
        if let Some(cmn) = &mut self.cmn {
            normalised
                .data
                .chunks_exact_mut(frames.dim)
                .for_each(|row| cmn.normalise(row));
        }
        let steps = stack_frames(normalised, stack);
        let shape = [1, steps.num_frames, steps.dim];
        let x = Tensor::<B, 3>::from_data(TensorData::new(steps.data, shape), device);
        let (y, state) = model.forward_chunk(x, self.state.take());
        self.state = Some(state);
        y.into_data().iter::<f32>().collect()
    }

    /// Starts afresh at the stream's frame `at` (state, normalisation, reader); returns the
    /// reader as it was.
    pub fn restart(&mut self, at: usize) -> Reader {
        self.state = None;
        if let Some(cmn) = &mut self.cmn {
            cmn.reset();
        }
        self.start = at;
        let fresh = self.reader.fresh();
        std::mem::replace(&mut self.reader, fresh)
    }
}
