//! What several test files share.
// Each test file that includes this module uses only some of it.
#![allow(dead_code)]

pub mod onnx_cases;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `experiment train` of the temporal-order smoke experiment for `epochs` epochs of
/// `steps` batches, run `name` in `out`, with more `--set` overrides.
pub fn smoke_train(
    epochs: usize,
    steps: usize,
    name: &str,
    out: &Path,
    more: &[String],
) -> Command {
    let smoke =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/temporal-order-smoke.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_experiment"));
    command.arg("train").arg(smoke);
    let settings = [
        format!("training.epochs={epochs}"),
        format!("training.steps_per_epoch={steps}"),
        format!("name={name:?}"),
    ];
    for setting in settings.iter().chain(more) {
        command.args(["--set", setting]);
    }
    command.arg("--out-dir").arg(out);
    command
}

/// Runs `experiment ARGS` with `--set` `settings`, asserts that it succeeded, and returns
/// what it printed.
pub fn experiment(args: &[&str], settings: &[String]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_experiment"));
    command.args(args);
    for setting in settings {
        command.args(["--set", setting]);
    }
    let output = command.output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Every command word and two other words, each said by five "speakers" (copies of the
/// embedded corpus's recordings): three in train, one in each list.
pub fn speech_commands_stand_in(root: &Path) -> Vec<PathBuf> {
    let wavs: Vec<PathBuf> = train::data::sources::read_manifest(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/default/manifest.csv"),
    )
    .expect("the embedded corpus")
    .into_iter()
    .map(|u| u.path)
    .collect();
    let lists = ["training", "training", "training", "validation", "testing"];
    let names: Vec<String> = (0..lists.len())
        .map(|speaker| format!("{:08x}_nohash_0.wav", 0xabc0 + speaker))
        .collect();
    let words: Vec<&str> = train::data::sources::COMMAND_WORDS
        .iter()
        .copied()
        .chain(["wow", "cat"])
        .collect();
    let mut files = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for (speaker, list) in lists.iter().enumerate() {
            let wav = wavs[(w * lists.len() + speaker) % wavs.len()].as_path();
            files.push((*word, names[speaker].as_str(), *list, wav));
        }
    }
    testkit::layouts::speech_commands_layout(root, &files, 12).expect("layout");
    files
        .iter()
        .map(|(word, name, ..)| root.join(word).join(name))
        .collect()
}
