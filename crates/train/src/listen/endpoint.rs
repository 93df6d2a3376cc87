//! When an utterance ends: sherpa-onnx's endpoint rules over the CTC decoder's trailing
//! blanks.

use serde::{Deserialize, Serialize};

/// The endpoint rules, in seconds of audio. Any rule that holds ends the utterance; the
/// recogniser then starts afresh (recurrent state, normalisation, decoder), so an hour of
/// audio is many short utterances.
///
/// ```
/// use train::listen::Endpoint;
/// let rules = Endpoint::default();
/// assert!(rules.ended(true, 0.6, 2.0));  // 600 ms of blanks after a digit
/// assert!(!rules.ended(true, 0.5, 2.0));
/// assert!(rules.ended(false, 2.4, 2.4)); // nothing heard for 2.4 s: start afresh quietly
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Trailing non-speech (blank frames) that ends an utterance holding labels (default
    /// 0.6 s; sherpa-onnx's rule 2, whose default is 1.2 s).
    pub trailing_silence: f64,
    /// Trailing non-speech that ends an utterance holding no label (default 2.4 s;
    /// sherpa-onnx's rule 1). Nothing is reported: the state is only started afresh.
    pub idle_silence: f64,
    /// The longest utterance (default 20 s; sherpa-onnx's rule 3).
    pub max_utterance: f64,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            trailing_silence: 0.6,
            idle_silence: 2.4,
            max_utterance: 20.0,
        }
    }
}

impl Endpoint {
    /// Whether an utterance of `length` seconds, ending in `silence` seconds of blanks,
    /// has ended; `heard` says whether it holds a label.
    pub fn ended(&self, heard: bool, silence: f64, length: f64) -> bool {
        // A frame's worth of slack: frame counts × shift are not exact in binary.
        const EPSILON: f64 = 1e-9;
        let after = |limit: f64| silence + EPSILON >= limit;
        (heard && after(self.trailing_silence))
            || after(self.idle_silence)
            || length + EPSILON >= self.max_utterance
    }

    /// Refuses rules that are negative or not numbers.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("trailing silence", self.trailing_silence),
            ("idle silence", self.idle_silence),
            ("longest utterance", self.max_utterance),
        ];
        match fields.iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            Some((name, value)) => Err(format!(
                "the endpoint's {name} must be positive seconds, not {value}"
            )),
            None => Ok(()),
        }
    }
}
