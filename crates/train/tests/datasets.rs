//! The corpus loaders on layouts the tests build themselves, the shipped manifest's
//! speaker-disjoint splits, the feature cache and bad-file handling.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};

use features::{FeatureOptions, FilePipeline, Preset};

use train::data::example::{FeatureCache, load_examples};
use train::data::sources::{
    COMMAND_WORDS, CorpusCounts, DatasetError, KeywordTask, SILENCE, UNKNOWN, Utterance,
    free_spoken_digits, keyword_spotting, read_manifest, speech_commands,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn a_wav() -> PathBuf {
    repo().join("crates/features/tests/audio/digit7_8k.wav")
}

fn pipeline() -> FilePipeline {
    let mut options = FeatureOptions::preset(Preset::Kaldi);
    options.frame.sample_rate = 8000;
    FilePipeline::new(options)
}

/// (label, speaker, split) of each utterance, in order.
fn summary(utterances: &[Utterance]) -> Vec<(&str, &str, &str)> {
    utterances
        .iter()
        .map(|u| (u.label.as_str(), u.speaker.as_str(), u.split.as_str()))
        .collect()
}

#[test]
fn the_embedded_corpus_balances_the_digits_in_every_synthetic_split_and_stays_small() {
    let utterances =
        read_manifest(&repo().join("datasets/default/manifest.csv")).expect("manifest");
    for split in ["train", "valid", "test"] {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for u in utterances.iter().filter(|u| u.split == split) {
            *counts.entry(&u.label).or_default() += 1;
        }
        assert_eq!(counts.len(), 10, "{split}: every digit appears: {counts:?}");
        let (least, most) = (counts.values().min(), counts.values().max());
        assert!(
            most.zip(least).is_some_and(|(m, l)| m - l <= 1),
            "{split}: digit counts within ±1: {counts:?}"
        );
    }
    let bytes: u64 = walk(&repo().join("datasets/default"))
        .iter()
        .map(|path| std::fs::metadata(path).expect("file").len())
        .sum();
    assert!(bytes < 5_000_000, "datasets/default holds {bytes} bytes");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_embedded_corpus_has_speaker_disjoint_splits() {
    let utterances =
        read_manifest(&repo().join("datasets/default/manifest.csv")).expect("manifest");
    let mut speakers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for u in &utterances {
        speakers.entry(&u.speaker).or_default().insert(&u.split);
        assert!(
            u.path.is_file(),
            "{} is listed but missing",
            u.path.display()
        );
    }
    for (speaker, splits) in &speakers {
        assert_eq!(splits.len(), 1, "{speaker} appears in {splits:?}");
    }
    let splits: BTreeSet<&str> = utterances.iter().map(|u| u.split.as_str()).collect();
    assert_eq!(splits, BTreeSet::from(["real", "test", "train", "valid"]));
    let real_engines: BTreeSet<&str> = utterances
        .iter()
        .filter(|u| u.split == "real")
        .map(|u| u.speaker.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        real_engines,
        BTreeSet::from(["asterisk", "pocketsphinx"]),
        "the real split is the human recordings, and only they"
    );
    let human = |u: &&Utterance| {
        u.speaker.starts_with("asterisk:") || u.speaker.starts_with("pocketsphinx:")
    };
    assert!(
        utterances.iter().filter(human).all(|u| u.split == "real"),
        "human recordings never enter training"
    );
    let train_labels: BTreeSet<&str> = utterances
        .iter()
        .filter(|u| u.split == "train")
        .map(|u| u.label.as_str())
        .collect();
    assert_eq!(train_labels.len(), 10, "every digit is trained on");
    let bytes: u64 = utterances
        .iter()
        .map(|u| std::fs::metadata(&u.path).expect("file").len())
        .sum();
    assert!(bytes <= 5_000_000, "the embedded audio is {bytes} bytes");
}

#[test]
fn free_spoken_digit_layout_and_its_split() {
    let root = tempfile::tempdir().expect("tempdir");
    let recordings = root.path().join("recordings");
    std::fs::create_dir(&recordings).expect("mkdir");
    for name in [
        "3_jackson_0.wav",
        "3_jackson_4.wav",
        "3_jackson_5.wav",
        "3_jackson_9.wav",
        "3_jackson_10.wav",
        "9_nicolas_49.wav",
    ] {
        std::fs::copy(a_wav(), recordings.join(name)).expect("copy");
    }
    let utterances = free_spoken_digits(root.path()).expect("lists");
    // Sorted by path: 0, 10, 4, 5, 9, then nicolas's 49.
    assert_eq!(
        summary(&utterances),
        vec![
            ("3", "jackson", "test"),
            ("3", "jackson", "train"),
            ("3", "jackson", "test"),
            ("3", "jackson", "valid"),
            ("3", "jackson", "valid"),
            ("9", "nicolas", "train")
        ]
    );
    std::fs::copy(a_wav(), recordings.join("not-fsdd.wav")).expect("copy");
    assert!(matches!(
        free_spoken_digits(root.path()),
        Err(DatasetError::Layout(_))
    ));
}

#[test]
fn speech_commands_layout_lists_and_speakers() {
    let root = tempfile::tempdir().expect("tempdir");
    for (word, file) in [
        ("yes", "0a7c2a8d_nohash_0.wav"),
        ("yes", "0b09edd3_nohash_1.wav"),
        ("no", "0a7c2a8d_nohash_2.wav"),
        ("_background_noise_", "white_noise.wav"),
    ] {
        std::fs::create_dir_all(root.path().join(word)).expect("mkdir");
        std::fs::copy(a_wav(), root.path().join(word).join(file)).expect("copy");
    }
    std::fs::write(
        root.path().join("validation_list.txt"),
        "yes/0b09edd3_nohash_1.wav\n",
    )
    .expect("write");
    std::fs::write(
        root.path().join("testing_list.txt"),
        "no/0a7c2a8d_nohash_2.wav\n",
    )
    .expect("write");
    let utterances = speech_commands(root.path()).expect("lists");
    assert_eq!(
        summary(&utterances),
        vec![
            ("no", "0a7c2a8d", "test"),
            ("yes", "0a7c2a8d", "train"),
            ("yes", "0b09edd3", "valid")
        ]
    );
}

fn speech_commands_layout(root: &Path, files: &[(&str, &str, &str)], noise_seconds: usize) {
    let wav = a_wav();
    let files: Vec<_> = files
        .iter()
        .map(|&(word, file, list)| (word, file, list, wav.as_path()))
        .collect();
    testkit::layouts::speech_commands_layout(root, &files, noise_seconds).expect("layout");
}

#[test]
fn the_twelve_class_task_keeps_the_keywords_and_adds_a_tenth_each_of_unknown_and_silence() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let names: Vec<String> = (0..40).map(|i| format!("{i:08x}_nohash_0.wav")).collect();
    // 20 keyword files and 15 other words in train, a few in the two lists.
    for (i, name) in names.iter().enumerate() {
        let (word, list) = match i {
            0..20 => (COMMAND_WORDS[i % 10], "training"),
            20..35 => (["cat", "dog", "bed"][i % 3], "training"),
            35 | 36 => ("yes", "validation"),
            37 => ("cat", "validation"),
            38 => ("no", "testing"),
            _ => ("dog", "testing"),
        };
        files.push((word, name.as_str(), list));
    }
    speech_commands_layout(root.path(), &files, 12);
    let task = KeywordTask::twelve_class();
    let utterances = keyword_spotting(root.path(), &task).expect("lists");
    let counts = CorpusCounts::new(&utterances);
    let count = |split: &str, label: &str| {
        counts
            .labels
            .get(&(split.to_string(), label.to_string()))
            .copied()
            .unwrap_or(0)
    };
    // ceil(10% of the split's keyword utterances) unknown words and silence clips.
    assert_eq!((count("train", UNKNOWN), count("train", SILENCE)), (2, 2));
    assert_eq!((count("valid", UNKNOWN), count("valid", SILENCE)), (1, 1));
    assert_eq!((count("test", UNKNOWN), count("test", SILENCE)), (1, 1));
    assert_eq!(count("train", "yes"), 2);
    assert!(utterances.iter().all(|u| task.labels().contains(&u.label)));
    // Silence is a second of one split's share of the noise file (12 s: train 0–9.6 s,
    // valid 9.6–10.8 s, test 10.8–12 s), at a gain in [0.1, 1].
    for u in utterances.iter().filter(|u| u.label == SILENCE) {
        let clip = u.clip.expect("silence is a clip");
        let (from, to) = match u.split.as_str() {
            "train" => (0, 153_600),
            "valid" => (153_600, 172_800),
            _ => (172_800, 192_000),
        };
        assert!(
            clip.start >= from && clip.start + clip.length <= to,
            "{u:?}"
        );
        assert_eq!(clip.length, 16000);
        assert!((0.1..=1.0).contains(&clip.gain));
        assert_eq!(u.speaker, "_background_noise_/noise");
    }
    // The same draws every time.
    assert_eq!(
        keyword_spotting(root.path(), &task).expect("lists"),
        utterances
    );
    // A clip's features are a second's frames (8 kHz Kaldi frames: 10 ms shift, 25 ms window).
    let silence: Vec<&Utterance> = utterances.iter().filter(|u| u.label == SILENCE).collect();
    let loaded = load_examples(&silence, &task.labels(), &pipeline(), None, true).expect("loads");
    assert_eq!(loaded.examples[0].features.num_frames, 98);
    assert_eq!(loaded.examples[0].origin.label, 0);
    // Without noise long enough for a split's share, the error says so.
    speech_commands_layout(root.path(), &files, 5);
    let error = keyword_spotting(root.path(), &task).expect_err("too little noise");
    assert!(error.to_string().contains("_background_noise_"), "{error}");
}

#[test]
fn speech_commands_splits_follow_the_lists_by_speaker_and_test_wins_a_tie() {
    let root = tempfile::tempdir().expect("tempdir");
    speech_commands_layout(
        root.path(),
        &[
            // One speaker's takes in the validation list, wherever the word.
            ("yes", "c0ffee00_nohash_0.wav", "validation"),
            ("yes", "c0ffee00_nohash_1.wav", "validation"),
            ("up", "c0ffee00_nohash_0.wav", "validation"),
            // A file named in both lists is a test file.
            ("no", "feedbeef_nohash_0.wav", "both"),
            ("go", "00000001_nohash_3.wav", "training"),
        ],
        12,
    );
    let utterances = speech_commands(root.path()).expect("lists");
    assert_eq!(
        summary(&utterances),
        vec![
            ("go", "00000001", "train"),
            ("no", "feedbeef", "test"),
            ("up", "c0ffee00", "valid"),
            ("yes", "c0ffee00", "valid"),
            ("yes", "c0ffee00", "valid"),
        ]
    );
}

#[test]
fn an_audio_task_takes_its_classes_from_its_labels_or_else_the_corpus() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let names: Vec<String> = (0..24).map(|i| format!("{i:08x}_nohash_0.wav")).collect();
    for (i, name) in names.iter().enumerate() {
        let (word, list) = match i {
            0..10 => (COMMAND_WORDS[i], "training"),
            10..20 => (COMMAND_WORDS[i - 10], "validation"),
            20 => ("wow", "training"),
            21 => ("wow", "validation"),
            _ => ("yes", "testing"),
        };
        files.push((word, name.as_str(), list));
    }
    speech_commands_layout(root.path(), &files, 12);
    let versioned = |version: u8, task: &str, extra: &str| {
        let text = format!(
            "name = \"kws\"\nseed = 1\n[task]\nkind = \"audio_classification\"\n\
             corpus = {{ kind = \"speech_commands\", root = {:?}, version = {version}, task = {task:?} }}\n\
             preset = \"kaldi\"\nsample_rate = 8000\n{extra}\n[model]\ncell = {{ kind = \"gru\" }}\n\
             hidden_size = 4\n[training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
            root.path().display().to_string()
        );
        train::ExperimentConfig::parse(&text, "test", &[]).map_err(|e| e.to_string())
    };
    let config = |task: &str, extra: &str| versioned(2, task, extra);
    let prepare = |config: &train::ExperimentConfig| match config.prepare_data().expect("loads") {
        train::data::corpus::TaskData::Corpus(corpus) => corpus,
        _ => panic!("a corpus task"),
    };
    let twelve = prepare(&config("12class", "").expect("valid"));
    let mut expected = vec![SILENCE.to_string(), UNKNOWN.to_string()];
    expected.extend(COMMAND_WORDS.iter().map(|w| w.to_string()));
    assert_eq!(twelve.labels, expected);
    assert_eq!(twelve.reports.len(), 0);
    // Every word its own class, in sorted order.
    let words = prepare(&config("35words", "").expect("valid"));
    let mut sorted: Vec<String> = COMMAND_WORDS.iter().map(|w| w.to_string()).collect();
    sorted.push("wow".into());
    sorted.sort();
    assert_eq!(words.labels, sorted);
    // Named labels win, and other words are skipped with a reason.
    let named = prepare(&config("35words", "labels = [\"yes\", \"no\"]").expect("valid"));
    assert_eq!(named.labels, ["yes", "no"]);
    assert_eq!(named.train.len(), 2);
    assert!(
        named
            .skipped
            .iter()
            .any(|(_, why)| why.contains("unknown label"))
    );
    for (extra, complaint) in [
        ("labels = [\"yes\", \"yes\"]", "task.labels"),
        ("manifest = \"m.csv\"", "task.manifest and task.corpus"),
    ] {
        let error = config("12class", extra).expect_err(extra);
        assert!(error.contains(complaint), "{extra}: {error}");
    }
    let error = versioned(1, "35words", "").expect_err("35 words on v1");
    assert!(error.contains("version = 2"), "{error}");
    let error = versioned(3, "12class", "").expect_err("no v3");
    assert!(error.contains("task.corpus.version"), "{error}");
}

