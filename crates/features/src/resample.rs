//! Sample-rate conversion with rubato's synchronous FFT resampler.

use rubato::{FftFixedIn, Resampler};

use crate::{Audio, FeatureError};

/// Input samples per processing chunk.
const CHUNK: usize = 1024;

/// Returns `audio` at `sample_rate`, band-limited and aligned (rubato's delay is
/// removed), `ceil(n · out / in)` samples long. Audio already at the rate is returned as is.
///
/// ```
/// let tone: Vec<f32> = (0..8000).map(|n| (n as f32 * 0.1).sin()).collect();
/// let audio = features::Audio { sample_rate: 8000, samples: tone };
/// let up = features::resample(&audio, 16000)?;
/// assert_eq!((up.sample_rate, up.samples.len()), (16000, 16000));
/// # Ok::<(), features::FeatureError>(())
/// ```
pub fn resample(audio: &Audio, sample_rate: u32) -> Result<Audio, FeatureError> {
    if audio.sample_rate == sample_rate {
        return Ok(audio.clone());
    }
    let failed = |e: &dyn std::fmt::Display| {
        FeatureError::InvalidOptions(format!(
            "cannot resample {} Hz to {sample_rate} Hz: {e}",
            audio.sample_rate
        ))
    };
    let mut resampler = FftFixedIn::<f32>::new(
        audio.sample_rate as usize,
        sample_rate as usize,
        CHUNK,
        1,
        1,
    )
    .map_err(|e| failed(&e))?;
    let wanted = (audio.samples.len() as u64 * sample_rate as u64)
        .div_ceil(audio.sample_rate as u64) as usize;
    let delay = resampler.output_delay();
    let mut output = Vec::with_capacity(wanted + delay + 2 * CHUNK);
    let mut chunks = audio.samples.chunks_exact(resampler.input_frames_next());
    for chunk in chunks.by_ref() {
        output.extend_from_slice(&resampler.process(&[chunk], None).map_err(|e| failed(&e))?[0]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        output.extend_from_slice(
            &resampler
                .process_partial(Some(&[rest]), None)
                .map_err(|e| failed(&e))?[0],
        );
    }
    while output.len() < wanted + delay {
        output.extend_from_slice(
            &resampler
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| failed(&e))?[0],
        );
    }
    output.drain(..delay);
    output.truncate(wanted);
    Ok(Audio {
        sample_rate,
        samples: output,
    })
}
