//! Reading WAV files: hound parses the header, the sample data is decoded in bulk.
//!
//! hound's per-sample iterator costs about four times more than decoding the data
//! chunk as one byte slice, so only the header goes through hound.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::FeatureError;

/// Highest sample rate accepted as audio; anything above is a damaged header.
const MAX_SAMPLE_RATE: u32 = 1_000_000;

/// Mono audio as 32-bit floats at full scale ±1 (integer PCM divided by 2^(bits−1)).
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// One value per sample instant.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// How several channels become the one the features are computed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Channel {
    /// The mean of all channels (a mono file is returned as is).
    #[default]
    Mean,
    /// One channel, counted from 0.
    Index(usize),
}

/// The sample encoding of a WAV file, as its header declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavFormat {
    pub sample_rate: u32,
    pub channels: usize,
    pub bits_per_sample: u16,
    pub float: bool,
}

/// Reads a WAV file and reduces it to one channel.
///
/// Supports PCM 8-bit unsigned, 16-, 24- and 32-bit signed, 32-bit float, plain
/// and `WAVE_FORMAT_EXTENSIBLE` headers, any rate and channel count.
///
/// ```no_run
/// use features::{read_wav, Channel};
/// let audio = read_wav("speech.wav", Channel::Mean)?;
/// println!("{} s at {} Hz", audio.duration_secs(), audio.sample_rate);
/// # Ok::<(), features::FeatureError>(())
/// ```
pub fn read_wav(path: impl AsRef<Path>, channel: Channel) -> Result<Audio, FeatureError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| FeatureError::io(path, e))?;
    decode_wav(BufReader::new(file), channel)
}

/// Decodes WAV bytes from any reader; see [`read_wav`].
pub fn decode_wav<R: Read>(reader: R, channel: Channel) -> Result<Audio, FeatureError> {
    let wav = hound::WavReader::new(reader).map_err(hound_error)?;
    let spec = wav.spec();
    let format = WavFormat {
        sample_rate: spec.sample_rate,
        channels: spec.channels as usize,
        bits_per_sample: spec.bits_per_sample,
        float: spec.sample_format == hound::SampleFormat::Float,
    };
    if format.channels == 0 {
        return Err(FeatureError::NoChannels);
    }
    if format.sample_rate == 0 || format.sample_rate > MAX_SAMPLE_RATE {
        return Err(FeatureError::BadSampleRate(format.sample_rate));
    }
    if let Channel::Index(index) = channel
        && index >= format.channels
    {
        return Err(FeatureError::NoSuchChannel {
            index,
            channels: format.channels,
        });
    }
    let width = match (format.float, format.bits_per_sample) {
        (false, 8) => 1,
        (false, 16) => 2,
        (false, 24) => 3,
        (false, 32) | (true, 32) => 4,
        (float, bits) => {
            let kind = if float { "float" } else { "integer PCM" };
            return Err(FeatureError::UnsupportedEncoding(format!(
                "{bits}-bit {kind}"
            )));
        }
    };
    let expected = wav.len() as usize * width;
    // The header is untrusted: reserve at most 64 MiB up front and let reading grow the rest.
    let mut bytes = Vec::with_capacity(expected.min(64 << 20));
    wav.into_inner()
        .take(expected as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| FeatureError::NotWav(e.to_string()))?;
    if bytes.len() < expected {
        return Err(FeatureError::Truncated {
            expected,
            found: bytes.len(),
        });
    }
    let interleaved = decode_samples(&bytes, format)?;
    Ok(Audio {
        sample_rate: format.sample_rate,
        samples: to_mono(interleaved, format.channels, channel),
    })
}

fn hound_error(error: hound::Error) -> FeatureError {
    match error {
        hound::Error::Unsupported => FeatureError::UnsupportedEncoding(
            "compressed or non-PCM format tag (ADPCM, A-law, µ-law, …)".into(),
        ),
        hound::Error::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            FeatureError::NotWav("the header ends early".into())
        }
        other => FeatureError::NotWav(other.to_string()),
    }
}

fn decode_samples(bytes: &[u8], format: WavFormat) -> Result<Vec<f32>, FeatureError> {
    let samples: Vec<f32> = match (format.float, format.bits_per_sample) {
        (false, 8) => bytes
            .iter()
            .map(|&b| (b as f32 - 128.0) * (1.0 / 128.0))
            .collect(),
        (false, 16) => bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&b| i16::from_le_bytes(b) as f32 * (1.0 / 32768.0))
            .collect(),
        (false, 24) => bytes
            .as_chunks::<3>()
            .0
            .iter()
            .map(|&[a, b, c]| (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 * (1.0 / 8_388_608.0))
            .collect(),
        (false, _) => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&b| (i32::from_le_bytes(b) as f64 * (1.0 / 2_147_483_648.0)) as f32)
            .collect(),
        (true, _) => bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|&b| f32::from_le_bytes(b))
            .collect(),
    };
    if format.float
        && let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite())
    {
        return Err(FeatureError::NonFiniteSample { index, value });
    }
    Ok(samples)
}

fn to_mono(interleaved: Vec<f32>, channels: usize, channel: Channel) -> Vec<f32> {
    match (channels, channel) {
        (1, _) => interleaved,
        (_, Channel::Index(index)) => interleaved
            .iter()
            .skip(index)
            .step_by(channels)
            .copied()
            .collect(),
        (_, Channel::Mean) => interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect(),
    }
}
