//! Shapes, parameter counts, trainability, streaming, variable lengths, bad input, and
//! equality with burn's own `nn::Lstm` / `nn::Gru`.

mod common;

use burn::module::{AutodiffModule, Module};
use burn::nn::{GruConfig, Linear, LstmConfig};
use burn::tensor::{Tensor, TensorData, Tolerance};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use common::{all_cells, fixed_weights, max_abs_diff, tensor};
use models::{CellKind, Pooling, RecurrentConfig, RecurrentError, RecurrentState, StateDict};

type B = NdArray;
type AB = Autodiff<NdArray>;

#[test]
fn shapes_of_every_cell_stacked_and_bidirectional() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let has_cell = cell.has_cell_state();
        let rnn = RecurrentConfig::new(cell, 5, 7)
            .with_num_layers(3)
            .with_bidirectional(true)
            .init::<B>(&device);
        let (y, state) = rnn.forward(tensor([4, 6, 5], 1, &device), None, None);
        assert_eq!(y.dims(), [4, 6, 14], "{name}");
        assert_eq!(state.hidden.dims(), [6, 4, 7], "{name}");
        assert_eq!(
            state.cell.map(|c| c.dims()),
            has_cell.then_some([6, 4, 7]),
            "{name}"
        );
    }
}

#[test]
fn parameter_counts_follow_pytorch() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let (d, h, layers, dirs) = (5, 7, 2, 2);
        let g = cell.gates();
        let peephole = matches!(cell, CellKind::Lstm { peephole: true, .. });
        let per_cell =
            |input: usize| g * h * (input + h) + 2 * g * h + if peephole { 3 * h } else { 0 };
        let expected = dirs * per_cell(d) + (layers - 1) * dirs * per_cell(dirs * h);
        let rnn = RecurrentConfig::new(cell, d, h)
            .with_num_layers(layers)
            .with_bidirectional(true)
            .init::<B>(&device);
        assert_eq!(rnn.num_params(), expected, "{name}");
        let keys: Vec<String> = rnn.state_dict().into_keys().collect();
        assert!(
            keys.contains(&"weight_hh_l1_reverse".to_string()),
            "{name}: {keys:?}"
        );
        assert_eq!(
            keys.len(),
            layers * dirs * (4 + peephole as usize),
            "{name}: {keys:?}"
        );
    }
}

#[test]
fn without_bias_there_are_no_bias_parameters() {
    let device = Default::default();
    let rnn = RecurrentConfig::new(CellKind::lstm(), 3, 4)
        .with_bias(false)
        .init::<B>(&device);
    assert_eq!(rnn.num_params(), 16 * 3 + 16 * 4);
    assert!(rnn.state_dict().keys().all(|k| k.starts_with("weight_")));
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let rnn = RecurrentConfig::new(cell, 3, 4)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init::<AB>(&device);
        let weights = fixed_weights(&rnn.state_dict(), 0.5);
        let rnn = rnn.load_state_dict(&weights).expect("same keys");
        let (y, state) = rnn.forward(tensor([2, 5, 3], 2, &device), None, Some(&[5, 3]));
        let loss = (y * tensor([2, 5, 8], 3, &device)).sum() + state.hidden.sum();
        let grads = rnn.gradient_dict(&loss.backward());
        let params = rnn.state_dict();
        assert_eq!(
            grads.keys().collect::<Vec<_>>(),
            params.keys().collect::<Vec<_>>(),
            "{name}: parameters without gradient"
        );
        for (key, grad) in grads {
            let norm: f64 = grad.iter::<f64>().map(|g| g * g).sum();
            assert!(norm > 0.0, "{name}: {key} has an all-zero gradient");
        }
    }
}

