//! Synthetic sequence-classification tasks generated on the fly from a seed.

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::checks::InvalidValue;
use crate::data::batch::{Batch, Targets};

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
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let [a0, a1] = self.first_window;
        let [b0, b1] = self.second_window;
        if !(1 <= a0
            && a0 <= a1
            && a1 < b0
            && b0 <= b1
            && b1 + 1 < self.min_length
            && self.min_length <= self.max_length)
        {
            return Err(InvalidValue::new(
                "task.first_window, task.second_window, task.min_length and task.max_length",
                format!(
                    "must satisfy 1 ≤ first_window ≤ … < second_window ≤ … < min_length − 1 ≤ max_length − 1; \
                     got first_window {:?}, second_window {:?}, lengths {}..={}",
                    self.first_window, self.second_window, self.min_length, self.max_length
                ),
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
            targets: Targets::Classes(sequences.iter().map(|(_, label)| *label).collect()),
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

/// The adding problem of Hochreiter & Schmidhuber (1997), experiment 4.
///
/// Each step is a pair (value, marker): the value is uniform in [−1, 1]; the marker is 1 at
/// two steps, −1 at the first and last step (unless marked), 0 elsewhere. The first marked
/// step is one of the first ten, the second one of the first `T/2 − 1` (as in the paper,
/// `X₁` counts as 0 when step 0 is the marked one). The target at the end is
/// `0.5 + (X₁ + X₂)/4` ∈ [0, 1],
/// regressed with squared error; a sequence is right when the error is below 0.04.
/// Lengths are drawn from `[T, T + T/10]`, as in the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adding {
    /// The minimal lag `T` (paper: 100, 500, 1000).
    pub min_length: usize,
}

impl Adding {
    /// (value, marker).
    pub const INPUT_SIZE: usize = 2;
    /// The paper's error criterion.
    pub const TOLERANCE: f32 = 0.04;

    /// Checks that the marked windows exist.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.min_length < 12 {
            return Err(InvalidValue::new(
                "task.min_length",
                format!(
                    "must be ≥ 12 for the adding problem (two marker windows), got {}",
                    self.min_length
                ),
            ));
        }
        Ok(())
    }

    /// Draws `batch` sequences.
    pub fn sample(&self, rng: &mut StdRng, batch: usize) -> Batch {
        let t = self.min_length;
        let lengths: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(t..=t + t / 10))
            .collect();
        let time = lengths.iter().copied().max().unwrap_or(0);
        let mut inputs = vec![0.0; batch * time * Self::INPUT_SIZE];
        let mut values = Vec::with_capacity(batch);
        for (b, &length) in lengths.iter().enumerate() {
            // X₁ among the first ten pairs, X₂ among the first T/2 − 1 still unmarked ones.
            let first = rng.random_range(0..10);
            let second = loop {
                let s = rng.random_range(0..t / 2 - 1);
                if s != first {
                    break s;
                }
            };
            let mut sum = 0.0;
            for step in 0..length {
                let value: f32 = rng.random_range(-1.0..=1.0);
                let marker = if step == first || step == second {
                    // The paper sets X₁ to zero when the first pair is the marked one.
                    if step != 0 {
                        sum += value;
                    }
                    1.0
                } else if step == 0 || step + 1 == length {
                    -1.0
                } else {
                    0.0
                };
                let at = (b * time + step) * Self::INPUT_SIZE;
                inputs[at] = value;
                inputs[at + 1] = marker;
            }
            values.push(0.5 + sum / 4.0);
        }
        Batch {
            inputs,
            shape: [batch, time, Self::INPUT_SIZE],
            lengths,
            targets: Targets::Values {
                values,
                tolerance: Self::TOLERANCE,
            },
        }
    }
}

/// The embedded Reber grammar of Hochreiter & Schmidhuber (1997), experiment 1.
///
/// Strings are `B (T|P) <Reber string> (same T|P) E`; the network reads one symbol per step
/// and predicts the next with a softmax at every step. A prediction is right when its
/// arg-max is one of the legal next symbols; a string is right when every step is. The hard
/// part is the second-to-last symbol, which repeats the second one across the whole inner
/// string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedReber {
    /// Longest string kept (longer draws are redrawn); none when absent.
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// The symbols B, T, P, S, X, V, E, one-hot in this order.
const REBER_SYMBOLS: usize = 7;
const RB: usize = 0;
const RT: usize = 1;
const RP: usize = 2;
const RS: usize = 3;
const RX: usize = 4;
const RV: usize = 5;
const RE: usize = 6;

/// Reber's automaton: from each state, the (symbol, next state) choices (taken with equal
/// probability); state 6 only emits E.
const REBER_EDGES: [&[(usize, usize)]; 6] = [
    &[(RT, 1), (RP, 2)],
    &[(RS, 1), (RX, 3)],
    &[(RT, 2), (RV, 4)],
    &[(RX, 2), (RS, 5)],
    &[(RP, 3), (RV, 5)],
    &[(RE, 6)],
];

