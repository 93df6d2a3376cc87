//! Training augmentation: the versions of each utterance computed once, and SpecAugment's
//! masks drawn afresh every epoch.

use serde::{Deserialize, Serialize};

/// Extra versions of every training utterance. Each epoch trains on one version of each
/// utterance, drawn at random with the original among them; evaluation splits are never
/// augmented. The versions are computed once (and cached with the features).
///
/// SpecAugment's masks are drawn afresh for each utterance every epoch, on the version drawn.
///
/// ```toml
/// [task.augment]
/// vtln_warps = [0.9, 0.95, 1.05, 1.1]
/// speeds = [0.9, 1.1]
/// background_snrs = [10.0, 5.0]
/// time_masks = 2
/// time_mask_width = 10
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// VTLP (Jaitly & Hinton 2013): one version per factor with the mel filterbank warped
    /// by it, as Kaldi's `--vtln-warp` does ([`features::Vtln`]); 0.9–1.1 is usual.
    #[serde(default)]
    pub vtln_warps: Vec<f32>,
    /// Speed perturbation (Ko et al. 2015; Kaldi's recipes use 0.9 and 1.1): one version per
    /// factor, resampled so that it plays that many times faster, pitch included.
    #[serde(default)]
    pub speeds: Vec<f32>,
    /// Additive white noise: one version per signal-to-noise ratio in dB (e.g. 20 and 10).
    #[serde(default)]
    pub noise_snrs: Vec<f32>,
    /// SpecAugment (Park et al. 2019) time masks per utterance: each sets a run of up to
    /// `time_mask_width` frames (its width uniform in 0..=width) to zero, the mean after CMVN.
    #[serde(default)]
    pub time_masks: usize,
    /// Widest time mask, in frames.
    #[serde(default)]
    pub time_mask_width: usize,
    /// SpecAugment frequency masks per utterance: each zeroes a run of up to
    /// `feature_mask_width` feature columns, the same columns in the Δ and ΔΔ blocks.
    #[serde(default)]
    pub feature_masks: usize,
    /// Widest feature mask, in columns of the static block.
    #[serde(default)]
    pub feature_mask_width: usize,
    /// Background noise from recordings: one version per signal-to-noise ratio in dB, each
    /// with a stretch of one of the `background_noise` files mixed in (file and start chosen
    /// by a hash of the utterance and the ratio, so a run always gets the same mixes).
    #[serde(default)]
    pub background_snrs: Vec<f32>,
    /// The folder of noise WAVs for `background_snrs`; for Speech Commands, its
    /// `_background_noise_` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_noise: Option<std::path::PathBuf>,
}

impl Augment {
    /// Applies the SpecAugment masks to `features`, whose columns are `blocks` equal blocks
    /// (1, or 3 with Δ and ΔΔ). Draws nothing from `rng` when there are no masks.
    pub fn mask(&self, features: &mut features::Features, blocks: usize, rng: &mut impl rand::Rng) {
        self.draw_masks(features.num_frames, features.dim, blocks, rng)
            .apply(features);
    }

    /// Draws the SpecAugment masks for a `[frames, dim]` matrix of `blocks` column blocks,
    /// as [`Augment::mask`] would, without the matrix.
    pub fn draw_masks(
        &self,
        frames: usize,
        dim: usize,
        blocks: usize,
        rng: &mut impl rand::Rng,
    ) -> Masks {
        let mut masks = Masks {
            blocks,
            block: dim / blocks.max(1),
            ..Masks::default()
        };
        for _ in 0..self.time_masks {
            let width = rng.random_range(0..=self.time_mask_width.min(frames));
            let start = rng.random_range(0..=frames - width);
            masks.time.push((start, width));
        }
        for _ in 0..self.feature_masks {
            let width = rng.random_range(0..=self.feature_mask_width.min(masks.block));
            let start = rng.random_range(0..=masks.block - width);
            masks.feature.push((start, width));
        }
        masks
    }
}

/// SpecAugment masks drawn for one matrix ([`Augment::draw_masks`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Masks {
    /// (first frame, frames) of each time mask.
    time: Vec<(usize, usize)>,
    /// (first column within a block, columns) of each feature mask.
    feature: Vec<(usize, usize)>,
    blocks: usize,
    block: usize,
}

impl Masks {
    /// Zeroes the masked frames and columns of `features`.
    pub fn apply(&self, features: &mut features::Features) {
        let dim = features.dim;
        for &(start, width) in &self.time {
            features.data[start * dim..(start + width) * dim].fill(0.0);
        }
        for &(start, width) in &self.feature {
            for row in features.data.chunks_exact_mut(dim) {
                for b in 0..self.blocks {
                    row[b * self.block + start..b * self.block + start + width].fill(0.0);
                }
            }
        }
    }
}
