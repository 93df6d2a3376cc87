//! `load`, `mfcc`, `log_mel`, `mfcc_files` and `FeatureStream`: the `features` crate from
//! Python, with the GIL released while Rust computes.

use std::path::PathBuf;
use std::sync::Mutex;

use features::{
    Audio, Channel, FeatureExtractor, FeatureOptions, FilePipeline, Output, read_wav, resample,
};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

use crate::errors::{Kind, error, feature_error};
use crate::options::feature_options;
use crate::signal::{to_array, to_batch, with_signal};

/// Reads a WAV file (8-bit unsigned, 16/24/32-bit PCM or 32-bit float) as float32 samples
/// at full scale ±1. Returns `(y, sr)`: `y` is 1-D when `mono` (channels averaged), else
/// `[channels, samples]`; with `sr` set, the audio is resampled to it.
#[pyfunction]
#[pyo3(signature = (path, sr=None, mono=true))]
pub fn load<'py>(
    py: Python<'py>,
    path: PathBuf,
    sr: Option<u32>,
    mono: bool,
) -> PyResult<(Bound<'py, PyAny>, u32)> {
    let channels = py
        .detach(|| read_channels(&path, mono, sr))
        .map_err(feature_error)?;
    let rate = channels[0].sample_rate;
    let len = channels[0].samples.len();
    if mono {
        let audio = channels.into_iter().next().expect("one channel");
        return Ok((PyArray1::from_vec(py, audio.samples).into_any(), rate));
    }
    let count = channels.len();
    let data: Vec<f32> = channels.into_iter().flat_map(|a| a.samples).collect();
    let array = numpy::PyArrayMethods::reshape(&PyArray1::from_vec(py, data), [count, len])?;
    Ok((array.into_any(), rate))
}

fn read_channels(
    path: &std::path::Path,
    mono: bool,
    sr: Option<u32>,
) -> Result<Vec<Audio>, features::FeatureError> {
    let with_rate = |audio: Audio| match sr {
        Some(rate) if rate != audio.sample_rate => resample(&audio, rate),
        _ => Ok(audio),
    };
    if mono {
        return Ok(vec![with_rate(read_wav(path, Channel::Mean)?)?]);
    }
    let mut channels = vec![with_rate(read_wav(path, Channel::Index(0))?)?];
    loop {
        match read_wav(path, Channel::Index(channels.len())) {
            Ok(audio) => channels.push(with_rate(audio)?),
            Err(features::FeatureError::NoSuchChannel { .. }) => return Ok(channels),
            Err(other) => return Err(other),
        }
    }
}

fn compute<'py>(
    y: &Bound<'py, PyAny>,
    options: FeatureOptions,
    output: Output,
) -> PyResult<Bound<'py, PyAny>> {
    let py = y.py();
    let extractor = FeatureExtractor::new(options).map_err(feature_error)?;
    with_signal(y, |signal| {
        let rows: Vec<_> = py
            .detach(|| {
                signal
                    .rows()
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|row| extractor.compute(row, output))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(feature_error)?;
        if signal.batched {
            to_batch(py, rows)
        } else {
            to_array(py, rows.into_iter().next().expect("one row"))
        }
    })
}

/// MFCCs of `y` (1-D samples at ±1 scale, or a 2-D `[batch, samples]` batch of equal
/// lengths) sampled at `sr` Hz, as `[frames, n_mfcc]` (`[batch, frames, n_mfcc]`) float32.
///
/// `preset` is `"kaldi"` (compute-mfcc-feats, dither 0), `"librosa"`
/// (librosa.feature.mfcc) or `"htk"` (python_speech_features.mfcc). Overrides, with
/// librosa's names: n_fft, hop_length, win_length (samples), n_mels, n_mfcc, fmin, fmax,
/// htk, norm, window, center, pad_mode, lifter, top_db, dither, vtln_warp.
#[pyfunction]
#[pyo3(signature = (y, sr, preset="kaldi", **overrides))]
pub fn mfcc<'py>(
    y: &Bound<'py, PyAny>,
    sr: u32,
    preset: &str,
    overrides: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    compute(y, feature_options(sr, preset, overrides)?, Output::Mfcc)
}