impl EmbeddedReber {
    /// One-hot symbols.
    pub const INPUT_SIZE: usize = REBER_SYMBOLS;
    /// One softmax unit per symbol.
    pub const NUM_CLASSES: usize = REBER_SYMBOLS;
    /// The shortest string: B, the outer T or P, B, four inner symbols (e.g. T X S E), the
    /// outer symbol again, E.
    pub const MIN_LENGTH: usize = 9;

    /// Checks that strings of at most `max_length` symbols exist (the sampler redraws until
    /// one fits).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        match self.max_length {
            Some(max) if max < Self::MIN_LENGTH => Err(InvalidValue::new(
                "task.max_length",
                format!(
                    "must be ≥ {} (the shortest embedded Reber string), got {max}",
                    Self::MIN_LENGTH
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Draws one string with the legal successors of each of its symbols.
    fn string(rng: &mut StdRng) -> (Vec<usize>, Vec<Vec<usize>>) {
        let outer = if rng.random_bool(0.5) { RT } else { RP };
        let mut symbols = vec![RB, outer, RB];
        let mut legal = vec![vec![RT, RP], vec![RB], vec![RT, RP]];
        let mut state = 0;
        while state != 6 {
            let edges = REBER_EDGES[state];
            let (symbol, next) = edges[rng.random_range(0..edges.len())];
            symbols.push(symbol);
            state = next;
            legal.push(match state {
                // After the inner E only the remembered outer symbol is legal.
                6 => vec![outer],
                s => REBER_EDGES[s].iter().map(|&(symbol, _)| symbol).collect(),
            });
        }
        symbols.push(outer);
        legal.push(vec![RE]);
        symbols.push(RE);
        legal.push(Vec::new());
        (symbols, legal)
    }

    /// Draws `batch` strings: inputs are every symbol but the last, targets every symbol but
    /// the first.
    pub fn sample(&self, rng: &mut StdRng, batch: usize) -> Batch {
        let strings: Vec<(Vec<usize>, Vec<Vec<usize>>)> = (0..batch)
            .map(|_| {
                loop {
                    let drawn = Self::string(rng);
                    if self.max_length.is_none_or(|max| drawn.0.len() <= max) {
                        break drawn;
                    }
                }
            })
            .collect();
        let time = strings.iter().map(|(s, _)| s.len() - 1).max().unwrap_or(0);
        let mut inputs = vec![0.0; batch * time * REBER_SYMBOLS];
        let mut classes = vec![0; batch * time];
        let mut accepted = vec![false; batch * time * REBER_SYMBOLS];
        for (b, (symbols, legal)) in strings.iter().enumerate() {
            for t in 0..symbols.len() - 1 {
                let row = b * time + t;
                inputs[row * REBER_SYMBOLS + symbols[t]] = 1.0;
                classes[row] = symbols[t + 1] as i64;
                for &next in &legal[t] {
                    accepted[row * REBER_SYMBOLS + next] = true;
                }
            }
        }
        Batch {
            inputs,
            shape: [batch, time, REBER_SYMBOLS],
            lengths: strings.iter().map(|(s, _)| s.len() - 1).collect(),
            targets: Targets::StepClasses {
                classes,
                accepted: Some(accepted),
            },
        }
    }
}

/// A task that draws fresh sequences every batch: the 1997 experiments. The variants of
/// [`crate::config::TaskConfig`] that generate their data hand it out as this trait.
pub trait SequenceTask: std::fmt::Debug + Send + Sync {
    /// Draws `batch` sequences.
    fn sample(&self, rng: &mut StdRng, batch: usize) -> Batch;
    /// The class names, in output order (none for a regression).
    fn class_names(&self) -> Vec<String>;
    /// Input width and output width (classes, or 1 for a regression).
    fn sizes(&self) -> (usize, usize);
    /// An owned copy, for a trainer that keeps the task for a whole run.
    fn boxed(&self) -> Box<dyn SequenceTask>;
}

/// Implements [`SequenceTask`] over a type's own `sample`.
macro_rules! sequence_task {
    ($task:ty, $classes:expr, $sizes:expr) => {
        impl SequenceTask for $task {
            fn sample(&self, rng: &mut StdRng, batch: usize) -> Batch {
                <$task>::sample(self, rng, batch)
            }

            fn class_names(&self) -> Vec<String> {
                let names: &[&str] = $classes;
                names.iter().map(|n| n.to_string()).collect()
            }

            fn sizes(&self) -> (usize, usize) {
                $sizes
            }

            fn boxed(&self) -> Box<dyn SequenceTask> {
                Box::new(self.clone())
            }
        }
    };
}

sequence_task!(
    TemporalOrder,
    &["XX", "XY", "YX", "YY"],
    (TemporalOrder::INPUT_SIZE, TemporalOrder::NUM_CLASSES)
);
sequence_task!(Adding, &[], (Adding::INPUT_SIZE, 1));
sequence_task!(
    EmbeddedReber,
    &["B", "T", "P", "S", "X", "V", "E"],
    (EmbeddedReber::INPUT_SIZE, EmbeddedReber::NUM_CLASSES)
);