#[test]
fn background_noise_is_mixed_in_at_the_asked_ratio_as_one_more_training_version() {
    let root = tempfile::tempdir().expect("tempdir");
    let files: Vec<(&str, String, &str)> = (0..6)
        .map(|i| {
            (
                COMMAND_WORDS[i % 3],
                format!("{i:08x}_nohash_0.wav"),
                ["training", "validation"][i / 4],
            )
        })
        .collect();
    let files: Vec<(&str, &str, &str)> =
        files.iter().map(|(w, f, l)| (*w, f.as_str(), *l)).collect();
    speech_commands_layout(root.path(), &files, 12);
    // The ratio: a tone with a stretch of the layout's noise mixed in at 10 dB.
    let tone: Vec<f32> = (0..16000).map(|n| 0.5 * (n as f32 * 0.05).sin()).collect();
    let mut audio = features::Audio {
        sample_rate: 16000,
        samples: tone.clone(),
    };
    let mix = train::data::sources::NoiseMix {
        path: root.path().join("_background_noise_/noise.wav"),
        offset: 0.5,
        snr_db: 10.0,
    };
    mix.mix_into(&mut audio).expect("mixes");
    let power = |x: &[f32]| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    let noise: Vec<f32> = audio
        .samples
        .iter()
        .zip(&tone)
        .map(|(a, b)| a - b)
        .collect();
    let snr = 10.0 * (power(&tone) / power(&noise)).log10();
    assert!((snr - 10.0).abs() < 1e-3, "mixed at {snr} dB");
    // As augmentation: one more version per ratio, the same length, not the original.
    let text = format!(
        "name = \"kws\"\nseed = 1\n[task]\nkind = \"audio_classification\"\n\
         corpus = {{ kind = \"speech_commands\", root = {:?}, version = 2, task = \"35words\" }}\n\
         preset = \"kaldi\"\nsample_rate = 8000\n[task.augment]\nbackground_snrs = [10.0, 0.0]\n\
         [model]\ncell = {{ kind = \"gru\" }}\nhidden_size = 4\n\
         [training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
        root.path().display().to_string()
    );
    let config = train::ExperimentConfig::parse(&text, "test", &[]).expect("valid");
    let load = || match config.prepare_data().expect("loads") {
        train::data::corpus::TaskData::Corpus(corpus) => corpus,
        _ => panic!("a corpus task"),
    };
    let corpus = load();
    assert_eq!(corpus.train.len(), 4);
    for example in corpus.train.in_memory().expect("in memory") {
        let [ten, zero] = example.augmented.as_slice() else {
            panic!("two versions, got {}", example.augmented.len());
        };
        assert_eq!(ten.num_frames, example.features.num_frames);
        assert_ne!(ten.data, example.features.data);
        assert_ne!(ten.data, zero.data);
    }
    assert!(corpus.valid.iter().all(|e| e.augmented.is_empty()));
    assert_eq!(
        load().train.in_memory(),
        corpus.train.in_memory(),
        "the same mixes every time"
    );
    // A manifest corpus has no noise of its own.
    let dir = tempfile::tempdir().expect("tempdir");
    let error = digit_config(dir.path(), "[task.augment]\nbackground_snrs = [10.0]")
        .expect_err("no noise folder");
    assert!(error.contains("task.augment.background_noise"), "{error}");
}