/// Log-mel energies of `y` as `[frames, n_mels]` (`[batch, frames, n_mels]`): Kaldi's fbank,
/// librosa's `power_to_db(melspectrogram(...))` or python_speech_features' `logfbank`,
/// by `preset`. Takes the same overrides as `mfcc`.
#[pyfunction]
#[pyo3(signature = (y, sr, preset="kaldi", **overrides))]
pub fn log_mel<'py>(
    y: &Bound<'py, PyAny>,
    sr: u32,
    preset: &str,
    overrides: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    compute(y, feature_options(sr, preset, overrides)?, Output::LogMel)
}

/// MFCCs of many WAV files, one `[frames, n_mfcc]` array each, computed on `threads`
/// threads (default: every core) with the GIL released. Each file is read at its own rate,
/// or resampled to `sr` when it is given. Raises `AudioFileError` naming the first file that
/// fails.
#[pyfunction]
#[pyo3(signature = (paths, preset="kaldi", threads=None, sr=None, **overrides))]
pub fn mfcc_files<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    preset: &str,
    threads: Option<usize>,
    sr: Option<u32>,
    overrides: Option<&Bound<'py, PyDict>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut pipeline = FilePipeline::new(feature_options(sr.unwrap_or(16000), preset, overrides)?);
    pipeline.fixed_rate = sr.is_some();
    if threads == Some(0) {
        return Err(error(Kind::Options, "threads must be at least 1"));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| error(Kind::Options, format!("threads={threads:?}: {e}")))?;
    let computed = py
        .detach(|| {
            pool.install(|| {
                paths
                    .par_iter()
                    .map(|path| pipeline.run(path).map_err(|e| e.in_file(path)))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .map_err(feature_error)?;
    computed.into_iter().map(|f| to_array(py, f)).collect()
}

/// Features of audio that arrives in chunks. `push(chunk)` returns the frames the chunk
/// completed (`[new_frames, dim]`), `finish()` the frames that reach past the end; together
/// they equal `mfcc`/`log_mel` of the whole signal, bit for bit, for any chunking. `feature`
/// is `"mfcc"` or `"log_mel"`; librosa's `top_db` needs the whole signal, so pass
/// `top_db=None` with that preset.
#[pyclass(module = "speechrnn")]
pub struct FeatureStream {
    stream: Mutex<Option<features::Stream<'static>>>,
    dim: usize,
}

#[pymethods]
impl FeatureStream {
    #[new]
    #[pyo3(signature = (sr, preset="kaldi", feature="mfcc", **overrides))]
    fn new(
        sr: u32,
        preset: &str,
        feature: &str,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let output = match feature {
            "mfcc" => Output::Mfcc,
            "log_mel" => Output::LogMel,
            other => {
                return Err(error(
                    Kind::Options,
                    format!("feature {other:?}: expected \"mfcc\" or \"log_mel\""),
                ));
            }
        };
        let extractor = FeatureExtractor::new(feature_options(sr, preset, overrides)?)
            .map_err(feature_error)?;
        let dim = extractor.dim(output);
        let stream = extractor.into_stream(output).map_err(feature_error)?;
        Ok(FeatureStream {
            stream: Mutex::new(Some(stream)),
            dim,
        })
    }

    /// Adds a 1-D chunk of samples (±1 scale); returns the frames it completed.
    fn push<'py>(&self, chunk: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = chunk.py();
        with_signal(chunk, |signal| {
            if signal.batched {
                return Err(error(Kind::Audio, "a stream takes 1-D chunks"));
            }
            features::check_finite(&signal.data).map_err(feature_error)?;
            let mut guard = self.stream.lock().expect("stream lock");
            let stream = guard
                .as_mut()
                .ok_or_else(|| error(Kind::Audio, "the stream is finished"))?;
            to_array(py, py.detach(|| stream.push(&signal.data)))
        })
    }

    /// Ends the input; returns the remaining frames. The stream takes no more chunks.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stream = self
            .stream
            .lock()
            .expect("stream lock")
            .take()
            .ok_or_else(|| error(Kind::Audio, "the stream is finished"))?;
        to_array(py, py.detach(|| stream.finish()))
    }

    /// Features per frame.
    #[getter]
    fn dim(&self) -> usize {
        self.dim
    }
}
