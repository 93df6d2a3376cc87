//! Live recognition: audio in chunks of any size through a causal model whose recurrent
//! state is carried from chunk to chunk, with results as events while the audio arrives.
//!
//! The path is the run's own: the feature stream ([`features::Stream`], the whole file's
//! frames for any chunking), causal mean normalisation, the recurrent stack one chunk at a
//! time ([`models::SequenceClassifier::forward_chunk`]), the per-step softmax, and then
//! one of two readers:
//! - label-sequence (CTC) runs: best-path decoding frame by frame ([`GreedyDecoder`]),
//!   partial and final results, endpoints ([`Endpoint`]);
//! - keyword runs (classes with `_silence_`, such as Speech Commands'): the softmax smoothed
//!   over a window and a threshold ([`Spotter`]), one detection per keyword said.
//!
//! Each step reads only the past, so the per-step outputs of a stream equal those of the
//! whole file, and the results are the same whatever the chunking.
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
mod keywords;
mod lane;
pub mod latency;
mod quiet;
pub mod spotting;

use burn::tensor::backend::Backend;
use features::{FeatureExtractor, Features, StreamResampler};
use models::SequenceClassifier;
use serde::Serialize;

pub use endpoint::{Endpoint, Tail};
pub use keywords::{Detection, KeywordOptions, Spotter};

use keywords::Keywords;
use lane::{Lane, Reader};
use quiet::{BELOW_PEAK, FLOOR_WINDOW, QuietFrames};

use crate::data::audio::LabelKind;
use crate::data::sources::SILENCE;
use crate::eval::ctc::{BLANK, Emitted, GreedyDecoder};
use crate::inference::{
    Recogniser, TimedLabel, seconds_to_ms, softmax_rows, text_of, timed_labels,
};

/// Why a run cannot listen, or a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A step of the model or of its features reads the future.
    #[error("the run cannot listen live: {0}")]
    NotCausal(&'static str),
    /// The run is neither a label-sequence (CTC) model nor a keyword spotter.
    #[error(
        "the run classifies whole utterances and has no _silence_ class; live recognition needs a label-sequence (CTC) run such as experiments/digit-strings-streaming.toml or a keyword run such as experiments/keywords-streaming.toml"
    )]
    NeitherSequencesNorKeywords,
    /// A keyword run whose model joins frames into steps (`task.stack_frames`): its
    /// spotting windows are counted in frames.
    #[error(
        "the run cannot listen live: keyword spotting reads one frame per step, and this run joins task.stack_frames frames into each"
    )]
    StackedKeywords,
    /// The endpoint rules are out of range.
    #[error("{0}")]
    Endpoint(String),
    /// The keyword window or threshold is out of range.
    #[error("{0}")]
    Keywords(String),
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
    /// When an utterance ends (label sequences), or when the state starts afresh after
    /// silence (keywords).
    pub endpoint: Endpoint,
    /// When a keyword run reports a keyword.
    pub keywords: KeywordOptions,
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
        /// Where the utterance began: the start of the stream, or the end of the last one.
        start: f64,
        /// Where it ended: the end of the frame that completed its endpoint, or of the
        /// stream's last frame.
        end: f64,
        /// The audio time when it was reported.
        emitted_at: f64,
    },
    /// A keyword run heard a keyword.
    Detection {
        /// The keyword.
        label: String,
        /// Its smoothed probability.
        score: f32,
        /// The first frame of the smoothing window that the keyword led, in seconds from
        /// the start of the stream.
        start: f64,
        /// The end of the frame that reported it.
        end: f64,
        /// The audio time when it was reported.
        emitted_at: f64,
    },
}