#[test]
fn an_fsdd_task_trains_on_the_later_takes_and_holds_out_the_first_ten() {
    let root = tempfile::tempdir().expect("tempdir");
    testkit::layouts::free_spoken_digits_layout(root.path(), &[a_wav()], &[0, 4, 5, 9, 10, 49])
        .expect("layout");
    let text = format!(
        "name = \"fsdd\"\nseed = 1\n[task]\nkind = \"audio_classification\"\n\
         corpus = {{ kind = \"fsdd\", root = {:?} }}\npreset = \"kaldi\"\nsample_rate = 8000\n\
         report_splits = [\"test\"]\n[model]\ncell = {{ kind = \"gru\" }}\nhidden_size = 4\n\
         [training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
        root.path().display().to_string()
    );
    let config = train::ExperimentConfig::parse(&text, "test", &[]).expect("valid");
    let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
    else {
        panic!("a corpus task");
    };
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(corpus.labels, digits);
    assert_eq!((corpus.train.len(), corpus.valid.len()), (20, 20));
    assert_eq!(corpus.reports[0].1.len(), 20);
}

#[test]
fn digit_strings_are_labelled_by_their_characters_and_unusable_labels_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "1".repeat(500);
    let mut manifest = String::from("path,label,speaker,split\n");
    for (name, label, split) in [
        ("a", "12", "train"),
        ("b", "9070", "train"),
        ("c", "1x", "train"),
        ("d", long.as_str(), "train"),
        ("e", "5", "valid"),
    ] {
        std::fs::copy(a_wav(), dir.path().join(format!("{name}.wav"))).expect("copy");
        manifest += &format!("{name}.wav,{label},{name},{split}\n");
    }
    std::fs::write(dir.path().join("manifest.csv"), manifest).expect("manifest");
    let text = format!(
        "name = \"t\"\nseed = 1\n[task]\nkind = \"digit_strings\"\nmanifest = {:?}\n\
         labels = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]\n\
         preset = \"kaldi\"\nsample_rate = 8000\n[model]\ncell = {{ kind = \"lstm\" }}\nhidden_size = 4\n\
         [training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
        dir.path().join("manifest.csv")
    );
    let config = train::ExperimentConfig::parse(&text, "test", &[]).expect("valid");
    let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
    else {
        panic!("a corpus task");
    };
    assert!(corpus.sequences);
    assert_eq!(corpus.labels[0], train::data::audio::BLANK_NAME);
    assert_eq!(corpus.labels.len(), 11);
    // Class of digit d is d + 1: the blank comes first.
    let sequences: Vec<Option<Vec<usize>>> = corpus
        .train
        .in_memory()
        .expect("in memory")
        .iter()
        .map(|e| e.origin.sequence.clone())
        .collect();
    assert_eq!(sequences, [Some(vec![2, 3]), Some(vec![10, 1, 8, 1])]);
    let reasons: Vec<&str> = corpus.skipped.iter().map(|(_, why)| why.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("not one of"), "{reasons:?}");
    assert!(
        reasons[1].contains("cannot hold the 500 labels"),
        "{reasons:?}"
    );
    let batch = train::data::batch::pad_batch(
        &corpus
            .train
            .in_memory()
            .expect("in memory")
            .iter()
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        batch.targets,
        train::data::batch::Targets::Sequences(vec![vec![2, 3], vec![10, 1, 8, 1]])
    );
}

