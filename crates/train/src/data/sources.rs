//! Utterance lists from the corpora this project reads (its own manifest CSV, the Free
//! Spoken Digit Dataset, Google Speech Commands and its 12-class keyword task), and their
//! features, cached on disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use features::{Audio, FeatureError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// One recording and what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// The WAV file.
    pub path: PathBuf,
    /// The word said, e.g. `"7"` or `"seven"`.
    pub label: String,
    /// Who (or which synthetic voice) said it; splits never share a speaker.
    pub speaker: String,
    /// `train`, `valid`, `test`, or a corpus's own name such as `real`.
    pub split: String,
    /// The stretch of `path` that is this utterance, when it is not the whole file.
    pub clip: Option<Clip>,
    /// Background noise mixed in (a training augmentation), if any.
    pub noise: Option<NoiseMix>,
}

impl Utterance {
    /// Its audio: the file, or its clip, with its noise mixed in.
    pub fn audio(&self) -> Result<Audio, FeatureError> {
        let mut audio = features::read_wav(&self.path, features::Channel::Mean)?;
        if let Some(clip) = &self.clip {
            audio = clip.cut(&audio);
        }
        if let Some(noise) = &self.noise {
            noise.mix_into(&mut audio)?;
        }
        Ok(audio)
    }
}

/// Background noise mixed into an utterance at a signal-to-noise ratio: a stretch of a
/// noise recording as long as the utterance (the recording repeated if it is shorter),
/// resampled to the utterance's rate when the rates differ.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseMix {
    /// The noise recording.
    pub path: PathBuf,
    /// Where the stretch starts, as a fraction in [0, 1) of the starts that fit.
    pub offset: f64,
    /// Ratio of the utterance's mean power to the noise stretch's, in dB.
    pub snr_db: f32,
}

impl NoiseMix {
    /// Adds the noise to `audio` (left alone when either is silent).
    pub fn mix_into(&self, audio: &mut Audio) -> Result<(), FeatureError> {
        let mut noise = features::read_wav(&self.path, features::Channel::Mean)?;
        if noise.sample_rate != audio.sample_rate {
            noise = features::resample(&noise, audio.sample_rate)?;
        }
        let (n, len) = (audio.samples.len(), noise.samples.len());
        if n == 0 || len == 0 {
            return Ok(());
        }
        let start = (self.offset.clamp(0.0, 1.0) * len.saturating_sub(n) as f64) as usize;
        let stretch: Vec<f32> = (0..n).map(|i| noise.samples[(start + i) % len]).collect();
        let power = |x: &[f32]| x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
        let (signal, noise_power) = (power(&audio.samples), power(&stretch));
        if signal == 0.0 || noise_power == 0.0 {
            return Ok(());
        }
        let scale = (signal / (noise_power * 10f64.powf(self.snr_db as f64 / 10.0))).sqrt() as f32;
        for (x, v) in audio.samples.iter_mut().zip(stretch) {
            *x += scale * v;
        }
        Ok(())
    }
}

/// A stretch of a longer recording used as an utterance of its own, such as Speech
/// Commands' `_silence_` clips cut from `_background_noise_`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clip {
    /// First sample, at the file's own rate.
    pub start: usize,
    /// Samples (fewer when the file ends sooner).
    pub length: usize,
    /// Factor applied to the samples.
    pub gain: f32,
}

impl Clip {
    /// The stretch of `audio`, scaled.
    pub fn cut(&self, audio: &Audio) -> Audio {
        let start = self.start.min(audio.samples.len());
        let end = start.saturating_add(self.length).min(audio.samples.len());
        Audio {
            sample_rate: audio.sample_rate,
            samples: audio.samples[start..end]
                .iter()
                .map(|x| x * self.gain)
                .collect(),
        }
    }
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
/// let utterances = train::data::sources::read_manifest("datasets/default/manifest.csv".as_ref())?;
/// # Ok::<(), train::data::sources::DatasetError>(())
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
            clip: None,
            noise: None,
        });
    }
    Ok(utterances)
}

