//! Live recognition: audio in chunks of any size through a causal model whose recurrent
//! state is carried from chunk to chunk, with results as events while the audio arrives.
//!
//! The path is the run's own: the feature stream ([`features::Stream`], the whole file's
//! frames for any chunking), causal mean normalisation, the recurrent stack one chunk at a
//! time ([`models::SequenceClassifier::forward_chunk`]), the per-step softmax and best-path
//! CTC decoding frame by frame ([`GreedyDecoder`]). Each step reads only the past, so the
//! per-step outputs of a stream equal those of the whole file, and the decoded labels are
//! the same whatever the chunking.
//!
//! ```no_run
//! use burn_ndarray::NdArray;
//! use train::inference::Recogniser;
//! use train::listen::{Listener, ListenOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//! let run = Recogniser::<NdArray>::load("runs/digit-strings-streaming".as_ref(), &device)?;
//! let mut listener = Listener::new(run, ListenOptions::default(), device)?;
//! let audio = vec![0.0f32; 800]; // 100 ms at 8 kHz, from a microphone or a pipe
//! for event in listener.push(&audio)? {
//!     println!("{}", serde_json::to_string(&event)?);
//! }
//! for event in listener.finish()? {
//!     println!("{}", serde_json::to_string(&event)?);
//! }
//! # Ok(())
//! # }
//! ```

mod endpoint;
pub mod latency;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use features::{CausalCmvn, Cmvn, FeatureExtractor, Features, StreamResampler};
use models::{RecurrentState, SequenceClassifier};
use serde::Serialize;

pub use endpoint::Endpoint;

use crate::data::audio::LabelKind;
use crate::eval::ctc::{BLANK, GreedyDecoder};
use crate::inference::{
    Recogniser, TimedLabel, seconds_to_ms, softmax_rows, text_of, timed_labels,
};

/// Why a run cannot listen, or a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A step of the model or of its features reads the future.
    #[error("the run cannot listen live: {0}")]
    NotCausal(&'static str),
    /// The run is not a label-sequence (CTC) model.
    #[error(
        "the run classifies whole utterances; live recognition needs a label-sequence (CTC) run such as experiments/digit-strings-streaming.toml"
    )]
    NotSequences,
    /// The endpoint rules are out of range.
    #[error("{0}")]
    Endpoint(String),
    /// The features could not be computed (options that need the whole input, a rate
    /// that cannot be resampled, a non-finite sample).
    #[error(transparent)]
    Features(#[from] features::FeatureError),
}

/// How a [`Listener`] hears.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ListenOptions {
    /// The rate of the pushed samples; resampled in streaming to the run's rate when it
    /// differs. `None`: the run's rate.
    pub sample_rate: Option<u32>,
    /// When an utterance ends.
    pub endpoint: Endpoint,
}

/// What the listener reports, one JSON line each (`experiment listen`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The text of the utterance so far, each time a label is added.
    Partial {
        /// The labels so far.
        text: String,
        /// The audio time (seconds from the start of the stream) when it was reported:
        /// the end of the chunk that completed it.
        emitted_at: f64,
    },
    /// An utterance has ended (endpoint, or end of the stream).
    Final {
        /// Its labels.
        text: String,
        /// Each label with its frames' span, in seconds from the start of the stream.
        labels: Vec<TimedLabel>,
        /// The audio time when it was reported.
        emitted_at: f64,
    },
}

/// A finished CTC run listening to one stream of audio. See the [module](self) docs.
pub struct Listener<B: Backend> {
    model: SequenceClassifier<B>,
    labels: Vec<String>,
    device: B::Device,
    endpoint: Endpoint,
    input_rate: u32,
    resampler: Option<StreamResampler>,
    /// The run's feature options, for each new stream.
    extractor: FeatureExtractor,
    output: features::Output,
    /// The run's sample rate.
    rate: u32,
    /// Features per frame.
    dim: usize,
    features: features::Stream<'static>,
    cmn: Option<CausalCmvn>,
    state: Option<RecurrentState<B, 3>>,
    decoder: GreedyDecoder,
    /// Seconds per frame.
    shift: f64,
    /// Input samples received.
    received: u64,
    /// Frames the stream has given.
    frames: usize,
    /// The stream's frame at which the current utterance began.
    utterance_start: usize,
    /// Every step's softmax, when asked for ([`Listener::keep_posteriors`]).
    posteriors: Option<Vec<f32>>,
}

