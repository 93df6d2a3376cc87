//! Audio read from a pipe as it arrives: raw little-endian PCM (`arecord -t raw`,
//! `sox … -t raw -`) or a WAV stream, whose header may not know the stream's length.

use std::io::{ErrorKind, Read};

use crate::FeatureError;

/// How the samples of a stream are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcmFormat {
    /// Signed 16-bit little-endian integers, mono (`arecord -f S16_LE`).
    S16le,
    /// 32-bit little-endian floats, mono, ±1 scale.
    F32le,
    /// A WAV header, then its samples (8/16/24/32-bit integer or 32-bit float, channels
    /// averaged). A length of zero or 0xFFFFFFFF in the header (a writer that could not seek
    /// back) means "until the stream ends".
    Wav,
}

/// The encoding of one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Encoding {
    bytes: usize,
    float: bool,
    channels: usize,
}

/// Samples from a byte stream, a chunk at a time, as soon as they arrive.
///
/// ```
/// use features::{PcmFormat, PcmReader};
/// let bytes: Vec<u8> = [0i16, 16384, -32768].iter().flat_map(|s| s.to_le_bytes()).collect();
/// let mut pcm = PcmReader::new(&bytes[..], PcmFormat::S16le, 16000)?;
/// assert_eq!(pcm.next_chunk()?, Some(vec![0.0, 0.5, -1.0]));
/// assert_eq!(pcm.next_chunk()?, None);
/// # Ok::<(), features::FeatureError>(())
/// ```
pub struct PcmReader<R> {
    reader: R,
    encoding: Encoding,
    sample_rate: u32,
    /// Bytes of a sample instant not yet whole.
    partial: Vec<u8>,
    /// Sample bytes the WAV header promises and not yet read (unbounded for raw input).
    remaining: u64,
    buffer: Vec<u8>,
}

/// Bytes read per call: 50 ms of 16 kHz 16-bit mono, so a pipe's audio is handed on promptly.
const READ_BYTES: usize = 1600;

impl<R: Read> PcmReader<R> {
    /// A reader of `format`; `sample_rate` is the raw formats' rate (a WAV header has its own).
    pub fn new(mut reader: R, format: PcmFormat, sample_rate: u32) -> Result<Self, FeatureError> {
        let (encoding, sample_rate, remaining) = match format {
            PcmFormat::S16le => (Encoding::mono(2, false), sample_rate, u64::MAX),
            PcmFormat::F32le => (Encoding::mono(4, true), sample_rate, u64::MAX),
            PcmFormat::Wav => read_header(&mut reader)?,
        };
        if sample_rate == 0 || sample_rate > crate::wav::MAX_SAMPLE_RATE {
            return Err(FeatureError::BadSampleRate(sample_rate));
        }
        Ok(PcmReader {
            reader,
            encoding,
            sample_rate,
            partial: Vec::new(),
            remaining,
            buffer: vec![0; READ_BYTES],
        })
    }

    /// The stream's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The samples that have arrived (one read, mono), or `None` at the end of the stream.
    /// A sample cut off by the end is dropped. Samples may be empty when a read brought
    /// less than one sample instant.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, FeatureError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = (self.buffer.len() as u64).min(self.remaining) as usize;
        let read = loop {
            match self.reader.read(&mut self.buffer[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(FeatureError::NotWav(format!("reading the stream: {e}"))),
            }
        };
        if read == 0 {
            return Ok(None);
        }
        self.remaining -= read as u64;
        self.partial.extend_from_slice(&self.buffer[..read]);
        let instant = self.encoding.bytes * self.encoding.channels;
        let whole = self.partial.len() / instant * instant;
        let samples = self.encoding.decode(&self.partial[..whole])?;
        self.partial.drain(..whole);
        Ok(Some(samples))
    }
}

impl Encoding {
    fn mono(bytes: usize, float: bool) -> Self {
        Encoding {
            bytes,
            float,
            channels: 1,
        }
    }

    /// Whole sample instants → mono samples on a ±1 scale (channels averaged).
    fn decode(&self, bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
        let values = bytes.chunks_exact(self.bytes).map(|b| self.value(b));
        let mut mono = Vec::with_capacity(bytes.len() / self.bytes / self.channels);
        let mut sum = 0.0f32;
        for (i, value) in values.enumerate() {
            if !value.is_finite() {
                return Err(FeatureError::NonFiniteSample { index: i, value });
            }
            sum += value;
            if (i + 1) % self.channels == 0 {
                mono.push(sum / self.channels as f32);
                sum = 0.0;
            }
        }
        Ok(mono)
    }

    fn value(&self, b: &[u8]) -> f32 {
        match (self.bytes, self.float) {
            (4, true) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            (1, _) => (b[0] as f32 - 128.0) / 128.0,
            (2, _) => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
            (3, _) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
            _ => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
        }
    }
}

/// Reads a WAV header up to the start of its samples: the encoding, the rate and the
/// sample bytes promised (unbounded when the header does not know).
fn read_header<R: Read>(reader: &mut R) -> Result<(Encoding, u32, u64), FeatureError> {
    let mut riff = [0u8; 12];
    read_exact(reader, &mut riff)?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Err(FeatureError::NotWav("no RIFF/WAVE header".into()));
    }
    let mut format = None;
    loop {
        let mut head = [0u8; 8];
        read_exact(reader, &mut head)?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        match &head[..4] {
            b"fmt " => {
                if !(16..=1024).contains(&size) {
                    return Err(FeatureError::NotWav(format!("a fmt chunk of {size} bytes")));
                }
                let mut body = vec![0u8; size as usize + (size as usize & 1)];
                read_exact(reader, &mut body)?;
                format = Some(parse_format(&body)?);
            }
            b"data" => {
                let (encoding, rate) = format
                    .ok_or_else(|| FeatureError::NotWav("data before the fmt chunk".into()))?;
                let remaining = match size {
                    0 | u32::MAX => u64::MAX,
                    size => size as u64,
                };
                return Ok((encoding, rate, remaining));
            }
            _ => skip(reader, size as u64 + (size as u64 & 1))?,
        }
    }
}

/// The encoding and rate of a `fmt ` chunk's body.
fn parse_format(body: &[u8]) -> Result<(Encoding, u32), FeatureError> {
    let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
    let mut tag = u16_at(0);
    if tag == 0xFFFE && body.len() >= 26 {
        tag = u16_at(24); // WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
    }
    let channels = u16_at(2) as usize;
    let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let bits = u16_at(14);
    if channels == 0 {
        return Err(FeatureError::NoChannels);
    }
    let float = match (tag, bits) {
        (1, 8 | 16 | 24 | 32) => false,
        (3, 32) => true,
        _ => {
            return Err(FeatureError::UnsupportedEncoding(format!(
                "format tag {tag}, {bits} bits per sample"
            )));
        }
    };
    let encoding = Encoding {
        bytes: bits as usize / 8,
        float,
        channels,
    };
    Ok((encoding, rate))
}

fn read_exact<R: Read>(reader: &mut R, buffer: &mut [u8]) -> Result<(), FeatureError> {
    reader.read_exact(buffer).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => FeatureError::NotWav("the header ends early".into()),
        _ => FeatureError::NotWav(format!("reading the header: {e}")),
    })
}

fn skip<R: Read>(reader: &mut R, bytes: u64) -> Result<(), FeatureError> {
    let copied = std::io::copy(&mut reader.take(bytes), &mut std::io::sink())
        .map_err(|e| FeatureError::NotWav(format!("reading the header: {e}")))?;
    if copied < bytes {
        return Err(FeatureError::NotWav("the header ends early".into()));
    }
    Ok(())
}