#[test]
fn unit_forget_bias_sums_to_one_on_the_forget_block() {
    let device = Default::default();
    let cell = CellKind::Lstm {
        peephole: false,
        coupled_input_forget: false,
        unit_forget_bias: true,
        chrono_init: None,
    };
    let dict = RecurrentConfig::new(cell, 3, 4)
        .init::<B>(&device)
        .state_dict();
    let sum: Vec<f32> = dict["bias_ih_l0"]
        .iter::<f32>()
        .zip(dict["bias_hh_l0"].iter::<f32>())
        .map(|(a, b)| a + b)
        .collect();
    assert!(sum[4..8].iter().all(|&s| s == 1.0), "{sum:?}");
    assert!(sum[0..4].iter().any(|&s| s != 1.0));
}

#[test]
fn chrono_init_spreads_forget_biases_over_the_log_of_the_lags() {
    let device = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&device, 3);
    let t_max = 100;
    let cell = CellKind::Lstm {
        peephole: false,
        coupled_input_forget: false,
        unit_forget_bias: false,
        chrono_init: Some(t_max),
    };
    let hidden = 64;
    let dict = RecurrentConfig::new(cell, 3, hidden)
        .init::<B>(&device)
        .state_dict();
    let sum: Vec<f64> = dict["bias_ih_l0"]
        .iter::<f64>()
        .zip(dict["bias_hh_l0"].iter::<f64>())
        .map(|(a, b)| a + b)
        .collect();
    let (input, forget) = (&sum[..hidden], &sum[hidden..2 * hidden]);
    let high = ((t_max - 1) as f64).ln();
    assert!(
        forget.iter().all(|&b| (0.0..=high).contains(&b)),
        "{forget:?}"
    );
    // Spread over the range, not a constant: some units keep long, some short.
    let (low_units, high_units) = (
        forget.iter().filter(|&&b| b < high / 2.0).count(),
        forget.iter().filter(|&&b| b > 0.9 * high).count(),
    );
    assert!(low_units > 0 && high_units > 0, "{forget:?}");
    assert!(input.iter().zip(forget).all(|(i, f)| i == &-f));
    // The other gates keep PyTorch's draw: inside ±1/√H on each of the two biases.
    let bound = 2.0 / (hidden as f64).sqrt();
    assert!(sum[2 * hidden..].iter().all(|b| b.abs() <= bound));
}

#[test]
fn orthogonal_recurrent_blocks_are_orthogonal() {
    let device = Default::default();
    let rnn = RecurrentConfig::new(CellKind::gru(), 3, 6)
        .with_recurrent_init(models::RecurrentInit::Orthogonal)
        .init::<B>(&device);
    let w: Tensor<B, 2> = Tensor::from_data(rnn.state_dict()["weight_hh_l0"].clone(), &device);
    // burn's orthogonal initialiser works in f32 and its draw is not seeded here: over 9,000
    // blocks the largest error was 2.9e-4 and about one in a thousand exceeded 1e-4 (which
    // made this test fail now and then); a uniform draw is off by ~0.1.
    for k in 0..3 {
        let block = w.clone().slice([k * 6..(k + 1) * 6, 0..6]);
        let gram = block.clone().matmul(block.transpose());
        assert!(
            max_abs_diff(gram, Tensor::eye(6, &device)) < 1e-3,
            "block {k}"
        );
    }
}

#[test]
fn feeding_in_chunks_equals_feeding_whole() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let rnn = RecurrentConfig::new(cell, 3, 5)
            .with_num_layers(2)
            .init::<B>(&device);
        let x = tensor::<B, 3>([2, 9, 3], 4, &device);
        let (whole, whole_state) = rnn.forward(x.clone(), None, None);
        let mut state: Option<RecurrentState<B, 3>> = None;
        let mut pieces = Vec::new();
        for (start, len) in [(0, 4), (4, 1), (5, 4)] {
            let (y, s) = rnn.forward(x.clone().narrow(1, start, len), state, None);
            pieces.push(y);
            state = Some(s);
        }
        let state = state.expect("state");
        assert!(max_abs_diff(whole, Tensor::cat(pieces, 1)) < 1e-6, "{name}");
        assert!(
            max_abs_diff(whole_state.hidden, state.hidden) < 1e-6,
            "{name}"
        );
        if let (Some(a), Some(b)) = (whole_state.cell, state.cell) {
            assert!(max_abs_diff(a, b) < 1e-6, "{name}");
        }
    }
}