#[test]
fn manifest_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("manifest.csv");
    std::fs::write(
        &path,
        "path,label,speaker,split\na.wav,1,alice,train\nb.wav,2,,train\n",
    )
    .expect("write");
    let error = read_manifest(&path).expect_err("empty speaker");
    assert!(
        matches!(error, DatasetError::Manifest { line: 3, .. }),
        "{error}"
    );
    std::fs::write(&path, "path,label,split\na.wav,1,train\n").expect("write");
    let error = read_manifest(&path).expect_err("no speaker column");
    assert!(error.to_string().contains("speaker"), "{error}");
}

#[test]
fn the_cache_is_keyed_by_file_and_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("a.wav");
    std::fs::copy(a_wav(), &wav).expect("copy");
    let cache = FeatureCache::new(dir.path().join("cache"));
    let entries = || std::fs::read_dir(dir.path().join("cache")).map_or(0, |d| d.count());

    let first = cache.features(&wav, &pipeline()).expect("computes");
    assert_eq!(entries(), 1);
    assert_eq!(cache.features(&wav, &pipeline()).expect("hit"), first);
    assert_eq!(entries(), 1, "a hit writes nothing");

    let mut other = pipeline();
    other.deltas = Some((2, 2));
    let with_deltas = cache.features(&wav, &other).expect("computes");
    assert_eq!(with_deltas.dim, 39);
    assert_eq!(entries(), 2, "another configuration is another entry");

    std::fs::copy(
        repo().join("crates/features/tests/audio/digit7_stereo.wav"),
        &wav,
    )
    .expect("copy");
    let changed = cache.features(&wav, &pipeline()).expect("computes");
    assert_ne!(changed, first, "a changed file is recomputed");
    assert_eq!(entries(), 3);
}

