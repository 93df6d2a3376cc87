//! The fused CPU kernels against the generic driver: same outputs, final states and
//! gradients (weights, input, initial state) for every cell the kernels cover, with two
//! layers, both directions, ragged lengths and a given initial state.

mod common;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use common::{all_cells, fixed_weights, max_abs_diff, tensor};
use models::{CellKind, Recurrent, RecurrentConfig, RecurrentState, StateDict};

type AD = Autodiff<NdArray>;

const BATCH: usize = 3;
const TIME: usize = 6;
const INPUT: usize = 5;
const HIDDEN: usize = 4;
const LENGTHS: [usize; BATCH] = [6, 2, 4];

fn stack<B: Backend>(cell: &CellKind, bidirectional: bool, device: &B::Device) -> Recurrent<B> {
    let model = RecurrentConfig::new(cell.clone(), INPUT, HIDDEN)
        .with_num_layers(2)
        .with_bidirectional(bidirectional)
        .init::<B>(device);
    let weights = fixed_weights(&model.state_dict(), 0.8);
    model.load_state_dict(&weights).expect("same keys")
}

/// Everything one pass produces: outputs, final state, and (on autodiff) the gradients of a
/// loss that touches all of them.
struct Pass {
    output: Tensor<NdArray, 3>,
    hidden: Tensor<NdArray, 3>,
    cell: Option<Tensor<NdArray, 3>>,
    weight_grads: StateDict,
    input_grad: Tensor<NdArray, 3>,
    h0_grad: Tensor<NdArray, 3>,
    c0_grad: Option<Tensor<NdArray, 3>>,
}

fn run(cell: &CellKind, bidirectional: bool, lengths: Option<&[usize]>, fused: bool) -> Pass {
    models::set_fused_kernels(fused);
    let device = Default::default();
    let model = stack::<AD>(cell, bidirectional, &device);
    let states = 2 * if bidirectional { 2 } else { 1 };
    let x = tensor::<AD, 3>([BATCH, TIME, INPUT], 1, &device).require_grad();
    let h0 = tensor::<AD, 3>([states, BATCH, HIDDEN], 2, &device).require_grad();
    let c0 = cell
        .has_cell_state()
        .then(|| tensor::<AD, 3>([states, BATCH, HIDDEN], 3, &device).require_grad());
    let initial = RecurrentState {
        hidden: h0.clone(),
        cell: c0.clone(),
    };
    let (y, last) = model.forward(x.clone(), Some(initial), lengths);
    let out_width = y.dims()[2];
    let mut loss = (y.clone() * tensor::<AD, 3>([BATCH, TIME, out_width], 4, &device)).sum()
        + (last.hidden.clone() * tensor::<AD, 3>([states, BATCH, HIDDEN], 5, &device)).sum();
    if let Some(c) = &last.cell {
        loss = loss + (c.clone() * tensor::<AD, 3>([states, BATCH, HIDDEN], 6, &device)).sum();
    }
    let grads = loss.backward();
    models::set_fused_kernels(true);
    Pass {
        output: y.inner(),
        hidden: last.hidden.inner(),
        cell: last.cell.map(|c| c.inner()),
        weight_grads: model.gradient_dict(&grads),
        input_grad: x.grad(&grads).expect("input gradient"),
        h0_grad: h0.grad(&grads).expect("h0 gradient"),
        c0_grad: c0.map(|c| c.grad(&grads).expect("c0 gradient")),
    }
}

fn assert_close(name: &str, what: &str, fused: Tensor<NdArray, 3>, generic: Tensor<NdArray, 3>) {
    let diff = max_abs_diff(fused, generic);
    assert!(diff <= 2e-5, "{name}: {what} differs by {diff}");
}

fn compare(cell: &CellKind, name: &str, bidirectional: bool, lengths: Option<&[usize]>) {
    let fused = run(cell, bidirectional, lengths, true);
    let generic = run(cell, bidirectional, lengths, false);
    assert_close(name, "output", fused.output, generic.output);
    assert_close(name, "final h", fused.hidden, generic.hidden);
    assert_close(name, "d input", fused.input_grad, generic.input_grad);
    assert_close(name, "d h0", fused.h0_grad, generic.h0_grad);
    match (fused.cell, generic.cell) {
        (Some(a), Some(b)) => assert_close(name, "final c", a, b),
        (None, None) => {}
        _ => panic!("{name}: cell state present in only one pass"),
    }
    if let (Some(a), Some(b)) = (fused.c0_grad, generic.c0_grad) {
        assert_close(name, "d c0", a, b);
    }
    assert_eq!(
        fused.weight_grads.keys().collect::<Vec<_>>(),
        generic.weight_grads.keys().collect::<Vec<_>>(),
        "{name}: different parameters received gradients"
    );
    for (key, expected) in &generic.weight_grads {
        let got: Vec<f32> = fused.weight_grads[key].iter::<f32>().collect();
        let want: Vec<f32> = expected.iter::<f32>().collect();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 5e-5, "{name}: d {key} differs by {worst}");
    }
}

#[test]
fn fused_kernels_equal_the_generic_driver_with_lengths_and_both_directions() {
    for (name, cell) in all_cells() {
        compare(&cell, name, true, Some(&LENGTHS));
    }
}

#[test]
fn fused_kernels_equal_the_generic_driver_on_full_unidirectional_batches() {
    for (name, cell) in all_cells() {
        compare(&cell, name, false, None);
    }
}

#[test]
fn fused_inference_without_autodiff_equals_the_generic_driver() {
    let device = Default::default();
    for (name, cell) in all_cells() {
        let model = stack::<NdArray>(&cell, true, &device);
        let x = tensor::<NdArray, 3>([BATCH, TIME, INPUT], 1, &device);
        models::set_fused_kernels(true);
        let (fused, fused_last) = model.forward(x.clone(), None, Some(&LENGTHS));
        models::set_fused_kernels(false);
        let (generic, generic_last) = model.forward(x, None, Some(&LENGTHS));
        models::set_fused_kernels(true);
        assert_close(name, "output", fused, generic);
        assert_close(name, "final h", fused_last.hidden, generic_last.hidden);
    }
}
