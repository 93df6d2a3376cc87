//! The int8 export, with the weights our int8 stack runs (`models::quantize_int8_rows`).
//! An LSTM's layers are onnxruntime's `com.microsoft.DynamicQuantizeLSTM`, which quantises
//! each step's input and state per tensor (uint8 with a zero point) where ours does so per
//! row (int8, symmetric); a GRU's or RNN's are `Scan`s of `MatMulInteger` steps that
//! quantise per row as ours does. Either way the file and ours agree to within the
//! quantisation noise, not to the last digit (a rounding that falls the other way moves a
//! value by a quantum): each case records ours at int8 and, as its tolerance, four times
//! the largest difference between ours at int8 and at f32 (a wrong layout or gate order
//! gives differences of the size of the outputs).
//! `tests/onnx/check_onnxruntime.py` runs the files that this test writes to
//! `$SPEECHRNN_ONNX_CASES`, and `scripts/tract-check` those in standard operators (tract has
//! no onnxruntime operators).

mod common;

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn_ndarray::NdArray;
use common::onnx_cases::{cases_folder, flat, ours, random, write_case};
use models::{CellKind, Nonlinearity, Precision, RecurrentState, SequenceClassifier};
use onnx::proto::ModelProto;
use onnx::proto::tensor_proto::DataType;
use serde_json::{Value, json};
use train::export::{ExportError, Form, Head, Network, Stack, model_proto};
use train::model::ModelConfig;

type B = NdArray;

const FEATURES: usize = 12;
const CLASSES: usize = 4;
const HIDDEN: usize = 16;

fn lstm(peephole: bool, coupled_input_forget: bool) -> CellKind {
    CellKind::Lstm {
        peephole,
        coupled_input_forget,
        unit_forget_bias: false,
        chrono_init: None,
    }
}

struct Case {
    name: &'static str,
    config: ModelConfig,
    head: Head,
}

/// Each LSTM, GRU and RNN variant, one and two layers, both directions.
fn cases() -> Vec<Case> {
    let case = |name, cell, num_layers, bidirectional, head| Case {
        name,
        config: ModelConfig {
            cell,
            hidden_size: HIDDEN,
            num_layers,
            bidirectional,
            dropout: 0.0,
        },
        head,
    };
    vec![
        case(
            "int8_lstm_2layer_bi_ctc",
            lstm(false, false),
            2,
            true,
            Head::Ctc,
        ),
        case(
            "int8_lstm_peephole_1layer_uni_mean",
            lstm(true, false),
            1,
            false,
            Head::Classify(models::Pooling::Mean),
        ),
        case(
            "int8_lstm_coupled_2layer_uni_last",
            lstm(false, true),
            2,
            false,
            Head::Classify(models::Pooling::Last),
        ),
        case(
            "int8_gru_2layer_bi_ctc",
            CellKind::Gru { reset_after: true },
            2,
            true,
            Head::Ctc,
        ),
        case(
            "int8_gru_reset_before_1layer_uni_mean",
            CellKind::Gru { reset_after: false },
            1,
            false,
            Head::Classify(models::Pooling::Mean),
        ),
        case(
            "int8_rnn_tanh_2layer_uni_last",
            CellKind::Rnn {
                nonlinearity: Nonlinearity::Tanh,
            },
            2,
            false,
            Head::Classify(models::Pooling::Last),
        ),
        case(
            "int8_rnn_relu_1layer_bi_mean",
            CellKind::Rnn {
                nonlinearity: Nonlinearity::Relu,
            },
            1,
            true,
            Head::Classify(models::Pooling::Mean),
        ),
    ]
}

impl Case {
    fn network(&self, precision: Precision) -> Network {
        Network {
            stack: Stack {
                precision,
                ..Stack::of(&self.config, FEATURES)
            },
            head: self.head,
            labels: (0..CLASSES).map(|c| format!("class{c}")).collect(),
            metadata: vec![],
            front_end: None,
        }
    }

    fn model(&self) -> SequenceClassifier<B> {
        self.config.init((FEATURES, CLASSES), &Default::default())
    }

    fn is_lstm(&self) -> bool {
        matches!(self.config.cell, CellKind::Lstm { .. })
    }

    fn state_shape(&self, batch: usize) -> [usize; 3] {
        let directions = if self.config.bidirectional { 2 } else { 1 };
        [self.config.num_layers * directions, batch, HIDDEN]
    }

    fn proto(&self, model: &SequenceClassifier<B>, form: Form) -> ModelProto {
        model_proto(&self.network(Precision::Int8), &model.state_dict(), form).unwrap()
    }
}

