//! The output layer and what follows it: pooling over each sequence's valid steps and a
//! softmax (classification), or per-step log-probabilities (CTC).

use models::{Pooling, StateDict};
use onnx::{Attribute, GraphBuilder};

use super::ExportError;
use super::ops::{count_to, unsqueeze};
use super::recurrent::{gather_steps, weight};

/// What the exported model outputs after `y_t = W_y h_t + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// One class per sequence: `y_t` pooled over the valid steps, then a softmax
    /// (`probabilities`, `[batch, classes]`).
    Classify(Pooling),
    /// Per-step log-softmax for CTC decoding (`log_probs`, `[batch, time, classes]`, the
    /// blank first), as `torch.nn.functional.ctc_loss` takes them.
    Ctc,
}

/// Values of the graph that describe which steps are valid.
pub struct Steps<'a> {
    /// `[time, batch]` bool: step `t` of sequence `b` is within its length.
    pub valid: &'a str,
    /// `[batch]` int64 lengths.
    pub lengths: &'a str,
    /// `[]` int64: the batch size.
    pub batch: &'a str,
}

/// `y_t = W_y h_t + b` over `[time, batch, width]` → `[time, batch, classes]`.
pub fn output_layer(
    graph: &mut GraphBuilder,
    dict: &StateDict,
    hidden: &str,
    (width, classes): (usize, usize),
) -> Result<String, ExportError> {
    let w = weight(dict, "output.weight", &[classes, width])?;
    let b = weight(dict, "output.bias", &[classes])?;
    // PyTorch's [out, in] → MatMul's [in, out].
    let w_t: Vec<f32> = (0..width)
        .flat_map(|i| (0..classes).map(move |c| (i, c)))
        .map(|(i, c)| w[c * width + i])
        .collect();
    let w = graph.constant_f32("output.weight", &[width, classes], &w_t);
    let b = graph.constant_f32("output.bias", &[classes], &b);
    let product = graph.node("MatMul", &[hidden, &w], vec![]);
    Ok(graph.node("Add", &[&product, &b], vec![]))
}

/// `[time, batch, classes]` logits pooled over each sequence's valid steps → `[batch, classes]`.
pub fn pool(
    graph: &mut GraphBuilder,
    logits: &str,
    pooling: Pooling,
    steps: &Steps,
    classes: usize,
) -> String {
    match pooling {
        Pooling::Last => {
            // Row (length − 1)·batch + b of the [time·batch, classes] view.
            let one = graph.constant_i64("one", &[], &[1]);
            let last = graph.node("Sub", &[steps.lengths, &one], vec![]);
            let row_start = graph.node("Mul", &[&last, steps.batch], vec![]);
            let rows = add_batch_index(graph, &row_start, steps.batch);
            gather_steps(graph, logits, &rows, classes)
        }
        Pooling::Mean => {
            let mask = graph.node("Cast", &[steps.valid], vec![("to", Attribute::Int(1))]);
            let mask = unsqueeze(graph, &mask, 2);
            let masked = graph.node("Mul", &[logits, &mask], vec![]);
            let axis0 = graph.constant_i64("axis0", &[1], &[0]);
            let sum = graph.node(
                "ReduceSum",
                &[&masked, &axis0],
                vec![("keepdims", Attribute::Int(0))],
            );
            let lengths = graph.node("Cast", &[steps.lengths], vec![("to", Attribute::Int(1))]);
            let lengths = unsqueeze(graph, &lengths, 1);
            graph.node("Div", &[&sum, &lengths], vec![])
        }
        Pooling::Max => {
            let valid = unsqueeze(graph, steps.valid, 2);
            let floor = graph.constant_f32("minus_infinity", &[], &[f32::NEG_INFINITY]);
            let masked = graph.node("Where", &[&valid, logits, &floor], vec![]);
            graph.node(
                "ReduceMax",
                &[&masked],
                vec![
                    ("axes", Attribute::Ints(vec![0])),
                    ("keepdims", Attribute::Int(0)),
                ],
            )
        }
    }
}

/// `start + b` for each sequence `b`: `[batch]`, or `[time, batch]` when `start` is.
pub fn add_batch_index(graph: &mut GraphBuilder, start: &str, batch: &str) -> String {
    let b = count_to(graph, batch);
    graph.node("Add", &[start, &b], vec![])
}
