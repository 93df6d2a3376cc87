//! A preset's name and librosa-style keyword overrides → [`FeatureOptions`].

use features::{
    FeatureOptions, Framing, LogScale, MelNorm, MelScale, Padding, Preset, Span, Vtln, Window,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{Kind, error, feature_error};

/// The keyword overrides every feature function takes, with librosa's names.
pub const OVERRIDES: &[&str] = &[
    "n_fft",
    "hop_length",
    "win_length",
    "n_mels",
    "n_mfcc",
    "fmin",
    "fmax",
    "htk",
    "norm",
    "window",
    "center",
    "pad_mode",
    "lifter",
    "top_db",
    "dither",
    "vtln_warp",
];

/// The options of `preset` at rate `sr`, with `overrides` applied; unknown names and values of
/// the wrong type raise `OptionsError`.
pub fn feature_options(
    sr: u32,
    preset: &str,
    overrides: Option<&Bound<'_, PyDict>>,
) -> PyResult<FeatureOptions> {
    let preset: Preset = preset.parse().map_err(feature_error)?;
    let mut options = FeatureOptions::preset(preset);
    options.frame.sample_rate = sr;
    if let Some(overrides) = overrides {
        let mut items = overrides
            .iter()
            .map(|(key, value)| Ok((key.extract::<String>()?, value)))
            .collect::<PyResult<Vec<_>>>()?;
        // `center` picks the framing that `pad_mode` then refines, whatever the call's order.
        items.sort_by_key(|(key, _)| key != "center");
        for (key, value) in items {
            apply(&mut options, &key, &value)
                .map_err(|e| error(Kind::Options, format!("{key}={value}: {e}")))?;
        }
    }
    options.validate().map_err(feature_error)?;
    Ok(options)
}

fn apply(options: &mut FeatureOptions, key: &str, value: &Bound<'_, PyAny>) -> Result<(), String> {
    let (frame, mel, cepstral) = (&mut options.frame, &mut options.mel, &mut options.cepstral);
    match key {
        "n_fft" => frame.n_fft = optional(value, positive)?,
        "hop_length" => frame.hop_length = optional(value, positive)?.map(Span::Samples),
        "win_length" => frame.win_length = optional(value, positive)?.map(Span::Samples),
        "n_mels" => mel.n_mels = positive(value)?,
        "n_mfcc" => cepstral.n_mfcc = positive(value)?,
        "fmin" => mel.fmin = float(value)?,
        "fmax" => mel.fmax = optional(value, float)?,
        "htk" => {
            mel.scale = if boolean(value)? {
                MelScale::Htk
            } else {
                MelScale::Slaney
            }
        }
        "norm" => mel.norm = norm(value)?,
        "window" => frame.window = window(&text(value)?)?,
        "center" => frame.framing = center(boolean(value)?),
        "pad_mode" => frame.framing = pad_mode(frame.framing, &text(value)?)?,
        "lifter" => cepstral.lifter = float(value)?,
        "top_db" => mel.log = top_db(mel.log, optional(value, float)?)?,
        "dither" => frame.dither = float(value)?,
        "vtln_warp" => {
            mel.vtln = optional(value, float)?.map(|warp| Vtln {
                warp,
                ..Vtln::default()
            })
        }
        other => {
            return Err(format!(
                "unknown option {other:?} (known: {})",
                OVERRIDES.join(", ")
            ));
        }
    }
    Ok(())
}

fn optional<T>(
    value: &Bound<'_, PyAny>,
    read: impl Fn(&Bound<'_, PyAny>) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if value.is_none() {
        Ok(None)
    } else {
        read(value).map(Some)
    }
}

fn positive(value: &Bound<'_, PyAny>) -> Result<usize, String> {
    match value.extract::<i64>() {
        Ok(n) if n > 0 => Ok(n as usize),
        _ => Err("expected a positive integer".into()),
    }
}

fn float(value: &Bound<'_, PyAny>) -> Result<f32, String> {
    value
        .extract::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v as f32)
        .ok_or_else(|| "expected a finite number".into())
}

fn boolean(value: &Bound<'_, PyAny>) -> Result<bool, String> {
    value
        .extract::<bool>()
        .map_err(|_| "expected True or False".into())
}

fn text(value: &Bound<'_, PyAny>) -> Result<String, String> {
    value
        .extract::<String>()
        .map_err(|_| "expected a string".into())
}

fn norm(value: &Bound<'_, PyAny>) -> Result<MelNorm, String> {
    match optional(value, text)?.as_deref() {
        None => Ok(MelNorm::None),
        Some("slaney") => Ok(MelNorm::Slaney),
        Some(other) => Err(format!("norm {other:?}: expected \"slaney\" or None")),
    }
}

fn window(name: &str) -> Result<Window, String> {
    Ok(match name {
        "hann" => Window::Hann { periodic: true },
        "hamming" => Window::Hamming { periodic: true },
        "blackman" => Window::Blackman { periodic: true },
        "povey" => Window::Povey,
        "rectangular" | "boxcar" => Window::Rectangular,
        other => {
            return Err(format!(
                "window {other:?}: expected hann, hamming, blackman, povey or rectangular"
            ));
        }
    })
}

/// librosa's `center`: frames centred on t·hop (zero padding until `pad_mode` says
/// otherwise), or Kaldi's whole frames only.
fn center(centred: bool) -> Framing {
    if centred {
        Framing::Centered { pad: Padding::Zero }
    } else {
        Framing::SnipEdges
    }
}

fn pad_mode(framing: Framing, mode: &str) -> Result<Framing, String> {
    let pad = match mode {
        "constant" => Padding::Zero,
        "reflect" => Padding::Reflect,
        other => return Err(format!("pad_mode {other:?}: expected constant or reflect")),
    };
    match framing {
        Framing::Centered { .. } => Ok(Framing::Centered { pad }),
        _ => Err("pad_mode needs centred frames (center=True)".into()),
    }
}

fn top_db(log: LogScale, top_db: Option<f32>) -> Result<LogScale, String> {
    match log {
        LogScale::Decibel { amin, .. } => Ok(LogScale::Decibel { amin, top_db }),
        LogScale::Natural { .. } => {
            Err("top_db applies to the decibel log of the librosa preset".into())
        }
    }
}