/// `expected` (ours at int8) with its tolerance: four times the largest difference between
/// ours at int8 and at f32, which must be there (the products are quantised) and small.
fn with_tolerance(int8: Vec<f32>, f32: &[f32]) -> (Vec<f32>, f32) {
    let noise = int8
        .iter()
        .zip(f32)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(noise > 0.0 && noise < 0.1, "int8 against f32: {noise}");
    (int8, 4.0 * noise)
}

/// A whole-sequence call: a ragged batch, from zero or random initial states.
fn run_record(
    case: &Case,
    model: &SequenceClassifier<B>,
    lengths: &[usize],
    with_state: bool,
) -> Value {
    let time = lengths.iter().copied().max().unwrap_or(0);
    let x = random([lengths.len(), time, FEATURES]);
    let shape = case.state_shape(lengths.len());
    let state = with_state.then(|| RecurrentState {
        hidden: random(shape),
        cell: case.is_lstm().then(|| random(shape)),
    });
    let at = |precision| {
        ours(
            model,
            case.head,
            x.clone(),
            (lengths, state.clone()),
            precision,
        )
    };
    let (expected, tolerance) = with_tolerance(at(Precision::Int8), &at(Precision::F32));
    json!({
        "features_shape": x.dims(),
        "features": flat(&x),
        "lengths": lengths,
        "state_shape": shape,
        "h_0": state.as_ref().map(|s| flat(&s.hidden)),
        "c_0": state.as_ref().and_then(|s| s.cell.as_ref().map(flat)),
        "expected": expected,
        "tolerance": tolerance,
    })
}

/// A step graph's run, fed one frame at a time from zero states: every step's output.
fn stream_record(case: &Case, model: &SequenceClassifier<B>, batch: usize, time: usize) -> Value {
    let x = random([batch, time, FEATURES]);
    let per_step = |precision| {
        let (hidden, _) = match precision {
            Precision::F32 => model.recurrent.forward(x.clone(), None, None),
            _ => model
                .recurrent
                .quantize(precision)
                .unwrap()
                .forward(x.clone(), None, None),
        };
        let logits = model.output.forward(hidden);
        flat(&match case.head {
            Head::Ctc => log_softmax(logits, 2),
            Head::Classify(_) => softmax(logits, 2),
        })
    };
    let (expected, tolerance) =
        with_tolerance(per_step(Precision::Int8), &per_step(Precision::F32));
    json!({
        "features_shape": x.dims(),
        "features": flat(&x),
        "state_shape": case.state_shape(batch),
        "expected": expected,
        "tolerance": tolerance,
    })
}

/// The file's recurrent layers are int8 and it says so: an LSTM's are
/// `DynamicQuantizeLSTM` nodes, a GRU's or RNN's `Scan`s of `MatMulInteger` steps in the
/// default domain; no float recurrent operator is left.
fn assert_int8_graph(case: &Case, decoded: &ModelProto) {
    let graph = &decoded.graph;
    let count = |op: &str| graph.node.iter().filter(|n| n.op_type() == op).count();
    let directions = if case.config.bidirectional { 2 } else { 1 };
    let layers = case.config.num_layers * directions;
    assert_eq!(
        count("LSTM") + count("GRU") + count("RNN"),
        0,
        "{}",
        case.name
    );
    let int8 = |tensors: &[onnx::proto::TensorProto]| {
        tensors
            .iter()
            .filter(|t| t.data_type() == DataType::INT8 as i32)
            .count()
    };
    let microsoft = decoded
        .opset_import
        .iter()
        .any(|o| o.domain() == "com.microsoft" && o.version() == 1);
    if case.is_lstm() {
        assert_eq!(count("DynamicQuantizeLSTM"), layers, "{}", case.name);
        // W, R and their zero points per layer and direction.
        assert_eq!(int8(&graph.initializer), 4 * layers, "{}", case.name);
        assert!(microsoft, "{}", case.name);
    } else {
        assert_eq!(count("Scan"), layers, "{}", case.name);
        // The input projections before the scans, W int8.
        assert_eq!(count("MatMulInteger"), layers, "{}", case.name);
        assert_eq!(int8(&graph.initializer), layers, "{}", case.name);
        let reset_before = case.config.cell == CellKind::Gru { reset_after: false };
        for scan in graph.node.iter().filter(|n| n.op_type() == "Scan") {
            let body = scan.attribute[0].g.as_ref().expect("a Scan has its body");
            let products = body.node.iter().filter(|n| n.op_type() == "MatMulInteger");
            // h·W_hhᵀ, and the reset-before GRU's (r ⊙ h)·W_hnᵀ.
            let expected = if reset_before { 2 } else { 1 };
            assert_eq!(products.count(), expected, "{}", case.name);
            assert_eq!(int8(&body.initializer), expected, "{}", case.name);
        }
        assert!(
            !microsoft && decoded.opset_import.len() == 1,
            "{}",
            case.name
        );
    }
    let precision = decoded
        .metadata_props
        .iter()
        .find(|p| p.key() == "precision");
    assert_eq!(precision.map(|p| p.value()), Some("int8"));
}