/// PyTorch's packed-sequence meaning: a padded sequence gives exactly what it gives alone.
#[test]
fn lengths_give_each_sequence_what_it_gives_alone() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let rnn = RecurrentConfig::new(cell, 3, 4)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init::<B>(&device);
        // Padding holds non-zero garbage: masking, not zero input, must make it harmless.
        let x = tensor::<B, 3>([3, 7, 3], 5, &device);
        let lengths = [7, 4, 1];
        let (y, state) = rnn.forward(x.clone(), None, Some(&lengths));
        for (b, &len) in lengths.iter().enumerate() {
            let alone = x.clone().narrow(0, b, 1).narrow(1, 0, len);
            let (y_alone, state_alone) = rnn.forward(alone, None, None);
            let y_b = y.clone().narrow(0, b, 1);
            assert!(
                max_abs_diff(y_b.clone().narrow(1, 0, len), y_alone) < 1e-6,
                "{name} seq {b}"
            );
            if len < 7 {
                let padding = y_b.narrow(1, len, 7 - len);
                assert_eq!(padding.abs().max().into_scalar(), 0.0, "{name} seq {b}");
            }
            let h_b = state.hidden.clone().narrow(1, b, 1);
            assert!(
                max_abs_diff(h_b, state_alone.hidden) < 1e-6,
                "{name} seq {b}"
            );
            if let (Some(c), Some(c_alone)) = (&state.cell, state_alone.cell) {
                assert!(
                    max_abs_diff(c.clone().narrow(1, b, 1), c_alone) < 1e-6,
                    "{name} seq {b}"
                );
            }
        }
    }
}

