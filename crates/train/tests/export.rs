//! The exported ONNX graphs: every cell variant, one and two layers, both directions, each
//! head, as whole-sequence graphs (ragged batches, zero and given initial states, T = 1 and
//! T = 1,000 from one file) and as step graphs.
//!
//! This test writes each case (the file, its inputs and our outputs) to
//! `$SPEECHRNN_ONNX_CASES` (a temporary folder when unset) and checks the files' interface.
//! Two independent runtimes then run them and compare with our outputs to 1e-5:
//! onnxruntime (`tests/onnx/check_onnxruntime.py` at the workspace root, which also runs `onnx.checker`) and
//! tract (`scripts/tract-check`); `scripts/test.sh` runs both.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn_ndarray::NdArray;
use common::onnx_cases::{cases_folder, flat, names, ours, random, write_case};
use models::{CellKind, Nonlinearity, Pooling, Precision, RecurrentState, SequenceClassifier};
use serde_json::{Value, json};
use train::export::{Form, Head, Network, Stack, model_proto};
use train::model::ModelConfig;

type B = NdArray;

const FEATURES: usize = 5;
const CLASSES: usize = 4;
const HIDDEN: usize = 6;

fn cells() -> Vec<(&'static str, CellKind)> {
    let lstm = |peephole, coupled| CellKind::Lstm {
        peephole,
        coupled_input_forget: coupled,
        unit_forget_bias: false,
        chrono_init: None,
    };
    vec![
        ("rnn_tanh", CellKind::rnn(Nonlinearity::Tanh)),
        ("rnn_relu", CellKind::rnn(Nonlinearity::Relu)),
        ("rnn_sigmoid", CellKind::rnn(Nonlinearity::Sigmoid)),
        ("lstm", lstm(false, false)),
        ("lstm_peephole", lstm(true, false)),
        ("lstm_coupled", lstm(false, true)),
        ("gru_reset_after", CellKind::Gru { reset_after: true }),
        ("gru_reset_before", CellKind::Gru { reset_after: false }),
    ]
}

struct Case {
    name: String,
    config: ModelConfig,
    head: Head,
}

/// Every cell × 1 and 2 layers × both directions, the four heads taken in turn.
fn cases() -> Vec<Case> {
    let heads = [
        Head::Classify(Pooling::Last),
        Head::Classify(Pooling::Mean),
        Head::Classify(Pooling::Max),
        Head::Ctc,
    ];
    let mut cases = Vec::new();
    for (name, cell) in cells() {
        for layers in [1, 2] {
            for bidirectional in [false, true] {
                let head = heads[(cases.len() + layers) % heads.len()];
                let direction = if bidirectional { "bi" } else { "uni" };
                let head_name = match head {
                    Head::Ctc => "ctc".to_string(),
                    Head::Classify(p) => format!("{p:?}").to_lowercase(),
                };
                cases.push(Case {
                    name: format!("{name}_{layers}layer_{direction}_{head_name}"),
                    config: ModelConfig {
                        cell: cell.clone(),
                        hidden_size: HIDDEN,
                        num_layers: layers,
                        bidirectional,
                        dropout: 0.0,
                    },
                    head,
                });
            }
        }
    }
    cases
}

/// The shipped experiments' network at test size.
fn lstm_2layer_bidirectional() -> ModelConfig {
    ModelConfig {
        cell: CellKind::lstm(),
        hidden_size: HIDDEN,
        num_layers: 2,
        bidirectional: true,
        dropout: 0.0,
    }
}

impl Case {
    fn network(&self) -> Network {
        Network {
            stack: Stack::of(&self.config, FEATURES),
            head: self.head,
            labels: (0..CLASSES).map(|c| format!("class{c}")).collect(),
            metadata: vec![],
            front_end: None,
        }
    }

    fn model(&self) -> SequenceClassifier<B> {
        self.config.init((FEATURES, CLASSES), &Default::default())
    }