#[test]
fn bad_files_are_skipped_and_counted_or_refused_when_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.wav");
    let bad = dir.path().join("bad.wav");
    std::fs::copy(a_wav(), &good).expect("copy");
    std::fs::write(&bad, b"RIFF....WAVEnot really").expect("write");
    let utterance = |path: &Path| Utterance {
        path: path.to_path_buf(),
        label: "7".into(),
        speaker: "s".into(),
        split: "train".into(),
        clip: None,
        noise: None,
    };
    let list = [utterance(&good), utterance(&bad)];
    let refs: Vec<&Utterance> = list.iter().collect();
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let loaded = load_examples(&refs, &labels, &pipeline(), None, false).expect("lenient");
    assert_eq!(loaded.examples.len(), 1);
    assert_eq!(loaded.examples[0].origin.label, 7);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].0, bad);
    let strict = load_examples(&refs, &labels, &pipeline(), None, true);
    assert!(matches!(strict, Err(DatasetError::BadFile { path, .. }) if path == bad));
}

/// A spoken-digit experiment on a manifest of copies of one file, with `extra` TOML lines.
fn digit_config(dir: &Path, extra: &str) -> Result<train::ExperimentConfig, String> {
    let mut manifest = String::from("path,label,speaker,split\n");
    for (name, split) in [("a", "train"), ("b", "train"), ("c", "valid")] {
        std::fs::copy(a_wav(), dir.join(format!("{name}.wav"))).expect("copy");
        manifest += &format!("{name}.wav,7,{name},{split}\n");
    }
    std::fs::write(dir.join("manifest.csv"), manifest).expect("manifest");
    let text = format!(
        "name = \"t\"\nseed = 1\n[task]\nkind = \"spoken_digits\"\nmanifest = {:?}\npreset = \"kaldi\"\n\
         sample_rate = 8000\n{extra}\n[model]\ncell = {{ kind = \"lstm\" }}\nhidden_size = 4\n\
         [training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
        dir.join("manifest.csv")
    );
    train::ExperimentConfig::parse(&text, "test", &[]).map_err(|e| e.to_string())
}