/// Each pooling reads only a sequence's valid steps; padded steps hold values that would win.
#[test]
fn pooling_reads_only_the_valid_steps() {
    let device = Default::default();
    // [batch 2, time 3, classes 2]; sequence 1 has 2 valid steps, its third step is padding.
    let values = [
        [[1.0, -4.0], [3.0, -2.0], [2.0, -6.0]],
        [[-1.0, 5.0], [4.0, 1.0], [90.0, 90.0]],
    ];
    let y = Tensor::<AB, 3>::from_floats(values, &device).require_grad();
    let lengths = [3, 2];
    let pooled = |pooling: Pooling| pooling.pool(y.clone(), Some(&lengths)).into_data();
    pooled(Pooling::Last).assert_eq(&TensorData::from([[2.0f32, -6.0], [4.0, 1.0]]), false);
    pooled(Pooling::Mean).assert_approx_eq::<f32>(
        &TensorData::from([[2.0f32, -4.0], [1.5, 3.0]]),
        Tolerance::absolute(1e-6),
    );
    pooled(Pooling::Max).assert_eq(&TensorData::from([[3.0f32, -2.0], [4.0, 5.0]]), false);
    // The gradient of the sum of the maxima is 1 at each maximum's step, 0 elsewhere.
    let grads = Pooling::Max
        .pool(y.clone(), Some(&lengths))
        .sum()
        .backward();
    let expected = [
        [[0.0f32, 0.0], [1.0, 1.0], [0.0, 0.0]],
        [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
    ];
    y.grad(&grads)
        .unwrap()
        .into_data()
        .assert_eq(&TensorData::from(expected), false);
}

#[test]
fn bad_input_gives_typed_errors() {
    let device = Default::default();
    let lstm = RecurrentConfig::new(CellKind::lstm(), 3, 4).init::<B>(&device);
    let x = tensor::<B, 3>([2, 5, 3], 6, &device);
    let err = |r: Result<_, RecurrentError>| r.expect_err("an error");
    assert_eq!(
        err(lstm.try_forward(tensor([2, 5, 2], 6, &device), None, None)),
        RecurrentError::InputSize {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        err(lstm.try_forward(x.clone(), None, Some(&[5]))),
        RecurrentError::LengthsCount {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        err(lstm.try_forward(x.clone(), None, Some(&[5, 6]))),
        RecurrentError::LengthOutOfRange {
            index: 1,
            length: 6,
            time: 5
        }
    );
    let h = Tensor::zeros([1, 2, 4], &device);
    assert_eq!(
        err(lstm.try_forward(
            x.clone(),
            Some(RecurrentState {
                hidden: h.clone(),
                cell: None
            }),
            None
        )),
        RecurrentError::MissingCellState
    );
    assert_eq!(
        err(lstm.try_forward(
            x,
            Some(RecurrentState {
                hidden: Tensor::zeros([2, 2, 4], &device),
                cell: Some(h)
            }),
            None
        )),
        RecurrentError::StateShape {
            which: "hidden",
            expected: [1, 2, 4],
            got: [2, 2, 4]
        }
    );
}

#[test]
fn state_dict_import_names_missing_and_misshapen_keys() {
    let device = Default::default();
    let lstm = RecurrentConfig::new(CellKind::lstm(), 3, 4).init::<B>(&device);
    let mut dict = lstm.state_dict();
    dict.remove("bias_hh_l0");
    let err = lstm
        .clone()
        .load_state_dict(&dict)
        .expect_err("missing key");
    assert_eq!(err.to_string(), "missing key \"bias_hh_l0\" in state_dict");
    let mut dict = lstm.state_dict();
    dict.insert(
        "weight_ih_l0".into(),
        burn::tensor::TensorData::new(vec![0.0f32; 12], [4, 3]),
    );
    let err = lstm
        .clone()
        .load_state_dict(&dict)
        .expect_err("wrong shape");
    assert_eq!(
        err.to_string(),
        "size mismatch for weight_ih_l0: expected [16, 3], got [4, 3]"
    );
    let mut dict = lstm.state_dict();
    dict.insert(
        "weight_ih_l1".into(),
        burn::tensor::TensorData::new(vec![0.0f32; 48], [16, 3]),
    );
    let err = lstm.load_state_dict(&dict).expect_err("unexpected key");
    assert_eq!(
        err.to_string(),
        "unexpected key \"weight_ih_l1\" in state_dict"
    );
}

/// PyTorch layout `[out, in]` of a burn `Linear` (which stores `[in, out]`).
fn torch_weight(linear: &Linear<B>) -> Tensor<B, 2> {
    linear.weight.val().transpose()
}

fn fused(gates: &[&burn::nn::GateController<B>]) -> StateDict {
    let cat_w = |f: fn(&burn::nn::GateController<B>) -> &Linear<B>| {
        Tensor::cat(gates.iter().map(|g| torch_weight(f(g))).collect(), 0).into_data()
    };
    let cat_b = |f: fn(&burn::nn::GateController<B>) -> &Linear<B>| {
        Tensor::cat(
            gates
                .iter()
                .map(|g| f(g).bias.as_ref().expect("bias").val())
                .collect(),
            0,
        )
        .into_data()
    };
    StateDict::from([
        ("weight_ih_l0".into(), cat_w(|g| &g.input_transform)),
        ("weight_hh_l0".into(), cat_w(|g| &g.hidden_transform)),
        ("bias_ih_l0".into(), cat_b(|g| &g.input_transform)),
        ("bias_hh_l0".into(), cat_b(|g| &g.hidden_transform)),
    ])
}

#[test]
fn lstm_equals_burns_nn_lstm() {
    let device = Default::default();
    let reference = LstmConfig::new(6, 5, true).init::<B>(&device);
    let g = &reference;
    let dict = fused(&[&g.input_gate, &g.forget_gate, &g.cell_gate, &g.output_gate]);
    let ours = RecurrentConfig::new(CellKind::lstm(), 6, 5)
        .init::<B>(&device)
        .load_state_dict(&dict)
        .expect("weights fit");
    let x = tensor::<B, 3>([3, 8, 6], 7, &device);
    let (y_ref, state_ref) = reference.forward(x.clone(), None);
    let (y, state) = ours.forward(x, None, None);
    assert!(max_abs_diff(y, y_ref) < 1e-6);
    assert!(max_abs_diff(state.hidden.squeeze_dim(0), state_ref.hidden) < 1e-6);
    assert!(max_abs_diff(state.cell.expect("cell").squeeze_dim(0), state_ref.cell) < 1e-6);
}

#[test]
fn gru_equals_burns_nn_gru_in_both_reset_forms() {
    let device = Default::default();
    for reset_after in [true, false] {
        let reference = GruConfig::new(6, 5, true)
            .with_reset_after(reset_after)
            .init::<B>(&device);
        let g = &reference;
        let dict = fused(&[&g.reset_gate, &g.update_gate, &g.new_gate]);
        let ours = RecurrentConfig::new(CellKind::Gru { reset_after }, 6, 5)
            .init::<B>(&device)
            .load_state_dict(&dict)
            .expect("weights fit");
        let x = tensor::<B, 3>([3, 8, 6], 8, &device);
        let y_ref = reference.forward(x.clone(), None);
        let (y, _) = ours.forward(x, None, None);
        assert!(max_abs_diff(y, y_ref) < 1e-6, "reset_after = {reset_after}");
    }
}

#[test]
fn burn_recorders_save_and_load_every_cell() {
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    let device = Default::default();
    let directory = tempfile::tempdir().expect("tempdir");
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    for (name, cell) in all_cells() {
        let config = models::SequenceClassifierConfig::new(
            RecurrentConfig::new(cell, 3, 4)
                .with_num_layers(2)
                .with_bidirectional(true),
            5,
        );
        let saved = config.init::<B>(&device);
        // Parameters are initialised lazily, and each clone of an uninitialised module
        // draws its own values: read them (which initialises them) before saving a clone.
        let expected = saved.state_dict();
        let path = directory.path().join(name);
        saved.clone().save_file(&path, &recorder).expect("saves");
        let loaded = config
            .init::<B>(&device)
            .load_file(&path, &recorder, &device)
            .expect("loads");
        assert_eq!(
            loaded.state_dict(),
            expected,
            "{name}: the loaded weights differ"
        );
        let x = tensor::<B, 3>([2, 5, 3], 4, &device);
        let diff = max_abs_diff(saved.forward(x.clone(), None), loaded.forward(x, None));
        assert_eq!(
            diff, 0.0,
            "{name}: the loaded model computes something else"
        );
    }
}

#[test]
fn dropout_acts_between_layers_only_while_training() {
    let device = Default::default();
    let config = RecurrentConfig::new(CellKind::lstm(), 3, 16)
        .with_num_layers(2)
        .with_dropout(0.5);
    let training = config.init::<AB>(&device);
    let x = tensor::<AB, 3>([4, 6, 3], 5, &device);
    let (first, _) = training.forward(x.clone(), None, None);
    let (second, _) = training.forward(x.clone(), None, None);
    assert!(
        max_abs_diff(first.clone(), second) > 1e-3,
        "two training passes draw different masks"
    );
    // The same weights without autodiff (inference) and with dropout 0 agree exactly.
    let inference = training.valid();
    let without = config
        .clone()
        .with_dropout(0.0)
        .init::<B>(&device)
        .load_state_dict(&inference.state_dict())
        .expect("same layout");
    let x = tensor::<B, 3>([4, 6, 3], 5, &device);
    let diff = max_abs_diff(
        inference.forward(x.clone(), None, None).0,
        without.forward(x, None, None).0,
    );
    assert_eq!(diff, 0.0, "no dropout at inference");
    // One layer: nothing to drop between layers, so training passes are deterministic.
    let single = RecurrentConfig::new(CellKind::lstm(), 3, 16)
        .with_dropout(0.5)
        .init::<AB>(&device);
    let x = tensor::<AB, 3>([4, 6, 3], 5, &device);
    let diff = max_abs_diff(
        single.forward(x.clone(), None, None).0,
        single.forward(x, None, None).0,
    );
    assert_eq!(diff, 0.0, "a single layer has no dropout");
}
