//! Whole signals and WAV files: the frames of [`FeatureExtractor::compute`] and
//! [`FeatureExtractor::compute_wav`] come out of the same [`Stream`] that live audio goes
//! through, so streamed and whole-file features are one computation.

use std::borrow::Cow;
use std::io::Read;

use crate::extractor::{FeatureExtractor, Features, Output};
use crate::kernels::sum;
use crate::stream::Stream;
use crate::{FeatureError, LogScale, Preemphasis, WavBlocks};

impl FeatureExtractor {
    /// Frames of the chosen output for a whole signal.
    pub fn compute(&self, samples: &[f32], output: Output) -> Result<Features, FeatureError> {
        check_finite(samples)?;
        let inner = self.streamed_output(output);
        let mut stream = Stream::new_unchecked(Cow::Borrowed(self), inner, true);
        let mut frames = Features::empty(self.dim(inner));
        if matches!(self.options.frame.preemphasis, Preemphasis::WholeSignal(_)) {
            // Pre-emphasised a block at a time, so the signal is never copied whole.
            for block in samples.chunks(BLOCK) {
                stream.push_into(block, &mut frames);
            }
        } else {
            // Frames are read straight from the caller's samples: no copy of the signal.
            stream.buffer = Cow::Borrowed(samples);
            stream.received = samples.len();
        }
        frames.append(&stream.finish_in_place());
        Ok(self.finish_output(
            frames,
            stream.energies.as_deref().unwrap_or_default(),
            (inner, output),
        ))
    }

    /// Frames of the chosen output for a WAV file read block by block, so the recording
    /// never sits in memory whole: the frames of [`FeatureExtractor::compute`] on its
    /// samples. The file's rate is not checked against the options' (see [`crate::FilePipeline`]).
    ///
    /// ```no_run
    /// use features::{Channel, FeatureExtractor, FeatureOptions, Output, Preset, WavBlocks};
    /// let extractor = FeatureExtractor::new(FeatureOptions::preset(Preset::Kaldi))?;
    /// let mut wav = WavBlocks::open("an_hour_of_speech.wav", Channel::Mean)?;
    /// let mfcc = extractor.compute_wav(&mut wav, Output::Mfcc)?;
    /// # Ok::<(), features::FeatureError>(())
    /// ```
    pub fn compute_wav<R: Read>(
        &self,
        wav: &mut WavBlocks<R>,
        output: Output,
    ) -> Result<Features, FeatureError> {
        let inner = self.streamed_output(output);
        let mut stream = Stream::new_unchecked(Cow::Borrowed(self), inner, true);
        let mut frames = Features::empty(self.dim(inner));
        // The WAV decoder has refused non-finite samples already.
        while let Some(block) = wav.next_block()? {
            stream.push_into(block, &mut frames);
        }
        frames.append(&stream.finish_in_place());
        Ok(self.finish_output(
            frames,
            stream.energies.as_deref().unwrap_or_default(),
            (inner, output),
        ))
    }

    /// What the frame loop produces for `output`: cepstra directly unless `top_db` needs
    /// every log-mel frame first.
    fn streamed_output(&self, output: Output) -> Output {
        let top_db = matches!(
            self.options.mel.log,
            LogScale::Decibel {
                top_db: Some(_),
                ..
            }
        );
        match output {
            Output::Mfcc if top_db => Output::LogMel,
            other => other,
        }
    }

    /// `output` from the frame loop's frames (see [`Self::streamed_output`]): `top_db`
    /// applied to log-mel frames, and their cepstra when `output` asks for them.
    fn finish_output(
        &self,
        frames: Features,
        energies: &[f32],
        (streamed, output): (Output, Output),
    ) -> Features {
        if streamed != Output::LogMel {
            return frames;
        }
        let mut log_mel = frames;
        if let LogScale::Decibel {
            top_db: Some(top_db),
            ..
        } = self.options.mel.log
        {
            let peak = log_mel
                .data
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            log_mel
                .data
                .iter_mut()
                .for_each(|v| *v = v.max(peak - top_db));
        }
        if output == Output::LogMel {
            return log_mel;
        }
        let n_mfcc = self.options.cepstral.n_mfcc;
        let mut mfcc = Features {
            num_frames: log_mel.num_frames,
            dim: n_mfcc,
            data: vec![0.0; log_mel.num_frames * n_mfcc],
        };
        for (t, (mel, out)) in log_mel
            .frames()
            .zip(mfcc.data.chunks_exact_mut(n_mfcc))
            .enumerate()
        {
            self.cepstra(mel, energies[t], out);
        }
        mfcc
    }