#[test]
fn augmentation_gives_training_examples_their_versions_and_only_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = digit_config(
        dir.path(),
        "[task.augment]\nvtln_warps = [0.9, 1.1]\nspeeds = [1.25]\nnoise_snrs = [10.0]",
    )
    .expect("valid");
    let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
    else {
        panic!("a corpus task");
    };
    for example in corpus.train.in_memory().expect("in memory") {
        let [warped_down, warped_up, faster, noisy] = example.augmented.as_slice() else {
            panic!("four versions, got {}", example.augmented.len());
        };
        assert_eq!(noisy.num_frames, example.features.num_frames);
        assert_ne!(noisy.data, example.features.data);
        assert_eq!(warped_down.num_frames, example.features.num_frames);
        assert_ne!(warped_down.data, example.features.data);
        assert_ne!(warped_up.data, warped_down.data);
        // A quarter faster: about 0.8 of the frames.
        let ratio = faster.num_frames as f64 / example.features.num_frames as f64;
        assert!(
            (ratio - 0.8).abs() < 0.03,
            "speed 1.25 kept {ratio} of the frames"
        );
    }
    assert!(corpus.valid.iter().all(|e| e.augmented.is_empty()));

    // Each epoch draws the original or a version; all five come up.
    let example = &corpus.train.in_memory().expect("in memory")[0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut seen = BTreeSet::new();
    for _ in 0..100 {
        let drawn = example.draw_version(&mut rng);
        let index = std::iter::once(&example.features)
            .chain(&example.augmented)
            .position(|f| *f == drawn.features)
            .expect("a known version");
        seen.insert(index);
    }
    assert_eq!(seen, BTreeSet::from([0, 1, 2, 3, 4]));
    // Without versions nothing is drawn, so unaugmented runs keep their random sequence.
    let plain = train::data::example::Example {
        augmented: Vec::new(),
        ..example.clone()
    };
    let (mut a, mut b) = (
        rand::rngs::StdRng::seed_from_u64(2),
        rand::rngs::StdRng::seed_from_u64(2),
    );
    assert_eq!(plain.draw_version(&mut a).features, example.features);
    assert_eq!(a.random::<u64>(), b.random::<u64>());
}

