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

/// The listening TCP sockets of this machine on ports `ports`: (address in
/// `/proc/net/tcp*`'s hexadecimal, port).
fn listening(ports: std::ops::RangeInclusive<u16>) -> Vec<(String, u16)> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&"0A")) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((address, port)) = local.split_once(':') else {
                continue;
            };
            let port = u16::from_str_radix(port, 16).expect("a hexadecimal port");
            if ports.contains(&port) {
                found.push((address.to_string(), port));
            }
        }
    }
    found
}

#[test]
fn every_socket_of_a_launched_run_listens_on_loopback_only() {
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut args: Vec<std::ffi::OsString> = vec![smoke().into()];
    args.extend(settings(2, 300).into_iter().map(Into::into));
    args.extend(["--out-dir".into(), out.path().into()]);
    let port_text = port.to_string();
    let mut launch = experiment(
        &["launch", "--peers", "2", "--port", &port_text, "--"],
        args,
    );
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    while launch.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "still running"
        );
        seen.extend(listening(port..=port + 3));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, _, stderr) = wait_for(launch, Duration::from_secs(1));
    assert!(ok, "{stderr}");
    let ports: std::collections::BTreeSet<u16> = seen.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        ports,
        (port..=port + 3).collect(),
        "the orchestrator, the liveness service and both peers listen: {seen:?}"
    );
    for (address, port) in &seen {
        assert_eq!(
            address, "0100007F",
            "port {port} listens on {address}, not 127.0.0.1"
        );
    }
}

#[test]
fn launch_stops_at_once_naming_a_port_that_is_taken() {
    let port = free_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port_text = port.to_string();
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<std::ffi::OsString> = vec![smoke().into()];
    args.extend(settings(1, 5).into_iter().map(Into::into));
    args.extend(["--out-dir".into(), out.path().into()]);
    let launch = experiment(
        &["launch", "--peers", "2", "--port", &port_text, "--"],
        args,
    );
    let (ok, _, stderr) = wait_for(launch, Duration::from_secs(10));
    assert!(!ok, "launch failed");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn a_peer_gives_up_on_a_coordinator_that_never_answers_naming_it() {
    let port = free_port();
    // Both ports accept connections (the system does, into the backlog) and say nothing.
    let _silent = [port, port + 1].map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).unwrap());
    let coordinator = format!("127.0.0.1:{port}");
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![smoke().display().to_string()];
    args.extend(settings(1, 5));
    args.extend(["--out-dir".into(), out.path().display().to_string()]);
    args.extend(["--peers", "2", "--coordinator", &coordinator].map(String::from));
    args.extend(["--connect-timeout", "2"].map(String::from));
    let started = Instant::now();
    let peer = experiment(&["train"], args);
    let (ok, _, stderr) = wait_for(peer, Duration::from_secs(20));
    assert!(!ok, "the peer gave up");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let liveness = format!("127.0.0.1:{}", port + 1);
    assert!(
        stderr.contains(&liveness) && stderr.contains("did not answer as a coordinator"),
        "{stderr}"
    );
}

/// Sends up to `bytes` pseudo-random bytes to `address`; how many were taken before the
/// other side closed the connection.
fn flood(address: (&str, u16), bytes: usize) -> usize {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut block = vec![0u8; 1 << 16];
    let mut sent = 0;
    while sent < bytes {
        for byte in block.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        match stream.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    sent
}

/// A WebSocket upgrade request to `route` of `port`, with `authorization` if given: the
/// status line of the answer.
fn upgrade(port: u16, route: &str, authorization: Option<&str>) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let header = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /{route} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{header}\r\n"
    )
    .unwrap();
    let mut status = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut status);
    status.trim().to_string()
}

/// The coordinator's liveness service's answer to a greeting.
fn greet(port: u16, greeting: &str) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port + 1)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    writeln!(stream, "{greeting}").unwrap();
    let mut answer = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut answer);
    answer.trim().to_string()
}

#[test]
fn a_coordinator_with_a_token_refuses_strangers_and_the_run_is_undisturbed() {
    let out = tempfile::tempdir().unwrap();
    let secret = "run-secret-4f9d2a";
    let token = out.path().join("token");
    std::fs::write(&token, format!("{secret}\n")).unwrap();
    let wrong = out.path().join("wrong");
    std::fs::write(&wrong, "not-the-secret\n").unwrap();
    let port = free_port();
    let run = |name: &str, id: Option<(usize, &Path)>| {
        let mut args: Vec<std::ffi::OsString> = vec![smoke().into()];
        args.extend(settings(1, 20).into_iter().map(Into::into));
        args.extend(["--set".into(), format!("name=\"{name}\"").into()]);
        args.extend(["--out-dir".into(), out.path().into()]);
        if let Some((id, token)) = id {
            args.extend(["--peers", "2", "--peer-id"].map(Into::into));
            args.push(id.to_string().into());
            args.extend(["--coordinator".into(), format!("127.0.0.1:{port}").into()]);
            args.extend(["--token-file".into(), token.into()]);
        }
        experiment(&["train"], args)
    };
    let (ok, _, stderr) = wait_for(run("single", None), Duration::from_secs(120));
    assert!(ok, "{stderr}");

    let port_text = port.to_string();
    let token_text = token.display().to_string();
    let coordinator = experiment(
        &[
            "coordinator",
            "--peers",
            "2",
            "--port",
            &port_text,
            "--token-file",
            &token_text,
        ],
        std::iter::empty::<&str>(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no coordinator"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(upgrade(port, "request", None).contains(" 401 "));
    let bad = Some("Bearer not-the-secret");
    assert!(upgrade(port, "request", bad).contains(" 401 "));
    assert_eq!(
        greet(port, "peer 0 not-the-secret"),
        "refused a wrong token"
    );
    let hundred_megabytes = 100 << 20;
    for target in [port, port + 1] {
        let taken = flood(("127.0.0.1", target), hundred_megabytes);
        assert!(taken < hundred_megabytes, "port {target} read all the junk");
    }
    let (ok, _, stderr) = wait_for(run("stranger", Some((1, &wrong))), Duration::from_secs(60));
    assert!(!ok && stderr.contains("refused this peer"), "{stderr}");

    let pair = [
        run("pair", Some((0, &token))),
        run("pair", Some((1, &token))),
    ];
    for peer in pair {
        let (ok, stdout, stderr) = wait_for(peer, Duration::from_secs(180));
        assert!(ok, "{stderr}");
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    let (ok, stdout, stderr) = wait_for(coordinator, Duration::from_secs(30));
    assert!(ok, "{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    for refusal in [
        "refused a connection from 127.0.0.1:",
        "refused a liveness connection from 127.0.0.1:",
    ] {
        assert!(stderr.matches(refusal).count() >= 2, "{refusal}: {stderr}");
    }
    assert!(
        stderr.contains(": no token") && stderr.contains(": a wrong token"),
        "{stderr}"
    );
    let whole = parameters(&out.path().join("single"), 1);
    for peer in ["pair", "pair.peer-1"] {
        let difference = largest_difference(&parameters(&out.path().join(peer), 1), &whole);
        assert!(difference <= 1e-5, "{peer}: differs by {difference}");
    }
}
