//! An int8 GRU or RNN layer in standard ONNX operators, for the cells that have no
//! quantised operator in ONNX or onnxruntime: a `Scan` over the steps whose body quantises
//! the state as our int8 stack does ([`models::Precision::Int8`]: per row, `t = max |h| /
//! 127`, values rounded to the nearest even integer and clamped to ±127), multiplies it by
//! the int8 weights with `MatMulInteger` (exact `int32` sums), rescales the sums by `t · s_j`
//! and runs the gates in float. The input projection of every step runs before the scan,
//! its rows quantised the same way.

use models::CellKind;
use onnx::proto::tensor_proto::DataType;
use onnx::{Attribute, Dim, ElemType, GraphBuilder};

use super::ExportError;
use super::ops::unsqueeze;
use super::recurrent::{activation, int8_transposed};

/// A layer-direction's weights in PyTorch's gate order and layout.
pub(super) struct LayerWeights {
    /// `weight_ih`, `[G·H, D]`.
    pub w_ih: Vec<f32>,
    /// `weight_hh`, `[G·H, H]`.
    pub w_hh: Vec<f32>,
    /// `bias_ih` and `bias_hh`, `[G·H]` each.
    pub b_ih: Vec<f32>,
    pub b_hh: Vec<f32>,
}

/// Where a layer-direction's values come from and how its names end (`_l1_reverse`).
pub(super) struct Layer<'a> {
    pub cell: &'a CellKind,
    pub hidden: usize,
    pub input_size: usize,
    pub weights: LayerWeights,
    /// The state dict's names of `weight_ih` and `weight_hh` (named if one is not finite).
    pub keys: [String; 2],
    pub suffix: String,
}

/// An int8 weight as the product's right operand: `[k, n]` values (the weight transposed)
/// and a scale per column (per unit), `[1, n]`.
struct Int8Columns {
    values: String,
    scales: String,
}

