//! NumPy arrays in and out. Contiguous float32 input is read where it lies; int16 is scaled to
//! ±1 (÷ 32768) and anything else goes through `numpy.ascontiguousarray(…, float32)` once.
//! Results are handed to NumPy as the `Vec` they were computed in, without a copy.

use features::Features;
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::{Kind, error};

/// Samples as the computation reads them: `rows` signals of `len` samples, row-major.
pub struct Signal<'a> {
    /// The samples, borrowed from NumPy or converted once.
    pub data: std::borrow::Cow<'a, [f32]>,
    /// 1 for a 1-D input; the batch size for a 2-D one.
    pub rows: usize,
    /// Whether the input was 2-D (the output gets a batch axis).
    pub batched: bool,
}

impl Signal<'_> {
    /// Each signal of the batch.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        let len = self.data.len() / self.rows;
        (0..self.rows).map(move |row| &self.data[row * len..(row + 1) * len])
    }
}

/// Calls `f` with the samples of `y` (1-D, or 2-D `[batch, samples]`).
pub fn with_signal<R>(
    y: &Bound<'_, PyAny>,
    f: impl FnOnce(Signal<'_>) -> PyResult<R>,
) -> PyResult<R> {
    if let Ok(array) = y.cast::<PyArrayDyn<f32>>()
        && array.is_c_contiguous()
    {
        let readonly = array.readonly();
        return f(signal(readonly.shape(), readonly.as_slice()?.into())?);
    }
    if let Ok(array) = y.cast::<PyArrayDyn<i16>>() {
        let readonly = array.readonly();
        let scaled: Vec<f32> = readonly
            .as_array()
            .iter()
            .map(|&v| f32::from(v) / 32768.0)
            .collect();
        return f(signal(readonly.shape(), scaled.into())?);
    }
    let numpy = y.py().import("numpy")?;
    let converted = numpy
        .call_method1("ascontiguousarray", (y, numpy.getattr("float32")?))
        .map_err(|e| error(Kind::Audio, format!("expected an array of samples: {e}")))?;
    let array = converted
        .cast::<PyArrayDyn<f32>>()
        .map_err(|e| error(Kind::Audio, e.to_string()))?;
    let readonly = array.readonly();
    f(signal(readonly.shape(), readonly.as_slice()?.into())?)
}

fn signal<'a>(shape: &[usize], data: std::borrow::Cow<'a, [f32]>) -> PyResult<Signal<'a>> {
    match *shape {
        [_] => Ok(Signal {
            data,
            rows: 1,
            batched: false,
        }),
        [rows, _] if rows > 0 => Ok(Signal {
            data,
            rows,
            batched: true,
        }),
        _ => Err(error(
            Kind::Audio,
            format!(
                "expected samples as a 1-D array or a 2-D [batch, samples] array with at least one row, got shape {shape:?}"
            ),
        )),
    }
}

/// `[frames, dim]` without a copy.
pub fn to_array<'py>(py: Python<'py>, features: Features) -> PyResult<Bound<'py, PyAny>> {
    let shape = [features.num_frames, features.dim];
    Ok(PyArray1::from_vec(py, features.data)
        .reshape(shape)?
        .into_any())
}

/// `[batch, frames, dim]` from equal-length signals' features (one copy, into the batch).
pub fn to_batch<'py>(py: Python<'py>, rows: Vec<Features>) -> PyResult<Bound<'py, PyAny>> {
    let (frames, dim) = rows.first().map_or((0, 0), |f| (f.num_frames, f.dim));
    let shape = [rows.len(), frames, dim];
    let data: Vec<f32> = rows.into_iter().flat_map(|f| f.data).collect();
    Ok(PyArray1::from_vec(py, data).reshape(shape)?.into_any())
}