#[test]
fn bad_feature_options_are_refused_when_the_config_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (extra, complaint) in [
        ("fmin = 5000.0", "mel range"),
        ("[task.augment]\nvtln_warps = [0.0]", "vtln warp"),
        ("[task.augment]\nvtln_warps = [nan]", "vtln warp"),
        ("[task.augment]\nspeeds = [-1.0]", "speeds"),
        ("[task.augment]\nnoise_snrs = [inf]", "noise_snrs"),
    ] {
        let error = digit_config(dir.path(), extra).expect_err(extra);
        assert!(error.contains(complaint), "{extra}: {error}");
    }
    assert!(digit_config(dir.path(), "fmin = 300.0\nfmax = 3400.0").is_ok());
}

#[test]
fn specaugment_masks_zero_runs_of_frames_and_the_same_columns_in_every_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = digit_config(
        dir.path(),
        "features = \"log_mel\"\ndeltas = true\ncmvn = true\n[task.augment]\n\
         time_masks = 1\ntime_mask_width = 6\nfeature_masks = 1\nfeature_mask_width = 5",
    )
    .expect("valid");
    let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
    else {
        panic!("a corpus task");
    };
    // Kaldi's 23 mel bands at 8 kHz, with Δ and ΔΔ.
    assert_eq!((corpus.train.dim(), corpus.blocks), (69, 3));
    let original = &corpus.train.in_memory().expect("in memory")[0].features;
    let (frames, dim) = (original.num_frames, original.dim);
    let zero_rows = |f: &features::Features| {
        (0..frames)
            .filter(|&t| f.data[t * dim..(t + 1) * dim].iter().all(|&v| v == 0.0))
            .collect::<Vec<_>>()
    };
    let zero_columns = |f: &features::Features| {
        (0..dim)
            .filter(|&c| (0..frames).all(|t| f.data[t * dim + c] == 0.0))
            .collect::<Vec<_>>()
    };
    assert!(zero_rows(original).is_empty() && zero_columns(original).is_empty());

    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (mut widest_rows, mut widest_columns) = (0, 0);
    for _ in 0..50 {
        let mut masked = original.clone();
        corpus.augment.mask(&mut masked, corpus.blocks, &mut rng);
        let rows = zero_rows(&masked);
        let columns = zero_columns(&masked);
        // One run of at most 6 frames.
        assert!(
            rows.len() <= 6 && rows.windows(2).all(|w| w[1] == w[0] + 1),
            "{rows:?}"
        );
        // At most 5 bands, the same ones in the static, Δ and ΔΔ blocks.
        assert!(columns.len() <= 15 && columns.len() % 3 == 0, "{columns:?}");
        let bands: Vec<usize> = columns.iter().filter(|&&c| c < 23).copied().collect();
        let expected: Vec<usize> = (0..3)
            .flat_map(|b| bands.iter().map(move |c| b * 23 + c))
            .collect();
        assert_eq!(columns, expected);
        // Everything outside the masks is untouched.
        for t in (0..frames).filter(|t| !rows.contains(t)) {
            for c in (0..dim).filter(|c| !columns.contains(c)) {
                assert_eq!(masked.data[t * dim + c], original.data[t * dim + c]);
            }
        }
        widest_rows = widest_rows.max(rows.len());
        widest_columns = widest_columns.max(bands.len());
    }
    assert_eq!((widest_rows, widest_columns), (6, 5));

    // No masks, no draws: unmasked runs keep their random sequence.
    let none = train::data::augment::Augment::default();
    let (mut a, mut b) = (
        rand::rngs::StdRng::seed_from_u64(4),
        rand::rngs::StdRng::seed_from_u64(4),
    );
    let mut untouched = original.clone();
    none.mask(&mut untouched, 3, &mut a);
    assert_eq!(&untouched, original);
    assert_eq!(a.random::<u64>(), b.random::<u64>());
}

