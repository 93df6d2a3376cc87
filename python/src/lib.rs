//! The Python package `speechrnn` (`pip install ./python`): the `features` crate and finished
//! runs from NumPy. Built by maturin as an abi3 wheel over pyo3 and the `numpy` crate.
//!
//! | module | what it binds |
//! |---|---|
//! | [`features_api`] | `load`, `mfcc`, `log_mel`, `mfcc_files`, `FeatureStream` |
//! | [`recogniser`] | `Recogniser` (`predict`, `stream`) over `train::inference` and `train::listen` |
//! | [`options`] | a preset plus librosa-named keyword overrides → `FeatureOptions` |
//! | [`signal`] | NumPy arrays in (borrowed where possible) and out (never copied) |
//! | [`errors`] | typed errors → the exceptions of `speechrnn/_errors.py` |
//!
//! Every computation runs with the GIL released; no Rust panic is expected to cross into
//! Python (pyo3 would raise it as `PanicException`, which the tests treat as a failure).

pub mod errors;
pub mod features_api;
pub mod options;
pub mod recogniser;
pub mod signal;

use pyo3::prelude::*;

#[pymodule]
fn _speechrnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(features_api::load, m)?)?;
    m.add_function(wrap_pyfunction!(features_api::mfcc, m)?)?;
    m.add_function(wrap_pyfunction!(features_api::log_mel, m)?)?;
    m.add_function(wrap_pyfunction!(features_api::mfcc_files, m)?)?;
    m.add_class::<features_api::FeatureStream>()?;
    m.add_class::<recogniser::Recogniser>()?;
    m.add_class::<recogniser::Stream>()?;
    m.add("OVERRIDES", options::OVERRIDES.to_vec())?;
    Ok(())
}
