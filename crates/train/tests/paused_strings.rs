//! `datasets/build_paused_strings.py` on the embedded corpora: digit strings said digit by
//! digit load whole as a CTC corpus, every voice stays in its split, and a second build
//! gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use train::data::corpus::TaskData;
use train::data::sources::read_manifest;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds paused strings from the embedded isolated digits into `out`, at 8 kHz (the
/// embedded corpus's rate, so sox is not needed).
fn build(out: &Path) {
    let status = Command::new("python3")
        .arg(repo().join("datasets/build_paused_strings.py"))
        .arg("--synthetic")
        .arg(repo().join("datasets/default"))
        .arg("--strings")
        .arg(repo().join("datasets/default_strings"))
        .arg("--out")
        .arg(out)
        .args([
            "--rate",
            "8000",
            "--per-voice",
            "4",
            "--per-real-speaker",
            "3",
        ])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "the build failed");
}

/// Each file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("readable");
                found.insert(path.strip_prefix(dir).expect("inside").to_path_buf(), bytes);
            }
        }
    }
    found
}

/// The split of each speaker of the embedded isolated digits.
fn voice_splits() -> BTreeMap<String, String> {
    read_manifest(&repo().join("datasets/default/manifest.csv"))
        .expect("the embedded corpus")
        .into_iter()
        .map(|u| (u.speaker, u.split))
        .collect()
}

#[test]
fn paused_strings_keep_each_voice_in_its_split_and_rebuild_identically() {
    let (first, second) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    build(first.path());
    build(second.path());
    assert_eq!(
        files(first.path()),
        files(second.path()),
        "two builds differ"
    );
    let paused = read_manifest(&first.path().join("manifest.csv")).expect("the manifest");
    let splits: BTreeSet<&str> = paused.iter().map(|u| u.split.as_str()).collect();
    assert_eq!(
        splits,
        BTreeSet::from(["real_joined", "test_paused", "train", "valid"])
    );
    let voices = voice_splits();
    for u in &paused {
        let expected = match voices[&u.speaker].as_str() {
            "test" => "test_paused",
            "real" => "real_joined",
            other => other,
        };
        assert_eq!(u.split, expected, "{} of {}", u.path.display(), u.speaker);
        assert!(u.label.chars().all(|c| c.is_ascii_digit()) && !u.label.is_empty());
        let audio = features::read_wav(&u.path, features::Channel::Mean).expect("a WAV");
        assert_eq!(audio.sample_rate, 8000);
        // At least the edges (0.1 s each) and a pause (50 ms) per extra digit around speech.
        let least = 0.2 + 0.05 * (u.label.len() - 1) as f64;
        assert!(
            audio.samples.len() as f64 / 8000.0 > least,
            "{}",
            u.path.display()
        );
    }
    let real: BTreeSet<&str> = paused
        .iter()
        .filter(|u| u.split == "real_joined")
        .map(|u| u.speaker.as_str())
        .collect();
    assert_eq!(real.len(), 3, "Allison, dhd and cards: {real:?}");
}

#[test]
fn the_combined_corpus_loads_whole_with_both_forms_of_every_split() {
    let out = tempfile::tempdir().expect("dir");
    build(out.path());
    let manifest = out.path().join("combined.csv");
    let text = format!(
        "name = \"t\"\nseed = 1\n[task]\nkind = \"digit_strings\"\nmanifest = {:?}\n\
         preset = \"kaldi\"\nsample_rate = 8000\ncausal_cmvn = {{ window = 300 }}\n\
         report_splits = [\"test\", \"real\", \"test_paused\", \"real_joined\"]\n\
         [model]\ncell = {{ kind = \"lstm\" }}\nhidden_size = 4\nbidirectional = false\n\
         [training]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.01\n",
        manifest
    );
    let config = train::ExperimentConfig::parse(&text, "test", &[]).expect("valid");
    let TaskData::Corpus(corpus) = config.prepare_data().expect("loads") else {
        panic!("a corpus task");
    };
    assert!(corpus.skipped.is_empty(), "{:?}", corpus.skipped);
    let rows = read_manifest(&manifest).expect("the combined manifest");
    let count = |split: &str| rows.iter().filter(|u| u.split == split).count();
    let fluent = read_manifest(&repo().join("datasets/default_strings/manifest.csv"))
        .expect("the embedded strings");
    let paused = read_manifest(&out.path().join("manifest.csv")).expect("the paused strings");
    assert_eq!(rows.len(), fluent.len() + paused.len());
    assert_eq!(corpus.valid.len(), count("valid"));
    let reports: BTreeMap<&str, usize> = corpus
        .reports
        .iter()
        .map(|(name, examples)| (name.as_str(), examples.len()))
        .collect();
    for split in ["test", "real", "test_paused", "real_joined"] {
        assert!(count(split) > 0, "{split} is empty");
        assert_eq!(reports[split], count(split), "{split}");
    }
}
