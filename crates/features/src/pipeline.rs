//! One file in, one feature matrix out: reading, channel choice, resampling,
//! features, deltas and CMVN in the order Kaldi's recipes apply them.

use std::path::Path;

use crate::{
    Audio, CausalCmvn, Channel, Cmvn, CmvnPrior, FeatureError, FeatureExtractor, FeatureOptions,
    Features, Output, WavBlocks, add_deltas, apply_cmvn, decode_wav, resample,
};

/// Everything needed to turn a WAV file into features.
///
/// ```no_run
/// use features::{FeatureOptions, FilePipeline, Output, Preset};
/// let pipeline = FilePipeline::new(FeatureOptions::preset(Preset::Kaldi)).with_deltas(2, 2);
/// let features = pipeline.run("speech.wav")?; // [frames, 39]
/// # Ok::<(), features::FeatureError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FilePipeline {
    /// Feature options; `frame.sample_rate` is the rate features are computed at.
    pub options: FeatureOptions,
    /// MFCC or log-mel.
    pub output: Output,
    /// Channel choice for multi-channel files.
    pub channel: Channel,
    /// Resample files at another rate (otherwise they are refused).
    pub allow_resampling: bool,
    /// When false, each file is processed at its own rate and `options.frame.sample_rate` is ignored.
    pub fixed_rate: bool,
    /// Delta order and window, if any.
    pub deltas: Option<(usize, usize)>,
    /// Normalisation applied last, if any.
    pub cmvn: Option<Cmvn>,
    /// Where causal normalisation ([`Cmvn::Causal`]) starts from ([`CausalCmvn::with_prior`]);
    /// the other normalisations ignore it.
    pub cmvn_prior: Option<CmvnPrior>,
    /// Speed perturbation (sox's and Kaldi's `speed`): the file plays `speed` times faster,
    /// tempo and pitch together, by resampling it as if it had been recorded at `speed`
    /// times its rate. 1 leaves it alone; 0.9 and 1.1 are the usual augmentation.
    pub speed: f32,
    /// White noise added after resampling, at this signal-to-noise ratio in dB
    /// ([`crate::noise::add_white_noise`]); none when absent.
    pub noise_snr_db: Option<f32>,
}

impl FilePipeline {
    /// MFCC at the options' rate, channels averaged, resampling allowed, no deltas or CMVN.
    pub fn new(options: FeatureOptions) -> Self {
        FilePipeline {
            options,
            output: Output::Mfcc,
            channel: Channel::Mean,
            allow_resampling: true,
            fixed_rate: true,
            deltas: None,
            cmvn: None,
            cmvn_prior: None,
            speed: 1.0,
            noise_snr_db: None,
        }
    }

    /// Adds deltas up to `order` with regression window `window`.
    pub fn with_deltas(mut self, order: usize, window: usize) -> Self {
        self.deltas = Some((order, window));
        self
    }

    /// Features of one file. At the configured rate, without speed or noise, the file is
    /// read and processed block by block, so a long recording never sits in memory whole.
    pub fn run(&self, path: impl AsRef<Path>) -> Result<Features, FeatureError> {
        self.check_perturbation()?;
        let mut wav = WavBlocks::open(path, self.channel)?;
        let rate = wav.sample_rate();
        let streamable = self.speed == 1.0
            && self.noise_snr_db.is_none()
            && (!self.fixed_rate || rate == self.options.frame.sample_rate);
        if !streamable {
            let mut samples = Vec::new();
            while let Some(block) = wav.next_block()? {
                samples.extend_from_slice(block);
            }
            return self.features_of(Audio {
                sample_rate: rate,
                samples,
            });
        }
        let mut options = self.options.clone();
        options.frame.sample_rate = rate;
        let features = FeatureExtractor::new(options)?.compute_wav(&mut wav, self.output)?;
        self.post_process(features)
    }

    /// Features of a WAV file already in memory (e.g. read once to hash it as well).
    pub fn run_bytes(&self, bytes: &[u8]) -> Result<Features, FeatureError> {
        self.check_perturbation()?;
        self.features_of(decode_wav(bytes, self.channel)?)
    }

    fn check_perturbation(&self) -> Result<(), FeatureError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(FeatureError::InvalidOptions(format!(
                "speed {} must be positive",
                self.speed
            )));
        }
        match self.noise_snr_db {
            Some(snr) if !snr.is_finite() => Err(FeatureError::InvalidOptions(format!(
                "noise SNR {snr} dB must be finite"
            ))),
            _ => Ok(()),
        }
    }

    /// Features of decoded audio, e.g. a stretch cut from a longer recording.
    pub fn run_audio(&self, audio: Audio) -> Result<Features, FeatureError> {
        self.check_perturbation()?;
        self.features_of(audio)
    }

    /// Resampling (and speed), features, deltas and CMVN of decoded audio.
    fn features_of(&self, mut audio: Audio) -> Result<Features, FeatureError> {
        let mut options = self.options.clone();
        if !self.fixed_rate {
            options.frame.sample_rate = audio.sample_rate;
        }
        if self.speed != 1.0 {
            // Asked for explicitly, so it resamples even where `allow_resampling` is off.
            let claimed = (audio.sample_rate as f64 * self.speed as f64).round() as u32;
            audio.sample_rate = claimed;
            audio = resample(&audio, options.frame.sample_rate)?;
        } else if audio.sample_rate != options.frame.sample_rate {
            if !self.allow_resampling {
                return Err(FeatureError::SampleRateMismatch {
                    file: audio.sample_rate,
                    configured: options.frame.sample_rate,
                });
            }
            audio = resample(&audio, options.frame.sample_rate)?;
        }
        if let Some(snr_db) = self.noise_snr_db {
            crate::noise::add_white_noise(&mut audio.samples, snr_db);
        }
        let features = FeatureExtractor::new(options)?.compute(&audio.samples, self.output)?;
        self.post_process(features)
    }

    /// Deltas and CMVN, as configured.
    fn post_process(&self, mut features: Features) -> Result<Features, FeatureError> {
        if let Some((order, window)) = self.deltas {
            features = add_deltas(&features, order, window);
        }
        let dim = features.dim;
        if features.num_frames == 0 {
            return Ok(features);
        }
        if let Some(mut cmn) = self.causal_normaliser(dim)? {
            features
                .data
                .chunks_exact_mut(dim)
                .for_each(|row| cmn.normalise(row));
        } else if let Some(cmvn) = self.cmvn {
            apply_cmvn(&mut features, cmvn)?;
        }
        Ok(features)
    }

    /// The frame-by-frame normaliser of [`Cmvn::Causal`] for frames of `dim` values,
    /// starting from [`Self::cmvn_prior`] when there is one: what this pipeline applies to a
    /// whole file, for a stream to apply one frame at a time. `None` for other
    /// normalisations.
    pub fn causal_normaliser(&self, dim: usize) -> Result<Option<CausalCmvn>, FeatureError> {
        let Some(Cmvn::Causal { window, variance }) = self.cmvn else {
            return Ok(None);
        };
        let cmn = CausalCmvn::new(window, dim, variance)?;
        Ok(Some(match &self.cmvn_prior {
            Some(prior) => cmn.with_prior(prior.clone())?,
            None => cmn,
        }))
    }
}
