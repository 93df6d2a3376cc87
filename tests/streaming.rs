//! Training from a feature store on disk (`[task.stream]`) gives the batches, the run and
//! the resumed run of the in-memory path, bit for bit, and the store is reused while its
//! data are unchanged and rebuilt when it is damaged.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use train::ExperimentConfig;
use train::backend::CpuBackend;
use train::data::batch::Batch;
use train::data::corpus::{Corpus, TaskData, TrainSet};
use train::data::loader::{draw_epoch, epoch_batches};
use train::engine::checkpoint::Checkpoints;
use train::engine::{RunOptions, train};
use train::report::metrics::EpochMetrics;

mod common;
use common::without_time;

/// Buffers at the same alignment in every run, so that burn-ndarray's SIMD kernels take the
/// same paths in every run (see `models::AlignedAllocator`).
#[global_allocator]
static ALLOCATOR: models::AlignedAllocator = models::AlignedAllocator;

/// burn-ndarray's random numbers come from one generator per process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo on the embedded corpus, small, with SpecAugment masks of both kinds, read from
/// memory or (`store` given) from a store there with two workers and 1 MiB shards.
fn config(epochs: usize, cache: &Path, store: Option<&Path>) -> ExperimentConfig {
    let text = std::fs::read_to_string(repo().join("experiments/spoken-digits-demo.toml"))
        .expect("experiment file");
    let manifest = repo().join("datasets/default/manifest.csv");
    let mut overrides = vec![
        format!("task.manifest={:?}", manifest.display().to_string()),
        format!("task.cache_dir={:?}", cache.display().to_string()),
        format!("training.epochs={epochs}"),
        "training.batch_size=32".into(),
        "model.hidden_size=8".into(),
        "task.augment.time_masks=2".into(),
        "task.augment.time_mask_width=5".into(),
        "task.augment.feature_masks=1".into(),
        "task.augment.feature_mask_width=3".into(),
    ];
    if let Some(store) = store {
        overrides.extend([
            format!("task.stream.dir={:?}", store.display().to_string()),
            "task.stream.num_workers=2".into(),
            "task.stream.prefetch_factor=1".into(),
            "task.stream.shard_mb=1".into(),
        ]);
    }
    ExperimentConfig::parse(&text, "test", &overrides).expect("valid")
}

fn corpus(data: &TaskData) -> &Corpus {
    match data {
        TaskData::Corpus(corpus) => corpus,
        TaskData::Generated { .. } => panic!("a corpus task"),
    }
}

/// The demo's data read from memory and from a store in `store`, one epoch.
fn memory_and_streamed(cache: &Path, store: &Path) -> (TaskData, TaskData) {
    let memory = config(1, cache, None).prepare_data().expect("loads");
    let streamed = config(1, cache, Some(store)).prepare_data().expect("loads");
    (memory, streamed)
}

fn batches(corpus: &Corpus, seed: u64) -> Vec<Batch> {
    stacked_batches(corpus, seed, 1)
}

/// An epoch's batches with every `stack` frames joined into one step.
fn stacked_batches(corpus: &Corpus, seed: u64, stack: usize) -> Vec<Batch> {
    let mut rng = StdRng::seed_from_u64(seed);
    let draws = draw_epoch(&corpus.train, &corpus.augment, corpus.blocks, &mut rng);
    epoch_batches(&corpus.train, draws, (32, stack), |rows| 0..rows)
        .expect("workers start")
        .collect::<Result<_, _>>()
        .expect("batches read")
}

fn run(
    config: &ExperimentConfig,
    checkpoints: Option<&Checkpoints>,
    resume: bool,
) -> Vec<EpochMetrics> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let data = config.prepare_data().expect("data");
    let options = RunOptions {
        checkpoints: checkpoints.cloned(),
        resume,
        peers: None,
    };
    train::<CpuBackend>(config.spec(), &data, &Default::default(), &options, ())
        .expect("trains")
        .history
}

