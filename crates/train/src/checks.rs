//! What can be wrong with a configuration: the one error vocabulary every layer's options
//! use to refuse a value before any data is read.

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// Not TOML, or not the fields and types of [`ExperimentConfig`](crate::ExperimentConfig).
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