    /// A streaming computation: feed audio in chunks of any size and receive the
    /// frames that are complete; [`Stream::finish`] returns the rest. The frames
    /// equal those of the whole-signal call.
    ///
    /// ```
    /// use features::{FeatureExtractor, FeatureOptions, Output, Preset};
    /// let extractor = FeatureExtractor::new(FeatureOptions::preset(Preset::Kaldi))?;
    /// let audio: Vec<f32> = (0..8000).map(|n| (n as f32 * 0.01).sin() * 0.1).collect();
    /// let mut stream = extractor.stream(Output::Mfcc)?;
    /// let mut frames = stream.push(&audio[..3000]);
    /// frames.append(&stream.push(&audio[3000..]));
    /// frames.append(&stream.finish());
    /// assert_eq!(frames, extractor.mfcc(&audio)?);
    /// # Ok::<(), features::FeatureError>(())
    /// ```
    pub fn stream(&self, output: Output) -> Result<Stream<'_>, FeatureError> {
        self.check_streamable()?;
        Ok(Stream::new_unchecked(Cow::Borrowed(self), output, false))
    }

    /// [`FeatureExtractor::stream`] that owns its extractor, for a stream kept beside
    /// other state (a live recogniser) rather than borrowed for one call.
    pub fn into_stream(self, output: Output) -> Result<Stream<'static>, FeatureError> {
        self.check_streamable()?;
        Ok(Stream::new_unchecked(Cow::Owned(self), output, false))
    }

    /// Refuses options that need the whole input before the first frame.
    fn check_streamable(&self) -> Result<(), FeatureError> {
        if let LogScale::Decibel {
            top_db: Some(_), ..
        } = self.options.mel.log
        {
            return Err(FeatureError::NeedsWholeInput(
                "top_db (relative to the whole input's maximum)",
            ));
        }
        Ok(())
    }
}

/// Samples per block when a whole signal is pre-emphasised (whole-signal pre-emphasis).
const BLOCK: usize = 1 << 16;

/// The error for the first non-finite sample: what the whole-signal computations check, for
/// callers that feed a [`Stream`] (which does not check) themselves.
///
/// ```
/// use features::{FeatureError, check_finite};
/// assert!(check_finite(&[0.0, 0.5]).is_ok());
/// let err = check_finite(&[0.0, f32::NAN]).unwrap_err();
/// assert!(matches!(err, FeatureError::NonFiniteSample { index: 1, .. }));
/// ```
pub fn check_finite(samples: &[f32]) -> Result<(), FeatureError> {
    // A vectorised sum is finite exactly when every sample is (audio cannot overflow it).
    if !sum(samples).is_finite()
        && let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite())
    {
        return Err(FeatureError::NonFiniteSample { index, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use isa::{CpuIsa, set_cpu_isa_limit};

    use crate::extractor::{FeatureExtractor, Output};
    use crate::stream::Stream;
    use crate::{Channel, FeatureOptions, Preset, read_wav};

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/audio/goforward_16k.wav");
        let samples = read_wav(path, Channel::Mean).expect("test clip").samples;
        let mut librosa = FeatureOptions::preset(Preset::Librosa);
        librosa.frame.sample_rate = 16000;
        let mut dithered = FeatureOptions::preset(Preset::Kaldi);
        dithered.frame.dither = 1.0;
        let supported: Vec<CpuIsa> = CpuIsa::ALL
            .into_iter()
            .filter(|i| i.is_supported())
            .collect();
        println!("instruction sets on this CPU: {supported:?}");
        for options in [
            FeatureOptions::preset(Preset::Kaldi),
            FeatureOptions::preset(Preset::Htk),
            librosa,
            dithered,
        ] {
            let extractor = FeatureExtractor::new(options).expect("valid");
            let mut streams: Vec<Stream> = supported
                .iter()
                .map(|&isa| {
                    set_cpu_isa_limit(Some(isa));
                    let stream =
                        Stream::new_unchecked(Cow::Borrowed(&extractor), Output::LogMel, false);
                    assert_eq!(stream.scratch.isa, isa);
                    stream
                })
                .collect();
            set_cpu_isa_limit(None);
            let n_mels = extractor.dim(Output::LogMel);
            for start in (0..samples.len() - extractor.win).step_by(extractor.hop * 3) {
                let source = &samples[start..start + extractor.win];
                let mut results = Vec::new();
                for stream in &mut streams {
                    let mut log_mel = vec![0.0; n_mels];
                    let energy = extractor.process_frame(source, &mut stream.scratch, &mut log_mel);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    results.push((
                        energy.to_bits(),
                        bits(&log_mel),
                        bits(&stream.scratch.power),
                    ));
                }
                for (result, isa) in results.iter().zip(&supported) {
                    assert_eq!(result, &results[0], "{isa:?} against portable at {start}");
                }
            }
        }
    }
}