/// A finished CTC or keyword run listening to one stream of audio. See the [module](self)
/// docs.
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
    /// One for a CTC run, started afresh at its endpoints; [`KeywordOptions::lanes`] for a
    /// keyword run, each started afresh on its own beat.
    lanes: Vec<Lane<B>>,
    /// A keyword run's beats and repeats.
    keywords: Option<Keywords>,
    /// Quiet frames, for a CTC run's endpoints.
    quiet: QuietFrames,
    /// Whether the last frame heard completed a pause (keyword runs).
    paused: bool,
    /// Seconds per frame.
    shift: f64,
    /// Frames per model step ([`crate::data::audio::AudioClassification::stack_frames`]).
    stack: usize,
    /// Frames heard that do not yet fill a step.
    pending: Features,
    /// Input samples received.
    received: u64,
    /// Frames the stream has given.
    frames: usize,
    /// Every step's softmax (the first lane's), when asked for
    /// ([`Listener::keep_posteriors`]).
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
        let cmn = pipeline.causal_normaliser(dim)?;
        let stack = run.task.stack_frames;
        let keywords = match run.objective {
            LabelKind::Sequences => None,
            LabelKind::Classes if stack > 1 => return Err(ListenError::StackedKeywords),
            LabelKind::Classes => Some(
                Keywords::new(&run.labels, run.task.pooling, options.keywords, shift)
                    .map_err(ListenError::Keywords)?,
            ),
        };
        let lanes = match &keywords {
            None => vec![Lane::new(cmn, Reader::Labels(GreedyDecoder::new(BLANK)))],
            Some(k) => (0..k.lanes())
                .map(|_| Lane::new(cmn.clone(), Reader::Keywords(k.spotter.clone())))
                .collect(),
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
            lanes,
            keywords,
            quiet: QuietFrames::new((FLOOR_WINDOW / shift).round() as usize)
                .or_below_peak(BELOW_PEAK),
            paused: false,
            shift,
            stack,
            pending: Features::empty(dim),
            received: 0,
            frames: 0,
            posteriors: None,
        })
    }

    /// Keeps every step's softmax from now on, for [`Listener::take_posteriors`].
    pub fn keep_posteriors(&mut self) {
        self.posteriors.get_or_insert_with(Vec::new);
    }

    /// The softmax of every step kept so far, `[steps, classes]` row-major. A keyword run
    /// gives its first lane's, which starts afresh every [`KeywordOptions::restart`]
    /// seconds from the start of the stream.
    pub fn take_posteriors(&mut self) -> Vec<f32> {
        self.posteriors
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The class names, in output order (the blank first for label sequences).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Hears `samples` (±1 scale, at the listener's input rate); returns what they settled.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Event>, ListenError> {
        features::check_finite(samples)?;
        self.received += samples.len() as u64;
        let frames = match &mut self.resampler {
            Some(resampler) => {
                let resampled = resampler.push(samples)?;
                self.features.push(&resampled)
            }
            None => self.features.push(samples),
        };
        Ok(self.hear(frames, false))
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
        let mut events = self.hear(frames, true);
        events.extend(self.end_utterance());
        self.received = 0;
        self.frames = 0;
        for lane in &mut self.lanes {
            lane.restart(0);
        }
        if let Some(keywords) = &mut self.keywords {
            keywords.forget();
        }
        self.quiet = self.quiet.fresh();
        self.paused = false;
        Ok(events)
    }

    /// How long the current utterance has lasted, in seconds: the endpoint rules keep it
    /// under [`Endpoint::max_utterance`] (a keyword run's lanes under
    /// [`KeywordOptions::restart`]), so the state never covers more.
    pub fn utterance_seconds(&self) -> f64 {
        let longest = self.lanes.iter().map(|l| self.frames - l.start).max();
        longest.unwrap_or(0) as f64 * self.shift
    }

    /// The audio time heard so far, in seconds.
    pub fn heard(&self) -> f64 {
        self.received as f64 / self.input_rate as f64
    }

    /// Runs the model over new frames, utterance by utterance: over the whole steps they
    /// complete, keeping the rest for the next call, or over all of them at the end of the
    /// stream (`last`).
    fn hear(&mut self, new: Features, last: bool) -> Vec<Event> {
        let mut frames = new;
        if self.pending.num_frames > 0 {
            let mut joined = std::mem::replace(&mut self.pending, Features::empty(self.dim));
            joined.append(&frames);
            frames = joined;
        }
        if !last {
            // The frames after the last whole step wait for the rest of theirs.
            let whole = frames.num_frames / self.stack * self.stack;
            self.pending = Features {
                num_frames: frames.num_frames - whole,
                dim: frames.dim,
                data: frames.data.split_off(whole * frames.dim),
            };
            frames.num_frames = whole;
        }
        let mut events = Vec::new();
        while frames.num_frames > 0 {
            let used = if self.keywords.is_some() {
                self.spot_until_restart(&frames, &mut events)
            } else {
                self.hear_until_endpoint(&frames, &mut events)
            };
            frames = rest_of(&frames, used);
        }
        events
    }

    /// Runs the current utterance over `frames`; stops after a frame that ends it and
    /// returns how many frames it used.
    fn hear_until_endpoint(&mut self, frames: &Features, events: &mut Vec<Event>) -> usize {
        let (probabilities, _) = self.run_lane(0, frames);
        let classes = self.labels.len();
        let emitted_at = seconds_to_ms(self.heard());
        let mut quiet = 0;
        for (step, row) in probabilities.chunks_exact(classes).enumerate() {
            let used = ((step + 1) * self.stack).min(frames.num_frames);
            for frame in step * self.stack..used {
                self.frames += 1;
                // The first feature is the log energy (the Kaldi preset's MFCC).
                quiet = self.quiet.push(frames.data[frame * frames.dim]);
            }
            let Reader::Labels(decoder) = &mut self.lanes[0].reader else {
                unreachable!("a CTC run's lane decodes labels");
            };
            if decoder.push(row).is_some() {
                let text = text_of_emitted(&decoder.emitted, &self.labels);
                events.push(Event::Partial { text, emitted_at });
            }
            let seconds = |frames: usize| frames as f64 * self.shift;
            let steps = |steps: usize| seconds(steps * self.stack);
            let tail = Tail {
                blank: steps(decoder.trailing_blanks),
                quiet: seconds(quiet),
            };
            let heard = !decoder.emitted.is_empty();
            if self.endpoint.ended(heard, tail, steps(decoder.frames)) {
                events.extend(self.end_utterance());
                return used;
            }
        }
        frames.num_frames
    }

    /// Runs every lane of a keyword run over `frames` up to the next lane's restart;
    /// returns how many frames that was.
    fn spot_until_restart(&mut self, frames: &Features, events: &mut Vec<Event>) -> usize {
        let keywords = self.keywords.as_mut().expect("a keyword run");
        let paused = std::mem::take(&mut self.paused);
        if paused {
            keywords.pause_at(self.frames);
        }
        for (lane, start) in self.lanes.iter_mut().zip(keywords.restarts_at(self.frames)) {
            if start || paused {
                lane.restart(self.frames);
            }
        }
        let most = keywords.frames_to_restart(self.frames);
        let (used, paused) = keywords.frames_to_pause(frames, most);
        self.paused = paused;
        let frames = Features {
            num_frames: used,
            dim: frames.dim,
            data: frames.data[..used * frames.dim].to_vec(),
        };
        let mut heard = Vec::new();
        for lane in 0..self.lanes.len() {
            let (_, logits) = self.run_lane(lane, &frames);
            let classes = self.labels.len();
            let start = self.lanes[lane].start;
            let Reader::Keywords(spotter) = &mut self.lanes[lane].reader else {
                unreachable!("a keyword run's lanes spot keywords");
            };
            for row in logits.chunks_exact(classes) {
                if let Some(mut d) = spotter.push(row) {
                    (d.start, d.end) = (d.start + start, d.end + start);
                    heard.push(d);
                }
            }
        }
        self.frames += used;
        let emitted_at = seconds_to_ms(self.heard());
        let keywords = self.keywords.as_mut().expect("a keyword run");
        let seconds = |frame: usize| seconds_to_ms(frame as f64 * self.shift);
        events.extend(keywords.once_each(heard).map(|d| Event::Detection {
            label: self.labels[d.label].clone(),
            score: d.score,
            start: seconds(d.start),
            end: seconds(d.end),
            emitted_at,
        }));
        used
    }

    /// Runs lane `lane` over `frames`: every step's softmax and logits, row-major.
    fn run_lane(&mut self, lane: usize, frames: &Features) -> (Vec<f32>, Vec<f32>) {
        let frames = (frames, self.stack);
        let logits = self.lanes[lane].run(&self.model, frames, &self.device);
        let mut probabilities = logits.clone();
        softmax_rows(&mut probabilities, self.labels.len());
        if let (0, Some(kept)) = (lane, &mut self.posteriors) {
            kept.extend_from_slice(&probabilities);
        }
        (probabilities, logits)
    }

    /// The final result of a CTC run's current utterance, if it holds a label; starts
    /// afresh.
    fn end_utterance(&mut self) -> Option<Event> {
        let lane = &mut self.lanes[0];
        let start = lane.start;
        let Reader::Labels(decoder) = lane.restart(self.frames) else {
            return None;
        };
        if decoder.emitted.is_empty() {
            return None;
        }
        // An utterance starts on a step: at the stream's start or after an endpoint's step.
        let step_shift = self.shift * self.stack as f64;
        let labels = timed_labels(
            &decoder.emitted,
            &self.labels,
            (start / self.stack, step_shift),
        );
        let seconds = |frame: usize| seconds_to_ms(frame as f64 * self.shift);
        Some(Event::Final {
            text: text_of(&labels),
            labels,
            start: seconds(start),
            end: seconds(self.frames),
            emitted_at: seconds_to_ms(self.heard()),
        })
    }
}

/// The text of decoded labels.
fn text_of_emitted(emitted: &[Emitted], labels: &[String]) -> String {
    emitted.iter().map(|e| labels[e.label].as_str()).collect()
}

/// Refuses a run whose outputs at a step depend on later audio.
fn check_causal<B: Backend>(run: &Recogniser<B>) -> Result<(), ListenError> {
    let keywords = run.labels.iter().any(|l| l == SILENCE);
    if run.objective != LabelKind::Sequences && !keywords {
        return Err(ListenError::NeitherSequencesNorKeywords);
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
