//! Utterance lists from the corpora this project reads (its own manifest CSV, the Free
//! Spoken Digit Dataset, Google Speech Commands), and their features, cached on disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use features::{FeatureError, Features, FilePipeline, read_npy};
use rayon::prelude::*;

/// One recording and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// The WAV file.
    pub path: PathBuf,
    /// The word said, e.g. `"7"` or `"seven"`.
    pub label: String,
    /// Who (or which synthetic voice) said it; splits never share a speaker.
    pub speaker: String,
    /// `train`, `valid`, `test`, or a corpus's own name such as `real`.
    pub split: String,
}

/// Why a corpus could not be listed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest row is malformed.
    #[error("{path}, line {line}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A folder is not in the expected layout.
    #[error("{0}")]
    Layout(String),
    /// In strict mode, the first file whose label is not one of the task's.
    #[error("{path}: unknown label {label:?}")]
    UnknownLabel {
        /// The file.
        path: PathBuf,
        /// Its label in the manifest.
        label: String,
    },
    /// In strict mode, the first file that could not be turned into features.
    #[error("{path}: {source}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: FeatureError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a manifest CSV with at least the columns `path,label,speaker,split` (others, such
/// as `engine`, `source` and `licence`, are allowed). Paths are relative to the manifest's
/// folder.
///
/// ```no_run
/// let utterances = train::datasets::read_manifest("datasets/default/manifest.csv".as_ref())?;
/// # Ok::<(), train::datasets::DatasetError>(())
/// ```
pub fn read_manifest(path: &Path) -> Result<Vec<Utterance>, DatasetError> {
    let root = path.parent().unwrap_or(Path::new("."));
    let mut reader = csv::Reader::from_path(path).map_err(|e| DatasetError::Manifest {
        path: path.to_path_buf(),
        line: 1,
        message: e.to_string(),
    })?;
    let bad = |line: usize, message: String| DatasetError::Manifest {
        path: path.to_path_buf(),
        line,
        message,
    };
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(1, format!("no column {name:?} (found {headers:?})")))
    };
    let (p, l, s, sp) = (
        column("path")?,
        column("label")?,
        column("speaker")?,
        column("split")?,
    );
    let mut utterances = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.map_err(|e| bad(line, e.to_string()))?;
        let field = |i: usize| {
            record
                .get(i)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(line, format!("empty or missing column {}", &headers[i])))
        };
        utterances.push(Utterance {
            path: root.join(field(p)?),
            label: field(l)?.to_string(),
            speaker: field(s)?.to_string(),
            split: field(sp)?.to_string(),
        });
    }
    Ok(utterances)
}

/// The Free Spoken Digit Dataset: `{digit}_{speaker}_{index}.wav` in `root` or
/// `root/recordings`, split as its README says (indices 0–4 test, the rest train).
pub fn free_spoken_digits(root: &Path) -> Result<Vec<Utterance>, DatasetError> {
    let folder = if root.join("recordings").is_dir() {
        root.join("recordings")
    } else {
        root.to_path_buf()
    };
    let mut utterances = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
        let path = entry.map_err(io(&folder))?.path();
        if path.extension().is_none_or(|e| e != "wav") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let parts: Vec<&str> = stem.split('_').collect();
        let (Some(digit), Some(speaker), Some(Ok(index))) = (
            parts.first(),
            parts.get(1),
            parts.get(2).map(|i| i.parse::<usize>()),
        ) else {
            return Err(DatasetError::Layout(format!(
                "{}: not named digit_speaker_index.wav",
                path.display()
            )));
        };
        utterances.push(Utterance {
            label: digit.to_string(),
            speaker: speaker.to_string(),
            split: if index < 5 { "test" } else { "train" }.to_string(),
            path,
        });
    }
    utterances.sort_by(|a, b| a.path.cmp(&b.path));
    if utterances.is_empty() {
        return Err(DatasetError::Layout(format!(
            "no .wav files in {}",
            folder.display()
        )));
    }
    Ok(utterances)
}

/// Google Speech Commands (v1 or v2): one folder per word, `validation_list.txt` and
/// `testing_list.txt` naming the held-out files, speaker = the file name before `_nohash_`.
/// Folders starting with `_` (such as `_background_noise_`) are skipped.
pub fn speech_commands(root: &Path) -> Result<Vec<Utterance>, DatasetError> {
    let list = |name: &str| -> Result<BTreeSet<String>, DatasetError> {
        let path = root.join(name);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        Ok(text
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect())
    };
    let (validation, testing) = (list("validation_list.txt")?, list("testing_list.txt")?);
    let mut utterances = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let folder = entry.map_err(io(root))?.path();
        let word = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !folder.is_dir() || word.starts_with('_') {
            continue;
        }
        for file in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let path = file.map_err(io(&folder))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !name.ends_with(".wav") {
                continue;
            }
            let relative = format!("{word}/{name}");
            let split = if testing.contains(&relative) {
                "test"
            } else if validation.contains(&relative) {
                "valid"
            } else {
                "train"
            };
            utterances.push(Utterance {
                speaker: name.split("_nohash_").next().unwrap_or(name).to_string(),
                label: word.clone(),
                split: split.to_string(),
                path,
            });
        }
    }
    utterances.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(utterances)
}

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
        let bytes = std::fs::read(path).map_err(|e| FeatureError::io(path, e))?;
        let key = fnv1a(
            &bytes,
            fnv1a(format!("{pipeline:?}").as_bytes(), 0xcbf2_9ce4_8422_2325),
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
        let features = pipeline.run_bytes(&bytes)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| FeatureError::io(&self.dir, e))?;
        features::write_npy(&entry, &features)?;
        Ok(features)
    }
}

/// 64-bit FNV-1a, continuing from `state`: stable across builds and Rust versions.
fn fnv1a(bytes: &[u8], mut state: u64) -> u64 {
    for &b in bytes {
        state ^= b as u64;
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// One sequence of features and its class index.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// `[frames, dim]` features.
    pub features: Features,
    /// Index into the label list.
    pub label: usize,
    /// The file it came from.
    pub path: PathBuf,
    /// Who is speaking (the manifest's `speaker`).
    pub speaker: String,
    /// Augmented versions of the same utterance (training only; see `corpus::Augment`).
    pub augmented: Vec<Features>,
}

impl Example {
    /// The original or one of the augmented versions, uniformly at random; an example
    /// without versions is returned as it is, without drawing from `rng`.
    pub fn draw_version(&self, rng: &mut impl rand::Rng) -> Example {
        let features = match self.augmented.len() {
            0 => &self.features,
            n => match rng.random_range(0..=n) {
                0 => &self.features,
                k => &self.augmented[k - 1],
            },
        };
        Example {
            features: features.clone(),
            label: self.label,
            path: self.path.clone(),
            speaker: self.speaker.clone(),
            augmented: Vec::new(),
        }
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
            let features = match cache {
                Some(cache) => cache.features(&u.path, pipeline),
                None => pipeline.run(&u.path),
            }
            .map_err(bad_file)?;
            if features.num_frames == 0 {
                return Err(bad_file(FeatureError::ShorterThanOneFrame));
            }
            Ok(Example {
                features,
                label,
                path: u.path.clone(),
                speaker: u.speaker.clone(),
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
