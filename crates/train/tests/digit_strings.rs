//! Connected digit strings with CTC, through the CLI: strings made by joining recordings of
//! single digits from the embedded corpus, the shipped experiment's TOML pointed at them,
//! `train`, `eval` and `predict` (the decoded string and when each digit was said).

mod common;

use std::path::{Path, PathBuf};

use common::experiment;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Joins recordings of single digits (all at one rate) into one WAV file.
fn join(parts: &[PathBuf], target: &Path) {
    let mut samples = Vec::new();
    let mut spec = None;
    for part in parts {
        let mut reader = hound::WavReader::open(part).expect("a WAV file");
        spec = Some(reader.spec());
        samples.extend(reader.samples::<i16>().map(|s| s.expect("a sample")));
    }
    let mut writer = hound::WavWriter::create(target, spec.expect("parts")).expect("writes");
    for s in samples {
        writer.write_sample(s).expect("writes");
    }
    writer.finalize().expect("writes");
}

/// A manifest of digit strings: for each split of the embedded corpus, strings of one to
/// three of one speaker's digits.
fn strings_corpus(dir: &Path) -> PathBuf {
    let utterances =
        train::data::sources::read_manifest(&repo().join("datasets/default/manifest.csv"))
            .expect("the embedded corpus");
    let mut rows = String::from("path,label,speaker,split\n");
    let mut by_speaker =
        std::collections::BTreeMap::<(&str, &str), Vec<&train::data::sources::Utterance>>::new();
    for u in &utterances {
        by_speaker
            .entry((&u.split, &u.speaker))
            .or_default()
            .push(u);
    }
    let mut index = 0;
    for ((split, speaker), said) in by_speaker {
        let quota = if split == "train" { 3 } else { 1 };
        for (k, group) in said.chunks(3).take(quota).enumerate() {
            let take = 1 + (index + k) % group.len();
            let parts: Vec<PathBuf> = group[..take].iter().map(|u| u.path.clone()).collect();
            let label: String = group[..take].iter().map(|u| u.label.as_str()).collect();
            let name = format!("s{index}.wav");
            join(&parts, &dir.join(&name));
            rows += &format!("{name},{label},{speaker},{split}\n");
            index += 1;
        }
    }
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, rows).expect("manifest");
    manifest
}

#[test]
fn the_digit_string_experiment_trains_scores_strings_and_times_each_digit() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let manifest = strings_corpus(scratch.path());
    let toml = repo().join("experiments/digit-strings.toml");
    let toml = toml.to_str().expect("a UTF-8 path");
    let settings = vec![
        format!("task.manifest={:?}", manifest.display().to_string()),
        format!(
            "task.cache_dir={:?}",
            scratch.path().join("cache").display().to_string()
        ),
        "task.augment={}".to_string(),
        // The shipped file also reports the paused splits, which this corpus has not.
        r#"task.report_splits=["test", "real"]"#.to_string(),
        "training.epochs=2".to_string(),
        "model.hidden_size=8".to_string(),
    ];
    let info = experiment(&["corpus-info", toml], &settings);
    assert!(
        info.contains("classes, in output order: <blank>, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
        "{info}"
    );
    let out = scratch.path().join("runs");
    let trained = experiment(
        &["train", toml, "--out-dir", out.to_str().expect("UTF-8")],
        &settings,
    );
    assert!(trained.contains("label error rate"), "{trained}");
    assert!(trained.contains("real: "), "{trained}");
    let run = out.join("digit-strings");
    let saved = std::fs::read_to_string(run.join("config.toml")).expect("saved");
    assert!(saved.contains("kind = \"digit_strings\""), "{saved}");
    assert!(saved.contains("labels = ["), "{saved}");
    let run = run.display().to_string();
    let evaluated = experiment(&["eval", &run, "--split", "test"], &[]);
    assert!(evaluated.contains("label error rate"), "{evaluated}");
    let beam = experiment(&["eval", &run, "--split", "test", "--beam-width", "8"], &[]);
    assert!(beam.contains("prefix beam search, width 8"), "{beam}");
    assert!(beam.contains("label error rate"), "{beam}");
    // predict: the decoded string, and its digits in order with their times, by best path
    // and by the beam (times from the alignment of its string).
    let wav = scratch.path().join("s0.wav").display().to_string();
    for width in ["1", "8"] {
        let predicted = experiment(&["predict", &run, &wav, "--beam-width", width], &[]);
        let line: serde_json::Value = serde_json::from_str(predicted.trim()).expect("JSON");
        let text = line["text"].as_str().expect("a decoded string");
        let labels = line["labels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let joined: String = labels
            .iter()
            .map(|l| l["label"].as_str().expect("a digit"))
            .collect();
        assert_eq!(joined, text, "{predicted}");
        assert!(text.chars().all(|c| c.is_ascii_digit()), "{predicted}");
        let mut previous_end = 0.0;
        for label in labels {
            let (start, end) = (
                label["start"].as_f64().expect("start"),
                label["end"].as_f64().expect("end"),
            );
            assert!(previous_end <= start && start < end, "{predicted}");
            previous_end = end;
        }
    }
}

/// The embedded subset of the digit-string corpus (`datasets/default_strings`, cut by
/// `datasets/embed_digit_strings.py`) loads whole for its demo: every split, strings of one
/// to seven digits that fit their frames, and no voice in two splits.
#[test]
fn the_embedded_digit_strings_load_whole_with_voice_disjoint_splits() {
    let text = std::fs::read_to_string(repo().join("experiments/digit-strings-demo.toml"))
        .expect("the demo");
    let manifest = repo().join("datasets/default_strings/manifest.csv");
    let cache = tempfile::tempdir().expect("tempdir");
    let overrides = [
        format!("task.manifest={:?}", manifest.display().to_string()),
        format!("task.cache_dir={:?}", cache.path().display().to_string()),
    ];
    let config = train::ExperimentConfig::parse(&text, "test", &overrides).expect("valid");
    let train::data::corpus::TaskData::Corpus(corpus) = config.prepare_data().expect("loads")
    else {
        panic!("a corpus task");
    };
    assert!(corpus.skipped.is_empty(), "{:?}", corpus.skipped);
    let train = corpus.train.in_memory().expect("in memory");
    let (test, real) = (&corpus.reports[0].1, &corpus.reports[1].1);
    assert_eq!(
        (train.len(), corpus.valid.len(), test.len(), real.len()),
        (40, 11, 12, 2)
    );
    let speakers =
        |examples: &[train::data::example::Example]| -> std::collections::BTreeSet<String> {
            examples.iter().map(|e| e.origin.speaker.clone()).collect()
        };
    let splits = [train, &corpus.valid, test.as_slice(), real.as_slice()].map(speakers);
    for (i, a) in splits.iter().enumerate() {
        for b in &splits[i + 1..] {
            assert!(a.is_disjoint(b), "a voice in two splits: {a:?} {b:?}");
        }
    }
    for example in train.iter().chain(&corpus.valid).chain(test).chain(real) {
        let digits = example.origin.sequence.as_ref().expect("a digit string");
        assert!(
            (1..=7).contains(&digits.len()),
            "{}",
            example.origin.path.display()
        );
        assert!(digits.len() <= example.features.num_frames);
        assert_eq!(example.features.dim, 39, "13 MFCC + Δ + ΔΔ");
    }
}
