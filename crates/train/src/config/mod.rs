//! Experiment configuration: one TOML file per experiment, any field overridable.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
pub use crate::checks::{ConfigProblem, InvalidValue, OverrideError};
use crate::data::DataSource;
use crate::data::audio::{AudioClassification, LabelKind};
use crate::data::corpus::{CorpusError, TaskData};
use crate::data::generated::{Adding, EmbeddedReber, TemporalOrder};
pub use crate::model::ModelConfig;
use crate::optim::TrainSpec;
pub use crate::optim::{OptimizerConfig, Schedule, TrainingConfig};

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
    /// every step is trained with CTC ([`crate::eval::ctc`]). The same fields as
    /// `audio_classification`; `labels` lists the characters.
    DigitStrings(AudioClassification),
}

impl TaskConfig {
    /// Where this task's data comes from.
    pub fn source(&self) -> DataSource<'_> {
        match self {
            Self::TemporalOrder(task) => DataSource::Generated(task),
            Self::Adding(task) => DataSource::Generated(task),
            Self::EmbeddedReber(task) => DataSource::Generated(task),
            Self::AudioClassification(task) => DataSource::Corpus(task, LabelKind::Classes),
            Self::DigitStrings(task) => DataSource::Corpus(task, LabelKind::Sequences),
        }
    }

    /// The audio task's options and objective, when the task reads recordings.
    pub fn audio(&self) -> Option<(&AudioClassification, LabelKind)> {
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

    /// What the training engine needs: the seed, the network and the optimisation.
    pub fn spec(&self) -> TrainSpec<'_> {
        TrainSpec {
            seed: self.seed,
            model: &self.model,
            training: &self.training,
        }
    }

    /// The configuration on `backend` when one is given (`--backend` over the file's).
    pub fn with_backend(mut self, backend: Option<BackendKind>) -> Self {
        self.backend = backend.unwrap_or(self.backend);
        self
    }

    /// Generates or loads the data the task describes ([`TaskData::prepare`]).
    pub fn prepare_data(&self) -> Result<TaskData, CorpusError> {
        let t = &self.training;
        TaskData::prepare(self.task.source(), self.seed, t.validation_size)
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
