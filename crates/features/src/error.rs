//! The one error type of the crate: every way a file or a configuration can be refused.

use std::path::PathBuf;

/// Why audio could not be read or features could not be computed.
///
/// Every variant says what was wrong in words a user can act on; none of them
/// is raised by a panic.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The path could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a RIFF/WAVE file, or its header is damaged.
    #[error("not a readable WAV file: {0}")]
    NotWav(String),
    /// The header promises more sample data than the file holds.
    #[error(
        "truncated WAV data: the header promises {expected} bytes of samples, the file has {found}"
    )]
    Truncated { expected: usize, found: usize },
    /// A sample encoding this crate does not decode (ADPCM, A-law, µ-law, 64-bit float, …).
    #[error("unsupported WAV encoding: {0}")]
    UnsupportedEncoding(String),
    /// The header declares zero channels.
    #[error("the WAV header declares zero channels")]
    NoChannels,
    /// The sample rate is zero or beyond any audio rate (above 1 MHz).
    #[error("unusable sample rate {0} Hz")]
    BadSampleRate(u32),
    /// A float sample is NaN or infinite.
    #[error("sample {index} is not finite ({value})")]
    NonFiniteSample { index: usize, value: f32 },
    /// `Channel::Index` names a channel the file does not have.
    #[error("channel {index} requested, the file has {channels}")]
    NoSuchChannel { index: usize, channels: usize },
    /// The file's rate differs from the configured one and resampling was not allowed.
    #[error(
        "the file is sampled at {file} Hz but the features are configured for {configured} Hz (allow resampling, or set the sample rate to {file})"
    )]
    SampleRateMismatch { file: u32, configured: u32 },
    /// The options contradict each other or are out of range.
    #[error("invalid feature options: {0}")]
    InvalidOptions(String),
    /// The signal gives no frame: it is shorter than one analysis window.
    #[error("shorter than one frame")]
    ShorterThanOneFrame,
    /// A `.npy` file this crate does not read (not float32/float64 C-order, or malformed).
    #[error("not a supported .npy file: {0}")]
    UnsupportedNpy(String),
    /// A computation needs the whole input (librosa's `top_db` is relative to the file's maximum).
    #[error("{0} needs the whole input and cannot be used while streaming")]
    NeedsWholeInput(&'static str),
    /// Any of the above, in the named input file.
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<FeatureError>,
    },
}

impl FeatureError {
    /// The error with the input file it happened in (an I/O error that already names
    /// that file is returned as it is).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        match self {
            FeatureError::Io {
                path: ref named, ..
            } if *named == path => self,
            source => FeatureError::InFile {
                path,
                source: Box::new(source),
            },
        }
    }

    /// Attaches a path to an I/O error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FeatureError::Io {
            path: path.into(),
            source,
        }
    }
}
