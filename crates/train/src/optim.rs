//! How a run optimises ([`TrainingConfig`]): epochs, batches, the optimiser, the learning
//! rate schedule, clipping, the weight average and early stopping, with their ranges; and
//! [`TrainSpec`], what the training engine takes from an experiment. Options only: the
//! engine that follows them is [`crate::engine`].

use serde::{Deserialize, Serialize};

use crate::checks::InvalidValue;
use crate::data::corpus::TaskData;
use crate::model::ModelConfig;

fn hundredth() -> f64 {
    0.01
}

fn hundred() -> usize {
    100
}

fn five_hundred_twelve() -> usize {
    512
}

/// Optimiser and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Passes of `steps_per_epoch` batches.
    pub epochs: usize,
    /// Batches per epoch for generated tasks, which draw fresh sequences every batch
    /// (datasets take one pass over their training split per epoch; default 100).
    #[serde(default = "hundred")]
    pub steps_per_epoch: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Peak learning rate (after warm-up, before the schedule lowers it).
    pub learning_rate: f64,
    /// The optimiser: `{ kind = "adam" }` (default), `{ kind = "adam_w", weight_decay = 0.01 }`
    /// or `{ kind = "sgd", momentum = 0.9 }`.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule: `{ kind = "constant" }` (default),
    /// `{ kind = "step", every_epochs = 10, gamma = 0.5 }` or `{ kind = "cosine", min_lr = 0.0 }`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Linear warm-up from 0 to the scheduled rate over this many batches (default 0).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Stop when validation accuracy has not improved for this many epochs (none when absent).
    #[serde(default)]
    pub early_stopping_patience: Option<usize>,
    /// Stop as soon as validation accuracy reaches this fraction (e.g. 0.99 for "solved";
    /// none when absent). The epoch it happens in says how many sequences it took.
    #[serde(default)]
    pub stop_at_accuracy: Option<f64>,
    /// Scale gradients so their global L2 norm (all parameters together) is at most this
    /// (PyTorch's `clip_grad_norm_`; none when absent).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to ±this (PyTorch's `clip_grad_value_`; none when absent).
    #[serde(default)]
    pub clip_grad_value: Option<f64>,
    /// Held-out sequences of a generated task scored after every epoch, drawn once from
    /// `seed + 1` (datasets use their `valid` split; default 512).
    #[serde(default = "five_hundred_twelve")]
    pub validation_size: usize,
    /// Keep an exponential moving average of the weights, updated after every optimiser
    /// step with this decay (PyTorch's `get_ema_multi_avg_fn(decay)`, Keras's
    /// `ema_momentum`; e.g. 0.999); validation, `best.mpk` and the reports then use the
    /// average (none when absent).
    #[serde(default)]
    pub ema_decay: Option<f64>,
}

/// The optimiser and its settings (burn's implementations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-5).
    #[default]
    Adam,
    /// AdamW: Adam with decoupled weight decay.
    AdamW {
        /// Decoupled weight decay (PyTorch's default 0.01).
        #[serde(default = "hundredth")]
        weight_decay: f64,
    },
    /// Stochastic gradient descent with momentum, undampened as PyTorch's.
    Sgd {
        /// Momentum factor (0: plain SGD).
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
}

/// How the learning rate changes over a run (warm-up comes first, separately).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `every_epochs` epochs (PyTorch's `StepLR`).
    Step {
        /// Epochs between decays.
        every_epochs: usize,
        /// Factor per decay.
        gamma: f64,
    },
    /// Half a cosine from the peak down to `min_lr` over all batches (`CosineAnnealingLR`).
    Cosine {
        /// The final rate.
        #[serde(default)]
        min_lr: f64,
    },
}

