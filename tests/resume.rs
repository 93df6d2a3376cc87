//! A run stopped after some epochs and resumed from its checkpoint ends with exactly the
//! metrics of an uninterrupted run (ndarray), and checkpoints appear whole.

use train::ExperimentConfig;
use train::backend::CpuBackend;
use train::engine::checkpoint::Checkpoints;
use train::engine::{RunOptions, train};
use train::report::metrics::EpochMetrics;

mod common;
use common::without_time;

fn config(epochs: usize) -> ExperimentConfig {
    config_with(epochs, &[])
}

fn config_with(epochs: usize, extra: &[&str]) -> ExperimentConfig {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/temporal-order-smoke.toml"
    ))
    .expect("experiment file");
    let overrides = [
        format!("training.epochs={epochs}"),
        "training.steps_per_epoch=8".into(),
        "training.batch_size=8".into(),
        "training.validation_size=32".into(),
        "model.hidden_size=8".into(),
        "model.num_layers=2".into(),
        "model.dropout=0.25".into(),
    ]
    .into_iter()
    .chain(extra.iter().map(|o| o.to_string()))
    .collect::<Vec<String>>();
    ExperimentConfig::parse(&text, "test", &overrides).expect("valid")
}

/// Buffers at the same alignment in every run, so that burn-ndarray's SIMD kernels take the
/// same paths in the interrupted and the uninterrupted run (see `models::AlignedAllocator`).
#[global_allocator]
static ALLOCATOR: models::AlignedAllocator = models::AlignedAllocator;

/// burn-ndarray's random numbers come from one generator per process: runs in parallel
/// test threads would interleave their draws.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The history and the best epoch (restored from `best.mpk` when resuming).
fn run(epochs: usize, checkpoints: &Checkpoints, resume: bool) -> (Vec<EpochMetrics>, usize) {
    run_with(config(epochs), checkpoints, resume)
}

fn run_with(
    config: ExperimentConfig,
    checkpoints: &Checkpoints,
    resume: bool,
) -> (Vec<EpochMetrics>, usize) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    run_config(config, checkpoints, resume)
}

/// A run for a caller that holds `ONE_AT_A_TIME`.
fn run_config(
    config: ExperimentConfig,
    checkpoints: &Checkpoints,
    resume: bool,
) -> (Vec<EpochMetrics>, usize) {
    let data = config.prepare_data().expect("data");
    let options = RunOptions {
        checkpoints: Some(checkpoints.clone()),
        resume,
        peers: None,
    };
    let outcome = train::<CpuBackend>(config.spec(), &data, &Default::default(), &options, ())
        .expect("trains");
    (outcome.history, outcome.best_epoch)
}

#[test]
fn resuming_from_a_checkpoint_equals_an_uninterrupted_run() {
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let (whole, whole_best) = run(4, &Checkpoints::new(whole_dir.path()), false);

    let split_dir = tempfile::tempdir().expect("tempdir");
    let checkpoints = Checkpoints::new(split_dir.path());
    let (first, _) = run(2, &checkpoints, false);
    assert_eq!(first.len(), 2);
    let (resumed, resumed_best) = run(4, &checkpoints, true);

    assert_eq!(resumed.len(), 4);
    assert_eq!(without_time(&resumed), without_time(&whole));
    assert_eq!(resumed_best, whole_best);
    assert_ne!(whole[0].train_loss, whole[3].train_loss, "training moved");

    let mut names: Vec<String> = std::fs::read_dir(split_dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "best.mpk",
            "epoch-0001",
            "epoch-0002",
            "epoch-0003",
            "epoch-0004"
        ]
    );
}

#[test]
fn the_weight_average_is_validated_checkpointed_and_resumed_exactly() {
    let averaged = |epochs| config_with(epochs, &["training.ema_decay=0.9"]);
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let (plain, _) = run(4, &Checkpoints::new(plain_dir.path()), false);
    let whole_dir = tempfile::tempdir().expect("tempdir");
    let (whole, whole_best) = run_with(averaged(4), &Checkpoints::new(whole_dir.path()), false);
    // The same training steps (the average does not feed back), another model validated.
    assert_eq!(whole[3].train_loss, plain[3].train_loss);
    assert_ne!(whole[3].valid_loss, plain[3].valid_loss);

    let split_dir = tempfile::tempdir().expect("tempdir");
    let checkpoints = Checkpoints::new(split_dir.path());
    run_with(averaged(2), &checkpoints, false);
    let (resumed, resumed_best) = run_with(averaged(4), &checkpoints, true);
    assert_eq!(without_time(&resumed), without_time(&whole));
    assert_eq!(resumed_best, whole_best);

    let epoch = split_dir.path().join(format!("epoch-{resumed_best:04}"));
    assert!(epoch.join("averaged.mpk").exists());
    assert_eq!(
        std::fs::read(split_dir.path().join("best.mpk")).expect("best.mpk"),
        std::fs::read(epoch.join("averaged.mpk")).expect("averaged.mpk"),
        "best.mpk holds the average that was validated"
    );
}

#[test]
fn resume_without_checkpoints_starts_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fresh, _) = run(1, &Checkpoints::new(dir.path().join("none-yet")), true);
    let other = tempfile::tempdir().expect("tempdir");
    let (plain, _) = run(1, &Checkpoints::new(other.path()), false);
    assert_eq!(without_time(&fresh), without_time(&plain));
}

#[test]
fn best_mpk_read_while_training_is_always_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let checkpoints = Checkpoints::new(dir.path());
    let best = checkpoints.best_path();
    let config = config(6);
    // Building and loading models draws from the generator the other tests use: hold the
    // turn until the reader has stopped.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = config.prepare_data().expect("data").sizes();
    let template = config
        .model
        .init::<burn_ndarray::NdArray>(sizes, &Default::default());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // What `predict` and `eval` do: load `best.mpk` whenever it is there.
        let reader = scope.spawn(|| {
            let mut loads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if best.exists() {
                    train::model::load_model(template.clone(), &best, &Default::default())
                        .expect("best.mpk is whole whenever it exists");
                    loads += 1;
                }
            }
            loads
        });
        run_config(config.clone(), &checkpoints, false);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            reader.join().expect("reader") > 0,
            "the reader loaded best.mpk"
        );
    });
}