impl Layer<'_> {
    /// The layer over `x` (`[time, batch, input]`) from `h0` (`[1, batch, hidden]`, or
    /// zeros): its output `[time, batch, hidden]` and final `h` `[1, batch, hidden]`.
    pub(super) fn lower(
        &self,
        graph: &mut GraphBuilder,
        x: &str,
        h0: Option<String>,
    ) -> Result<(String, String), ExportError> {
        let hidden = self.hidden;
        let name = |part: &str| format!("{part}{}", self.suffix);
        let rows = self.weights.b_ih.len();
        let w = int8_columns(
            graph,
            &self.keys[0],
            &self.weights.w_ih,
            (0..rows, self.input_size),
            &name("W"),
        )?;
        let b_ih = graph.constant_f32(&name("B_ih"), &[rows], &self.weights.b_ih);
        let projected = quantised_product(graph, x, &w, &b_ih);
        let h0 = match h0 {
            Some(h0) => {
                let axes = graph.constant_i64("axis0", &[1], &[0]);
                graph.node("Squeeze", &[&h0, &axes], vec![])
            }
            None => zero_state(graph, x, hidden),
        };
        let mut built = Ok(());
        let body = graph.subgraph(&name("step"), |body| built = self.step_body(body, rows));
        built?;
        let outputs = graph.nodes(
            "Scan",
            &[&h0, &projected],
            2,
            vec![
                ("body", Attribute::Graph(Box::new(body))),
                ("num_scan_inputs", Attribute::Int(1)),
            ],
        );
        let h_n = unsqueeze(graph, &outputs[0], 0);
        Ok((outputs[1].clone(), h_n))
    }

    /// One step: `h` and the step's projected input in, the next `h` out twice (the state
    /// the scan carries and the step's output).
    fn step_body(&self, body: &mut GraphBuilder, rows: usize) -> Result<(), ExportError> {
        let hidden = self.hidden;
        let name = |part: &str| format!("{part}{}", self.suffix);
        let (h, xp) = (name("h_prev"), name("projected_t"));
        let batch = || Dim::Inferred;
        body.input(&h, ElemType::Float, &[batch(), Dim::Fixed(hidden)]);
        body.input(&xp, ElemType::Float, &[batch(), Dim::Fixed(rows)]);
        let columns = |body: &mut GraphBuilder, blocks: std::ops::Range<usize>, part: &str| {
            let rows = blocks.start * hidden..blocks.end * hidden;
            int8_columns(
                body,
                &self.keys[1],
                &self.weights.w_hh,
                (rows, hidden),
                &name(part),
            )
        };
        let bias = |body: &mut GraphBuilder, blocks: std::ops::Range<usize>, part: &str| {
            let values = &self.weights.b_hh[blocks.start * hidden..blocks.end * hidden];
            body.constant_f32(&name(part), &[values.len()], values)
        };
        let next = match *self.cell {
            CellKind::Rnn { nonlinearity } => {
                let (r, b) = (columns(body, 0..1, "R")?, bias(body, 0..1, "B_hh"));
                let recurrent = quantised_product(body, &h, &r, &b);
                let sum = body.node("Add", &[&xp, &recurrent], vec![]);
                body.node(activation(nonlinearity), &[&sum], vec![])
            }
            CellKind::Gru { reset_after } => {
                let x = split(body, &xp, 3);
                let (gates, candidate) = if reset_after {
                    let (r, b) = (columns(body, 0..3, "R")?, bias(body, 0..3, "B_hh"));
                    let recurrent = quantised_product(body, &h, &r, &b);
                    let mut parts = split(body, &recurrent, 3);
                    let candidate = parts.pop().expect("three blocks");
                    (parts, Candidate::ResetAfter(candidate))
                } else {
                    let (r, b) = (columns(body, 0..2, "R_rz")?, bias(body, 0..2, "B_hh_rz"));
                    let recurrent = quantised_product(body, &h, &r, &b);
                    let r_n = columns(body, 2..3, "R_n")?;
                    let b_n = bias(body, 2..3, "B_hh_n");
                    (split(body, &recurrent, 2), Candidate::ResetBefore(r_n, b_n))
                };
                let gate = |body: &mut GraphBuilder, k: usize| {
                    let sum = body.node("Add", &[&x[k], &gates[k]], vec![]);
                    body.node("Sigmoid", &[&sum], vec![])
                };
                let (reset, update) = (gate(body, 0), gate(body, 1));
                let recurrent_n = match candidate {
                    Candidate::ResetAfter(h_n) => body.node("Mul", &[&reset, &h_n], vec![]),
                    Candidate::ResetBefore(r_n, b_n) => {
                        let reset_h = body.node("Mul", &[&reset, &h], vec![]);
                        quantised_product(body, &reset_h, &r_n, &b_n)
                    }
                };
                let sum = body.node("Add", &[&x[2], &recurrent_n], vec![]);
                let n = body.node("Tanh", &[&sum], vec![]);
                // h' = n + z ⊙ (h − n), as the kernels write it.
                let gap = body.node("Sub", &[&h, &n], vec![]);
                let kept = body.node("Mul", &[&update, &gap], vec![]);
                body.node("Add", &[&n, &kept], vec![])
            }
            CellKind::Lstm { .. } => {
                unreachable!("an int8 LSTM is onnxruntime's DynamicQuantizeLSTM")
            }
        };
        let dims = [batch(), Dim::Fixed(hidden)];
        body.output_from(&next, &name("h_next"), ElemType::Float, &dims);
        body.output_from(&next, &name("y_t"), ElemType::Float, &dims);
        Ok(())
    }
}

/// The GRU candidate's recurrent term: `r ⊙ (h·W_hnᵀ + b_hn)` from that product, or
/// `(r ⊙ h)·W_hnᵀ + b_hn` with these weights.
enum Candidate {
    ResetAfter(String),
    ResetBefore(Int8Columns, String),
}