#[test]
fn the_configured_feature_width_is_what_the_pipeline_gives() {
    // `predict` builds its model from this width before reading any file.
    for (extra, width) in [
        ("", 13),
        ("deltas = true", 39),
        ("features = \"log_mel\"", 23),
        ("features = \"log_mel\"\ndeltas = true", 69),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = digit_config(dir.path(), extra).expect("valid");
        let train::config::TaskConfig::AudioClassification(task) = &config.task else {
            panic!("a spoken-digits task");
        };
        let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
        else {
            panic!("a corpus task");
        };
        assert_eq!(
            (task.features_per_frame(), corpus.train.dim()),
            (width, width),
            "{extra}"
        );
    }
}

#[test]
fn runs_filling_one_cache_at_once_see_whole_entries_and_equal_results() {
    let corpus = repo().join("datasets/default");
    let wavs: Vec<PathBuf> = read_manifest(&corpus.join("manifest.csv"))
        .expect("the embedded corpus")
        .iter()
        .step_by(17)
        .take(24)
        .map(|u| u.path.clone())
        .collect();
    let config =
        train::ExperimentConfig::load(&repo().join("experiments/spoken-digits-demo.toml"), &[])
            .expect("the main experiment");
    let train::config::TaskConfig::AudioClassification(task) = &config.task else {
        panic!("a spoken-digit task");
    };
    let pipeline = task.pipeline();
    let one_after_another: Vec<_> = {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FeatureCache::new(dir.path());
        wavs.iter()
            .map(|wav| cache.features(wav, &pipeline).expect("features"))
            .collect()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("cache");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // A reader that opens every entry it finds while the writers fill the cache.
        let reader = scope.spawn(|| {
            let mut seen = 0;
            // The last pass starts after the writers are done, so it sees every entry
            // even when the writers finish before this thread is first scheduled.
            loop {
                let writers_done = done.load(std::sync::atomic::Ordering::Acquire);
                for entry in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "npy") {
                        let array = features::read_npy(&path).expect("a whole entry");
                        assert!(
                            one_after_another.iter().any(|f| f.data == array.data),
                            "{} holds features no sequential run computed",
                            path.display()
                        );
                        seen += 1;
                    }
                }
                if writers_done {
                    break;
                }
            }
            seen
        });
        let writers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let cache = FeatureCache::new(&shared);
                    wavs.iter()
                        .map(|wav| cache.features(wav, &pipeline).expect("features"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.join().expect("writer"), one_after_another);
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().expect("reader") > 0, "the reader saw entries");
    });
    let names: Vec<String> = std::fs::read_dir(&shared)
        .expect("cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let distinct: BTreeSet<Vec<u8>> = wavs.iter().map(|w| std::fs::read(w).unwrap()).collect();
    assert_eq!(names.len(), distinct.len(), "one entry per file: {names:?}");
    assert!(
        names.iter().all(|n| n.ends_with(".npy")),
        "no temporary left: {names:?}"
    );
}
