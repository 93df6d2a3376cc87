//! Weights by PyTorch's names: export, import, and safetensors files of a `state_dict`.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use crate::cell::Cell;
use crate::head::SequenceClassifier;
use crate::recurrent::Recurrent;

/// Named arrays, as PyTorch's `module.state_dict()`: `weight_ih_l0`, `bias_hh_l1_reverse`, …
pub type StateDict = BTreeMap<String, TensorData>;

/// Why weights could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A key the module needs is not in the file.
    #[error("missing key {0:?} in state_dict")]
    MissingKey(String),
    /// A key the module does not have (PyTorch's strict loading refuses these too).
    #[error("unexpected key {0:?} in state_dict")]
    UnexpectedKey(String),
    /// An array of the wrong shape.
    #[error("size mismatch for {key}: expected {expected:?}, got {got:?}")]
    Shape {
        /// The key.
        key: String,
        /// The module's shape.
        expected: Vec<usize>,
        /// The file's shape.
        got: Vec<usize>,
    },
    /// The file could not be read or parsed.
    #[error("cannot read safetensors file {path}: {reason}")]
    File {
        /// The path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// PyTorch's suffix for a cell index: `_l{layer}` plus `_reverse` for the second direction.
fn suffix(index: usize, directions: usize) -> String {
    let reverse = if index % directions == 1 {
        "_reverse"
    } else {
        ""
    };
    format!("_l{}{reverse}", index / directions)
}

/// Reads one value per parameter on export: its value, or its gradient.
trait Reader<B: Backend> {
    fn read<const D: usize>(&self, param: &Param<Tensor<B, D>>) -> Option<TensorData>;
}

struct Values;

impl<B: Backend> Reader<B> for Values {
    fn read<const D: usize>(&self, param: &Param<Tensor<B, D>>) -> Option<TensorData> {
        Some(param.val().into_data())
    }
}

struct Grads<'a, B: AutodiffBackend>(&'a B::Gradients);

impl<B: AutodiffBackend> Reader<B> for Grads<'_, B> {
    fn read<const D: usize>(&self, param: &Param<Tensor<B, D>>) -> Option<TensorData> {
        param.val().grad(self.0).map(|g| g.into_data())
    }
}

fn export<B: Backend, R: Reader<B>, const D: usize>(
    dict: &mut StateDict,
    reader: &R,
    key: String,
    param: &Param<Tensor<B, D>>,
) {
    if let Some(data) = reader.read(param) {
        dict.insert(key, data);
    }
}

/// The transpose of a row-major matrix.
fn transposed(data: TensorData) -> TensorData {
    let [rows, cols] = [data.shape[0], data.shape[1]];
    let values: Vec<f64> = data.iter::<f64>().collect();
    let out: Vec<f64> = (0..cols * rows)
        .map(|k| values[(k % rows) * cols + k / rows])
        .collect();
    TensorData::new(out, [cols, rows]).convert_dtype(data.dtype)
}

/// How a matrix is laid out in the file relative to the parameter.
#[derive(Clone, Copy, PartialEq)]
enum FileLayout {
    /// Same shape as the parameter.
    AsStored,
    /// The transpose of the parameter (PyTorch's `nn.Linear` `[out, in]` for burn's `[in, out]`).
    Transposed,
}

fn import<B: Backend, const D: usize>(
    dict: &StateDict,
    used: &mut Vec<String>,
    key: String,
    param: Param<Tensor<B, D>>,
    layout: FileLayout,
) -> Result<Param<Tensor<B, D>>, WeightsError> {
    let data = dict
        .get(&key)
        .ok_or_else(|| WeightsError::MissingKey(key.clone()))?;
    let mut expected = param.dims().to_vec();
    if layout == FileLayout::Transposed {
        expected.reverse();
    }
    if data.shape.as_slice() != expected.as_slice() {
        return Err(WeightsError::Shape {
            key,
            expected,
            got: data.shape.to_vec(),
        });
    }
    used.push(key);
    let data = match layout {
        FileLayout::AsStored => data.clone(),
        FileLayout::Transposed => transposed(data.clone()),
    };
    Ok(param.map(|tensor| {
        let device = tensor.device();
        let loaded = Tensor::from_data(data, &device);
        if tensor.is_require_grad() {
            loaded.require_grad()
        } else {
            loaded
        }
    }))
}

