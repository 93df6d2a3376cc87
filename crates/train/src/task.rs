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

/// Spoken-digit classification from a manifest of WAV files: MFCC → recurrent stack →
/// `y_t` → one softmax per utterance (pooled over its valid steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpokenDigits {
    /// Manifest CSV (`path,label,speaker,split,…`; labels `0`…`9`), relative to the
    /// working directory; its paths are relative to the manifest's folder.
    pub manifest: std::path::PathBuf,
    /// Feature preset: `kaldi`, `librosa` or `htk`.
    pub preset: features::Preset,
    /// Rate the features are computed at (Hz); files at other rates are resampled.
    pub sample_rate: u32,
    /// Append Δ and ΔΔ (Kaldi's add-deltas, window 2).
    #[serde(default)]
    pub deltas: bool,
    /// Per-utterance mean and variance normalisation of the features.
    #[serde(default)]
    pub cmvn: bool,
    /// How `y_t` becomes one prediction per utterance: `mean` over valid steps or `last`.
    #[serde(default)]
    pub pooling: models::Pooling,
    /// Folder for cached features (none when absent).
    #[serde(default)]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Splits scored once after training, besides `valid` every epoch (e.g. `["test", "real"]`).
    #[serde(default)]
    pub report_splits: Vec<String>,
    /// Stop on an unreadable file instead of skipping it with a report.
    #[serde(default)]
    pub strict: bool,
}

impl SpokenDigits {
    /// Ten classes, `0`…`9`.
    pub const NUM_CLASSES: usize = 10;

    /// The class names as the manifest writes them.
    pub fn labels() -> Vec<String> {
        (0..Self::NUM_CLASSES).map(|d| d.to_string()).collect()
    }

    /// The feature pipeline these options describe.
    pub fn pipeline(&self) -> features::FilePipeline {
        let mut options = features::FeatureOptions::preset(self.preset);
        options.frame.sample_rate = self.sample_rate;
        let mut pipeline = features::FilePipeline::new(options);
        pipeline.deltas = self.deltas.then_some((2, 2));
        pipeline.cmvn = self
            .cmvn
            .then_some(features::Cmvn::Utterance { variance: true });
        pipeline
    }
}

/// Pads examples into one batch (zeros past each sequence's length).
pub fn pad_batch(examples: &[&crate::datasets::Example]) -> Batch {
    let dim = examples.first().map_or(0, |e| e.features.dim);
    let time = examples
        .iter()
        .map(|e| e.features.num_frames)
        .max()
        .unwrap_or(0);
    let mut inputs = vec![0.0; examples.len() * time * dim];
    for (b, example) in examples.iter().enumerate() {
        let start = b * time * dim;
        inputs[start..start + example.features.data.len()].copy_from_slice(&example.features.data);
    }
    Batch {
        inputs,
        shape: [examples.len(), time, dim],
        lengths: examples.iter().map(|e| e.features.num_frames).collect(),
        labels: examples.iter().map(|e| e.label as i64).collect(),
    }
}
