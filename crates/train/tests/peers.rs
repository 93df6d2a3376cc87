//! Data-parallel training over two processes on 127.0.0.1 (`experiment launch --peers 2`):
//! after 20 steps both peers hold the parameters of one process trained on the whole
//! batches, and a peer that dies makes the other stop with an error that names it, within a
//! bounded time; the run then resumes from its last checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn_ndarray::NdArray;
use train::model::load_model;

const EXPERIMENT: &str = env!("CARGO_BIN_EXE_experiment");

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/temporal-order-smoke.toml")
}

/// 20 steps of 16 sequences, no dropout (a peer's masks would differ from one process's).
fn settings(epochs: usize, steps: usize) -> Vec<String> {
    [
        format!("training.epochs={epochs}"),
        format!("training.steps_per_epoch={steps}"),
        "training.batch_size=16".into(),
        "training.validation_size=64".into(),
        "model.hidden_size=16".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

/// A port pair no one is listening on (the orchestrator's and the liveness service's),
/// and the peers' ports after them.
fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        if port < 60000
            && (1..5).all(|k| std::net::TcpListener::bind(("127.0.0.1", port + k)).is_ok())
        {
            return port;
        }
    }
}

/// Waits for `child` at most `limit`, killing it past that.
fn wait_for(mut child: Child, limit: Duration) -> (bool, String, String) {
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            return (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            );
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every parameter's values, in the order the model visits them.
fn values(model: &impl Module<NdArray>) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// The configuration a run saved.
fn run_config(run: &Path) -> train::ExperimentConfig {
    let text = std::fs::read_to_string(run.join("config.toml")).expect("config.toml");
    train::ExperimentConfig::parse(&text, "run", &[]).expect("valid")
}

/// The weights a run saved after `epoch`.
fn parameters(run: &Path, epoch: usize) -> Vec<f32> {
    let device = Default::default();
    let model = run_config(run).model.init::<NdArray>((8, 4), &device);
    let path = run.join(format!("checkpoints/epoch-{epoch:04}/model.mpk"));
    values(&load_model(model, &path, &device).expect("a checkpoint"))
}

/// `experiment` with `args`, its output captured.
fn experiment(args: &[&str], more: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>) -> Child {
    Command::new(EXPERIMENT)
        .args(args)
        .args(more)
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn two_peers_hold_the_parameters_of_one_process_on_whole_batches() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().as_os_str().to_owned();
    let named = |name: &str| -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![smoke().into()];
        args.extend(settings(1, 20).into_iter().map(Into::into));
        args.extend(["--set".into(), format!("name=\"{name}\"").into()]);
        args.extend(["--out-dir".into(), out_dir.clone()]);
        args
    };
    let single = experiment(&["train"], named("single"));
    let (ok, _, stderr) = wait_for(single, Duration::from_secs(120));
    assert!(ok, "{stderr}");
    let port = free_port();
    let port = port.to_string();
    let launch = experiment(
        &["launch", "--peers", "2", "--port", &port, "--"],
        named("pair"),
    );
    let (ok, _, stderr) = wait_for(launch, Duration::from_secs(180));
    assert!(ok, "{stderr}");
    let whole = parameters(&out.path().join("single"), 1);
    for peer in ["pair", "pair.peer-1"] {
        let held = parameters(&out.path().join(peer), 1);
        let difference = largest_difference(&held, &whole);
        eprintln!("{peer}: largest difference from one process {difference:e}");
        assert!(difference <= 1e-5, "{peer}: differs by {difference}");
    }
    // Training moved the weights far beyond that tolerance.
    let config = run_config(&out.path().join("single"));
    <NdArray as Backend>::seed(&Default::default(), config.seed);
    let start = values(&config.model.init::<NdArray>((8, 4), &Default::default()));
    assert!(largest_difference(&start, &whole) > 1e-2);
}

#[test]
fn a_peer_that_dies_stops_the_other_with_its_name_and_the_run_resumes() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = |id: usize, resume: bool| {
        let mut args: Vec<std::ffi::OsString> = vec![smoke().into()];
        args.extend(settings(3, 300).into_iter().map(Into::into));
        args.extend(["--set", "name=\"dies\"", "--out-dir"].map(Into::into));
        args.push(out.path().into());
        args.extend([
            "--peers".into(),
            "2".into(),
            "--peer-id".into(),
            id.to_string().into(),
        ]);
        args.extend(["--coordinator".into(), format!("127.0.0.1:{port}").into()]);
        if resume {
            args.push("--resume".into());
        }
        experiment(&["train"], args)
    };
    let coordinator = || {
        let port = port.to_string();
        experiment(
            &["coordinator", "--peers", "2", "--port", &port],
            std::iter::empty::<&str>(),
        )
    };
    let first_coordinator = coordinator();
    let survivor = start(0, false);
    let mut victim = start(1, false);
    // Kill peer 1 once both have written their first checkpoint: early in epoch 2 (an epoch
    // of 300 steps takes seconds).
    let checkpoints =
        ["dies", "dies.peer-1"].map(|run| out.path().join(run).join("checkpoints/epoch-0001"));
    let started = Instant::now();
    while !checkpoints.iter().all(|c| c.exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no first epoch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.kill().expect("kill");
    let _ = victim.wait();
    let (ok, _, stderr) = wait_for(survivor, Duration::from_secs(60));
    assert!(!ok, "the survivor stopped with an error");
    assert!(stderr.contains("peer 1 stopped"), "{stderr}");
    let (ok, _, stderr) = wait_for(first_coordinator, Duration::from_secs(30));
    assert!(!ok && stderr.contains("peer 1"), "{stderr}");

    // Both resume from their last checkpoints with a new coordinator and finish.
    let second_coordinator = coordinator();
    let (first, second) = (start(0, true), start(1, true));
    for peer in [first, second] {
        let (ok, _, stderr) = wait_for(peer, Duration::from_secs(180));
        assert!(ok, "{stderr}");
    }
    let (ok, _, stderr) = wait_for(second_coordinator, Duration::from_secs(30));
    assert!(ok, "{stderr}");
    let difference = largest_difference(
        &parameters(&out.path().join("dies"), 3),
        &parameters(&out.path().join("dies.peer-1"), 3),
    );
    assert_eq!(difference, 0.0, "the peers hold the same weights");
}
