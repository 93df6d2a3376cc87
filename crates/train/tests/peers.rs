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
use train::checkpoint::load_model;
use train::trainer::build_model;

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
fn parameters(run: &Path, epoch: usize) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().iter::<f32>());
        }
    }
    let config = train::ExperimentConfig::parse(
        &std::fs::read_to_string(run.join("config.toml")).expect("config.toml"),
        "run",
        &[],
    )
    .expect("valid");
    let device = Default::default();
    let model = build_model::<NdArray>(&config, (8, 4), &device);
    let path = run.join(format!("checkpoints/epoch-{epoch:04}/model.mpk"));
    let model = load_model(model, &path, &device).expect("a checkpoint");
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
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
    let single = Command::new(EXPERIMENT)
        .arg("train")
        .arg(smoke())
        .args(settings(1, 20))
        .args(["--set", "name=\"single\"", "--out-dir"])
        .arg(out.path())
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let (ok, _, stderr) = wait_for(single, Duration::from_secs(120));
    assert!(ok, "{stderr}");
    let port = free_port();
    let launch = Command::new(EXPERIMENT)
        .args(["launch", "--peers", "2", "--port", &port.to_string(), "--"])
        .arg(smoke())
        .args(settings(1, 20))
        .args(["--set", "name=\"pair\"", "--out-dir"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
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
    let start = {
        let config = train::ExperimentConfig::parse(
            &std::fs::read_to_string(out.path().join("single/config.toml")).unwrap(),
            "run",
            &[],
        )
        .unwrap();
        let mut collect = Vec::new();
        struct Collect<'a>(&'a mut Vec<f32>);
        impl<B: Backend> ModuleVisitor<B> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.extend(param.val().into_data().iter::<f32>());
            }
        }
        <NdArray as Backend>::seed(&Default::default(), config.seed);
        build_model::<NdArray>(&config, (8, 4), &Default::default())
            .visit(&mut Collect(&mut collect));
        collect
    };
    assert!(largest_difference(&start, &whole) > 1e-2);
}

#[test]
fn a_peer_that_dies_stops_the_other_with_its_name_and_the_run_resumes() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let start = |id: usize, resume: bool| {
        let mut command = Command::new(EXPERIMENT);
        command
            .arg("train")
            .arg(smoke())
            .args(settings(3, 300))
            .args(["--set", "name=\"dies\"", "--out-dir"])
            .arg(out.path())
            .args(["--peers", "2", "--peer-id", &id.to_string()])
            .args(["--coordinator", &format!("127.0.0.1:{port}")])
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if resume {
            command.arg("--resume");
        }
        command.spawn().expect("starts")
    };
    let coordinator = Command::new(EXPERIMENT)
        .args(["coordinator", "--peers", "2", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
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
    let (ok, _, stderr) = wait_for(coordinator, Duration::from_secs(30));
    assert!(!ok && stderr.contains("peer 1"), "{stderr}");

    // Both resume from their last checkpoints with a new coordinator and finish.
    let coordinator = Command::new(EXPERIMENT)
        .args(["coordinator", "--peers", "2", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let (first, second) = (start(0, true), start(1, true));
    for peer in [first, second] {
        let (ok, _, stderr) = wait_for(peer, Duration::from_secs(180));
        assert!(ok, "{stderr}");
    }
    let (ok, _, stderr) = wait_for(coordinator, Duration::from_secs(30));
    assert!(ok, "{stderr}");
    let difference = largest_difference(
        &parameters(&out.path().join("dies"), 3),
        &parameters(&out.path().join("dies.peer-1"), 3),
    );
    assert_eq!(difference, 0.0, "the peers hold the same weights");
}