impl<B: Backend> Listener<B> {
    /// Prepares `run` to listen; refuses a run whose model or features read the future.
    pub fn new(
        run: Recogniser<B>,
        options: ListenOptions,
        device: B::Device,
    ) -> Result<Self, ListenError> {
        check_causal(&run)?;
        options.endpoint.check().map_err(ListenError::Endpoint)?;
        let pipeline = run.task.pipeline();
        let rate = pipeline.options.frame.sample_rate;
        let shift = run.frame_shift()?;
        let dim = run.task.features_per_frame();
        let cmn = match pipeline.cmvn {
            Some(Cmvn::Causal { window, variance }) => {
                Some(CausalCmvn::new(window, dim, variance)?)
            }
            _ => None,
        };
        let input_rate = options.sample_rate.unwrap_or(rate);
        let resampler = (input_rate != rate)
            .then(|| StreamResampler::new(input_rate, rate))
            .transpose()?;
        let extractor = FeatureExtractor::new(pipeline.options)?;
        let features = extractor.clone().into_stream(pipeline.output)?;
        Ok(Listener {
            model: run.model,
            labels: run.labels,
            device,
            endpoint: options.endpoint,
            input_rate,
            resampler,
            extractor,
            output: pipeline.output,
            rate,
            dim,
            features,
            cmn,
            state: None,
            decoder: GreedyDecoder::new(BLANK),
            shift,
            received: 0,
            frames: 0,
            utterance_start: 0,
            posteriors: None,
        })
    }

    /// Keeps every step's softmax from now on, for [`Listener::take_posteriors`].
    pub fn keep_posteriors(&mut self) {
        self.posteriors.get_or_insert_with(Vec::new);
    }

    /// The softmax of every step kept so far, `[steps, classes]` row-major.
    pub fn take_posteriors(&mut self) -> Vec<f32> {
        self.posteriors
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The class names, in output order (the blank first).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Hears `samples` (±1 scale, at the listener's input rate); returns what they settled.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Event>, ListenError> {
        if let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(features::FeatureError::NonFiniteSample { index, value }.into());
        }
        self.received += samples.len() as u64;
        let frames = match &mut self.resampler {
            Some(resampler) => {
                let resampled = resampler.push(samples)?;
                self.features.push(&resampled)
            }
            None => self.features.push(samples),
        };
        Ok(self.hear(frames))
    }

    /// Ends the stream: the frames still buffered, and the final result for what was heard.
    /// The listener is then ready for a new stream, whose times start again at 0.
    pub fn finish(&mut self) -> Result<Vec<Event>, ListenError> {
        let mut frames = Features::empty(self.dim);
        if self.resampler.is_some() {
            // The next stream's resampler goes in first, so an error leaves a usable one.
            let fresh = StreamResampler::new(self.input_rate, self.rate)?;
            let old = self.resampler.replace(fresh).expect("a resampler");
            frames = self.features.push(&old.finish()?);
        }
        let fresh = self.extractor.clone().into_stream(self.output)?;
        frames.append(&std::mem::replace(&mut self.features, fresh).finish());
        let mut events = self.hear(frames);
        events.extend(self.end_utterance());
        self.received = 0;
        self.frames = 0;
        self.utterance_start = 0;
        Ok(events)
    }

    /// How long the current utterance has lasted, in seconds: the endpoint rules keep it
    /// under [`Endpoint::max_utterance`], so the state never covers more.
    pub fn utterance_seconds(&self) -> f64 {
        self.decoder.frames as f64 * self.shift
    }

