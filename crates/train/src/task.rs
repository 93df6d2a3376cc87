//! Synthetic sequence-classification tasks generated on the fly from a seed.

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// A padded batch of one-hot sequences with one label each.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Row-major `[batch, time, features]`, zero past each sequence's length.
    pub inputs: Vec<f32>,
    /// `[batch, time, features]`.
    pub shape: [usize; 3],
    /// Valid steps of each sequence.
    pub lengths: Vec<usize>,
    /// Class of each sequence.
    pub labels: Vec<i64>,
}

/// The temporal-order task of Hochreiter & Schmidhuber (1997), experiment 6a.
///
/// A sequence starts with `B` and ends with `E`; every other step is one of the distractors
/// `a b c d`, except two steps, one in each window, that hold `X` or `Y`. The class is the
/// order of those two symbols: `XX`, `XY`, `YX` or `YY`. The paper's sizes are lengths
/// 100–110 with windows 10–20 and 50–60; smaller sizes make a quick smoke run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalOrder {
    /// Shortest sequence, in steps (paper: 100).
    pub min_length: usize,
    /// Longest sequence, in steps (paper: 110).
    pub max_length: usize,
    /// Steps (inclusive) where the first relevant symbol may sit (paper: `[10, 20]`).
    pub first_window: [usize; 2],
    /// Steps (inclusive) where the second relevant symbol may sit (paper: `[50, 60]`).
    pub second_window: [usize; 2],
}

/// Symbols, one-hot encoded in this order.
const DISTRACTORS: usize = 4;
const X: usize = 4;
const Y: usize = 5;
const BEGIN: usize = 6;
const END: usize = 7;

impl TemporalOrder {
    /// One-hot width: a, b, c, d, X, Y, B, E.
    pub const INPUT_SIZE: usize = 8;
    /// XX, XY, YX, YY.
    pub const NUM_CLASSES: usize = 4;

    /// The paper's sizes.
    pub fn paper() -> Self {
        Self {
            min_length: 100,
            max_length: 110,
            first_window: [10, 20],
            second_window: [50, 60],
        }
    }

    /// Checks that both windows fit strictly inside the shortest sequence, in order.
    pub fn validate(&self) -> Result<(), String> {
        let [a0, a1] = self.first_window;
        let [b0, b1] = self.second_window;
        if !(1 <= a0
            && a0 <= a1
            && a1 < b0
            && b0 <= b1
            && b1 + 1 < self.min_length
            && self.min_length <= self.max_length)
        {
            return Err(format!(
                "temporal_order needs 1 ≤ first_window ≤ … < second_window ≤ … < min_length − 1 ≤ max_length − 1; \
                 got first_window {:?}, second_window {:?}, lengths {}..={}",
                self.first_window, self.second_window, self.min_length, self.max_length
            ));
        }
        Ok(())
    }

    /// Draws `batch` sequences.
    pub fn sample(&self, rng: &mut StdRng, batch: usize) -> Batch {
        let sequences: Vec<(Vec<usize>, i64)> = (0..batch).map(|_| self.sequence(rng)).collect();
        let time = sequences.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        let mut inputs = vec![0.0; batch * time * Self::INPUT_SIZE];
        for (b, (symbols, _)) in sequences.iter().enumerate() {
            for (t, &symbol) in symbols.iter().enumerate() {
                inputs[(b * time + t) * Self::INPUT_SIZE + symbol] = 1.0;
            }
        }
        Batch {
            inputs,
            shape: [batch, time, Self::INPUT_SIZE],
            lengths: sequences.iter().map(|(s, _)| s.len()).collect(),
            labels: sequences.iter().map(|(_, label)| *label).collect(),
        }
    }

    fn sequence(&self, rng: &mut StdRng) -> (Vec<usize>, i64) {
        let length = rng.random_range(self.min_length..=self.max_length);
        let mut symbols: Vec<usize> = (0..length)
            .map(|_| rng.random_range(0..DISTRACTORS))
            .collect();
        symbols[0] = BEGIN;
        symbols[length - 1] = END;
        let first = rng.random_range(self.first_window[0]..=self.first_window[1]);
        let second = rng.random_range(self.second_window[0]..=self.second_window[1]);
        let (a, b) = (rng.random_bool(0.5), rng.random_bool(0.5));
        symbols[first] = if a { Y } else { X };
        symbols[second] = if b { Y } else { X };
        (symbols, 2 * a as i64 + b as i64)
    }
}
