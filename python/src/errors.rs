//! Our typed errors as Python exceptions: every class derives from `speechrnn.FeatureError`,
//! and from `ValueError` (bad options or samples) or `OSError` (files), so callers can catch
//! either the package's base class or Python's usual one. The classes are defined in
//! `speechrnn/_errors.py`; the message is the Rust error's, sources included.

use features::FeatureError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The exception classes of `speechrnn._errors`.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Options that contradict each other, are out of range or unknown (`ValueError`).
    Options,
    /// Samples that cannot be used: not finite, too short, the wrong shape (`ValueError`).
    Audio,
    /// A file that cannot be opened, read or decoded (`OSError`).
    File,
    /// A run folder that cannot be loaded or used as asked (`OSError` when it cannot be read,
    /// `ValueError` when it cannot do what was asked).
    Run,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Options => "OptionsError",
            Kind::Audio => "AudioError",
            Kind::File => "AudioFileError",
            Kind::Run => "RunError",
        }
    }
}

/// A Python exception of `kind` with `message`.
pub fn error(kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match class(py, kind) {
        Ok(class) => PyErr::from_type(class, message),
        Err(err) => err,
    })
}

fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module =
        MODULE.get_or_try_init(py, || py.import("speechrnn._errors").map(Bound::unbind))?;
    Ok(module
        .bind(py)
        .getattr(kind.class_name())?
        .cast_into::<PyType>()?)
}

/// The class a feature error belongs to: files to `OSError`, the rest to `ValueError`.
pub fn kind_of(err: &FeatureError) -> Kind {
    match err {
        FeatureError::Io { .. }
        | FeatureError::NotWav(_)
        | FeatureError::Truncated { .. }
        | FeatureError::UnsupportedEncoding(_)
        | FeatureError::NoChannels
        | FeatureError::UnsupportedNpy(_)
        | FeatureError::InFile { .. } => Kind::File,
        FeatureError::NonFiniteSample { .. }
        | FeatureError::ShorterThanOneFrame
        | FeatureError::NoSuchChannel { .. } => Kind::Audio,
        FeatureError::BadSampleRate(_)
        | FeatureError::SampleRateMismatch { .. }
        | FeatureError::InvalidOptions(_)
        | FeatureError::NeedsWholeInput(_) => Kind::Options,
    }
}

/// A feature error as the matching Python exception.
pub fn feature_error(err: FeatureError) -> PyErr {
    error(kind_of(&err), err.to_string())
}