/// Bytes of a graph's float and int8 initializers, its subgraphs' included.
fn weight_bytes(graph: &onnx::proto::GraphProto) -> usize {
    let own: usize = graph
        .initializer
        .iter()
        .filter(|t| t.data_type() != DataType::INT64 as i32)
        .map(|t| 4 * t.float_data.len() + t.raw_data().len())
        .sum();
    let nested: usize = graph
        .node
        .iter()
        .flat_map(|n| &n.attribute)
        .filter_map(|a| a.g.as_ref())
        .map(weight_bytes)
        .sum();
    own + nested
}

#[test]
fn int8_graphs_of_every_cell() {
    B::seed(&Default::default(), 21);
    let (dir, _keep) = cases_folder();
    for case in cases() {
        let model = case.model();
        let proto = case.proto(&model, Form::Sequences);
        let runs = vec![
            run_record(&case, &model, &[40, 23, 1], false),
            run_record(&case, &model, &[40, 23, 1], true),
        ];
        let output = if case.head == Head::Ctc {
            "log_probs"
        } else {
            "probabilities"
        };
        let record = json!({ "form": "sequences", "output": output, "ctc": case.head == Head::Ctc, "runs": runs });
        let decoded = write_case(&dir, case.name, &proto, record);
        assert_int8_graph(&case, &decoded);
        let f32_proto = model_proto(
            &case.network(Precision::F32),
            &model.state_dict(),
            Form::Sequences,
        )
        .unwrap();
        let (f32_bytes, int8_bytes) = (weight_bytes(&f32_proto.graph), weight_bytes(&proto.graph));
        // Int8 values and a float scale per unit (biases and the output layer stay f32):
        // under half the float weights here.
        assert!(
            2 * int8_bytes < f32_bytes,
            "{}: {int8_bytes} of {f32_bytes} bytes",
            case.name
        );
    }
}

#[test]
fn int8_step_graphs_of_unidirectional_stacks() {
    B::seed(&Default::default(), 22);
    let (dir, _keep) = cases_folder();
    for case in cases().into_iter().filter(|c| !c.config.bidirectional) {
        let model = case.model();
        let proto = case.proto(&model, Form::Streaming);
        let output = if case.head == Head::Ctc {
            "log_probs"
        } else {
            "probabilities"
        };
        let record = json!({
            "form": "streaming",
            "output": output,
            "ctc": case.head == Head::Ctc,
            "lstm": case.is_lstm(),
            "runs": [stream_record(&case, &model, 2, 30)],
        });
        let decoded = write_case(&dir, &format!("step_{}", case.name), &proto, record);
        assert_int8_graph(&case, &decoded);
    }
}

/// Sets value `index` of the weight `key` in `dict`.
fn set_weight_value(dict: &mut models::StateDict, key: &str, index: usize, value: f32) {
    let weight = dict.get(key).unwrap().clone();
    let mut values = weight.to_vec::<f32>().unwrap();
    values[index] = value;
    dict.insert(
        key.to_string(),
        burn::tensor::TensorData::new(values, weight.shape.clone()),
    );
}

#[test]
fn bf16_is_refused_and_non_finite_weights_are_named() {
    let lstm = &cases()[0];
    let mut dict = lstm.model().state_dict();
    let err = model_proto(&lstm.network(Precision::Bf16), &dict, Form::Sequences).unwrap_err();
    assert!(
        matches!(err, ExportError::Unsupported(_)) && err.to_string().contains("bf16"),
        "{err}"
    );
    let key = "recurrent.weight_hh_l1_reverse";
    set_weight_value(&mut dict, key, 5, f32::INFINITY);
    let err = model_proto(&lstm.network(Precision::Int8), &dict, Form::Sequences).unwrap_err();
    assert!(
        matches!(err, ExportError::Quantize(_)) && err.to_string().contains(key),
        "{err}"
    );
    // At f32 the same weights export: only quantising needs them finite.
    assert!(model_proto(&lstm.network(Precision::F32), &dict, Form::Sequences).is_ok());
    // The same for a GRU's recurrent weights, which its scan's body holds.
    let gru = &cases()[3];
    let mut dict = gru.model().state_dict();
    let key = "recurrent.weight_hh_l0";
    set_weight_value(&mut dict, key, 0, f32::NAN);
    let err = model_proto(&gru.network(Precision::Int8), &dict, Form::Sequences).unwrap_err();
    assert!(
        matches!(err, ExportError::Quantize(_)) && err.to_string().contains(key),
        "{err}"
    );
}