fn check_unexpected(dict: &StateDict, used: &[String], prefix: &str) -> Result<(), WeightsError> {
    match dict
        .keys()
        .find(|key| key.starts_with(prefix) && !used.contains(key))
    {
        Some(key) => Err(WeightsError::UnexpectedKey(key.clone())),
        None => Ok(()),
    }
}

impl<B: Backend> Recurrent<B> {
    /// The weights under PyTorch's names. Peephole vectors, which PyTorch has no name for,
    /// are `weight_peephole_l{k}` (`[3·H]`, order i, f, o).
    pub fn state_dict(&self) -> StateDict {
        let mut dict = StateDict::new();
        self.export_into(&mut dict, &Values, "");
        dict
    }

    /// Replaces every weight with the one of the same PyTorch name. Every key must be
    /// present, of the right shape, and no other key may be (strict, as PyTorch's default).
    pub fn load_state_dict(self, dict: &StateDict) -> Result<Self, WeightsError> {
        let mut used = Vec::new();
        let loaded = self.import_from(dict, &mut used, "")?;
        check_unexpected(dict, &used, "")?;
        Ok(loaded)
    }

    /// Loads a safetensors file written from PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU`
    /// `state_dict()` (for example with `safetensors.torch.save_file(m.state_dict(), path)`).
    pub fn load_safetensors(self, path: impl AsRef<std::path::Path>) -> Result<Self, WeightsError> {
        let dict = read_safetensors(path.as_ref())?;
        self.load_state_dict(&dict)
    }

    fn export_into<R: Reader<B>>(&self, dict: &mut StateDict, reader: &R, prefix: &str) {
        let directions = self.num_directions();
        for (index, cell) in self.cells.iter().enumerate() {
            let s = suffix(index, directions);
            let w = cell.weights();
            export(dict, reader, format!("{prefix}weight_ih{s}"), &w.weight_ih);
            export(dict, reader, format!("{prefix}weight_hh{s}"), &w.weight_hh);
            if let Some(b) = &w.bias_ih {
                export(dict, reader, format!("{prefix}bias_ih{s}"), b);
            }
            if let Some(b) = &w.bias_hh {
                export(dict, reader, format!("{prefix}bias_hh{s}"), b);
            }
            if let Cell::Lstm(lstm) = cell
                && let Some(p) = &lstm.peephole
            {
                export(dict, reader, format!("{prefix}weight_peephole{s}"), p);
            }
        }
    }

    fn import_from(
        mut self,
        dict: &StateDict,
        used: &mut Vec<String>,
        prefix: &str,
    ) -> Result<Self, WeightsError> {
        let directions = self.num_directions();
        let cells = std::mem::take(&mut self.cells);
        for (index, mut cell) in cells.into_iter().enumerate() {
            let s = suffix(index, directions);
            let w = match &mut cell {
                Cell::Rnn(c) => &mut c.weights,
                Cell::Lstm(c) => &mut c.weights,
                Cell::Gru(c) => &mut c.weights,
            };
            replace(&mut w.weight_ih, |p| {
                import(
                    dict,
                    used,
                    format!("{prefix}weight_ih{s}"),
                    p,
                    FileLayout::AsStored,
                )
            })?;
            replace(&mut w.weight_hh, |p| {
                import(
                    dict,
                    used,
                    format!("{prefix}weight_hh{s}"),
                    p,
                    FileLayout::AsStored,
                )
            })?;
            if let Some(b) = &mut w.bias_ih {
                replace(b, |p| {
                    import(
                        dict,
                        used,
                        format!("{prefix}bias_ih{s}"),
                        p,
                        FileLayout::AsStored,
                    )
                })?;
            }
            if let Some(b) = &mut w.bias_hh {
                replace(b, |p| {
                    import(
                        dict,
                        used,
                        format!("{prefix}bias_hh{s}"),
                        p,
                        FileLayout::AsStored,
                    )
                })?;
            }
            if let Cell::Lstm(lstm) = &mut cell
                && let Some(p) = &mut lstm.peephole
            {
                replace(p, |p| {
                    import(
                        dict,
                        used,
                        format!("{prefix}weight_peephole{s}"),
                        p,
                        FileLayout::AsStored,
                    )
                })?;
            }
            self.cells.push(cell);
        }
        Ok(self)
    }
}

