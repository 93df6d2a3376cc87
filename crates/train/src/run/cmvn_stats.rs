//! `experiment cmvn-stats`: the mean of the training split's features before any
//! normalisation, the prior a causal run's normalisation can start from
//! (`task.causal_cmvn.prior`), as Kaldi's `compute-cmvn-stats` gives the global statistics
//! its online CMVN starts from.

use rayon::prelude::*;
use serde::Serialize;

use crate::config::ExperimentConfig;
use crate::data::example::{FeatureCache, utterance_features};

use super::RunError;

/// The training split's feature mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CmvnStats {
    /// Training utterances read (the originals: no augmented copies, no mixed-in noise).
    pub utterances: usize,
    /// Frames over all of them.
    pub frames: usize,
    /// Per feature, over every frame.
    pub mean: Vec<f32>,
}

/// The mean of the features of the training split of `config`'s corpus, computed as the run
/// computes them but without normalisation; `None` when the task reads no corpus. Summed in
/// `f64` in the listing's order, so it is the same on every machine and thread count.
pub fn cmvn_stats(config: &ExperimentConfig) -> Result<Option<CmvnStats>, RunError> {
    let Some((task, _)) = config.task.audio() else {
        return Ok(None);
    };
    let mut pipeline = task.pipeline();
    (pipeline.cmvn, pipeline.cmvn_prior) = (None, None);
    let cache = task.cache_dir.as_ref().map(FeatureCache::new);
    let utterances = task.utterances().map_err(RunError::Listing)?;
    let train: Vec<_> = utterances
        .iter()
        .filter(|u| u.split == "train" && u.noise.is_none())
        .collect();
    let sums = train
        .par_iter()
        .map(|u| {
            let features = utterance_features(u, &pipeline, cache.as_ref())?;
            let mut sum = vec![0.0f64; features.dim];
            for row in features.data.chunks_exact(features.dim.max(1)) {
                sum.iter_mut()
                    .zip(row)
                    .for_each(|(s, &x)| *s += f64::from(x));
            }
            Ok((features.num_frames, sum))
        })
        .collect::<Result<Vec<_>, features::FeatureError>>()
        .map_err(RunError::Features)?;
    let width = task.features_per_frame();
    let (frames, total) =
        sums.into_iter()
            .fold((0, vec![0.0f64; width]), |(frames, mut total), (n, sum)| {
                total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
                (frames + n, total)
            });
    let mean = total
        .iter()
        .map(|s| (s / frames.max(1) as f64) as f32)
        .collect();
    Ok(Some(CmvnStats {
        utterances: train.len(),
        frames,
        mean,
    }))
}
