//! A finished run as one ONNX file (`experiment export`): features in, probabilities out,
//! runnable in onnxruntime, tract or any other ONNX runtime.
//!
//! Each layer and direction becomes the native `RNN`, `LSTM` or `GRU` operator (opset 17)
//! with the gates converted to ONNX's order, followed by `y_t = W_y h_t + b` and the run's
//! head: pooling over the valid steps and a softmax (`probabilities`), or per-step
//! log-probabilities for CTC (`log_probs`). The class names and the feature settings are in
//! the model's metadata. At int8 ([`ExportOptions::precision`]) an LSTM's layers are
//! onnxruntime's `DynamicQuantizeLSTM` and a GRU's or RNN's a `Scan` of `MatMulInteger`
//! steps (`int8_scan`).
//!
//! ```
//! use models::{CellKind, Pooling, SequenceClassifier};
//! use train::export::{Form, Head, Network, Stack, model_proto};
//! use train::model::ModelConfig;
//!
//! type B = burn_ndarray::NdArray;
//! let config = ModelConfig { cell: CellKind::gru(), hidden_size: 8, num_layers: 2,
//!                            bidirectional: true, dropout: 0.0 };
//! let model: SequenceClassifier<B> = config.init((13, 3), &Default::default());
//! let network = Network {
//!     stack: Stack::of(&config, 13),
//!     head: Head::Classify(Pooling::Mean),
//!     labels: vec!["yes".into(), "no".into(), "up".into()],
//!     metadata: vec![],
//!     front_end: None,
//! };
//! let onnx = model_proto(&network, &model.state_dict(), Form::Sequences).unwrap();
//! assert_eq!(onnx.graph.output[0].name.as_deref(), Some("probabilities"));
//! ```

mod frontend;
mod head;
mod int8_scan;
mod ops;
mod recurrent;

use std::path::{Path, PathBuf};

use burn_ndarray::NdArray;
use models::StateDict;
use onnx::proto::ModelProto;
use onnx::{Attribute, Dim, ElemType, GraphBuilder};

pub use frontend::FrontEnd;
pub use head::Head;
pub use recurrent::Stack;

use crate::data::audio::LabelKind;
use crate::inference::{InferenceError, Recogniser};
use crate::model::ModelConfig;
use ops::{axis_size, count_to, unsqueeze};

/// The default-domain opset written: 17 has `STFT`/`DFT` and takes `Squeeze`,
/// `Unsqueeze` and `ReduceSum` axes as inputs.
pub const OPSET: i64 = 17;

/// Why a run could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run could not be loaded (configuration, class names or checkpoint).
    #[error("cannot load the run: {0}")]
    Load(#[from] InferenceError),
    /// The step graph carries state forward, which a backward direction cannot do.
    #[error(
        "--streaming needs a unidirectional run: this one is bidirectional, so each step \
         depends on the whole sequence's future"
    )]
    StreamingNeedsCausal,
    /// A weight the configuration implies is not in the model.
    #[error("the model has no weight {0:?}")]
    MissingWeight(String),
    /// A weight of another shape than the configuration implies.
    #[error("weight {key}: expected shape {expected:?}, got {got:?}")]
    WeightShape {
        /// The weight.
        key: String,
        /// What the configuration implies.
        expected: Vec<usize>,
        /// What the model holds.
        got: Vec<usize>,
    },
    /// A setting the exporter does not express in ONNX operators (yet).
    #[error("cannot export {0}")]
    Unsupported(String),
    /// A weight that cannot be quantised (NaN or infinite), named.
    #[error("cannot quantise the weights: {0}")]
    Quantize(#[from] models::QuantizeError),
    /// A weight that is not float32.
    #[error("weight {0}: not float32 ({1})")]
    WeightType(String, String),
    /// The model could not be encoded.
    #[error(transparent)]
    Encode(#[from] onnx::OnnxError),
    /// The file could not be written (written to a temporary file beside it and renamed,
    /// so nothing is left half written).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Stack {
    /// The stack a run's model configuration describes, reading `input_size` features.
    pub fn of(config: &ModelConfig, input_size: usize) -> Self {
        Stack {
            cell: config.cell.clone(),
            input_size,
            hidden_size: config.hidden_size,
            num_layers: config.num_layers,
            bidirectional: config.bidirectional,
            precision: models::Precision::F32,
        }
    }
}

/// Everything the graph is built from, besides the weights.
#[derive(Debug, Clone)]
pub struct Network {
    /// The recurrent layers.
    pub stack: Stack,
    /// What follows the output layer.
    pub head: Head,
    /// Class names in output order (the CTC blank first).
    pub labels: Vec<String>,
    /// Extra `metadata_props` (key, value), e.g. the feature settings.
    pub metadata: Vec<(String, String)>,
    /// The feature front end, when the graph takes audio (`--waveform`).
    pub front_end: Option<FrontEnd>,
}

/// Which graph to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Whole sequences: `features` `[batch, time, features]` and `lengths` `[batch]` (int64)
    /// in, padded batches allowed; optional initial states `h_0` (and `c_0`),
    /// `[layers·directions, batch, hidden]`, zeros when not given.
    Sequences,
    /// One chunk of a stream (unidirectional runs): `features` `[batch, time, features]`
    /// and the states `h_0` (and `c_0`) in; every step's output and the states after the
    /// chunk, `h_n` (and `c_n`), out, to feed to the next chunk.
    Streaming,
}

