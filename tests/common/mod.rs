//! Helpers shared by the end-to-end tests.

use train::report::metrics::EpochMetrics;

/// `history` with the wall-clock times zeroed: what two runs must agree on.
pub fn without_time(history: &[EpochMetrics]) -> Vec<EpochMetrics> {
    history
        .iter()
        .map(|m| EpochMetrics {
            seconds: 0.0,
            ..m.clone()
        })
        .collect()
}
