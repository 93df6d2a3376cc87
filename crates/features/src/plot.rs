//! A feature matrix drawn as a PNG heat map, as `librosa.display.specshow` draws one: time
//! in seconds left to right, coefficient (or band) 0 at the bottom, and a colour bar.

use std::path::Path;

use crate::npy::write_atomic;
use crate::{FeatureError, Features, FilePipeline, Output};

/// Writes the features `pipeline` computed as a heat map (viridis, one colour range for the
/// whole matrix from its 1st to its 99th percentile, see [`plots::robust_range`]), written
/// atomically. The time axis uses the pipeline's hop and sample rate.
pub fn write_png(
    path: impl AsRef<Path>,
    features: &Features,
    pipeline: &FilePipeline,
) -> Result<(), FeatureError> {
    let path = path.as_ref();
    let hop = pipeline.options.hop_length()?;
    let seconds_per_column = hop as f64 / f64::from(pipeline.options.frame.sample_rate);
    let blocks = if pipeline.deltas.is_some() {
        " (static, Δ, ΔΔ)"
    } else {
        ""
    };
    let (rows, values) = match pipeline.output {
        Output::Mfcc => ("MFCC coefficient", "cepstral value"),
        Output::LogMel => ("mel band", "log mel energy"),
        Output::Spectrum => ("frequency bin", "power"),
    };
    let row_label = format!("{rows}{blocks}");
    let png = plots::heatmap(&plots::Heatmap {
        values: &features.data,
        columns: features.num_frames,
        rows: features.dim,
        seconds_per_column,
        row_label: &row_label,
        value_label: values,
    })
    .map_err(|e| FeatureError::io(path, std::io::Error::other(e)))?;
    write_atomic(path, &png).map_err(|e| FeatureError::io(path, e))
}