impl TrainingConfig {
    /// The learning rate for batch `step` (0-based, counted over the whole run) of
    /// `epoch` (1-based), in a run of `total_steps` batches.
    ///
    /// ```
    /// use train::ExperimentConfig;
    /// let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/temporal-order-smoke.toml")).unwrap();
    /// let set = |s: &str| s.to_string();
    /// let config = ExperimentConfig::parse(&text, "doc", &[set("training.learning_rate=0.1"),
    ///     set("training.warmup_steps=10"), set("training.schedule={ kind = \"cosine\" }")]).unwrap();
    /// let t = &config.training;
    /// assert!((t.learning_rate_at(0, 1, 100) - 0.01).abs() < 1e-12); // first warm-up step
    /// assert!((t.learning_rate_at(50, 1, 100) - 0.05).abs() < 1e-12); // half-way down the cosine
    /// ```
    pub fn learning_rate_at(&self, step: usize, epoch: usize, total_steps: usize) -> f64 {
        let peak = self.learning_rate;
        let scheduled = match &self.schedule {
            Schedule::Constant => peak,
            Schedule::Step {
                every_epochs,
                gamma,
            } => peak * gamma.powi(((epoch - 1) / (*every_epochs).max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let progress = step as f64 / total_steps.max(1) as f64;
                min_lr + 0.5 * (peak - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        if step < self.warmup_steps {
            scheduled * (step + 1) as f64 / self.warmup_steps as f64
        } else {
            scheduled
        }
    }
}

impl TrainingConfig {
    /// Every numeric field with a range, named in the error.
    pub fn validate_ranges(&self) -> Result<(), InvalidValue> {
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(InvalidValue::new(
                    name,
                    format!("must be finite and > 0, got {value}"),
                ))
            }
        };
        let non_negative = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(InvalidValue::new(
                    name,
                    format!("must be finite and ≥ 0, got {value}"),
                ))
            }
        };
        positive("training.learning_rate", self.learning_rate)?;
        if let Some(norm) = self.clip_grad_norm {
            positive("training.clip_grad_norm", norm)?;
        }
        if let Some(value) = self.clip_grad_value {
            positive("training.clip_grad_value", value)?;
        }
        if let Some(decay) = self.ema_decay
            && !(decay.is_finite() && (0.0..1.0).contains(&decay))
        {
            return Err(InvalidValue::new(
                "training.ema_decay",
                format!("must be in [0, 1), got {decay}"),
            ));
        }
        match &self.optimizer {
            OptimizerConfig::Adam => {}
            OptimizerConfig::AdamW { weight_decay } => {
                non_negative("training.optimizer.weight_decay", *weight_decay)?;
            }
            OptimizerConfig::Sgd { momentum, .. } => {
                non_negative("training.optimizer.momentum", *momentum)?;
            }
        }
        match &self.schedule {
            Schedule::Constant => {}
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if *every_epochs == 0 {
                    return Err(InvalidValue::new(
                        "training.schedule.every_epochs",
                        "must be ≥ 1",
                    ));
                }
                non_negative("training.schedule.gamma", *gamma)?;
            }
            Schedule::Cosine { min_lr } => {
                non_negative("training.schedule.min_lr", *min_lr)?;
                if *min_lr > self.learning_rate {
                    return Err(InvalidValue::new(
                        "training.schedule.min_lr",
                        format!(
                            "({min_lr}) must not exceed training.learning_rate ({})",
                            self.learning_rate
                        ),
                    ));
                }
            }
        }
        if self.early_stopping_patience == Some(0) {
            return Err(InvalidValue::new(
                "training.early_stopping_patience",
                "must be ≥ 1",
            ));
        }
        if let Some(target) = self.stop_at_accuracy
            && !(target > 0.0 && target <= 1.0)
        {
            return Err(InvalidValue::new(
                "training.stop_at_accuracy",
                format!("must be in (0, 1], got {target}"),
            ));
        }
        Ok(())
    }

    /// Refuses a warm-up longer than a run of `total_steps` batches.
    pub fn check_warmup(&self, total_steps: usize) -> Result<(), InvalidValue> {
        if self.warmup_steps > total_steps {
            return Err(InvalidValue::new(
                "training.warmup_steps",
                format!(
                    "({}) is longer than the run ({total_steps} batches)",
                    self.warmup_steps
                ),
            ));
        }
        Ok(())
    }
}

impl TrainingConfig {
    /// Batches per epoch of `data`: `steps_per_epoch` for a generated task; for a corpus,
    /// the training split in batches of `batch_size`.
    pub fn batches_per_epoch(&self, data: &TaskData) -> usize {
        match data {
            TaskData::Generated { .. } => self.steps_per_epoch,
            TaskData::Corpus(corpus) => corpus.train.len().div_ceil(self.batch_size),
        }
    }
}

/// What the engine needs from an experiment: its seed, its network and its optimisation.
#[derive(Debug, Clone, Copy)]
pub struct TrainSpec<'a> {
    /// Seed for weights, batch order and dropout.
    pub seed: u64,
    /// The network.
    pub model: &'a ModelConfig,
    /// The optimisation.
    pub training: &'a TrainingConfig,
}