    fn state_shape(&self, batch: usize) -> [usize; 3] {
        let stack = self.network().stack;
        [stack.num_layers * stack.directions(), batch, HIDDEN]
    }

    fn output_name(&self) -> &'static str {
        match self.head {
            Head::Ctc => "log_probs",
            Head::Classify(_) => "probabilities",
        }
    }
}

/// One call of a case: the inputs and our outputs.
fn run_record(
    case: &Case,
    model: &SequenceClassifier<B>,
    lengths: &[usize],
    with_state: bool,
) -> Value {
    let time = lengths.iter().copied().max().unwrap_or(0);
    let x = random([lengths.len(), time, FEATURES]);
    let state = with_state.then(|| RecurrentState {
        hidden: random(case.state_shape(lengths.len())),
        cell: case
            .config
            .cell
            .has_cell_state()
            .then(|| random(case.state_shape(lengths.len()))),
    });
    let expected = ours(
        model,
        case.head,
        x.clone(),
        (lengths, state.clone()),
        Precision::F32,
    );
    json!({
        "features_shape": x.dims(),
        "features": flat(&x),
        "lengths": lengths,
        "state_shape": case.state_shape(lengths.len()),
        "h_0": state.as_ref().map(|s| flat(&s.hidden)),
        "c_0": state.as_ref().and_then(|s| s.cell.as_ref().map(flat)),
        "expected": expected,
    })
}

/// A step graph's run: a whole sequence, to be fed one frame at a time from zero states;
/// `expected` is every step's output `[batch, time, classes]`.
fn stream_record(case: &Case, model: &SequenceClassifier<B>, batch: usize, time: usize) -> Value {
    let x = random([batch, time, FEATURES]);
    let logits = model.forward(x.clone(), None);
    let expected = match case.head {
        Head::Ctc => log_softmax(logits, 2),
        Head::Classify(_) => softmax(logits, 2),
    };
    json!({
        "features_shape": x.dims(),
        "features": flat(&x),
        "state_shape": case.state_shape(batch),
        "expected": flat(&expected),
    })
}

