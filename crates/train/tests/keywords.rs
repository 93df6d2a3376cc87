//! The 12-class Speech Commands experiment from its shipped TOML, through the CLI, on a
//! small folder in the corpus's layout: `corpus-info`, `train`, `eval` and `predict`.

mod common;

use std::path::{Path, PathBuf};

use common::{experiment, speech_commands_stand_in};

use train::data::sources::{COMMAND_WORDS, SILENCE, UNKNOWN};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_twelve_class_experiment_lists_trains_and_predicts_named_words() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path().join("speech_commands");
    let wavs = speech_commands_stand_in(&root);
    let toml = repo().join("experiments/speech-commands-12.toml");
    let toml = toml.to_str().expect("a UTF-8 path");
    let settings = vec![
        format!("task.corpus.root={:?}", root.display().to_string()),
        format!(
            "task.cache_dir={:?}",
            scratch.path().join("cache").display().to_string()
        ),
        "training.epochs=1".to_string(),
        "model.hidden_size=8".to_string(),
    ];

    let info = experiment(&["corpus-info", toml], &settings);
    let mut classes = vec![SILENCE, UNKNOWN];
    classes.extend(COMMAND_WORDS);
    assert!(
        info.contains(&format!("classes, in output order: {}", classes.join(", "))),
        "{info}"
    );
    // 30 keyword files in train: ceil(10%) = 3 unknown words and 3 silence clips.
    let row = |label: &str| {
        info.lines()
            .find(|l| l.split_whitespace().next() == Some(label))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    // Columns: test, train, valid (sorted split names).
    assert_eq!(row(UNKNOWN).as_deref(), Some("1 3 1"), "{info}");
    assert_eq!(row(SILENCE).as_deref(), Some("1 3 1"), "{info}");
    assert_eq!(row("yes").as_deref(), Some("1 3 1"), "{info}");
    assert!(info.contains("train: 4 speakers"), "{info}");

    let out = scratch.path().join("runs");
    let out_dir = out.display().to_string();
    let trained = experiment(&["train", toml, "--out-dir", &out_dir], &settings);
    for class in &classes {
        assert!(trained.contains(&format!("{class} ")), "{class}: {trained}");
    }
    assert!(trained.contains("test per class: _silence_"), "{trained}");
    let run = out.join("speech-commands-12");
    let saved = std::fs::read_to_string(run.join("config.toml")).expect("saved");
    assert!(
        saved.contains("labels = [") && saved.contains("\"_unknown_\""),
        "{saved}"
    );
    let run = run.display().to_string();
    let evaluated = experiment(&["eval", &run, "--split", "test"], &[]);
    assert!(
        evaluated.contains("(12 utterances, 0 skipped)"),
        "{evaluated}"
    );
    let wav = wavs[0].display().to_string();
    let predicted = experiment(&["predict", &run, &wav, "--top-k", "12"], &[]);
    let line: serde_json::Value = serde_json::from_str(predicted.trim()).expect("JSON");
    let labels: Vec<&str> = line["top"]
        .as_array()
        .expect("top")
        .iter()
        .map(|entry| entry["label"].as_str().expect("a label"))
        .collect();
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    let mut expected = classes.clone();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "{predicted}");
}
