//! End to end on the embedded corpus: WAV files → MFCC → LSTM → softmax, trained for a
//! few epochs on CPU; the checkpoint then answers `predict` requests as JSON lines.

use std::path::Path;

use train::ExperimentConfig;
use train::backend::CpuBackend;
use train::data::corpus::TaskData;
use train::engine::checkpoint::Checkpoints;
use train::engine::{RunOptions, train};
use train::inference::Recogniser;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_tiny_digit_recogniser_beats_chance_and_predicts_json() {
    let text = std::fs::read_to_string(repo().join("experiments/spoken-digits-demo.toml"))
        .expect("experiment file");
    let run_dir = tempfile::tempdir().expect("tempdir");
    let manifest = repo().join("datasets/default/manifest.csv");
    let overrides = [
        format!("task.manifest={:?}", manifest.display().to_string()),
        format!(
            "task.cache_dir={:?}",
            run_dir.path().join("cache").display().to_string()
        ),
        // Pinned here rather than taken from the file, so that the run below keeps peaking
        // before its last epoch when the shipped augmentation changes.
        "task.augment.vtln_warps=[0.9, 1.1]".to_string(),
        "task.augment.speeds=[]".to_string(),
        "task.augment.noise_snrs=[]".to_string(),
        "seed=5".to_string(),
        "training.epochs=4".to_string(),
        "training.learning_rate=0.03".to_string(),
        "model.hidden_size=32".to_string(),
    ];
    let config = ExperimentConfig::parse(&text, "test", &overrides).expect("valid");
    std::fs::write(run_dir.path().join("config.toml"), config.to_toml()).expect("config");

    let data = config.prepare_data().expect("embedded corpus loads");
    let options = RunOptions {
        checkpoints: Some(Checkpoints::new(run_dir.path().join("checkpoints"))),
        resume: false,
        peers: None,
    };
    let outcome = train::<CpuBackend>(config.spec(), &data, &Default::default(), &options, ())
        .expect("trains");
    let valid = outcome.history.last().expect("epochs").valid_accuracy;
    assert!(valid > 0.5, "held-out voices: {valid} (chance 0.1)");
    let test = outcome
        .reports
        .iter()
        .find(|r| r.split == "test")
        .expect("test split")
        .accuracy;
    assert!(test > 0.5, "test voices: {test} (chance 0.1)");

    let device = Default::default();
    let recogniser =
        Recogniser::<burn_ndarray::NdArray>::load(run_dir.path(), &device).expect("run loads");

    // The reports score best.mpk, the model `eval` and `predict` load: the best validation
    // accuracy, the latest epoch on ties.
    let best = outcome
        .history
        .iter()
        .max_by(|a, b| a.valid_accuracy.total_cmp(&b.valid_accuracy))
        .expect("epochs");
    assert_eq!(outcome.best_epoch, best.epoch);
    // This run ties at epochs 2 and 3 and drops at 4: the latest of the tied epochs is scored,
    // not the last model.
    assert_ne!(best.epoch, 4, "pick a run whose last epoch is not its best");
    let TaskData::Corpus(corpus) = &data else {
        panic!("a corpus task");
    };
    for (split, examples) in &corpus.reports {
        let right = examples
            .iter()
            .filter(|e| {
                let top = recogniser
                    .predict(&e.origin.path, 1, &device)
                    .expect("predicts");
                top.top[0].label == e.origin.label.to_string()
            })
            .count();
        let report = outcome
            .reports
            .iter()
            .find(|r| &r.split == split)
            .expect("report");
        assert_eq!(
            report.accuracy,
            right as f64 / examples.len() as f64,
            "{split}"
        );
    }
    let wav = repo().join("datasets/default/wav/asterisk/en_US_f_Allison/7_0.wav");
    let line = serde_json::to_string(&recogniser.predict(&wav, 3, &device).expect("predicts"))
        .expect("serialises");
    let parsed: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let top = parsed["top"].as_array().expect("top list");
    assert_eq!(top.len(), 3);
    let total: f64 = top
        .iter()
        .map(|t| t["probability"].as_f64().expect("probability"))
        .sum();
    assert!(total > 0.0 && total <= 1.0 + 1e-6);
    assert!(
        top.iter()
            .all(|t| t["label"].as_str().is_some_and(|l| l.len() == 1))
    );
    assert!(parsed["path"].as_str().expect("path").ends_with("7_0.wav"));

    // A config.toml edited so that it no longer fits the checkpoint gives an error, no panic.
    let edited = config.to_toml().replace("deltas = true", "deltas = false");
    assert_ne!(edited, config.to_toml());
    std::fs::write(run_dir.path().join("config.toml"), edited).expect("config");
    let refused = Recogniser::<burn_ndarray::NdArray>::load(run_dir.path(), &device)
        .and_then(|r| r.predict(&wav, 3, &device));
    assert!(
        matches!(
            &refused,
            Err(train::inference::InferenceError::Weights(
                train::model::WeightsError::WrongSize { found, expected, .. }
            )) if found != expected
        ),
        "{:?}",
        refused.map(|p| p.top)
    );
}
