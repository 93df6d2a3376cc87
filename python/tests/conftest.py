"""Small runs trained once per session by the `experiment` binary (SPEECHRNN_EXPERIMENT, or
the workspace's release build), for the Recogniser tests."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def experiment():
    named = os.environ.get("SPEECHRNN_EXPERIMENT")
    if named:
        return pathlib.Path(named)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release/experiment"


def train(out, config, *overrides):
    binary = experiment()
    if not binary.exists():
        pytest.skip(f"{binary} is not built (cargo build --release -p train)")
    args = [str(binary), "train", str(ROOT / config), "--out-dir", str(out),
            "--set", "training.epochs=1", "--set", "model.hidden_size=16",
            "--set", f"task.cache_dir={str(out / 'cache')!r}".replace("'", '"')]
    for o in overrides:
        args += ["--set", o]
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    runs = [p for p in out.iterdir() if (p / "config.toml").exists()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The digit demo (bidirectional LSTM, mean-pooled softmax over ten digits)."""
    return train(tmp_path_factory.mktemp("digits"), "experiments/spoken-digits-demo.toml")


@pytest.fixture(scope="session")
def causal_strings_run(tmp_path_factory):
    """The streaming digit-string model's configuration on the embedded string corpus."""
    return train(tmp_path_factory.mktemp("strings"), "experiments/digit-strings-streaming.toml",
                 'task.manifest="datasets/default_strings/manifest.csv"',
                 'task.report_splits=["test"]', "model.num_layers=1")


@pytest.fixture(scope="session")
def bidirectional_strings_run(tmp_path_factory):
    """The string demo: CTC over a bidirectional LSTM, which cannot listen live."""
    return train(tmp_path_factory.mktemp("bistrings"), "experiments/digit-strings-demo.toml",
                 'task.report_splits=["test"]')