/// The Free Spoken Digit Dataset: `{digit}_{speaker}_{index}.wav` in `root` or
/// `root/recordings`. Its README's split gives indices 0–4 to test and the rest to train;
/// indices 5–9 of that rest are held out here as `valid`, so that training can choose its
/// best epoch without looking at test.
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
            split: match index {
                0..5 => "test",
                5..10 => "valid",
                _ => "train",
            }
            .to_string(),
            path,
            clip: None,
            noise: None,
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
/// `testing_list.txt` naming the held-out files (`word/file.wav`), speaker = the file name
/// before `_nohash_` (a hash of the speaker), so every `_nohash_N` take of a speaker falls
/// where the lists put that speaker. A file named in both lists is a test file. Every word
/// is its own label (Speech Commands' 35-word task on v2, 30 words on v1); folders starting
/// with `_` (such as `_background_noise_`) are skipped.
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
                clip: None,
                noise: None,
            });
        }
    }
    utterances.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(utterances)
}

/// The label of Speech Commands' clips that hold no word.
pub const SILENCE: &str = "_silence_";
/// The label of every word that is not a keyword.
pub const UNKNOWN: &str = "_unknown_";

/// Whether a keyword task's class holds no keyword (`_silence_` or `_unknown_`).
pub fn is_filler(label: &str) -> bool {
    label == SILENCE || label == UNKNOWN
}

/// The ten command words of Speech Commands' standard 12-class task, in the reference
/// order (TensorFlow's `speech_commands` example).
pub const COMMAND_WORDS: [&str; 10] = [
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
];

/// How [`keyword_spotting`] builds a keyword task from Speech Commands, as TensorFlow's
/// reference (`input_data.py`) does: the keywords keep their labels, and each split gets
/// `unknown_percentage`% as many other words labelled `_unknown_` and `silence_percentage`%
/// as many one-second `_silence_` clips.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordTask {
    /// The words kept as classes.
    pub keywords: Vec<String>,
    /// `_unknown_` utterances per split, in percent of that split's keyword utterances.
    pub unknown_percentage: f64,
    /// `_silence_` clips per split, in percent of that split's keyword utterances.
    pub silence_percentage: f64,
    /// Seed of the draws of unknown words and silence clips.
    pub seed: u64,
}

impl KeywordTask {
    /// The standard task: [`COMMAND_WORDS`], 10% unknown, 10% silence, the reference's seed.
    pub fn twelve_class() -> Self {
        Self {
            keywords: COMMAND_WORDS.iter().map(|w| w.to_string()).collect(),
            unknown_percentage: 10.0,
            silence_percentage: 10.0,
            seed: 59185,
        }
    }

    /// `_silence_`, `_unknown_`, then the keywords: the reference's class order.
    pub fn labels(&self) -> Vec<String> {
        [SILENCE, UNKNOWN]
            .iter()
            .map(|l| l.to_string())
            .chain(self.keywords.iter().cloned())
            .collect()
    }
}

/// Speech Commands as a keyword-spotting task ([`KeywordTask`]), splits from its lists.
///
/// - Unknown words are drawn per split without replacement, from every non-keyword file of
///   that split, by a shuffle seeded with `task.seed`.
/// - Silence clips are one second long, cut at random from the files in
///   `_background_noise_` at a gain uniform in [0.1, 1]. Each noise file is cut in three
///   stretches, the first 80% for train, the next 10% for valid and the last 10% for test, so
///   no split hears another's noise. Their speaker is `_background_noise_/<file stem>`.
///
/// ```no_run
/// use train::data::sources::{KeywordTask, keyword_spotting};
/// let utterances = keyword_spotting("speech_commands_v0.02".as_ref(), &KeywordTask::twelve_class())?;
/// # Ok::<(), train::data::sources::DatasetError>(())
/// ```
pub fn keyword_spotting(root: &Path, task: &KeywordTask) -> Result<Vec<Utterance>, DatasetError> {
    let all = speech_commands(root)?;
    let noise = background_noise(root)?;
    let mut rng = StdRng::seed_from_u64(task.seed);
    let mut chosen = Vec::new();
    // Every split the lists define, in a fixed order so the draws are too.
    for (split, share) in [
        ("train", (0.0, 0.8)),
        ("valid", (0.8, 0.9)),
        ("test", (0.9, 1.0)),
    ] {
        let in_split = all.iter().filter(|u| u.split == split);
        let (keywords, mut others): (Vec<&Utterance>, Vec<&Utterance>) =
            in_split.partition(|u| task.keywords.contains(&u.label));
        let count = |percentage: f64| (keywords.len() as f64 * percentage / 100.0).ceil() as usize;
        chosen.extend(keywords.iter().map(|u| (*u).clone()));
        others.shuffle(&mut rng);
        chosen.extend(
            others
                .iter()
                .take(count(task.unknown_percentage))
                .map(|u| Utterance {
                    label: UNKNOWN.to_string(),
                    ..(*u).clone()
                }),
        );
        let silence = count(task.silence_percentage);
        if silence > 0 {
            chosen.extend(silence_clips(&noise, split, share, silence, &mut rng)?);
        }
    }
    Ok(chosen)
}

