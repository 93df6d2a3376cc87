//! Examples: an utterance's features with its label, loaded in parallel and cached on disk.

use std::path::{Path, PathBuf};

use features::{FeatureError, Features, FilePipeline, decode_wav, read_npy};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::sources::{Clip, DatasetError, NoiseMix, Utterance};

/// Features stored on disk, one `.npy` per (file contents, feature configuration): a
/// changed file or configuration gets a new key, so stale entries are never read.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The features of `path` under `pipeline`, computed and stored on a miss.
    pub fn features(&self, path: &Path, pipeline: &FilePipeline) -> Result<Features, FeatureError> {
        self.clip_features(path, None, pipeline)
    }

    /// The features of `clip` of `path` (the whole file when `None`) under `pipeline`.
    pub fn clip_features(
        &self,
        path: &Path,
        clip: Option<Clip>,
        pipeline: &FilePipeline,
    ) -> Result<Features, FeatureError> {
        self.utterance_features(path, clip, None, pipeline)
    }

    /// The features of an utterance: `clip` of `path`, with `noise` mixed in.
    fn utterance_features(
        &self,
        path: &Path,
        clip: Option<Clip>,
        noise: Option<&NoiseMix>,
        pipeline: &FilePipeline,
    ) -> Result<Features, FeatureError> {
        let bytes = std::fs::read(path).map_err(|e| FeatureError::io(path, e))?;
        let mut configuration = format!("{pipeline:?}");
        if let Some(clip) = clip {
            configuration.push_str(&format!("{clip:?}"));
        }
        if let Some(noise) = noise {
            // The noise file's size and time stand for its contents: hashing megabytes of
            // noise for every utterance would cost more than the features.
            let metadata =
                std::fs::metadata(&noise.path).map_err(|e| FeatureError::io(&noise.path, e))?;
            configuration.push_str(&format!(
                "{noise:?}{}{:?}",
                metadata.len(),
                metadata.modified().ok()
            ));
        }
        let key = fnv1a(
            &bytes,
            fnv1a(configuration.as_bytes(), 0xcbf2_9ce4_8422_2325),
        );
        let entry = self.dir.join(format!("{key:016x}.npy"));
        if let Ok(array) = read_npy(&entry)
            && array.shape.len() == 2
        {
            return Ok(Features {
                num_frames: array.shape[0],
                dim: array.shape[1],
                data: array.data,
            });
        }
        let features = features_of_bytes(&bytes, clip, noise, pipeline)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| FeatureError::io(&self.dir, e))?;
        features::write_npy(&entry, &features)?;
        Ok(features)
    }
}

/// The features of a WAV file in memory, or of a clip of it, with noise mixed in.
/// The features of an utterance (its clip of its file, with its noise mixed in) under
/// `pipeline`, through `cache` when there is one.
pub fn utterance_features(
    utterance: &Utterance,
    pipeline: &FilePipeline,
    cache: Option<&FeatureCache>,
) -> Result<Features, FeatureError> {
    let Utterance {
        path, clip, noise, ..
    } = utterance;
    match cache {
        Some(cache) => cache.utterance_features(path, *clip, noise.as_ref(), pipeline),
        None => std::fs::read(path)
            .map_err(|e| FeatureError::io(path, e))
            .and_then(|bytes| features_of_bytes(&bytes, *clip, noise.as_ref(), pipeline)),
    }
}

fn features_of_bytes(
    bytes: &[u8],
    clip: Option<Clip>,
    noise: Option<&NoiseMix>,
    pipeline: &FilePipeline,
) -> Result<Features, FeatureError> {
    if clip.is_none() && noise.is_none() {
        return pipeline.run_bytes(bytes);
    }
    let mut audio = decode_wav(bytes, pipeline.channel)?;
    if let Some(clip) = clip {
        audio = clip.cut(&audio);
    }
    if let Some(noise) = noise {
        noise.mix_into(&mut audio)?;
    }
    pipeline.run_audio(audio)
}

/// A 64-bit hash of `bytes` that is the same in every build and Rust version (FNV-1a).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    fnv1a(bytes, 0xcbf2_9ce4_8422_2325)
}

