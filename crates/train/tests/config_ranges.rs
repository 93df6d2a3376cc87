//! Every numeric field with a valid range is checked when the configuration is read, and
//! the error names the field.

use train::ExperimentConfig;

fn parse(file: &str, overrides: &[&str]) -> Result<ExperimentConfig, String> {
    let path = format!("{}/../../experiments/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("experiment file");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    ExperimentConfig::parse(&text, file, &overrides).map_err(|e| e.to_string())
}

const SMOKE: &str = "temporal-order-smoke.toml";
const DIGITS: &str = "spoken-digits-demo.toml";
const REBER: &str = "embedded-reber.toml";

#[test]
fn out_of_range_values_are_refused_with_the_field_named() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            SMOKE,
            &["training.learning_rate=-1.0"],
            "training.learning_rate",
        ),
        (
            SMOKE,
            &["training.learning_rate=0.0"],
            "training.learning_rate",
        ),
        (
            SMOKE,
            &["training.learning_rate=nan"],
            "training.learning_rate",
        ),
        (
            SMOKE,
            &["training.learning_rate=inf"],
            "training.learning_rate",
        ),
        (
            SMOKE,
            &["training.clip_grad_norm=0.0"],
            "training.clip_grad_norm",
        ),
        (
            SMOKE,
            &["training.clip_grad_norm=-1.0"],
            "training.clip_grad_norm",
        ),
        (
            SMOKE,
            &["training.clip_grad_value=0.0"],
            "training.clip_grad_value",
        ),
        (
            SMOKE,
            &["training.clip_grad_value=nan"],
            "training.clip_grad_value",
        ),
        (
            SMOKE,
            &["training.optimizer={ kind = \"adam_w\", weight_decay = -0.1 }"],
            "training.optimizer.weight_decay",
        ),
        (
            SMOKE,
            &["training.optimizer={ kind = \"sgd\", momentum = -0.9 }"],
            "training.optimizer.momentum",
        ),
        (
            SMOKE,
            &["training.schedule={ kind = \"step\", every_epochs = 0, gamma = 0.5 }"],
            "training.schedule.every_epochs",
        ),
        (
            SMOKE,
            &["training.schedule={ kind = \"step\", every_epochs = 2, gamma = -0.5 }"],
            "training.schedule.gamma",
        ),
        (
            SMOKE,
            &["training.schedule={ kind = \"cosine\", min_lr = -0.001 }"],
            "training.schedule.min_lr",
        ),
        (
            SMOKE,
            &[
                "training.learning_rate=0.01",
                "training.schedule={ kind = \"cosine\", min_lr = 0.1 }",
            ],
            "training.schedule.min_lr",
        ),
        (
            SMOKE,
            &[
                "training.epochs=2",
                "training.steps_per_epoch=10",
                "training.warmup_steps=21",
            ],
            "training.warmup_steps",
        ),
        (
            SMOKE,
            &["training.early_stopping_patience=0"],
            "training.early_stopping_patience",
        ),
        (
            SMOKE,
            &["training.stop_at_accuracy=0.0"],
            "training.stop_at_accuracy",
        ),
        (
            SMOKE,
            &["training.stop_at_accuracy=1.5"],
            "training.stop_at_accuracy",
        ),
        (
            SMOKE,
            &["training.stop_at_accuracy=nan"],
            "training.stop_at_accuracy",
        ),
        (SMOKE, &["model.dropout=1.0"], "model.dropout"),
        (SMOKE, &["model.dropout=-0.1"], "model.dropout"),
        (SMOKE, &["model.hidden_size=0"], "model.hidden_size"),
        (SMOKE, &["training.batch_size=0"], "batch_size"),
        (SMOKE, &["task.first_window=[30, 20]"], "first_window"),
        (REBER, &["task.max_length=8"], "task.max_length"),
        (
            DIGITS,
            &["task.augment.noise_snrs=[nan]"],
            "task.augment.noise_snrs",
        ),
        (
            DIGITS,
            &["task.augment.noise_snrs=[inf]"],
            "task.augment.noise_snrs",
        ),
        (
            DIGITS,
            &["task.augment.speeds=[0.0]"],
            "task.augment.speeds",
        ),
        (DIGITS, &["task.augment.vtln_warps=[-0.9]"], "vtln warp"),
        (
            DIGITS,
            &[
                "task.augment.time_masks=2",
                "task.augment.time_mask_width=0",
            ],
            "task.augment.time_mask_width",
        ),
        (
            DIGITS,
            &[
                "task.augment.feature_masks=1",
                "task.augment.feature_mask_width=0",
            ],
            "task.augment.feature_mask_width",
        ),
        (
            DIGITS,
            &[
                "task.augment.feature_masks=1",
                "task.augment.feature_mask_width=1000",
            ],
            "task.augment.feature_mask_width",
        ),
        (
            DIGITS,
            &[
                "task.cmvn=false",
                "task.causal_cmvn={window=100, prior={frames=10, mean=[0.0, 1.0]}}",
            ],
            "task.causal_cmvn.prior.mean",
        ),
        (
            DIGITS,
            &[
                "task.cmvn=false",
                "task.causal_cmvn={window=100, variance=true, prior={frames=10, mean=[0.0]}}",
            ],
            "task.causal_cmvn.prior",
        ),
    ];
    for (file, overrides, field) in cases {
        match parse(file, overrides) {
            Ok(_) => panic!("{overrides:?} was accepted"),
            Err(message) => assert!(
                message.contains(field),
                "{overrides:?}: the error does not name {field}: {message}"
            ),
        }
    }
}

#[test]
fn values_at_the_edges_of_their_ranges_are_accepted() {
    let cases: &[(&str, &[&str])] = &[
        (
            SMOKE,
            &[
                "training.learning_rate=1e-9",
                "training.clip_grad_norm=1e-6",
            ],
        ),
        (
            SMOKE,
            &["training.optimizer={ kind = \"adam_w\", weight_decay = 0.0 }"],
        ),
        (
            SMOKE,
            &["training.optimizer={ kind = \"sgd\", momentum = 0.0 }"],
        ),
        (
            SMOKE,
            &["training.schedule={ kind = \"cosine\", min_lr = 0.0 }"],
        ),
        (
            SMOKE,
            &[
                "training.epochs=2",
                "training.steps_per_epoch=10",
                "training.warmup_steps=20",
            ],
        ),
        (
            SMOKE,
            &[
                "training.stop_at_accuracy=1.0",
                "training.early_stopping_patience=1",
            ],
        ),
        (SMOKE, &["model.dropout=0.0"]),
        (REBER, &["task.max_length=9"]),
        (
            DIGITS,
            &[
                "task.augment.feature_masks=1",
                "task.augment.feature_mask_width=13",
            ],
        ),
    ];
    for (file, overrides) in cases {
        if let Err(message) = parse(file, overrides) {
            panic!("{overrides:?} was refused: {message}");
        }
    }
}