/// The `.wav` files of a folder, sorted by path.
pub fn wav_files(folder: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io(folder))? {
        let path = entry.map_err(io(folder))?.path();
        if path.extension().is_some_and(|e| e == "wav") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The noise recordings of `_background_noise_`, by path, with their rate and length.
fn background_noise(root: &Path) -> Result<Vec<(PathBuf, Audio)>, DatasetError> {
    let folder = root.join("_background_noise_");
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    wav_files(&folder)?
        .into_iter()
        .map(|path| {
            let audio = features::read_wav(&path, features::Channel::Mean).map_err(|source| {
                DatasetError::BadFile {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok((path, audio))
        })
        .collect()
}

/// `count` one-second clips for `split`, cut from the `share` (start, end fractions) of the
/// noise files, round robin over the files long enough to hold one.
fn silence_clips(
    noise: &[(PathBuf, Audio)],
    split: &str,
    share: (f64, f64),
    count: usize,
    rng: &mut StdRng,
) -> Result<Vec<Utterance>, DatasetError> {
    use rand::Rng;
    let stretches: Vec<(&PathBuf, usize, usize, usize)> = noise
        .iter()
        .filter_map(|(path, audio)| {
            let n = audio.samples.len() as f64;
            let (from, to) = ((n * share.0) as usize, (n * share.1) as usize);
            let second = audio.sample_rate as usize;
            (to >= from + second).then_some((path, from, to, second))
        })
        .collect();
    if stretches.is_empty() {
        return Err(DatasetError::Layout(format!(
            "{split} needs {count} {SILENCE} clips, but _background_noise_ holds no .wav file \
             with a second of audio in that split's share of it"
        )));
    }
    Ok((0..count)
        .map(|i| {
            let &(path, from, to, second) = &stretches[i % stretches.len()];
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("noise");
            Utterance {
                path: path.clone(),
                label: SILENCE.to_string(),
                speaker: format!("_background_noise_/{stem}"),
                split: split.to_string(),
                clip: Some(Clip {
                    start: rng.random_range(from..=to - second),
                    length: second,
                    gain: rng.random_range(0.1..=1.0),
                }),
                noise: None,
            }
        })
        .collect())
}

/// Counts of a corpus listing, for `experiment corpus-info`: utterances per split, per
/// (split, label) and per (split, speaker), each sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorpusCounts {
    /// Utterances per split.
    pub splits: std::collections::BTreeMap<String, usize>,
    /// Utterances per split and label.
    pub labels: std::collections::BTreeMap<(String, String), usize>,
    /// Utterances per split and speaker.
    pub speakers: std::collections::BTreeMap<(String, String), usize>,
}

impl CorpusCounts {
    /// Counts `utterances`.
    pub fn new(utterances: &[Utterance]) -> Self {
        let mut counts = Self::default();
        for u in utterances {
            *counts.splits.entry(u.split.clone()).or_default() += 1;
            *counts
                .labels
                .entry((u.split.clone(), u.label.clone()))
                .or_default() += 1;
            *counts
                .speakers
                .entry((u.split.clone(), u.speaker.clone()))
                .or_default() += 1;
        }
        counts
    }
}