/// What [`export_run`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Exported {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The graph's input names.
    pub inputs: Vec<String>,
    /// The graph's output names.
    pub outputs: Vec<String>,
}

/// How [`export_run`] writes a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// The step graph ([`Form::Streaming`]) instead of whole sequences.
    pub streaming: bool,
    /// Take audio (`waveform` `[batch, samples]`, float32 at the run's rate, ±1) and
    /// compute the run's features inside the graph.
    pub waveform: bool,
    /// The recurrent weights' format: f32 or int8 (see [`Stack::precision`]).
    pub precision: models::Precision,
}

/// Exports the run in `run_dir` (its `config.toml` and best checkpoint) to `path`,
/// written atomically.
pub fn export_run(
    run_dir: &Path,
    path: &Path,
    options: ExportOptions,
) -> Result<Exported, ExportError> {
    let recogniser = Recogniser::<NdArray>::load(run_dir, &Default::default())?;
    let mut network = network_of(&recogniser, options.waveform)?;
    network.stack.precision = options.precision;
    let form = match options.streaming {
        true => Form::Streaming,
        false => Form::Sequences,
    };
    let model = model_proto(&network, &recogniser.model.state_dict(), form)?;
    let bytes = onnx::to_bytes(&model)?;
    features::write_atomic(path, &bytes).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let names = |values: &[onnx::proto::ValueInfoProto]| {
        values.iter().map(|v| v.name().to_string()).collect()
    };
    Ok(Exported {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        inputs: names(&model.graph.input),
        outputs: names(&model.graph.output),
    })
}

/// The network of a loaded run, with its feature settings as metadata.
fn network_of(recogniser: &Recogniser<NdArray>, waveform: bool) -> Result<Network, ExportError> {
    let task = &recogniser.task;
    let head = match recogniser.objective {
        LabelKind::Sequences => Head::Ctc,
        _ => Head::Classify(task.pooling),
    };
    let pipeline = task.pipeline();
    let options = &pipeline.options;
    let frame_shift = options
        .hop_length()
        .map(|hop| hop as f64 / options.frame.sample_rate as f64)
        .unwrap_or(f64::NAN);
    let config = toml::to_string(&recogniser.config).unwrap_or_default();
    if waveform && task.stack_frames > 1 {
        return Err(ExportError::Unsupported(
            "frames joined into steps (task.stack_frames) inside the graph (--waveform); \
             without --waveform the graph takes the joined steps"
                .into(),
        ));
    }
    let front_end = waveform.then(|| FrontEnd::of(&pipeline)).transpose()?;
    let mut metadata = vec![
        ("sample_rate".into(), task.sample_rate.to_string()),
        ("frame_shift_seconds".into(), frame_shift.to_string()),
        ("speechrnn_config".into(), config),
    ];
    if task.stack_frames > 1 {
        // The graph's steps are frames joined in runs of this many.
        metadata.insert(2, ("stack_frames".into(), task.stack_frames.to_string()));
    }
    Ok(Network {
        stack: Stack::of(&recogniser.config.model, task.model_input_size()),
        head,
        labels: recogniser.labels.clone(),
        metadata,
        front_end,
    })
}

