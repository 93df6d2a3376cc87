//! Features of audio that arrives in chunks: frames are emitted as soon as they are
//! whole, bit for bit the frames of the whole signal.

use std::borrow::Cow;

use crate::extractor::{FeatureExtractor, Features, Gaussian, Output, Scratch};
use crate::{Framing, Padding, Preemphasis};

/// An incremental computation over audio that arrives in chunks; see [`FeatureExtractor::stream`].
pub struct Stream<'a> {
    /// Borrowed by the whole-signal computations, owned by [`FeatureExtractor::into_stream`].
    pub(crate) extractor: Cow<'a, FeatureExtractor>,
    pub(crate) output: Output,
    /// Samples kept for frames not yet emitted (whole-signal pre-emphasis applied,
    /// not yet scaled); borrowed from the caller by the whole-signal computation.
    pub(crate) buffer: Cow<'a, [f32]>,
    /// Stream index of `buffer[0]`.
    pub(crate) buffer_start: usize,
    /// Samples received so far.
    pub(crate) received: usize,
    /// Last raw sample, for whole-signal pre-emphasis across chunks.
    pub(crate) previous: Option<f32>,
    pub(crate) next_frame: usize,
    pub(crate) scratch: Scratch,
    /// A frame that reaches into the padding, assembled sample by sample.
    pub(crate) padded: Vec<f32>,
    pub(crate) log_mel: Vec<f32>,
    /// Each frame's energy, kept only for whole-signal `top_db` (a live stream's memory
    /// stays flat).
    pub(crate) energies: Option<Vec<f32>>,
}

impl<'a> Stream<'a> {
    pub(crate) fn new_unchecked(
        extractor: Cow<'a, FeatureExtractor>,
        output: Output,
        keep_energies: bool,
    ) -> Self {
        Stream {
            output,
            buffer: Cow::Owned(Vec::new()),
            buffer_start: 0,
            received: 0,
            previous: None,
            next_frame: 0,
            scratch: Scratch {
                frame: vec![0.0; extractor.n_fft],
                raw: vec![0.0; extractor.win],
                fft: extractor.fft.buffers(),
                power: vec![0.0; extractor.n_fft / 2 + 1],
                gauss: Gaussian::new(extractor.options.frame.dither_seed),
                isa: isa::cpu_isa(),
            },
            padded: vec![0.0; extractor.win],
            log_mel: vec![0.0; extractor.options.mel.n_mels],
            energies: keep_energies.then(Vec::new),
            extractor,
        }
    }

    /// Adds samples (±1 scale); returns the frames completed by them.
    ///
    /// Non-finite samples are not checked here (the whole-signal call and the
    /// WAV reader check them); they propagate as NaN.
    pub fn push(&mut self, samples: &[f32]) -> Features {
        let mut out = Features::empty(self.extractor.dim(self.output));
        self.push_into(samples, &mut out);
        out
    }

    /// [`Stream::push`], appending the completed frames to `out`.
    pub(crate) fn push_into(&mut self, samples: &[f32], out: &mut Features) {
        let buffer = self.buffer.to_mut();
        match self.extractor.options.frame.preemphasis {
            Preemphasis::WholeSignal(k) => {
                for &x in samples {
                    buffer.push(match self.previous {
                        Some(p) => x - k * p,
                        None => x,
                    });
                    self.previous = Some(x);
                }
            }
            _ => buffer.extend_from_slice(samples),
        }
        self.received += samples.len();
        while self.ready(self.next_frame) {
            self.emit(None, out);
        }
        self.trim();
    }

    /// Ends the input and returns the remaining frames (those that reach past the end).
    pub fn finish(mut self) -> Features {
        self.finish_in_place()
    }

    pub(crate) fn finish_in_place(&mut self) -> Features {
        let total = self.extractor.num_frames(self.received);
        let mut out = Features::empty(self.extractor.dim(self.output));
        while self.next_frame < total {
            self.emit(Some(self.received), &mut out);
        }
        out
    }

    /// Whether frame `t` can be computed before the input ends.
    fn ready(&self, t: usize) -> bool {
        let start = self.extractor.frame_start(t);
        let end = start + self.extractor.win as isize;
        end <= self.received as isize && -start < self.received as isize
    }

    fn emit(&mut self, total: Option<usize>, out: &mut Features) {
        let extractor = &*self.extractor;
        let (start, win) = (extractor.frame_start(self.next_frame), extractor.win);
        let buffer_end = (self.buffer_start + self.buffer.len()) as isize;
        let energy = if start >= self.buffer_start as isize && start + win as isize <= buffer_end {
            let from = start as usize - self.buffer_start;
            extractor.process_frame(
                &self.buffer[from..from + win],
                &mut self.scratch,
                &mut self.log_mel,
            )
        } else {
            let mut padded = std::mem::take(&mut self.padded);
            for (i, sample) in padded.iter_mut().enumerate() {
                *sample = self.sample_at(start + i as isize, total);
            }
            let energy = extractor.process_frame(&padded, &mut self.scratch, &mut self.log_mel);
            self.padded = padded;
            energy
        };
        if let Some(energies) = &mut self.energies {
            energies.push(energy);
        }
        match self.output {
            Output::LogMel => out.data.extend_from_slice(&self.log_mel),
            Output::Spectrum => out.data.extend_from_slice(&self.scratch.power),
            Output::Mfcc => {
                let at = out.data.len();
                out.data.resize(at + extractor.options.cepstral.n_mfcc, 0.0);
                extractor.cepstra(&self.log_mel, energy, &mut out.data[at..]);
            }
        }
        out.num_frames += 1;
        self.next_frame += 1;
    }

    /// A sample by stream index, with the framing's padding outside `0..total`.
    fn sample_at(&self, index: isize, total: Option<usize>) -> f32 {
        let reflect = matches!(
            self.extractor.options.frame.framing,
            Framing::Centered {
                pad: Padding::Reflect
            }
        );
        let n = total.unwrap_or(self.received) as isize;
        let index = if reflect && n > 1 {
            let period = 2 * (n - 1);
            let folded = index.rem_euclid(period);
            if folded >= n { period - folded } else { folded }
        } else if reflect {
            0
        } else {
            index
        };
        if index < 0 || index >= n {
            return 0.0;
        }
        self.buffer[index as usize - self.buffer_start]
    }

    /// Drops samples no later frame can need (a margin of n_fft covers reflection).
    fn trim(&mut self) {
        let keep_from = (self.extractor.frame_start(self.next_frame)
            - self.extractor.n_fft as isize)
            .max(0) as usize;
        let reflect_start = matches!(
            self.extractor.options.frame.framing,
            Framing::Centered {
                pad: Padding::Reflect
            }
        ) && keep_from < 2 * self.extractor.n_fft;
        if keep_from > self.buffer_start && !reflect_start {
            self.buffer.to_mut().drain(..keep_from - self.buffer_start);
            self.buffer_start = keep_from;
        }
    }
}
