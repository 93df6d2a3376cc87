//! The recurrent stack in ONNX operators: one native `RNN`, `LSTM` or `GRU` node per layer
//! and direction, with the weights converted from PyTorch's gate order to ONNX's.

use models::{CellKind, Nonlinearity, Precision, StateDict};
use onnx::{Attribute, GraphBuilder};

use super::{ExportError, int8_scan};

/// The stack's shape, as the run's configuration gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The cell and its options.
    pub cell: CellKind,
    /// Features per step.
    pub input_size: usize,
    /// Hidden units per layer and direction.
    pub hidden_size: usize,
    /// Layers.
    pub num_layers: usize,
    /// Whether each layer also reads the sequence backwards.
    pub bidirectional: bool,
    /// The weights' format: f32 (ONNX's own operators) or int8, quantised as
    /// [`Precision::Int8`] quantises them: an LSTM as onnxruntime's
    /// `com.microsoft.DynamicQuantizeLSTM`, a GRU or RNN as a `Scan` of `MatMulInteger`
    /// steps in standard operators (`int8_scan`).
    pub precision: Precision,
}

impl Stack {
    /// 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Width of the last layer's output.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// Refuses a precision ONNX has no operators for.
    pub(super) fn check_precision(&self) -> Result<(), ExportError> {
        match self.precision {
            Precision::F32 | Precision::Int8 => Ok(()),
            Precision::Bf16 => Err(ExportError::Unsupported(
                "bf16 weights: ONNX's recurrent operators and onnxruntime's CPU kernels take \
                 float32; export at f32 or int8"
                    .into(),
            )),
        }
    }
}

/// Graph values the stack reads besides its input: the per-step reversal used by the
/// backward direction, and the initial states.
pub struct StackInputs<'a> {
    /// `[time, batch]` int64: row index into `[time·batch, width]` of the step each backward
    /// step reads (each sequence reversed within its own length). Bidirectional stacks only.
    pub reversal: Option<&'a str>,
    /// `[layers·directions, batch, hidden]` initial `h`, or `None` for zeros.
    pub initial_h: Option<&'a str>,
    /// The same for the LSTM's `c`.
    pub initial_c: Option<&'a str>,
}

/// What the stack produced: `[time, batch, output_size]` and, per cell, the final states
/// `[layers·directions, batch, hidden]` (the state after the last step of the tensor, which
/// is each sequence's own final state only when no sequence is padded).
pub struct StackOutputs {
    /// The last layer's per-step output.
    pub y: String,
    /// Final `h` of every layer and direction, in PyTorch's order.
    pub h: String,
    /// Final `c` (LSTM only).
    pub c: Option<String>,
}

/// PyTorch's gate blocks → ONNX's: LSTM i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h.
fn onnx_block_order(cell: &CellKind) -> &'static [usize] {
    match cell {
        CellKind::Rnn { .. } => &[0],
        CellKind::Lstm { .. } => &[0, 3, 1, 2],
        CellKind::Gru { .. } => &[1, 0, 2],
    }
}

fn op_type(cell: &CellKind) -> &'static str {
    match cell {
        CellKind::Rnn { .. } => "RNN",
        CellKind::Lstm { .. } => "LSTM",
        CellKind::Gru { .. } => "GRU",
    }
}

fn attributes(cell: &CellKind, hidden: usize) -> Vec<(&'static str, Attribute)> {
    let mut attrs = vec![
        ("hidden_size", Attribute::Int(hidden as i64)),
        ("direction", Attribute::String("forward".into())),
    ];
    match cell {
        CellKind::Rnn { nonlinearity } => {
            let name = activation(*nonlinearity);
            attrs.push(("activations", Attribute::Strings(vec![name.into()])));
        }
        CellKind::Lstm {
            coupled_input_forget,
            ..
        } => attrs.push(("input_forget", Attribute::Int(*coupled_input_forget as i64))),
        CellKind::Gru { reset_after } => {
            attrs.push(("linear_before_reset", Attribute::Int(*reset_after as i64)))
        }
    }
    attrs
}

/// The ONNX operator (and `RNN` activation name) of an RNN's nonlinearity.
pub(super) fn activation(nonlinearity: Nonlinearity) -> &'static str {
    match nonlinearity {
        Nonlinearity::Tanh => "Tanh",
        Nonlinearity::Relu => "Relu",
        Nonlinearity::Sigmoid => "Sigmoid",
    }
}

/// `w` (`[rows, cols]` row-major) quantised per row as our int8 stack does, its values
/// transposed to `[cols, rows]` (the layout both int8 forms of the export read), and its
/// per-row scales.
pub(super) fn int8_transposed(
    key: &str,
    w: &[f32],
    cols: usize,
) -> Result<(Vec<i8>, Vec<f32>), ExportError> {
    let quantised = models::quantize_int8_rows(key, w, cols)?;
    let rows = quantised.scales.len();
    let transposed = (0..rows * cols)
        .map(|at| quantised.values[(at % rows) * cols + at / rows])
        .collect();
    Ok((transposed, quantised.scales))
}

