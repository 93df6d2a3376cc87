//! Sample-rate conversion with rubato's synchronous FFT resampler, whole or streamed.

use rubato::{FftFixedIn, Resampler};

use crate::{Audio, FeatureError};

/// Input samples per processing chunk.
const CHUNK: usize = 1024;

/// Returns `audio` at `sample_rate`, band-limited and aligned (rubato's delay is
/// removed), `ceil(n · out / in)` samples long. Audio already at the rate is returned as is.
/// The samples are those of a [`StreamResampler`] fed the whole signal.
///
/// ```
/// let tone: Vec<f32> = (0..8000).map(|n| (n as f32 * 0.1).sin()).collect();
/// let audio = features::Audio { sample_rate: 8000, samples: tone };
/// let up = features::resample(&audio, 16000)?;
/// assert_eq!((up.sample_rate, up.samples.len()), (16000, 16000));
/// # Ok::<(), features::FeatureError>(())
/// ```
pub fn resample(audio: &Audio, sample_rate: u32) -> Result<Audio, FeatureError> {
    if audio.sample_rate == sample_rate {
        return Ok(audio.clone());
    }
    let mut stream = StreamResampler::new(audio.sample_rate, sample_rate)?;
    let mut samples = stream.push(&audio.samples)?;
    samples.extend(stream.finish()?);
    Ok(Audio {
        sample_rate,
        samples,
    })
}

/// Resampling of audio that arrives in chunks: the concatenated outputs of
/// [`StreamResampler::push`] and [`StreamResampler::finish`] are [`resample`]'s samples
/// for the whole signal, whatever the chunking.
///
/// ```
/// use features::StreamResampler;
/// let tone: Vec<f32> = (0..5000).map(|n| (n as f32 * 0.1).sin()).collect();
/// let mut stream = StreamResampler::new(8000, 16000)?;
/// let mut out = stream.push(&tone[..1234])?;
/// out.extend(stream.push(&tone[1234..])?);
/// out.extend(stream.finish()?);
/// let whole = features::resample(&features::Audio { sample_rate: 8000, samples: tone }, 16000)?;
/// assert_eq!(out, whole.samples);
/// # Ok::<(), features::FeatureError>(())
/// ```
pub struct StreamResampler {
    resampler: FftFixedIn<f32>,
    rates: (u32, u32),
    /// Input not yet a whole chunk.
    pending: Vec<f32>,
    /// Samples received so far.
    received: u64,
    /// Output samples produced by rubato so far, its delay included.
    produced: u64,
    /// Rubato's leading delay, dropped from the output.
    delay: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, FeatureError> {
        let resampler = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 1, 1)
            .map_err(|e| failed(from, to, &e))?;
        Ok(StreamResampler {
            delay: resampler.output_delay() as u64,
            resampler,
            rates: (from, to),
            pending: Vec::with_capacity(CHUNK),
            received: 0,
            produced: 0,
        })
    }

    /// Adds samples; returns the output samples they complete.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, FeatureError> {
        self.received += samples.len() as u64;
        let mut out = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let wanted = self.resampler.input_frames_next() - self.pending.len();
            let (now, later) = rest.split_at(wanted.min(rest.len()));
            self.pending.extend_from_slice(now);
            rest = later;
            if self.pending.len() == self.resampler.input_frames_next() {
                let chunk = std::mem::take(&mut self.pending);
                let output = self
                    .resampler
                    .process(&[&chunk], None)
                    .map_err(|e| self.error(&e))?;
                self.emit(&output[0], &mut out);
                self.pending = chunk;
                self.pending.clear();
            }
        }
        Ok(out)
    }

    /// Ends the input: the remaining output, `ceil(n · to / from)` samples in all.
    pub fn finish(mut self) -> Result<Vec<f32>, FeatureError> {
        let (from, to) = self.rates;
        let total = (self.received * to as u64).div_ceil(from as u64);
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let output = self
                .resampler
                .process_partial(Some(&[&pending]), None)
                .map_err(|e| self.error(&e))?;
            self.emit(&output[0], &mut out);
        }
        while self.produced < total + self.delay {
            let output = self
                .resampler
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| self.error(&e))?;
            self.emit(&output[0], &mut out);
        }
        let surplus = (self.produced - self.delay - total) as usize;
        out.truncate(out.len().saturating_sub(surplus));
        Ok(out)
    }

    /// Appends rubato's output past its delay.
    fn emit(&mut self, output: &[f32], out: &mut Vec<f32>) {
        let skip = self
            .delay
            .saturating_sub(self.produced)
            .min(output.len() as u64) as usize;
        self.produced += output.len() as u64;
        out.extend_from_slice(&output[skip..]);
    }

    fn error(&self, e: &dyn std::fmt::Display) -> FeatureError {
        failed(self.rates.0, self.rates.1, e)
    }
}

fn failed(from: u32, to: u32, e: &dyn std::fmt::Display) -> FeatureError {
    FeatureError::InvalidOptions(format!("cannot resample {from} Hz to {to} Hz: {e}"))
}
