//! Reading WAV files: hound parses the header, the sample data is decoded in bulk.
//!
//! hound's per-sample iterator costs about four times more than decoding the data
//! chunk as one byte slice, so only the header goes through hound.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::FeatureError;

/// Highest sample rate accepted as audio; anything above is a damaged header.
pub(crate) const MAX_SAMPLE_RATE: u32 = 1_000_000;

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

impl WavFormat {
    /// Bytes per sample of one channel.
    fn width(&self) -> usize {
        usize::from(self.bits_per_sample).div_ceil(8)
    }
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
    let (format, expected, data) = open_wav(reader, channel)?;
    // The header is untrusted: reserve at most 64 MiB up front and let reading grow the rest.
    let mut bytes = Vec::with_capacity(expected.min(64 << 20));
    data.take(expected as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| FeatureError::NotWav(e.to_string()))?;
    if bytes.len() < expected {
        return Err(FeatureError::Truncated {
            expected,
            found: bytes.len(),
        });
    }
    let mut interleaved = Vec::new();
    decode_samples(&bytes, format, 0, &mut interleaved)?;
    Ok(Audio {
        sample_rate: format.sample_rate,
        samples: to_mono(interleaved, format.channels, channel),
    })
}

/// A WAV file read block by block: the samples of one channel (or the channels' mean) a
/// block at a time, in a buffer that is reused, so a long recording never sits in memory
/// whole. The blocks together are exactly [`read_wav`]'s samples.
///
/// ```no_run
/// use features::{Channel, WavBlocks};
/// let mut wav = WavBlocks::open("speech.wav", Channel::Mean)?;
/// let mut peak = 0.0f32;
/// while let Some(block) = wav.next_block()? {
///     peak = block.iter().fold(peak, |p, x| p.max(x.abs()));
/// }
/// # Ok::<(), features::FeatureError>(())
/// ```
pub struct WavBlocks<R> {
    format: WavFormat,
    channel: Channel,
    data: R,
    /// Bytes of sample data the header promises and not yet read.
    remaining: usize,
    expected: usize,
    bytes: Vec<u8>,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
}

/// Sample instants per block (256 KiB of 16-bit mono).
const BLOCK_FRAMES: usize = 1 << 17;

impl WavBlocks<BufReader<File>> {
    /// Opens a WAV file and reads its header.
    pub fn open(path: impl AsRef<Path>, channel: Channel) -> Result<Self, FeatureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FeatureError::io(path, e))?;
        WavBlocks::new(BufReader::new(file), channel)
    }
}

impl<R: Read> WavBlocks<R> {
    /// Reads the header from `reader`; the samples follow block by block.
    pub fn new(reader: R, channel: Channel) -> Result<Self, FeatureError> {
        let (format, expected, data) = open_wav(reader, channel)?;
        Ok(WavBlocks {
            format,
            channel,
            data,
            remaining: expected,
            expected,
            bytes: Vec::new(),
            interleaved: Vec::new(),
            mono: Vec::new(),
        })
    }

    /// The file's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.format.sample_rate
    }

    /// The next block of samples, or `None` after the last.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, FeatureError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let frame_bytes = self.format.channels * self.format.width();
        let want = self.remaining.min(BLOCK_FRAMES * frame_bytes);
        self.bytes.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match self.data.read(&mut self.bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FeatureError::NotWav(e.to_string())),
            }
        }
        if filled < want {
            return Err(FeatureError::Truncated {
                expected: self.expected,
                found: self.expected - self.remaining + filled,
            });
        }
        let offset = (self.expected - self.remaining) / self.format.width();
        self.remaining -= want;
        decode_samples(&self.bytes, self.format, offset, &mut self.interleaved)?;
        if self.format.channels == 1 {
            std::mem::swap(&mut self.mono, &mut self.interleaved);
        } else {
            mix_into(
                &self.interleaved,
                self.format.channels,
                self.channel,
                &mut self.mono,
            );
        }
        Ok(Some(&self.mono))
    }
}

/// Parses the header and checks it: the format, the sample data's length in bytes and the
/// reader positioned at the data.
fn open_wav<R: Read>(reader: R, channel: Channel) -> Result<(WavFormat, usize, R), FeatureError> {
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
    if !matches!(
        (format.float, format.bits_per_sample),
        (false, 8 | 16 | 24 | 32) | (true, 32)
    ) {
        let kind = if format.float { "float" } else { "integer PCM" };
        return Err(FeatureError::UnsupportedEncoding(format!(
            "{}-bit {kind}",
            format.bits_per_sample
        )));
    }
    let expected = wav.len() as usize * format.width();
    Ok((format, expected, wav.into_inner()))
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

/// Decodes `bytes` into `samples` (replacing its contents); `offset` is the index of the
/// first sample in the file, for the error that names a non-finite one.
fn decode_samples(
    bytes: &[u8],
    format: WavFormat,
    offset: usize,
    samples: &mut Vec<f32>,
) -> Result<(), FeatureError> {
    samples.clear();
    match (format.float, format.bits_per_sample) {
        (false, 8) => samples.extend(bytes.iter().map(|&b| (b as f32 - 128.0) * (1.0 / 128.0))),
        (false, 16) => samples.extend(
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .map(|&b| i16::from_le_bytes(b) as f32 * (1.0 / 32768.0)),
        ),
        (false, 24) => samples.extend(bytes.as_chunks::<3>().0.iter().map(|&[a, b, c]| {
            (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 * (1.0 / 8_388_608.0)
        })),
        (false, _) => samples.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| (i32::from_le_bytes(b) as f64 * (1.0 / 2_147_483_648.0)) as f32),
        ),
        (true, _) => samples.extend(
            bytes
                .as_chunks::<4>()
                .0
                .iter()
                .map(|&b| f32::from_le_bytes(b)),
        ),
    }
    if format.float
        && let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite())
    {
        return Err(FeatureError::NonFiniteSample {
            index: offset + index,
            value,
        });
    }
    Ok(())
}

fn to_mono(interleaved: Vec<f32>, channels: usize, channel: Channel) -> Vec<f32> {
    if channels == 1 {
        return interleaved;
    }
    let mut mono = Vec::with_capacity(interleaved.len() / channels);
    mix_into(&interleaved, channels, channel, &mut mono);
    mono
}

/// One channel of `interleaved` samples, or their mean, into `mono` (replacing its contents).
fn mix_into(interleaved: &[f32], channels: usize, channel: Channel, mono: &mut Vec<f32>) {
    mono.clear();
    match channel {
        Channel::Index(index) => {
            mono.extend(interleaved.iter().skip(index).step_by(channels).copied())
        }
        Channel::Mean => mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        ),
    }
}
