//! Experiment configuration: one TOML file per experiment, any field overridable.

use std::path::Path;

use models::CellKind;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::corpus::{AudioClassification, Objective};
use crate::task::{Adding, EmbeddedReber, SequenceTask, TemporalOrder};

/// A whole experiment, as written in `experiments/*.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name used for the run folder.
    pub name: String,
    /// Seed for weights, data and dropout; the same seed gives the same run on ndarray.
    pub seed: u64,
    /// `ndarray` (CPU) or `wgpu` (GPU); `--backend` overrides it.
    #[serde(default)]
    pub backend: BackendKind,
    /// The data.
    pub task: TaskConfig,
    /// The network.
    pub model: ModelConfig,
    /// The optimisation.
    pub training: TrainingConfig,
}

/// Which task generates the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
// One per run, read once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum TaskConfig {
    /// Hochreiter & Schmidhuber (1997) experiment 6a.
    TemporalOrder(TemporalOrder),
    /// Hochreiter & Schmidhuber (1997) experiment 4, the adding problem (regression).
    Adding(Adding),
    /// Hochreiter & Schmidhuber (1997) experiment 1: next-symbol prediction at every step.
    EmbeddedReber(EmbeddedReber),
    /// Recordings classified by label: spoken digits, keywords, any label set
    /// (`kind = "audio_classification"`; `"spoken_digits"` names the same task).
    #[serde(alias = "spoken_digits")]
    AudioClassification(AudioClassification),
    /// Recordings labelled with unsegmented strings (spoken digit strings such as
    /// `5551234`): every character of a label is a class, and the softmax over `y_t` at
    /// every step is trained with CTC ([`crate::ctc`]). The same fields as
    /// `audio_classification`; `labels` lists the characters.
    DigitStrings(AudioClassification),
}

/// Where a task's data comes from: drawn fresh by a generator, or read from a corpus.
#[derive(Debug, Clone, Copy)]
pub enum DataSource<'a> {
    /// A generated task.
    Generated(&'a dyn SequenceTask),
    /// A corpus of recordings, and what its labels are.
    Corpus(&'a AudioClassification, Objective),
}

impl TaskConfig {
    /// Where this task's data comes from.
    pub fn source(&self) -> DataSource<'_> {
        match self {
            Self::TemporalOrder(task) => DataSource::Generated(task),
            Self::Adding(task) => DataSource::Generated(task),
            Self::EmbeddedReber(task) => DataSource::Generated(task),
            Self::AudioClassification(task) => DataSource::Corpus(task, Objective::Classes),
            Self::DigitStrings(task) => DataSource::Corpus(task, Objective::Sequences),
        }
    }

    /// The audio task's options and objective, when the task reads recordings.
    pub fn audio(&self) -> Option<(&AudioClassification, Objective)> {
        match self.source() {
            DataSource::Corpus(task, objective) => Some((task, objective)),
            DataSource::Generated(_) => None,
        }
    }

    /// The audio task's options, to change them.
    pub fn audio_mut(&mut self) -> Option<&mut AudioClassification> {
        match self {
            Self::AudioClassification(task) | Self::DigitStrings(task) => Some(task),
            _ => None,
        }
    }
}

/// The recurrent classifier: recurrent stack, then `y_t = W_y h_t + b`, softmax over classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The cell, e.g. `{ kind = "lstm" }`, `{ kind = "gru", reset_after = false }`,
    /// `{ kind = "rnn", nonlinearity = "tanh" }`.
    pub cell: CellKind,
    /// Hidden units per layer and direction.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    #[serde(default = "one")]
    pub num_layers: usize,
    /// Both directions (default false).
    #[serde(default)]
    pub bidirectional: bool,
    /// Dropout between layers while training (default 0).
    #[serde(default)]
    pub dropout: f64,
}

