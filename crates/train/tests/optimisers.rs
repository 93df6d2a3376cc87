//! Every optimiser trains; early stopping stops; the schedule reaches the optimiser.

use train::ExperimentConfig;
use train::backend::CpuBackend;
use train::engine::{RunOptions, train};
use train::report::metrics::EpochMetrics;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn history(overrides: &[&str]) -> Vec<EpochMetrics> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../experiments/temporal-order-smoke.toml"
    ))
    .expect("experiment file");
    let mut all = vec![
        "training.steps_per_epoch=10".to_string(),
        "training.batch_size=16".into(),
        "training.validation_size=64".into(),
        "model.hidden_size=8".into(),
    ];
    all.extend(overrides.iter().map(|s| s.to_string()));
    let config = ExperimentConfig::parse(&text, "test", &all).expect("valid");
    let data = config.prepare_data().expect("data");
    train::<CpuBackend>(
        config.spec(),
        &data,
        &Default::default(),
        &RunOptions::default(),
        (),
    )
    .expect("trains")
    .history
}

#[test]
fn each_optimiser_lowers_the_validation_loss() {
    for optimizer in [
        r#"training.optimizer={ kind = "adam" }"#,
        r#"training.optimizer={ kind = "adam_w", weight_decay = 0.01 }"#,
        r#"training.optimizer={ kind = "sgd", momentum = 0.9 }"#,
    ] {
        let learning_rate = if optimizer.contains("sgd") {
            "training.learning_rate=0.5"
        } else {
            "training.learning_rate=0.01"
        };
        let h = history(&[optimizer, learning_rate, "training.epochs=4"]);
        assert_eq!(h.len(), 4);
        assert!(h[3].valid_loss < h[0].valid_loss, "{optimizer}: {h:?}");
    }
}

#[test]
fn early_stopping_stops_after_patience_epochs_without_improvement() {
    // A rate stepped to zero after epoch 1 never improves validation accuracy again.
    let frozen = r#"training.schedule={ kind = "step", every_epochs = 1, gamma = 0.0 }"#;
    let h = history(&[
        "training.epochs=6",
        frozen,
        "training.early_stopping_patience=2",
    ]);
    assert_eq!(h.len(), 3, "{h:?}");
    let h = history(&["training.epochs=3", frozen]);
    assert_eq!(h.len(), 3, "no patience, no stopping");
}

#[test]
fn a_step_schedule_to_zero_freezes_training_after_the_first_epoch() {
    let frozen = history(&[
        "training.epochs=3",
        r#"training.schedule={ kind = "step", every_epochs = 1, gamma = 0.0 }"#,
    ]);
    assert_eq!(frozen[0].valid_loss, frozen[1].valid_loss);
    assert_eq!(frozen[1].valid_loss, frozen[2].valid_loss);
    let constant = history(&["training.epochs=3"]);
    assert_eq!(
        constant[0].valid_loss, frozen[0].valid_loss,
        "epoch 1 ran at the full rate"
    );
    assert_ne!(
        constant[1].valid_loss, constant[0].valid_loss,
        "without the schedule it trains on"
    );
}