    /// The audio time heard so far, in seconds.
    pub fn heard(&self) -> f64 {
        self.received as f64 / self.input_rate as f64
    }

    /// Runs the model over new frames, utterance by utterance.
    fn hear(&mut self, mut frames: Features) -> Vec<Event> {
        let mut events = Vec::new();
        while frames.num_frames > 0 {
            let used = self.hear_until_endpoint(&frames, &mut events);
            frames = rest_of(&frames, used);
        }
        events
    }

    /// Runs the current utterance over `frames`; stops after a frame that ends it and
    /// returns how many frames it used.
    fn hear_until_endpoint(&mut self, frames: &Features, events: &mut Vec<Event>) -> usize {
        let mut normalised = frames.data.clone();
        if let Some(cmn) = &mut self.cmn {
            normalised
                .chunks_exact_mut(frames.dim)
                .for_each(|row| cmn.normalise(row));
        }
        let shape = [1, frames.num_frames, frames.dim];
        let x = Tensor::<B, 3>::from_data(TensorData::new(normalised, shape), &self.device);
        let (y, state) = self.model.forward_chunk(x, self.state.take());
        self.state = Some(state);
        let classes = self.labels.len();
        let mut probabilities: Vec<f32> = y.into_data().iter::<f32>().collect();
        softmax_rows(&mut probabilities, classes);
        for (used, row) in probabilities.chunks_exact(classes).enumerate() {
            if let Some(kept) = &mut self.posteriors {
                kept.extend_from_slice(row);
            }
            self.frames += 1;
            if self.decoder.push(row).is_some() {
                events.push(Event::Partial {
                    text: self.text(),
                    emitted_at: seconds_to_ms(self.heard()),
                });
            }
            let silence = self.decoder.trailing_blanks as f64 * self.shift;
            let length = self.decoder.frames as f64 * self.shift;
            let heard = !self.decoder.emitted.is_empty();
            if self.endpoint.ended(heard, silence, length) {
                events.extend(self.end_utterance());
                return used + 1;
            }
        }
        frames.num_frames
    }

    /// The final result of the current utterance, if it holds a label; starts afresh.
    fn end_utterance(&mut self) -> Option<Event> {
        let decoder = std::mem::replace(&mut self.decoder, GreedyDecoder::new(BLANK));
        let start = self.utterance_start;
        self.utterance_start = self.frames;
        self.state = None;
        if let Some(cmn) = &mut self.cmn {
            cmn.reset();
        }
        if decoder.emitted.is_empty() {
            return None;
        }
        let labels = timed_labels(&decoder.emitted, &self.labels, (start, self.shift));
        Some(Event::Final {
            text: text_of(&labels),
            labels,
            emitted_at: seconds_to_ms(self.heard()),
        })
    }

    fn text(&self) -> String {
        self.decoder
            .emitted
            .iter()
            .map(|e| self.labels[e.label].as_str())
            .collect()
    }
}

/// Refuses a run whose outputs at a step depend on later audio.
fn check_causal<B: Backend>(run: &Recogniser<B>) -> Result<(), ListenError> {
    if run.objective != LabelKind::Sequences {
        return Err(ListenError::NotSequences);
    }
    if run.config.model.bidirectional {
        return Err(ListenError::NotCausal(
            "its model is bidirectional, so every step reads the rest of the utterance; train one with model.bidirectional = false (experiments/digit-strings-streaming.toml)",
        ));
    }
    if run.task.deltas {
        return Err(ListenError::NotCausal(
            "its features have deltas, which read frames ahead; train one without task.deltas",
        ));
    }
    if run.task.cmvn {
        return Err(ListenError::NotCausal(
            "its features are normalised over the whole utterance (task.cmvn); train one with task.causal_cmvn",
        ));
    }
    Ok(())
}

/// The frames of `frames` from `from` on.
fn rest_of(frames: &Features, from: usize) -> Features {
    Features {
        num_frames: frames.num_frames - from,
        dim: frames.dim,
        data: frames.data[from * frames.dim..].to_vec(),
    }
}