/// A weight of `dict` as f32 values, checked against the expected shape.
pub(super) fn weight(
    dict: &StateDict,
    key: &str,
    shape: &[usize],
) -> Result<Vec<f32>, ExportError> {
    let data = dict
        .get(key)
        .ok_or_else(|| ExportError::MissingWeight(key.to_string()))?;
    if data.shape.as_slice() != shape {
        return Err(ExportError::WeightShape {
            key: key.to_string(),
            expected: shape.to_vec(),
            got: data.shape.to_vec(),
        });
    }
    data.to_vec::<f32>()
        .map_err(|e| ExportError::WeightType(key.to_string(), format!("{e:?}")))
}

/// `values` split into `order.len()` equal row blocks, put back in `order`.
fn reorder_blocks(values: &[f32], order: &[usize]) -> Vec<f32> {
    let block = values.len() / order.len();
    order
        .iter()
        .flat_map(|&k| &values[k * block..(k + 1) * block])
        .copied()
        .collect()
}

impl Stack {
    /// Appends the stack to `graph`, reading `x` (`[time, batch, input_size]`, float).
    pub fn lower(
        &self,
        graph: &mut GraphBuilder,
        dict: &StateDict,
        x: &str,
        inputs: &StackInputs,
    ) -> Result<StackOutputs, ExportError> {
        let mut layer_input = x.to_string();
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        for layer in 0..self.num_layers {
            let mut outputs = Vec::new();
            for direction in 0..self.directions() {
                let index = layer * self.directions() + direction;
                let state = |all: Option<&str>, g: &mut GraphBuilder| {
                    all.map(|s| slice_first_axis(g, s, index))
                };
                let h0 = state(inputs.initial_h, graph);
                let c0 = state(inputs.initial_c, graph);
                let width = if layer == 0 {
                    self.input_size
                } else {
                    self.output_size()
                };
                let reversal = (direction == 1).then_some(inputs.reversal).flatten();
                let input = match reversal {
                    Some(r) => gather_steps(graph, &layer_input, r, width),
                    None => layer_input.clone(),
                };
                let (y, h, c) =
                    self.cell_node(graph, dict, (layer, direction), &input, width, (h0, c0))?;
                let y = match reversal {
                    Some(r) => gather_steps(graph, &y, r, self.hidden_size),
                    None => y,
                };
                outputs.push(y);
                hs.push(h);
                cs.extend(c);
            }
            layer_input = concat(graph, &outputs, 2);
        }
        Ok(StackOutputs {
            y: layer_input,
            h: concat(graph, &hs, 0),
            c: (!cs.is_empty()).then(|| concat(graph, &cs, 0)),
        })
    }