/// 64-bit FNV-1a, continuing from `state`: stable across builds and Rust versions.
fn fnv1a(bytes: &[u8], mut state: u64) -> u64 {
    for &b in bytes {
        state ^= b as u64;
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// What an example is labelled and where it came from: the part an in-memory [`Example`]
/// and a feature store's [`StoredExample`](crate::data::store::StoredExample) share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// Index into the label list (0 for a label sequence).
    pub label: usize,
    /// For tasks that output label sequences (CTC): the label's symbols, as class indices
    /// (1 and up; 0 is the blank).
    pub sequence: Option<Vec<usize>>,
    /// The file it came from.
    pub path: PathBuf,
    /// Who is speaking (the manifest's `speaker`).
    pub speaker: String,
    /// The stretch of `path` it came from, when not the whole file.
    pub clip: Option<Clip>,
}

/// One sequence of features, its label and origin, and its augmented versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `[frames, dim]` features.
    pub features: Features,
    /// Its label and where it came from.
    pub origin: Origin,
    /// Augmented versions of the same utterance (training only; see
    /// [`Augment`](crate::data::augment::Augment)).
    pub augmented: Vec<Features>,
}

impl Example {
    /// The original or one of the augmented versions, uniformly at random; an example
    /// without versions is returned as it is, without drawing from `rng`.
    pub fn draw_version(&self, rng: &mut impl rand::Rng) -> Example {
        self.version(draw_version_index(self.augmented.len() + 1, rng))
    }

    /// The features of version `k` (0 the original, then the augmented ones).
    pub fn version_features(&self, k: usize) -> &Features {
        match k {
            0 => &self.features,
            k => &self.augmented[k - 1],
        }
    }

    /// Version `k` (0 the original, then the augmented ones), without versions of its own.
    pub fn version(&self, k: usize) -> Example {
        Example {
            features: self.version_features(k).clone(),
            origin: self.origin.clone(),
            augmented: Vec::new(),
        }
    }
}

/// Which of `versions` versions of an utterance to train on (0 the original), uniformly;
/// draws nothing from `rng` when there is only the original.
pub fn draw_version_index(versions: usize, rng: &mut impl rand::Rng) -> usize {
    match versions {
        0 | 1 => 0,
        n => rng.random_range(0..=n - 1),
    }
}

/// Examples loaded from utterances, and the files that were skipped, with why.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One per readable utterance, in the input order.
    pub examples: Vec<Example>,
    /// Unreadable or empty files and the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Computes (or reads from `cache`) the features of every utterance, in parallel.
/// Labels are looked up in `labels`; a file that cannot be read, or gives no frames, is
/// skipped and reported, or is an error when `strict`.
pub fn load_examples(
    utterances: &[&Utterance],
    labels: &[String],
    pipeline: &FilePipeline,
    cache: Option<&FeatureCache>,
    strict: bool,
) -> Result<Loaded, DatasetError> {
    let results: Vec<Result<Example, DatasetError>> = utterances
        .par_iter()
        .map(|u| {
            let label = labels.iter().position(|l| *l == u.label).ok_or_else(|| {
                DatasetError::UnknownLabel {
                    path: u.path.clone(),
                    label: u.label.clone(),
                }
            })?;
            let bad_file = |source| DatasetError::BadFile {
                path: u.path.clone(),
                source,
            };
            let features = utterance_features(u, pipeline, cache).map_err(bad_file)?;
            if features.num_frames == 0 {
                return Err(bad_file(FeatureError::ShorterThanOneFrame));
            }
            Ok(Example {
                features,
                origin: Origin {
                    label,
                    sequence: None,
                    path: u.path.clone(),
                    speaker: u.speaker.clone(),
                    clip: u.clip,
                },
                augmented: Vec::new(),
            })
        })
        .collect();
    let mut loaded = Loaded::default();
    for result in results {
        match result {
            Ok(example) => loaded.examples.push(example),
            Err(error) if strict => return Err(error),
            Err(DatasetError::UnknownLabel { path, label }) => loaded
                .skipped
                .push((path, format!("unknown label {label:?}"))),
            Err(DatasetError::BadFile { path, source }) => {
                loaded.skipped.push((path, source.to_string()))
            }
            Err(error) => return Err(error),
        }
    }
    Ok(loaded)
}