fn one() -> usize {
    1
}

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

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML or an override did not parse, or a field is wrong.
    #[error("invalid configuration {origin}: {problem}")]
    Invalid {
        /// The file or override.
        origin: String,
        /// What is wrong.
        #[source]
        problem: ConfigProblem,
    },
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// Not TOML, or not the fields and types of [`ExperimentConfig`].
    #[error(transparent)]
    Syntax(#[from] toml::de::Error),
    /// A `--set` item that is not `key.path=value`.
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// A value out of its range.
    #[error(transparent)]
    Value(#[from] InvalidValue),
    /// Feature options `features` refuses.
    #[error("task features: {0}")]
    Features(#[from] features::FeatureError),
}

/// A value a configuration may not hold, with the field named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct InvalidValue {
    /// The field's path in the TOML, e.g. `training.learning_rate`.
    pub field: String,
    /// What it must be, and what it was.
    pub rule: String,
}

impl InvalidValue {
    /// `field` breaks `rule` (worded to follow the field's name).
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// A `--set` item that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    #[error("expected key.path=value")]
    NoEquals,
    #[error("empty key")]
    EmptyKey,
    #[error("{0} is not a table")]
    NotATable(String),
}

impl ExperimentConfig {
    /// Reads a TOML file and applies `key.path=value` overrides (values in TOML syntax; bare
    /// words are taken as strings), e.g. `training.epochs=3`, `model.cell.kind=gru`.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Like [`ExperimentConfig::load`], from text.
    ///
    /// ```
    /// use train::ExperimentConfig;
    ///
    /// let text = std::fs::read_to_string(concat!(
    ///     env!("CARGO_MANIFEST_DIR"),
    ///     "/../../experiments/temporal-order-smoke.toml"
    /// ))
    /// .unwrap();
    /// let overrides = ["training.epochs=2".to_string(), "model.cell.kind=gru".to_string()];
    /// let config = ExperimentConfig::parse(&text, "smoke", &overrides).unwrap();
    /// assert_eq!(config.training.epochs, 2);
    /// assert_eq!(config.model.cell.name(), "gru");
    /// // Unknown fields are refused rather than ignored.
    /// let typo = ["training.epoch=2".to_string()];
    /// assert!(ExperimentConfig::parse(&text, "smoke", &typo).is_err());
    /// ```
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let invalid = |origin: &str| {
            let origin = origin.to_string();
            move |problem: ConfigProblem| ConfigError::Invalid { origin, problem }
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(origin)(e.into()))?;
        for item in overrides {
            apply_override(&mut table, item).map_err(|e| invalid(item)(e.into()))?;
        }
        let config: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| invalid(origin)(e.into()))?;
        config.validate().map_err(invalid(origin))?;
        Ok(config)
    }

    /// The configuration as TOML (saved beside every run).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serialises")
    }

    fn validate(&self) -> Result<(), ConfigProblem> {
        match &self.task {
            TaskConfig::TemporalOrder(task) => task.validate()?,
            TaskConfig::Adding(task) => task.validate()?,
            TaskConfig::EmbeddedReber(task) => task.validate()?,
            TaskConfig::AudioClassification(task) | TaskConfig::DigitStrings(task) => {
                task.validate()?
            }
        }
        let t = &self.training;
        if t.epochs == 0 || t.steps_per_epoch == 0 || t.batch_size == 0 || t.validation_size == 0 {
            return Err(InvalidValue::new(
                "training.epochs, steps_per_epoch, batch_size and validation_size",
                "must be ≥ 1",
            )
            .into());
        }
        if self.model.hidden_size == 0 || self.model.num_layers == 0 {
            return Err(
                InvalidValue::new("model.hidden_size and model.num_layers", "must be ≥ 1").into(),
            );
        }
        if !(0.0..1.0).contains(&self.model.dropout) {
            return Err(InvalidValue::new(
                "model.dropout",
                format!("must be in [0, 1), got {}", self.model.dropout),
            )
            .into());
        }
        t.validate_ranges()?;
        if matches!(self.task.source(), DataSource::Generated(_)) {
            let steps = t.epochs * t.steps_per_epoch;
            t.check_warmup(steps)?;
        }
        Ok(())
    }
}

impl TrainingConfig {
    /// Every numeric field with a range, named in the error.
    fn validate_ranges(&self) -> Result<(), InvalidValue> {
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

fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), OverrideError> {
    let (key, raw) = item.split_once('=').ok_or(OverrideError::NoEquals)?;
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, parents) = parts.split_last().ok_or(OverrideError::EmptyKey)?;
    let mut node = table;
    for part in parents {
        node = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| OverrideError::NotATable(part.to_string()))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}
