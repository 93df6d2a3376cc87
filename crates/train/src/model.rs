//! The network an experiment trains ([`ModelConfig`]), built and loaded the same way by the
//! training engine and by inference.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use models::CellKind;
use models::{RecurrentConfig, SequenceClassifier, SequenceClassifierConfig};
use serde::{Deserialize, Serialize};

/// burn's named MessagePack format at full precision: a resumed run continues bit for bit.
pub type FileRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

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

impl ModelConfig {
    /// Builds the classifier for `input_size` features and `classes` outputs.
    pub fn init<B: Backend>(
        &self,
        (input_size, classes): (usize, usize),
        device: &B::Device,
    ) -> SequenceClassifier<B> {
        let recurrent = RecurrentConfig::new(self.cell.clone(), input_size, self.hidden_size)
            .with_num_layers(self.num_layers)
            .with_bidirectional(self.bidirectional)
            .with_dropout(self.dropout);
        SequenceClassifierConfig::new(recurrent, classes).init(device)
    }
}

/// Why a weights file could not be loaded into a model.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// burn's recorder could not read the file.
    #[error("{path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// What the recorder said.
        source: burn::record::RecorderError,
    },
    /// The file holds a model of another size than the configuration describes.
    #[error(
        "{path} holds {found} parameters, but the configuration describes a model of {expected}"
    )]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Parameters in the file.
        found: usize,
        /// Parameters of the configured model.
        expected: usize,
    },
}

/// `model` with the weights of the `.mpk` file at `path`. burn loads weights of any shape
/// into any model, so a file that does not fit (a configuration edited since) would only
/// fail later, with a panic; here it is refused when its parameter count differs.
pub fn load_model<B: Backend>(
    model: SequenceClassifier<B>,
    path: &Path,
    device: &B::Device,
) -> Result<SequenceClassifier<B>, WeightsError> {
    let expected = model.num_params();
    let model = model
        .load_file(path.to_path_buf(), &FileRecorder::new(), device)
        .map_err(|source| WeightsError::Record {
            path: path.to_path_buf(),
            source,
        })?;
    match model.num_params() {
        found if found == expected => Ok(model),
        found => Err(WeightsError::WrongSize {
            path: path.to_path_buf(),
            found,
            expected,
        }),
    }
}
