//! What several test files share.

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