#[test]
fn streamed_batches_are_the_in_memory_batches() {
    let (cache, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (memory, streamed) = memory_and_streamed(cache.path(), store.path());
    let (memory, streamed) = (corpus(&memory), corpus(&streamed));
    let TrainSet::Stored(stored) = &streamed.train else {
        panic!("a stored training split");
    };
    let examples = memory.train.in_memory().expect("in memory");
    assert_eq!(stored.store.examples().len(), examples.len());
    // The original and ten augmented versions of each utterance, over several shards.
    assert!(
        stored
            .store
            .examples()
            .iter()
            .all(|e| e.versions.len() == 11)
    );
    assert!(stored.store.entries().iter().any(|e| e.shard >= 2));
    assert_eq!(streamed.valid, memory.valid);
    for seed in [1, 2] {
        let (a, b) = (batches(memory, seed), batches(streamed, seed));
        assert_eq!(a.len(), examples.len().div_ceil(32));
        assert!(a == b, "epoch seed {seed}: the batches differ");
    }
}

/// With `stack_frames`, each row of a batch is the row without it (masks included), its
/// frames joined three at a time, from memory and from the store alike.
#[test]
fn frames_are_joined_into_steps_after_the_masks() {
    let (cache, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (memory, streamed) = memory_and_streamed(cache.path(), store.path());
    let (memory, streamed) = (corpus(&memory), corpus(&streamed));
    let frames = batches(memory, 3);
    let steps = stacked_batches(memory, 3, 3);
    assert!(
        steps == stacked_batches(streamed, 3, 3),
        "memory and store differ"
    );
    assert_eq!(steps.len(), frames.len());
    for (frames, steps) in frames.iter().zip(&steps) {
        let [batch, time, dim] = frames.shape;
        assert_eq!(steps.shape, [batch, time.div_ceil(3), 3 * dim]);
        let lengths: Vec<usize> = frames.lengths.iter().map(|l| l.div_ceil(3)).collect();
        assert_eq!(steps.lengths, lengths);
        assert_eq!(steps.targets, frames.targets);
        for (b, row) in frames.inputs.chunks(time * dim).enumerate() {
            let row = features::Features {
                num_frames: time,
                dim,
                data: row.to_vec(),
            };
            let joined = features::stack_frames(row, 3).data;
            let width = steps.shape[1] * steps.shape[2];
            assert_eq!(steps.inputs[b * width..(b + 1) * width], joined[..]);
        }
    }
}

#[test]
fn a_streamed_run_is_the_in_memory_run_and_resumes_exactly() {
    let (cache, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let memory = run(&config(2, cache.path(), None), None, false);
    let streamed = run(&config(2, cache.path(), Some(store.path())), None, false);
    assert_eq!(without_time(&streamed), without_time(&memory));

    let dir = tempfile::tempdir().unwrap();
    let checkpoints = Checkpoints::new(dir.path());
    let first = run(
        &config(1, cache.path(), Some(store.path())),
        Some(&checkpoints),
        false,
    );
    assert_eq!(first.len(), 1);
    let resumed = run(
        &config(2, cache.path(), Some(store.path())),
        Some(&checkpoints),
        true,
    );
    assert_eq!(without_time(&resumed), without_time(&memory));
}

#[test]
fn the_store_is_reused_while_its_data_hold_and_rebuilt_when_damaged() {
    let (cache, store) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = config(1, cache.path(), Some(store.path()));
    let first = config.prepare_data().expect("builds");
    let folders: Vec<PathBuf> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [folder] = folders.as_slice() else {
        panic!("one store and nothing half written beside it: {folders:?}");
    };
    let index = folder.join("index.json");
    let written = std::fs::metadata(&index).unwrap().modified().unwrap();
    let again = config.prepare_data().expect("opens");
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        written
    );
    assert!(batches(corpus(&first), 3) == batches(corpus(&again), 3));
    let expected = batches(corpus(&first), 4);

    // A shard cut short is found when the store is opened, and the store built anew.
    let shard = folder.join("shard-00000.f32");
    cut_short(&shard);
    let rebuilt = config.prepare_data().expect("rebuilds");
    assert!(std::fs::metadata(&shard).unwrap().len() > 1000);
    assert!(batches(corpus(&rebuilt), 4) == expected);

    // A shard cut short while a run reads it is a typed error, not a panic.
    cut_short(&shard);
    let mut rng = StdRng::seed_from_u64(5);
    let train = &corpus(&rebuilt).train;
    let draws = draw_epoch(
        train,
        &corpus(&rebuilt).augment,
        corpus(&rebuilt).blocks,
        &mut rng,
    );
    let error = epoch_batches(train, draws, (32, 1), |rows| 0..rows)
        .expect("workers start")
        .find_map(Result::err)
        .expect("a batch past the cut fails");
    assert!(error.to_string().contains("shard-00000.f32"), "{error}");
}

/// Truncates `shard` to 1000 bytes.
fn cut_short(shard: &Path) {
    let file = std::fs::OpenOptions::new().write(true).open(shard).unwrap();
    file.set_len(1000).unwrap();
}

#[test]
fn stream_settings_are_checked_when_the_config_is_read() {
    let text = std::fs::read_to_string(repo().join("experiments/spoken-digits-demo.toml"))
        .expect("experiment file");
    for setting in ["num_workers", "prefetch_factor", "shard_mb"] {
        let overrides = [
            "task.stream.dir=\"store\"".to_string(),
            format!("task.stream.{setting}=0"),
        ];
        let error = ExperimentConfig::parse(&text, "test", &overrides).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains(&format!("task.stream.{setting}")),
            "{error}"
        );
    }
}