/// Rows `rows` of `w` (`[·, cols]`, row-major) quantised per row as our int8 stack does,
/// stored transposed (`[cols, rows]`) with their scales.
fn int8_columns(
    graph: &mut GraphBuilder,
    key: &str,
    w: &[f32],
    (rows, cols): (std::ops::Range<usize>, usize),
    name: &str,
) -> Result<Int8Columns, ExportError> {
    let n = rows.len();
    let (transposed, scales) = int8_transposed(key, &w[rows.start * cols..rows.end * cols], cols)?;
    Ok(Int8Columns {
        values: graph.constant_i8(name, &[cols, n], &transposed),
        scales: graph.constant_f32(&format!("{name}_scale"), &[1, n], &scales),
    })
}

/// `bias + a·W` with each row of `a` (the last axis) quantised to int8 by its own scale:
/// `bias_j + Σ_i qa_i q_ij · (t · s_j)`, the integer sum exact.
fn quantised_product(graph: &mut GraphBuilder, a: &str, w: &Int8Columns, bias: &str) -> String {
    let qmax = graph.constant_f32("qmax", &[], &[127.0]);
    let qmin = graph.constant_f32("qmin", &[], &[-127.0]);
    let zero = graph.constant_f32("zero", &[], &[0.0]);
    let magnitude = graph.node("Abs", &[a], vec![]);
    let largest = graph.node(
        "ReduceMax",
        &[&magnitude],
        vec![
            ("axes", Attribute::Ints(vec![-1])),
            ("keepdims", Attribute::Int(1)),
        ],
    );
    let scale = graph.node("Div", &[&largest, &qmax], vec![]);
    // `127 / largest`, and 0 for a row of zeros (whose values are then all 0).
    let positive = graph.node("Greater", &[&largest, &zero], vec![]);
    let inverse = graph.node("Div", &[&qmax, &largest], vec![]);
    let inverse = graph.node("Where", &[&positive, &inverse, &zero], vec![]);
    let scaled = graph.node("Mul", &[a, &inverse], vec![]);
    let rounded = graph.node("Round", &[&scaled], vec![]);
    let clamped = graph.node("Clip", &[&rounded, &qmin, &qmax], vec![]);
    let int8 = Attribute::Int(DataType::INT8 as i64);
    let quantised = graph.node("Cast", &[&clamped], vec![("to", int8)]);
    let sums = graph.node("MatMulInteger", &[&quantised, &w.values], vec![]);
    let float = Attribute::Int(DataType::FLOAT as i64);
    let sums = graph.node("Cast", &[&sums], vec![("to", float)]);
    // `t · s_j` as an outer product, `[.., 1]·[1, n]` (one rounding, as `Mul` gives): with a
    // `Mul` here onnxruntime 1.23 fuses MatMulInteger → Cast → Mul into its
    // `MatMulIntegerToFloat`, which takes one scale per tensor for `a` and reads ours wrong.
    let factor = graph.node("MatMul", &[&scale, &w.scales], vec![]);
    let product = graph.node("Mul", &[&sums, &factor], vec![]);
    graph.node("Add", &[bias, &product], vec![])
}

/// `x` split into `parts` equal blocks along its last axis.
fn split(graph: &mut GraphBuilder, x: &str, parts: usize) -> Vec<String> {
    graph.nodes("Split", &[x], parts, vec![("axis", Attribute::Int(-1))])
}

/// Zeros `[batch, hidden]`, the batch read off `x` (`[time, batch, ·]`).
fn zero_state(graph: &mut GraphBuilder, x: &str, hidden: usize) -> String {
    let shape = graph.node("Shape", &[x], vec![]);
    let start = graph.constant_i64("start", &[1], &[1]);
    let end = graph.constant_i64("end", &[1], &[2]);
    let batch = graph.node("Slice", &[&shape, &start, &end], vec![]);
    let width = graph.constant_i64("hidden", &[1], &[hidden as i64]);
    let dims = graph.node(
        "Concat",
        &[&batch, &width],
        vec![("axis", Attribute::Int(0))],
    );
    graph.node("ConstantOfShape", &[&dims], vec![])
}