/// The ONNX model of `network` with the weights of `dict`
/// ([`models::SequenceClassifier::state_dict`]'s names).
pub fn model_proto(
    network: &Network,
    dict: &StateDict,
    form: Form,
) -> Result<ModelProto, ExportError> {
    let stack = &network.stack;
    stack.check_precision()?;
    if form == Form::Streaming && stack.bidirectional {
        return Err(ExportError::StreamingNeedsCausal);
    }
    if form == Form::Streaming && network.front_end.is_some() {
        return Err(ExportError::Unsupported(
            "a step graph with the feature front end inside (--streaming with --waveform)".into(),
        ));
    }
    let mut graph = GraphBuilder::new("speechrnn");
    let (features, lengths) = input_features(&mut graph, network, form);
    let x = graph.node(
        "Transpose",
        &[&features],
        vec![("perm", Attribute::Ints(vec![1, 0, 2]))],
    );
    let batch = axis_size(&mut graph, &x, 1);
    let steps = lengths.as_deref().map(|lengths| {
        let time = axis_size(&mut graph, &x, 0);
        StepIndex::new(&mut graph, lengths, &time)
    });
    let (h_0, c_0) = state_inputs(&mut graph, stack, form, &batch);
    let reversal = match (&steps, stack.bidirectional) {
        (Some(steps), true) => Some(steps.reversal(&mut graph, &batch)),
        _ => None,
    };
    let inputs = recurrent::StackInputs {
        reversal: reversal.as_deref(),
        initial_h: Some(&h_0),
        initial_c: c_0.as_deref(),
    };
    let stack_out = stack.lower(&mut graph, dict, &x, &inputs)?;
    let classes = network.labels.len();
    let width = (stack.output_size(), classes);
    let logits = head::output_layer(&mut graph, dict, &stack_out.y, width)?;
    let pooling = steps
        .as_ref()
        .zip(lengths.as_deref())
        .map(|(steps, lengths)| head::Steps {
            valid: &steps.valid,
            lengths,
            batch: &batch,
        });
    outputs(&mut graph, network.head, &logits, pooling.as_ref(), classes);
    if form == Form::Streaming {
        let dims = state_dims(stack);
        graph.output_from(&stack_out.h, "h_n", ElemType::Float, &dims);
        if let Some(c) = &stack_out.c {
            graph.output_from(c, "c_n", ElemType::Float, &dims);
        }
    }
    Ok(graph.finish(OPSET, &metadata(network)))
}

/// The graph's inputs: `features` (and `lengths` for whole sequences), or `waveform` and
/// `lengths` in samples through the front end, whose features and frame counts are also
/// outputs. Returns the `[batch, time, F]` features and the per-sequence step counts.
fn input_features(
    graph: &mut GraphBuilder,
    network: &Network,
    form: Form,
) -> (String, Option<String>) {
    let batch_only = [Dim::named("batch")];
    let Some(front_end) = &network.front_end else {
        let dims = [
            Dim::named("batch"),
            Dim::named("time"),
            Dim::Fixed(network.stack.input_size),
        ];
        graph.input("features", ElemType::Float, &dims);
        if form == Form::Streaming {
            return ("features".into(), None);
        }
        graph.input("lengths", ElemType::Int64, &batch_only);
        return ("features".into(), Some("lengths".into()));
    };
    graph.input(
        "waveform",
        ElemType::Float,
        &[Dim::named("batch"), Dim::named("samples")],
    );
    graph.input("lengths", ElemType::Int64, &batch_only);
    let out = front_end.lower(graph, "waveform", "lengths");
    let dims = [
        Dim::named("batch"),
        Dim::named("frames"),
        Dim::Fixed(front_end.dim()),
    ];
    graph.output_from(&out.features, "features", ElemType::Float, &dims);
    graph.output_from(
        &out.frame_lengths,
        "frame_lengths",
        ElemType::Int64,
        &batch_only,
    );
    (out.features, Some(out.frame_lengths))
}

/// `probabilities` or `log_probs`: pooled over `steps` when given, else at every step.
fn outputs(
    graph: &mut GraphBuilder,
    head: Head,
    logits: &str,
    steps: Option<&head::Steps>,
    classes: usize,
) {
    let per_step = [Dim::named("batch"), Dim::named("time"), Dim::Fixed(classes)];
    match (head, steps) {
        (Head::Classify(pooling), Some(steps)) => {
            let pooled = head::pool(graph, logits, pooling, steps, classes);
            let p = graph.node("Softmax", &[&pooled], vec![("axis", Attribute::Int(1))]);
            let dims = [Dim::named("batch"), Dim::Fixed(classes)];
            graph.output_from(&p, "probabilities", ElemType::Float, &dims);
        }
        (Head::Classify(_), None) => {
            let p = graph.node("Softmax", &[logits], vec![("axis", Attribute::Int(2))]);
            let p = batch_first(graph, &p);
            graph.output_from(&p, "probabilities", ElemType::Float, &per_step);
        }
        (Head::Ctc, _) => {
            let p = graph.node("LogSoftmax", &[logits], vec![("axis", Attribute::Int(2))]);
            let p = batch_first(graph, &p);
            graph.output_from(&p, "log_probs", ElemType::Float, &per_step);
        }
    }
}