#[test]
fn whole_sequence_graphs_of_every_variant() {
    B::seed(&Default::default(), 11);
    let (dir, _keep) = cases_folder();
    for case in cases() {
        let model = case.model();
        let proto = model_proto(&case.network(), &model.state_dict(), Form::Sequences).unwrap();
        let runs = vec![
            run_record(&case, &model, &[7, 4, 1], false),
            run_record(&case, &model, &[7, 4, 1], true),
        ];
        let record = json!({ "form": "sequences", "output": case.output_name(), "ctc": case.head == Head::Ctc, "runs": runs });
        let decoded = write_case(&dir, &case.name, &proto, record);
        let mut inputs = vec!["features", "lengths", "h_0"];
        if case.config.cell.has_cell_state() {
            inputs.push("c_0");
        }
        assert_eq!(names(&decoded.graph.input), inputs, "{}", case.name);
        assert_eq!(names(&decoded.graph.output), [case.output_name()]);
        let labels = &decoded.metadata_props[0];
        assert_eq!(labels.key(), "labels");
        assert_eq!(labels.value(), r#"["class0","class1","class2","class3"]"#);
        // One native recurrent operator per layer and direction.
        let op = match case.config.cell {
            CellKind::Rnn { .. } => "RNN",
            CellKind::Lstm { .. } => "LSTM",
            CellKind::Gru { .. } => "GRU",
        };
        let recurrent = decoded
            .graph
            .node
            .iter()
            .filter(|n| n.op_type() == op)
            .count();
        let directions = if case.config.bidirectional { 2 } else { 1 };
        assert_eq!(
            recurrent,
            case.config.num_layers * directions,
            "{}",
            case.name
        );
    }
}

#[test]
fn one_file_serves_one_step_and_a_thousand() {
    B::seed(&Default::default(), 12);
    let (dir, _keep) = cases_folder();
    let case = Case {
        name: "long_lstm_2layer_bi_ctc".into(),
        config: lstm_2layer_bidirectional(),
        head: Head::Ctc,
    };
    let model = case.model();
    let proto = model_proto(&case.network(), &model.state_dict(), Form::Sequences).unwrap();
    let runs = vec![
        run_record(&case, &model, &[1, 1], false),
        run_record(&case, &model, &[1000, 613], false),
    ];
    let record = json!({ "form": "sequences", "output": "log_probs", "ctc": true, "runs": runs });
    let decoded = write_case(&dir, &case.name, &proto, record);
    assert_eq!(decoded, proto);
}

#[test]
fn step_graphs_of_every_unidirectional_variant() {
    B::seed(&Default::default(), 13);
    let (dir, _keep) = cases_folder();
    for case in cases().into_iter().filter(|c| !c.config.bidirectional) {
        let model = case.model();
        let proto = model_proto(&case.network(), &model.state_dict(), Form::Streaming).unwrap();
        let record = json!({
            "form": "streaming",
            "output": case.output_name(),
            "ctc": case.head == Head::Ctc,
            "lstm": case.config.cell.has_cell_state(),
            "runs": [stream_record(&case, &model, 2, 9)],
        });
        let name = format!("step_{}", case.name);
        let decoded = write_case(&dir, &name, &proto, record);
        let lstm = case.config.cell.has_cell_state();
        let (inputs, outputs): (Vec<&str>, Vec<&str>) = match lstm {
            true => (
                vec!["features", "h_0", "c_0"],
                vec![case.output_name(), "h_n", "c_n"],
            ),
            false => (vec!["features", "h_0"], vec![case.output_name(), "h_n"]),
        };
        assert_eq!(names(&decoded.graph.input), inputs, "{name}");
        assert_eq!(names(&decoded.graph.output), outputs, "{name}");
        assert!(
            decoded
                .graph
                .initializer
                .iter()
                .all(|t| !inputs.contains(&t.name()))
        );
    }
}

#[test]
fn a_bidirectional_run_has_no_step_graph() {
    let case = cases()
        .into_iter()
        .find(|c| c.config.bidirectional)
        .unwrap();
    let err =
        model_proto(&case.network(), &case.model().state_dict(), Form::Streaming).unwrap_err();
    assert!(err.to_string().contains("unidirectional"), "{err}");
}

#[test]
fn weights_that_do_not_fit_the_configuration_are_named() {
    let case = &cases()[3];
    let mut network = case.network();
    network.stack.hidden_size += 1;
    let err = model_proto(&network, &case.model().state_dict(), Form::Sequences).unwrap_err();
    assert!(err.to_string().contains("weight_ih_l0"), "{err}");
    let mut dict = case.model().state_dict();
    dict.remove("output.bias");
    let err = model_proto(&case.network(), &dict, Form::Sequences).unwrap_err();
    assert!(err.to_string().contains("output.bias"), "{err}");
}

/// Real speech for the front end: `(path, samples kept)` at one rate.
fn speech(rate: u32) -> Vec<(PathBuf, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files: &[(&str, usize)] = match rate {
        8000 => &[
            ("crates/features/tests/audio/digit7_8k.wav", usize::MAX),
            (
                "datasets/default/wav/asterisk/en_US_f_Allison/0_0.wav",
                usize::MAX,
            ),
            (
                "datasets/default/wav/asterisk/en_US_f_Allison/3_0.wav",
                3_000,
            ),
        ],
        _ => &[
            ("crates/features/tests/audio/goforward_16k.wav", usize::MAX),
            ("crates/features/tests/audio/goforward_16k.wav", 14_000),
        ],
    };
    files.iter().map(|(p, n)| (root.join(p), *n)).collect()
}

/// The run's pipeline: a preset at `rate`, log-mel or MFCC, with or without Δ/ΔΔ and
/// per-utterance normalisation.
fn pipeline(
    preset: features::Preset,
    rate: u32,
    output: features::Output,
    post: bool,
) -> features::FilePipeline {
    let mut options = features::FeatureOptions::preset(preset);
    options.frame.sample_rate = rate;
    let mut pipeline = features::FilePipeline::new(options);
    pipeline.output = output;
    if post {
        pipeline.deltas = Some((2, 2));
        pipeline.cmvn = Some(features::Cmvn::Utterance { variance: true });
    }
    pipeline
}

#[test]
fn waveform_graphs_compute_our_features_from_real_speech() {
    B::seed(&Default::default(), 15);
    let (dir, _keep) = cases_folder();
    use features::{Output, Preset};
    let mut reflected = pipeline(Preset::Librosa, 8000, Output::LogMel, false);
    reflected.options.frame.framing = features::Framing::Centered {
        pad: features::Padding::Reflect,
    };
    reflected.options.mel.n_mels = 40;
    let variants = [
        (
            pipeline(Preset::Kaldi, 8000, Output::Mfcc, true),
            Head::Classify(Pooling::Mean),
        ),
        (
            pipeline(Preset::Kaldi, 16000, Output::Mfcc, true),
            Head::Ctc,
        ),
        (
            pipeline(Preset::Kaldi, 16000, Output::LogMel, false),
            Head::Classify(Pooling::Last),
        ),
        (
            pipeline(Preset::Librosa, 8000, Output::Mfcc, true),
            Head::Classify(Pooling::Max),
        ),
        (
            pipeline(Preset::Librosa, 16000, Output::LogMel, false),
            Head::Ctc,
        ),
        (reflected, Head::Classify(Pooling::Mean)),
        (
            pipeline(Preset::Htk, 8000, Output::Mfcc, false),
            Head::Classify(Pooling::Last),
        ),
        (pipeline(Preset::Htk, 16000, Output::Mfcc, true), Head::Ctc),
    ];
    for (index, (pipeline, head)) in variants.into_iter().enumerate() {
        let rate = pipeline.options.frame.sample_rate;
        let front_end = train::export::FrontEnd::of(&pipeline).unwrap();
        let mut audio = Vec::new();
        let mut features = Vec::new();
        for (path, keep) in speech(rate) {
            let mut clip = features::read_wav(&path, features::Channel::Mean).unwrap();
            clip.samples.truncate(keep);
            features.push(pipeline.run_audio(clip.clone()).unwrap());
            audio.push(clip.samples);
        }
        let dim = features[0].dim;
        assert_eq!(front_end.dim(), dim);
        let case = Case {
            name: format!("waveform_{index}_{rate}hz_{:?}", pipeline.output).to_lowercase(),
            config: lstm_2layer_bidirectional(),
            head,
        };
        let model: SequenceClassifier<B> = case.config.init((dim, CLASSES), &Default::default());
        let mut network = case.network();
        network.stack.input_size = dim;
        network.front_end = Some(front_end);
        let proto = model_proto(&network, &model.state_dict(), Form::Sequences).unwrap();
        let record = json!({
            "form": "waveform",
            "output": case.output_name(),
            "ctc": head == Head::Ctc,
            "runs": [waveform_record(&model, head, &audio, &features)],
        });
        let decoded = write_case(&dir, &case.name, &proto, record);
        assert_eq!(
            names(&decoded.graph.input),
            ["waveform", "lengths", "h_0", "c_0"]
        );
        assert_eq!(
            names(&decoded.graph.output),
            ["features", "frame_lengths", case.output_name()]
        );
    }
}

/// Audio padded into `[batch, samples]` (with a constant that is not silence, so that a
/// graph reading past an utterance's length shows), our features padded into `[batch,
/// frames, F]` (zeros past each utterance), and our model's outputs on them.
fn waveform_record(
    model: &SequenceClassifier<B>,
    head: Head,
    audio: &[Vec<f32>],
    features: &[features::Features],
) -> Value {
    let samples = audio.iter().map(Vec::len).max().unwrap_or(0);
    let frames = features.iter().map(|f| f.num_frames).max().unwrap_or(0);
    let dim = features[0].dim;
    let mut waveform = vec![0.25f32; audio.len() * samples];
    let mut padded = vec![0.0f32; audio.len() * frames * dim];
    for (b, (clip, f)) in audio.iter().zip(features).enumerate() {
        waveform[b * samples..][..clip.len()].copy_from_slice(clip);
        padded[b * frames * dim..][..f.data.len()].copy_from_slice(&f.data);
    }
    let frame_lengths: Vec<usize> = features.iter().map(|f| f.num_frames).collect();
    let shape = [audio.len(), frames, dim];
    let x = Tensor::<B, 3>::from_data(
        burn::tensor::TensorData::new(padded.clone(), shape),
        &Default::default(),
    );
    let expected = ours(model, head, x, (&frame_lengths, None), Precision::F32);
    json!({
        "waveform_shape": [audio.len(), samples],
        "waveform": waveform,
        "lengths": audio.iter().map(Vec::len).collect::<Vec<_>>(),
        "expected_features_shape": shape,
        "expected_features": padded,
        "expected_frame_lengths": frame_lengths,
        "features_tolerance": 1e-3,
        "tolerance": 1e-4,
        "expected": expected,
    })
}

/// The demo experiment trained briefly in `dir` (2 epochs, the embedded corpus).
fn train_demo(dir: &Path) -> PathBuf {
    train_demo_with(dir, "demo", &[])
}

/// The spoken-digits demo, briefly trained in `dir/name`, with `extra` settings.
fn train_demo_with(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut overrides = vec![
        format!(
            "task.manifest={:?}",
            root.join("datasets/default/manifest.csv")
                .display()
                .to_string()
        ),
        format!(
            "task.cache_dir={:?}",
            dir.join("cache").display().to_string()
        ),
        "training.epochs=2".to_string(),
        "model.hidden_size=16".to_string(),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let run = train::Run::load(
        &root.join("experiments/spoken-digits-demo.toml"),
        &overrides,
        None,
    )
    .unwrap();
    let folder = train::run::RunFolder::open(dir, name, train::run::RunMode::New).unwrap();
    run.prepare().unwrap().fit(&folder, None, &mut ()).unwrap();
    folder.path().to_path_buf()
}

/// A run that joins frames into steps (`task.stack_frames`) exports a graph that takes the
/// joined steps, says so in its metadata, and has no waveform form (nothing written).
#[test]
fn a_run_with_frames_joined_into_steps_exports_a_graph_of_steps() {
    let temp = tempfile::tempdir().unwrap();
    let run_dir = train_demo_with(temp.path(), "stacked", &["task.stack_frames=3"]);
    let path = temp.path().join("stacked.onnx");
    let options = |waveform| train::export::ExportOptions {
        waveform,
        ..Default::default()
    };
    let refused = train::export::export_run(&run_dir, &path, options(true)).unwrap_err();
    assert!(
        refused.to_string().contains("task.stack_frames"),
        "{refused}"
    );
    assert!(!path.exists());
    train::export::export_run(&run_dir, &path, options(false)).unwrap();
    let model = onnx::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let recogniser =
        train::inference::Recogniser::<B>::load(&run_dir, &Default::default()).unwrap();
    let width = 3 * recogniser.task.features_per_frame() as i64;
    let features = &model.graph.input[0];
    let dims = features.type_.as_ref().unwrap();
    assert!(
        format!("{dims:?}").contains(&format!("DimValue({width})")),
        "{dims:?}"
    );
    let metadata = |key: &str| {
        let prop = model
            .metadata_props
            .iter()
            .find(|p| p.key.as_deref() == Some(key));
        prop.and_then(|p| p.value.clone())
    };
    assert_eq!(metadata("stack_frames").as_deref(), Some("3"));
}

#[test]
fn the_demo_run_with_its_front_end_gives_experiment_predicts_probabilities() {
    let temp = tempfile::tempdir().unwrap();
    let run_dir = train_demo(temp.path());
    let (dir, _keep) = cases_folder();
    let path = dir.join("demo_spoken_digits_waveform.onnx");
    let options = train::export::ExportOptions {
        waveform: true,
        ..Default::default()
    };
    let exported = train::export::export_run(&run_dir, &path, options).unwrap();
    assert_eq!(exported.inputs, ["waveform", "lengths", "h_0", "c_0"]);
    let recogniser =
        train::inference::Recogniser::<B>::load(&run_dir, &Default::default()).unwrap();
    let pipeline = recogniser.task.pipeline();
    let mut audio = Vec::new();
    let mut features = Vec::new();
    let mut expected = Vec::new();
    for utterance in recogniser.task.utterances().unwrap() {
        if utterance.split != "test" && utterance.split != "real" {
            continue;
        }
        let clip = features::read_wav(&utterance.path, features::Channel::Mean).unwrap();
        let clip = features::resample(&clip, pipeline.options.frame.sample_rate).unwrap();
        features.push(pipeline.run_audio(clip.clone()).unwrap());
        audio.push(clip.samples);
        // `experiment predict`: every class's probability, in the model's class order.
        let labels = &recogniser.labels;
        let top = recogniser
            .predict(&utterance.path, labels.len(), &Default::default())
            .unwrap()
            .top;
        expected.extend(
            labels
                .iter()
                .map(|l| top.iter().find(|p| &p.label == l).unwrap().probability),
        );
    }
    assert!(
        audio.len() >= 10,
        "{} test and real utterances",
        audio.len()
    );
    let mut run = waveform_record(
        &recogniser.model,
        Head::Classify(recogniser.task.pooling),
        &audio,
        &features,
    );
    assert_close_to_predict(&run["expected"], &expected);
    run["expected"] = json!(expected);
    let record =
        json!({ "form": "waveform", "output": "probabilities", "ctc": false, "runs": [run] });
    std::fs::write(path.with_extension("json"), record.to_string()).unwrap();
    a_damaged_or_missing_checkpoint_is_refused_and_nothing_is_written(&run_dir);
}

fn a_damaged_or_missing_checkpoint_is_refused_and_nothing_is_written(run_dir: &Path) {
    let out = tempfile::tempdir().unwrap();
    // A folder in the way: the model is written beside it, the rename over it fails.
    let blocked = out.path().join("blocked.onnx");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("inside"), b"x").unwrap();
    let options = train::export::ExportOptions::default();
    let err = train::export::export_run(run_dir, &blocked, options).unwrap_err();
    assert!(
        matches!(err, train::export::ExportError::Write { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        1,
        "only the folder"
    );
    std::fs::remove_dir_all(&blocked).unwrap();
    let target = out.path().join("model.onnx");
    let best = train::report::run_dir::best_weights(run_dir);
    let bytes = std::fs::read(&best).unwrap();
    std::fs::write(&best, &bytes[..bytes.len() / 2]).unwrap();
    let err = train::export::export_run(run_dir, &target, options).unwrap_err();
    assert!(err.to_string().contains("best.mpk"), "{err}");
    std::fs::remove_file(&best).unwrap();
    let err = train::export::export_run(run_dir, &target, options).unwrap_err();
    assert!(err.to_string().contains("best.mpk"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// Our batched forward pass over padded features gives what `predict` gives file by file.
fn assert_close_to_predict(batched: &Value, predicted: &[f32]) {
    let batched: Vec<f32> = batched
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(batched.len(), predicted.len());
    let worst = batched
        .iter()
        .zip(predicted)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "padded batch against predict: {worst:e}");
}