/// Applies a fallible by-value update to a parameter in place (parameters are cheap to clone).
fn replace<T: Clone, E>(slot: &mut T, update: impl FnOnce(T) -> Result<T, E>) -> Result<(), E> {
    *slot = update(slot.clone())?;
    Ok(())
}

impl<B: Backend> SequenceClassifier<B> {
    /// The recurrent weights under `recurrent.` + PyTorch's names, and the output layer as a
    /// PyTorch `nn.Linear`: `output.weight` `[classes, features]`, `output.bias` `[classes]`.
    pub fn state_dict(&self) -> StateDict {
        self.export(&Values)
    }

    fn export<R: Reader<B>>(&self, reader: &R) -> StateDict {
        let mut dict = StateDict::new();
        self.recurrent.export_into(&mut dict, reader, "recurrent.");
        let linear = &self.output.linear;
        // burn's Linear stores [in, out]; PyTorch's nn.Linear stores [out, in].
        if let Some(weight) = reader.read(&linear.weight) {
            dict.insert("output.weight".into(), transposed(weight));
        }
        if let Some(b) = &linear.bias {
            export(&mut dict, reader, "output.bias".into(), b);
        }
        dict
    }

    /// Strict import of [`SequenceClassifier::state_dict`]'s names.
    pub fn load_state_dict(mut self, dict: &StateDict) -> Result<Self, WeightsError> {
        let mut used = Vec::new();
        self.recurrent = self.recurrent.import_from(dict, &mut used, "recurrent.")?;
        replace(&mut self.output.linear.weight, |p| {
            import(
                dict,
                &mut used,
                "output.weight".into(),
                p,
                FileLayout::Transposed,
            )
        })?;
        if let Some(b) = &mut self.output.linear.bias {
            replace(b, |p| {
                import(
                    dict,
                    &mut used,
                    "output.bias".into(),
                    p,
                    FileLayout::AsStored,
                )
            })?;
        }
        check_unexpected(dict, &used, "")?;
        Ok(self)
    }
}

impl<B: AutodiffBackend> Recurrent<B> {
    /// The gradients in `grads` under the same names as [`Recurrent::state_dict`]; parameters
    /// that received no gradient are left out.
    pub fn gradient_dict(&self, grads: &B::Gradients) -> StateDict {
        let mut dict = StateDict::new();
        self.export_into(&mut dict, &Grads::<B>(grads), "");
        dict
    }
}

impl<B: AutodiffBackend> SequenceClassifier<B> {
    /// The gradients in `grads` under the names of [`SequenceClassifier::state_dict`].
    pub fn gradient_dict(&self, grads: &B::Gradients) -> StateDict {
        self.export(&Grads::<B>(grads))
    }
}

/// Reads every float tensor of a safetensors file as f32.
pub fn read_safetensors(path: &std::path::Path) -> Result<StateDict, WeightsError> {
    let file_error = |reason: String| WeightsError::File {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
    let tensors =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| file_error(e.to_string()))?;
    let mut dict = StateDict::new();
    for (name, view) in tensors.tensors() {
        let shape = view.shape().to_vec();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => {
                return Err(file_error(format!(
                    "tensor {name} has dtype {other:?}; only F32 and F64 are read"
                )));
            }
        };
        dict.insert(name, TensorData::new(values, shape));
    }
    Ok(dict)
}