fn metadata(network: &Network) -> Vec<(String, String)> {
    let precision = network.stack.precision;
    let labels = serde_json::to_string(&network.labels).unwrap_or_default();
    let objective = match network.head {
        Head::Ctc => "ctc",
        Head::Classify(_) => "classification",
    };
    let mut metadata = vec![
        ("labels".to_string(), labels),
        ("objective".to_string(), objective.to_string()),
    ];
    if precision != models::Precision::F32 {
        metadata.push(("precision".to_string(), precision.to_string()));
    }
    metadata.extend(network.metadata.iter().cloned());
    metadata
}

fn state_dims(stack: &Stack) -> [Dim; 3] {
    [
        Dim::Fixed(stack.num_layers * stack.directions()),
        Dim::named("batch"),
        Dim::Fixed(stack.hidden_size),
    ]
}

/// `h_0` (and `c_0` for an LSTM), `[layers·directions, batch, hidden]`. In the whole-
/// sequence graph they default to zeros (an input backed by an initializer, which ONNX
/// lets a caller override); in the step graph they are required.
fn state_inputs(
    graph: &mut GraphBuilder,
    stack: &Stack,
    form: Form,
    batch: &str,
) -> (String, Option<String>) {
    let lstm = stack.cell.has_cell_state();
    let names: &[&str] = if lstm { &["h_0", "c_0"] } else { &["h_0"] };
    let rows = stack.num_layers * stack.directions();
    let mut states = names.iter().map(|&name| match form {
        Form::Streaming => {
            graph.input(name, ElemType::Float, &state_dims(stack));
            name.to_string()
        }
        Form::Sequences => {
            let zeros = vec![0.0; rows * stack.hidden_size];
            graph.default_input_f32(name, &[rows, 1, stack.hidden_size], &zeros);
            let full = state_shape(graph, rows, batch, stack.hidden_size);
            graph.node("Expand", &[name, &full], vec![])
        }
    });
    let h = states.next().unwrap_or_default();
    (h, states.next())
}

fn state_shape(graph: &mut GraphBuilder, rows: usize, batch: &str, hidden: usize) -> String {
    let rows = graph.constant_i64("rows", &[1], &[rows as i64]);
    let hidden = graph.constant_i64("hidden", &[1], &[hidden as i64]);
    let batch = batch_shape(graph, batch);
    graph.node(
        "Concat",
        &[&rows, &batch, &hidden],
        vec![("axis", Attribute::Int(0))],
    )
}

/// A scalar as a one-element shape `[n]`.
fn batch_shape(graph: &mut GraphBuilder, scalar: &str) -> String {
    unsqueeze(graph, scalar, 0)
}

/// `[time, batch, …]` → `[batch, time, …]`.
fn batch_first(graph: &mut GraphBuilder, x: &str) -> String {
    graph.node(
        "Transpose",
        &[x],
        vec![("perm", Attribute::Ints(vec![1, 0, 2]))],
    )
}

/// Which steps are valid, `[time, batch]`, from the lengths.
struct StepIndex {
    /// `[time, 1]` step numbers.
    step: String,
    /// `[1, batch]` lengths.
    length: String,
    /// `[time, batch]` bool.
    valid: String,
}

impl StepIndex {
    fn new(graph: &mut GraphBuilder, lengths: &str, time: &str) -> Self {
        let steps = count_to(graph, time);
        let step = unsqueeze(graph, &steps, 1);
        let length = unsqueeze(graph, lengths, 0);
        let valid = graph.node("Less", &[&step, &length], vec![]);
        StepIndex {
            step,
            length,
            valid,
        }
    }

    /// `[time, batch]` rows of the `[time·batch, width]` view that reverse each sequence
    /// within its length (padding steps stay where they are): what the backward direction
    /// reads, and how its outputs go back in order. ONNX's `sequence_lens` would say the
    /// same, but tract runs recurrent operators only without it.
    fn reversal(&self, graph: &mut GraphBuilder, batch: &str) -> String {
        let one = graph.constant_i64("one", &[], &[1]);
        let last = graph.node("Sub", &[&self.length, &one], vec![]);
        let mirrored = graph.node("Sub", &[&last, &self.step], vec![]);
        let step = graph.node("Where", &[&self.valid, &mirrored, &self.step], vec![]);
        let row_start = graph.node("Mul", &[&step, batch], vec![]);
        head::add_batch_index(graph, &row_start, batch)
    }
}
