//! What several test files share.
// Each test file that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::Path;
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
