//! The output layer `y_t = act(W_y h_t + b)` and a sequence classifier built from a
//! recurrent stack and that layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::precision::Precision;
use crate::quantized::{QuantizeError, QuantizedRecurrent};
use crate::recurrent::{Recurrent, RecurrentConfig};
use crate::state::RecurrentState;

/// Activation applied to `W_y h_t + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputActivation {
    /// Linear outputs (logits for a softmax). The default.
    #[default]
    None,
    /// `tanh`.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
}

/// `y_t = act(W_y h_t + b)` applied at every step.
#[derive(Module, Debug)]
pub struct OutputLayer<B: Backend> {
    /// `W_y` and `b`.
    pub linear: Linear<B>,
    /// `act`.
    pub activation: OutputActivation,
}

impl<B: Backend> OutputLayer<B> {
    /// `[batch, time, hidden]` → `[batch, time, outputs]`.
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = self.linear.forward(hidden);
        match self.activation {
            OutputActivation::None => y,
            OutputActivation::Tanh => y.tanh(),
            OutputActivation::Sigmoid => crate::cell::sigmoid(y),
        }
    }
}

/// How per-step outputs become one output per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// `y` at each sequence's own last valid step.
    #[default]
    Last,
    /// The mean of `y_t` over each sequence's valid steps.
    Mean,
    /// The maximum of `y_t` over each sequence's valid steps, class by class (Keras'
    /// `GlobalMaxPooling1D`; `torch.amax(y, dim=1)` over the unpadded steps). The gradient
    /// reaches only the step that holds each maximum.
    Max,
}

impl Pooling {
    /// `[batch, time, C]` → `[batch, C]`, honouring `lengths` (all full when `None`).
    pub fn pool<B: Backend>(self, y: Tensor<B, 3>, lengths: Option<&[usize]>) -> Tensor<B, 2> {
        let [batch, time, classes] = y.dims();
        let device = y.device();
        let length = |b: usize| lengths.map_or(time, |l| l[b]);
        match self {
            Pooling::Last => {
                let rows: Vec<i64> = (0..batch)
                    .map(|b| (b * time + length(b) - 1) as i64)
                    .collect();
                let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [batch]), &device);
                y.reshape([batch * time, classes]).select(0, rows)
            }
            Pooling::Mean => {
                let weights = per_step(batch, time, length, &device, |t, len| {
                    if t < len { 1.0 / len as f32 } else { 0.0 }
                });
                (y * weights).sum_dim(1).reshape([batch, classes])
            }
            Pooling::Max => {
                let padding = per_step(batch, time, length, &device, |t, len| {
                    if t < len { 0.0 } else { f32::NEG_INFINITY }
                });
                (y + padding).max_dim(1).reshape([batch, classes])
            }
        }
    }
}

/// `[batch, time, 1]` holding `value(t, length of sequence b)` at `[b, t, 0]`.
fn per_step<B: Backend>(
    batch: usize,
    time: usize,
    length: impl Fn(usize) -> usize,
    device: &B::Device,
    value: impl Fn(usize, usize) -> f32,
) -> Tensor<B, 3> {
    let value = &value;
    let values: Vec<f32> = (0..batch)
        .flat_map(|b| {
            let len = length(b);
            (0..time).map(move |t| value(t, len))
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, time, 1]), device)
}

/// Configuration of a [`SequenceClassifier`].
#[derive(Config, Debug)]
pub struct SequenceClassifierConfig {
    /// The recurrent stack.
    pub recurrent: RecurrentConfig,
    /// Number of classes, the width of `y_t`.
    pub num_classes: usize,
    /// Activation on `y_t`; keep `None` for softmax classification.
    #[config(default = "OutputActivation::None")]
    pub output_activation: OutputActivation,
}

impl SequenceClassifierConfig {
    /// Builds the classifier with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SequenceClassifier<B> {
        let recurrent = self.recurrent.init(device);
        let linear = LinearConfig::new(recurrent.output_size(), self.num_classes).init(device);
        SequenceClassifier {
            recurrent,
            output: OutputLayer {
                linear,
                activation: self.output_activation,
            },
            quantized: None,
        }
    }
}

/// A recurrent stack followed by the output layer: per-step outputs `y_t` for a softmax.
#[derive(Module, Debug)]
pub struct SequenceClassifier<B: Backend> {
    /// The recurrent layers.
    pub recurrent: Recurrent<B>,
    /// `y_t = act(W_y h_t + b)`.
    pub output: OutputLayer<B>,
    /// The recurrent layers at a lower precision, set by [`SequenceClassifier::quantize`]:
    /// when present, inference runs them instead of `recurrent`.
    #[module(skip)]
    pub quantized: Option<QuantizedRecurrent>,
}

impl<B: Backend> SequenceClassifier<B> {
    /// `[batch, time, features]` → per-step outputs `[batch, time, num_classes]`.
    pub fn forward(&self, input: Tensor<B, 3>, lengths: Option<&[usize]>) -> Tensor<B, 3> {
        let (hidden, _) = self.run_recurrent(input, None, lengths);
        self.output.forward(hidden)
    }

    /// One chunk of a stream: `[batch, time, features]` from `state` (zeros when `None`) →
    /// per-step outputs and the state after the chunk's last step. Chunks fed in turn, each
    /// from the previous one's state, give the outputs of the whole sequence at once
    /// (unidirectional stacks; see [`Recurrent::forward`]).
    pub fn forward_chunk(
        &self,
        input: Tensor<B, 3>,
        state: Option<RecurrentState<B, 3>>,
    ) -> (Tensor<B, 3>, RecurrentState<B, 3>) {
        let (hidden, state) = self.run_recurrent(input, state, None);
        (self.output.forward(hidden), state)
    }

    /// This classifier with its recurrent layers run at `precision` for inference
    /// ([`QuantizedRecurrent`]; the output layer stays f32). [`Precision::F32`] leaves it
    /// as it is.
    ///
    /// # Errors
    /// As [`Recurrent::quantize`].
    pub fn quantize(&self, precision: Precision) -> Result<Self, QuantizeError> {
        let quantized = match precision {
            Precision::F32 => None,
            _ => Some(self.recurrent.quantize(precision)?),
        };
        Ok(Self {
            quantized,
            ..self.clone()
        })
    }

    /// The precision inference runs the recurrent layers at.
    pub fn precision(&self) -> Precision {
        self.quantized
            .as_ref()
            .map_or(Precision::F32, QuantizedRecurrent::precision)
    }

    fn run_recurrent(
        &self,
        input: Tensor<B, 3>,
        state: Option<RecurrentState<B, 3>>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<B, 3>, RecurrentState<B, 3>) {
        match &self.quantized {
            // `quantize` built it only on `NdArray`, so `B` is `NdArray` here.
            Some(quantized) => {
                let (hidden, state) = quantized.forward(cast(input), state.map(cast), lengths);
                (cast(hidden), cast(state))
            }
            None => self.recurrent.forward(input, state, lengths),
        }
    }
}

/// `value` as the type it is known (by `TypeId`) to be.
fn cast<A: 'static, T: 'static>(value: A) -> T {
    *(Box::new(value) as Box<dyn std::any::Any>)
        .downcast::<T>()
        .expect("quantised modules exist on NdArray only")
}