    /// One layer and direction as a forward-running ONNX node: `[time, batch, hidden]` and
    /// its final `h` (and `c`), `[1, batch, hidden]`.
    fn cell_node(
        &self,
        graph: &mut GraphBuilder,
        dict: &StateDict,
        (layer, direction): (usize, usize),
        x: &str,
        input_size: usize,
        (h0, c0): (Option<String>, Option<String>),
    ) -> Result<(String, String, Option<String>), ExportError> {
        let suffix = format!("_l{layer}{}", if direction == 1 { "_reverse" } else { "" });
        let key = |name: &str| format!("recurrent.{name}{suffix}");
        let (hidden, order) = (self.hidden_size, onnx_block_order(&self.cell));
        let rows = order.len() * hidden;
        let weights = int8_scan::LayerWeights {
            w_ih: weight(dict, &key("weight_ih"), &[rows, input_size])?,
            w_hh: weight(dict, &key("weight_hh"), &[rows, hidden])?,
            b_ih: weight(dict, &key("bias_ih"), &[rows])?,
            b_hh: weight(dict, &key("bias_hh"), &[rows])?,
        };
        let lstm = matches!(self.cell, CellKind::Lstm { .. });
        if self.precision == Precision::Int8 && !lstm {
            let layer = int8_scan::Layer {
                cell: &self.cell,
                hidden,
                input_size,
                weights,
                keys: [key("weight_ih"), key("weight_hh")],
                suffix,
            };
            let (y, h) = layer.lower(graph, x, h0)?;
            return Ok((y, h, None));
        }
        let w = reorder_blocks(&weights.w_ih, order);
        let r = reorder_blocks(&weights.w_hh, order);
        let mut b = reorder_blocks(&weights.b_ih, order);
        b.extend(reorder_blocks(&weights.b_hh, order));
        let name = |part: &str| format!("{part}{suffix}");
        // At int8 the quantised values and, for `DynamicQuantizeLSTM`, their scales and
        // zero points.
        let (w, r, quantisation) = match self.precision {
            Precision::Int8 => {
                let w = int8_weight(graph, &key("weight_ih"), &w, (rows, input_size), &name("W"))?;
                let r = int8_weight(graph, &key("weight_hh"), &r, (rows, hidden), &name("R"))?;
                let scales = [w.scales, w.zero_points, r.scales, r.zero_points];
                (w.values, r.values, Some(scales))
            }
            _ => (
                graph.constant_f32(&name("W"), &[1, rows, input_size], &w),
                graph.constant_f32(&name("R"), &[1, rows, hidden], &r),
                None,
            ),
        };
        let b = graph.constant_f32(&name("B"), &[1, 2 * rows], &b);
        let peephole = match self.cell {
            CellKind::Lstm { peephole: true, .. } => {
                // Ours: i, f, o. ONNX: i, o, f.
                let p = weight(dict, &key("weight_peephole"), &[3 * hidden])?;
                let p = reorder_blocks(&p, &[0, 2, 1]);
                graph.constant_f32(&name("P"), &[1, 3 * hidden], &p)
            }
            _ => String::new(),
        };
        let (h0, c0) = (h0.unwrap_or_default(), c0.unwrap_or_default());
        let mut node_inputs = vec![x, &w, &r, &b, "", &h0];
        if lstm {
            node_inputs.extend([c0.as_str(), &peephole]);
        }
        let outputs = if lstm { 3 } else { 2 };
        let attributes = attributes(&self.cell, hidden);
        let mut out = match &quantisation {
            Some(scales) => {
                node_inputs.extend(scales.iter().map(String::as_str));
                graph.domain_nodes(
                    MICROSOFT,
                    "DynamicQuantizeLSTM",
                    &node_inputs,
                    outputs,
                    attributes,
                )
            }
            None => {
                while node_inputs.last().is_some_and(|input| input.is_empty()) {
                    node_inputs.pop();
                }
                graph.nodes(op_type(&self.cell), &node_inputs, outputs, attributes)
            }
        };
        // Y is [time, directions = 1, batch, hidden].
        let axes = graph.constant_i64("axis1", &[1], &[1]);
        let y = graph.node("Squeeze", &[&out[0], &axes], vec![]);
        let c = lstm.then(|| out.remove(2));
        Ok((y, out.remove(1), c))
    }
}

/// onnxruntime's operator domain.
const MICROSOFT: &str = "com.microsoft";

/// A weight's int8 initializers for `DynamicQuantizeLSTM`: the values `[1, cols, rows]`
/// (ONNX's `W`/`R` transposed), and per row a scale and a zero point (0: symmetric).
struct Int8Weight {
    values: String,
    scales: String,
    zero_points: String,
}

/// `w` (`[rows, cols]`, ONNX's gate order) quantised per row as our int8 stack does.
fn int8_weight(
    graph: &mut GraphBuilder,
    key: &str,
    w: &[f32],
    (rows, cols): (usize, usize),
    name: &str,
) -> Result<Int8Weight, ExportError> {
    let (transposed, scales) = int8_transposed(key, w, cols)?;
    Ok(Int8Weight {
        values: graph.constant_i8(name, &[1, cols, rows], &transposed),
        scales: graph.constant_f32(&format!("{name}_scale"), &[1, rows], &scales),
        zero_points: graph.constant_i8(&format!("{name}_zero_point"), &[1, rows], &vec![0; rows]),
    })
}

/// `[index:index+1]` of the first axis.
fn slice_first_axis(graph: &mut GraphBuilder, x: &str, index: usize) -> String {
    let start = graph.constant_i64("start", &[1], &[index as i64]);
    let end = graph.constant_i64("end", &[1], &[index as i64 + 1]);
    let axes = graph.constant_i64("axis0", &[1], &[0]);
    graph.node("Slice", &[x, &start, &end, &axes], vec![])
}

/// `[time, batch, width]` with the steps of each sequence taken at `rows` (`[time, batch]`
/// indices into the `[time·batch, width]` view).
pub(super) fn gather_steps(graph: &mut GraphBuilder, x: &str, rows: &str, width: usize) -> String {
    let shape = graph.constant_i64("rows_by_width", &[2], &[-1, width as i64]);
    let flat = graph.node("Reshape", &[x, &shape], vec![]);
    graph.node("Gather", &[&flat, rows], vec![("axis", Attribute::Int(0))])
}

fn concat(graph: &mut GraphBuilder, parts: &[String], axis: i64) -> String {
    if parts.len() == 1 {
        return parts[0].clone();
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    graph.node("Concat", &refs, vec![("axis", Attribute::Int(axis))])
}
