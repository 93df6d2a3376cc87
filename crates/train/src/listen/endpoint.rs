//! When an utterance ends: sherpa-onnx's endpoint rules over the CTC decoder's trailing
//! blanks, and the same trailing silence heard in the audio's energy.

use serde::{Deserialize, Serialize};

/// The endpoint rules, in seconds of audio. Any rule that holds ends the utterance; the
/// recogniser then starts afresh (recurrent state, normalisation, decoder), so an hour of
/// audio is many short utterances.
///
/// ```
/// use train::listen::{Endpoint, Tail};
/// let rules = Endpoint::default();
/// let tail = |blank, quiet| Tail { blank, quiet };
/// assert!(rules.ended(true, tail(0.6, 0.0), 2.0)); // 600 ms of blanks after a digit
/// assert!(rules.ended(true, tail(0.3, 0.6), 2.0)); // 600 ms of quiet, the digit settled
/// assert!(!rules.ended(true, tail(0.5, 0.5), 2.0));
/// assert!(!rules.ended(true, tail(0.2, 0.9), 2.0)); // quiet, but a digit just came
/// assert!(rules.ended(false, tail(2.4, 0.0), 2.4)); // nothing heard for 2.4 s: start afresh
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Trailing non-speech that ends an utterance holding labels (default 0.6 s;
    /// sherpa-onnx's rule 2, whose default is 1.2 s): as many blank frames, or as many
    /// quiet frames ([`Tail::quiet`]) once the last label is half as old.
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

/// How an utterance ends so far, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tail {
    /// Frames since the model's last label (all of them when it has none).
    pub blank: f64,
    /// Quiet frames in a row: log energy within 10 dB of the quietest frame of the last
    /// 3 s, or 26 dB under the loudest. Speech stops here when it stops, while the model's
    /// last label may come a little later; counting from here keeps the final result at the
    /// trailing silence after the speech, not after the label.
    pub quiet: f64,
}

impl Endpoint {
    /// Whether an utterance of `length` seconds, ending in `tail`, has ended; `heard` says
    /// whether it holds a label.
    pub fn ended(&self, heard: bool, tail: Tail, length: f64) -> bool {
        // A frame's worth of slack: frame counts × shift are not exact in binary.
        const EPSILON: f64 = 1e-9;
        let reached = |seconds: f64, limit: f64| seconds + EPSILON >= limit;
        let trailing = self.trailing_silence;
        let quiet = reached(tail.quiet, trailing) && reached(tail.blank, trailing / 2.0);
        (heard && (reached(tail.blank, trailing) || quiet))
            || reached(tail.blank, self.idle_silence)
            || reached(length, self.max_utterance)
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
