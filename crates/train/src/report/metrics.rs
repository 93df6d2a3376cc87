//! What training measures: per-epoch metrics, batch scores, confusion matrices and the
//! per-speaker reports with their confidence intervals. Plain data, no backend.

use serde::{Deserialize, Serialize};

/// Metrics after one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's training batches.
    pub train_loss: f64,
    /// Fraction of training sequences classified right during the epoch.
    pub train_accuracy: f64,
    /// Cross-entropy on the validation set after the epoch.
    pub valid_loss: f64,
    /// Accuracy on the validation set after the epoch.
    pub valid_accuracy: f64,
    /// Validation accuracy of each class (sequences of that true class classified right;
    /// per-step tasks count steps by their target class; empty for regression).
    #[serde(default)]
    pub valid_class_accuracy: Vec<f64>,
    /// Wall-clock seconds of the epoch, validation included.
    pub seconds: f64,
    /// Label error rate on the validation set (edit distance over reference length) for
    /// tasks that output label sequences (CTC); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_label_error_rate: Option<f64>,
}

/// A split's confusion matrix: its name and the counts, row = truth, column = prediction.
pub type Confusion = (String, Vec<Vec<usize>>);

/// What a finished run reports, apart from its model: the content of `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The epoch whose model the reports and confusions score (see `TrainOutcome`).
    pub best_epoch: usize,
    /// Confusion matrices of `valid` and each report split (corpus tasks).
    #[serde(rename = "confusion")]
    pub confusions: Vec<Confusion>,
    /// One entry per epoch.
    #[serde(rename = "epochs")]
    pub history: Vec<EpochMetrics>,
    /// Accuracy on each report split, in all and per speaker.
    pub reports: Vec<SplitReport>,
}

/// Accuracy on one split scored after training, in all and per speaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitReport {
    /// The split's name in the manifest.
    pub split: String,
    /// Share of utterances classified right.
    pub accuracy: f64,
    /// Utterances scored.
    pub utterances: usize,
    /// (speaker, right, utterances), by speaker name.
    pub speakers: Vec<(String, usize, usize)>,
    /// For label sequences (CTC): (label errors, reference labels), the numerator and
    /// denominator of the label (digit) error rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_errors: Option<(usize, usize)>,
}

impl SplitReport {
    /// Most speakers listed one per line by `Display`; a split with more (a public corpus's
    /// thousands) is summarised in one line.
    pub const MAX_SPEAKERS_SHOWN: usize = 20;

    /// The report of utterances judged right or not, as (speaker, right) pairs, with the
    /// label errors of a sequence task.
    pub fn from_outcomes(
        split: &str,
        outcomes: &[(&str, bool)],
        label_errors: Option<(usize, usize)>,
    ) -> Self {
        let mut speakers = std::collections::BTreeMap::<&str, (usize, usize)>::new();
        for &(speaker, right) in outcomes {
            let tally = speakers.entry(speaker).or_default();
            tally.0 += usize::from(right);
            tally.1 += 1;
        }
        let correct: usize = speakers.values().map(|(right, _)| right).sum();
        SplitReport {
            split: split.to_string(),
            accuracy: correct as f64 / outcomes.len().max(1) as f64,
            utterances: outcomes.len(),
            speakers: speakers
                .into_iter()
                .map(|(name, (right, total))| (name.to_string(), right, total))
                .collect(),
            label_errors,
        }
    }
}

impl std::fmt::Display for SplitReport {
    /// One line for the split, then one per speaker when there are several (up to
    /// [`SplitReport::MAX_SPEAKERS_SHOWN`]), each with its Wilson 95% interval:
    ///
    /// ```text
    /// real: 18/22 = 81.8% (95% CI 61.5–92.7%)
    ///   asterisk:en_US_f_Allison  10/10  100.0%  (72.2–100.0%)
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let right = self
            .speakers
            .iter()
            .map(|(_, right, _)| right)
            .sum::<usize>();
        let (low, high) = wilson_interval(right, self.utterances);
        write!(
            f,
            "{}: {right}/{} = {:.1}% (95% CI {:.1}–{:.1}%)",
            self.split,
            self.utterances,
            100.0 * self.accuracy,
            100.0 * low,
            100.0 * high
        )?;
        if let Some((errors, labels)) = self.label_errors {
            write!(
                f,
                "; label error rate {:.1}% ({errors} errors in {labels} labels)",
                100.0 * errors as f64 / labels.max(1) as f64
            )?;
        }
        if self.speakers.len() > Self::MAX_SPEAKERS_SHOWN {
            write!(
                f,
                "\n  {} speakers (each one's figure is in metrics.json)",
                self.speakers.len()
            )?;
        } else if self.speakers.len() > 1 {
            let width = self
                .speakers
                .iter()
                .map(|(name, ..)| name.len())
                .max()
                .unwrap_or(0);
            for (name, right, total) in &self.speakers {
                let (low, high) = wilson_interval(*right, *total);
                write!(
                    f,
                    "\n  {name:<width$}  {:>7}  {:>5.1}%  ({:.1}–{:.1}%)",
                    format!("{right}/{total}"),
                    100.0 * *right as f64 / (*total).max(1) as f64,
                    100.0 * low,
                    100.0 * high
                )?;
            }
        }
        Ok(())
    }
}

/// The Wilson score interval at 95% confidence for `right` successes in `total` trials,
/// as (low, high) shares; (0, 1) when there are no trials. Unlike the normal
/// approximation it stays inside [0, 1] and is not degenerate at 0 or `total` right,
/// which matters for the small per-speaker counts of a test split.
///
/// ```
/// let (low, high) = train::report::metrics::wilson_interval(10, 10);
/// assert!((low - 0.7225).abs() < 1e-4 && high == 1.0);
/// ```
pub fn wilson_interval(right: usize, total: usize) -> (f64, f64) {
    if total == 0 {
        return (0.0, 1.0);
    }
    // The 97.5% quantile of the standard normal distribution.
    const Z: f64 = 1.959_963_984_540_054;
    let n = total as f64;
    let p = right as f64 / n;
    let centre = p + Z * Z / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt();
    let scale = 1.0 + Z * Z / n;
    // At 0 or `total` right the bound is exactly 0 or 1; rounding would land a hair inside.
    let low = if right == 0 {
        0.0
    } else {
        (centre - spread) / scale
    };
    let high = if right == total {
        1.0
    } else {
        (centre + spread) / scale
    };
    (low.clamp(0.0, 1.0), high.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::wilson_interval;

    #[test]
    fn wilson_intervals_match_newcombes_worked_examples() {
        // Newcombe (1998), Statistics in Medicine 17:857–872, table I, method 3.
        for (right, total, low, high) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let (l, h) = wilson_interval(right, total);
            assert!(
                (l - low).abs() < 5e-5 && (h - high).abs() < 5e-5,
                "{right}/{total}: ({l:.4}, {h:.4}), expected ({low}, {high})"
            );
        }
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
        let (low, high) = wilson_interval(20, 20);
        assert_eq!(high, 1.0);
        assert!(low > 0.8 && low < 0.85, "{low}");
    }
}
