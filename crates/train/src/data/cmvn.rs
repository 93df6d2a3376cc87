//! Causal feature normalisation as a run's configuration gives it
//! (`task.causal_cmvn`), and its checks.

use serde::{Deserialize, Serialize};

use crate::checks::InvalidValue;

/// Causal normalisation of the features ([`super::audio::AudioClassification::causal_cmvn`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CausalCmvn {
    /// Frames averaged, this one and those before it (300: 3 s at a 10 ms shift).
    pub window: usize,
    /// Divide by the standard deviation too (its variance floored at 1).
    #[serde(default)]
    pub variance: bool,
    /// Start from a known mean instead of the first frames alone, e.g. `{ frames = 100,
    /// mean = [...] }` with the training set's mean that `experiment cmvn-stats` prints:
    /// until the window fills, up to `frames` frames of it fill the window
    /// ([`features::CausalCmvn::with_prior`], Kaldi's online CMVN with global statistics).
    /// Mean normalisation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<features::CmvnPrior>,
}

impl CausalCmvn {
    /// A window, no whole-utterance normalisation beside it (`cmvn`), and a prior of the
    /// frames' `width`.
    pub(crate) fn validate(&self, cmvn: bool, width: usize) -> Result<(), InvalidValue> {
        let refuse = |field: &str, rule: String| Err(InvalidValue::new(field, rule));
        if self.window == 0 {
            return refuse(
                "task.causal_cmvn.window",
                "must be a positive frame count".into(),
            );
        }
        if cmvn {
            return refuse(
                "task.causal_cmvn and task.cmvn",
                "cannot both be on: each normalises the features".into(),
            );
        }
        let Some(prior) = &self.prior else {
            return Ok(());
        };
        if self.variance {
            return refuse(
                "task.causal_cmvn.prior",
                "holds a mean only: it cannot go with variance = true".into(),
            );
        }
        if prior.mean.len() != width {
            return refuse(
                "task.causal_cmvn.prior.mean",
                format!(
                    "has {} values for frames of {width} (experiment cmvn-stats prints it)",
                    prior.mean.len()
                ),
            );
        }
        if !prior.mean.iter().all(|m| m.is_finite()) {
            return refuse("task.causal_cmvn.prior.mean", "must be finite".into());
        }
        Ok(())
    }
}
