//! `Recogniser`: a finished run's `predict` (whole files or arrays) and its live `stream`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn_ndarray::NdArray;
use features::Audio;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use train::data::audio::LabelKind;
use train::inference::{InferenceError, Prediction, Recogniser as RunModel};
use train::listen::{Endpoint, ListenError, ListenOptions, Listener};

use crate::errors::{Kind, error, feature_error, kind_of};
use crate::signal::with_signal;

type Backend = NdArray<f32>;

/// A finished run (`experiment train`'s folder): its configuration, best weights, feature
/// pipeline and class names, on the CPU.
#[pyclass(module = "speechrnn")]
pub struct Recogniser {
    run: Mutex<RunModel<Backend>>,
    run_dir: PathBuf,
    labels: Vec<String>,
    sequences: bool,
    sample_rate: u32,
}

#[pymethods]
impl Recogniser {
    #[new]
    #[pyo3(signature = (run_dir, precision="f32"))]
    fn new(py: Python<'_>, run_dir: PathBuf, precision: &str) -> PyResult<Self> {
        let precision: models::Precision = precision
            .parse()
            .map_err(|e: models::UnknownPrecision| error(Kind::Options, e.to_string()))?;
        let run = py.detach(|| load(&run_dir, precision))?;
        Ok(Recogniser {
            labels: run.labels.clone(),
            sequences: run.objective == LabelKind::Sequences,
            sample_rate: run.task.sample_rate,
            run: Mutex::new(run),
            run_dir,
        })
    }

    /// The class names in output order (the CTC blank first for label sequences).
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// `"classes"` (one label per utterance) or `"sequences"` (CTC label strings).
    #[getter]
    fn objective(&self) -> &'static str {
        if self.sequences {
            "sequences"
        } else {
            "classes"
        }
    }

    /// The rate the run's features are computed at (Hz).
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Recognises one utterance: a WAV file's path, or 1-D samples at ±1 scale sampled at
    /// `sr` (default: the run's rate; other rates are resampled). A classifier returns
    /// `{"label", "probability", "probabilities"}` (the last in `labels` order); a CTC run
    /// returns `{"text", "labels"}`, each label with its `start` and `end` in seconds.
    #[pyo3(signature = (y, sr=None))]
    fn predict<'py>(&self, y: &Bound<'py, PyAny>, sr: Option<u32>) -> PyResult<Bound<'py, PyDict>> {
        let py = y.py();
        let k = self.labels.len();
        let device = Default::default();
        let prediction = if let Ok(path) = y.extract::<PathBuf>() {
            let run = self.run.lock().expect("run lock");
            py.detach(|| run.predict(&path, k, &device))
        } else {
            with_signal(y, |signal| {
                if signal.batched {
                    return Err(error(
                        Kind::Audio,
                        "predict takes one utterance (1-D samples)",
                    ));
                }
                let audio = Audio {
                    sample_rate: sr.unwrap_or(self.sample_rate),
                    samples: signal.data.into_owned(),
                };
                let run = self.run.lock().expect("run lock");
                Ok(py.detach(|| run.predict_audio(audio, Path::new("<array>"), k, &device)))
            })?
        };
        self.to_dict(py, prediction.map_err(inference_error)?)
    }

    /// A live recogniser over this run (causal runs only): `push(chunk)` returns the events
    /// the chunk completed and `finish()` the rest, as dicts like `experiment listen`'s JSON
    /// lines (`partial`, `final`, `detection`). Any chunk size; `sr` is the chunks' rate
    /// (default the run's; other rates are resampled as they stream).
    #[pyo3(signature = (sr=None, trailing_silence=0.6, idle_silence=2.4, max_utterance=20.0))]
    fn stream(
        &self,
        py: Python<'_>,
        sr: Option<u32>,
        trailing_silence: f64,
        idle_silence: f64,
        max_utterance: f64,
    ) -> PyResult<Stream> {
        let options = ListenOptions {
            sample_rate: sr,
            endpoint: Endpoint {
                trailing_silence,
                idle_silence,
                max_utterance,
            },
            ..ListenOptions::default()
        };
        let run = self.run.lock().expect("run lock").clone();
        let listener = py
            .detach(|| Listener::new(run, options, Default::default()))
            .map_err(listen_error)?;
        Ok(Stream {
            listener: Mutex::new(Some(listener)),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Recogniser({:?}, {} {} labels at {} Hz)",
            self.run_dir.display().to_string(),
            self.labels.len(),
            self.objective(),
            self.sample_rate
        )
    }
}

impl Recogniser {
    fn to_dict<'py>(
        &self,
        py: Python<'py>,
        prediction: Prediction,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        if let Some(text) = prediction.text {
            dict.set_item("text", text)?;
            dict.set_item("labels", to_python(py, &prediction.labels)?)?;
            return Ok(dict);
        }
        let mut probabilities = vec![0.0f32; self.labels.len()];
        for top in &prediction.top {
            if let Some(i) = self.labels.iter().position(|l| *l == top.label) {
                probabilities[i] = top.probability;
            }
        }
        let best = &prediction.top[0];
        dict.set_item("label", &best.label)?;
        dict.set_item("probability", best.probability)?;
        dict.set_item("probabilities", PyArray1::from_vec(py, probabilities))?;
        Ok(dict)
    }
}

/// A live recogniser from `Recogniser.stream()`.
#[pyclass(module = "speechrnn")]
pub struct Stream {
    listener: Mutex<Option<Listener<Backend>>>,
}

#[pymethods]
impl Stream {
    /// Adds a 1-D chunk of samples (±1 scale); returns the events it completed.
    fn push<'py>(&self, chunk: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = chunk.py();
        with_signal(chunk, |signal| {
            if signal.batched {
                return Err(error(Kind::Audio, "a stream takes 1-D chunks"));
            }
            let mut guard = self.listener.lock().expect("listener lock");
            let listener = guard
                .as_mut()
                .ok_or_else(|| error(Kind::Audio, "the stream is finished"))?;
            let events = py
                .detach(|| listener.push(&signal.data))
                .map_err(listen_error)?;
            to_python(py, &events)
        })
    }

    /// Ends the audio; returns the last events. The stream takes no more chunks.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut listener = self
            .listener
            .lock()
            .expect("listener lock")
            .take()
            .ok_or_else(|| error(Kind::Audio, "the stream is finished"))?;
        let events = py.detach(|| listener.finish()).map_err(listen_error)?;
        to_python(py, &events)
    }
}

fn load(run_dir: &Path, precision: models::Precision) -> PyResult<RunModel<Backend>> {
    RunModel::load(run_dir, &Default::default())
        .and_then(|run| run.with_precision(precision))
        .map_err(inference_error)
}

/// Serialisable values as the Python objects `json.loads` makes of them: the same keys and
/// values as `experiment`'s JSON lines.
fn to_python<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| error(Kind::Run, format!("cannot serialise a result: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

fn inference_error(err: InferenceError) -> PyErr {
    match err {
        InferenceError::Features { ref source, .. } => error(kind_of(source), err.to_string()),
        other => error(Kind::Run, error_chain(&other)),
    }
}

fn listen_error(err: ListenError) -> PyErr {
    match err {
        ListenError::Features(source) => feature_error(source),
        other => error(Kind::Options, other.to_string()),
    }
}

/// An error's message followed by its sources', as anyhow prints them.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}
