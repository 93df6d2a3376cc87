//! The fused CPU kernels against the generic driver: same outputs, final states and
//! gradients (weights, input, initial state) for every cell the kernels cover, with two
//! layers, both directions, ragged lengths and a given initial state, on every instruction
//! set this CPU has and with the batch split between threads.

mod common;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use common::{all_cells, fixed_weights, max_abs_diff, tensor};
use models::{CellKind, CpuIsa, Kernels, Recurrent, RecurrentConfig, RecurrentState, StateDict};

type AD = Autodiff<NdArray>;

/// Held for each forward+backward pass: burn-autodiff 0.21 lets a `backward()` on one thread
/// free graph steps another thread is still building (tracel-ai/burn#5573), which drops the
/// initial state's gradient now and then when these tests run in parallel.
static AUTODIFF: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sizes of one comparison.
#[derive(Clone, Copy)]
struct Case {
    batch: usize,
    time: usize,
    input: usize,
    hidden: usize,
    /// `None`: every sequence full length.
    lengths: Option<&'static [usize]>,
    bidirectional: bool,
    /// Tolerances relative to the largest reference value (when above 1) rather than absolute:
    /// sums over 20 hidden units and ragged steps round differently in every summation order.
    relative: bool,
    /// Whether the input requires a gradient (a first layer's features do not, and the
    /// kernel then skips the input's gradient).
    input_grad: bool,
}

const SMALL: Case = Case {
    batch: 3,
    time: 6,
    input: 5,
    hidden: 4,
    lengths: Some(&[6, 2, 4]),
    bidirectional: true,
    relative: false,
    input_grad: true,
};

/// Wider than one 16-column panel and not a multiple of it, with more rows than one
/// register block, so that every part of the kernels' blocking runs.
const WIDE: Case = Case {
    batch: 11,
    time: 5,
    input: 3,
    hidden: 20,
    lengths: Some(&[5, 1, 3, 5, 2, 4, 5, 5, 1, 3, 4]),
    bidirectional: true,
    relative: true,
    input_grad: true,
};

fn stack<B: Backend>(cell: &CellKind, case: Case, device: &B::Device) -> Recurrent<B> {
    let model = RecurrentConfig::new(cell.clone(), case.input, case.hidden)
        .with_num_layers(2)
        .with_bidirectional(case.bidirectional)
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
    input_grad: Option<Tensor<NdArray, 3>>,
    h0_grad: Tensor<NdArray, 3>,
    c0_grad: Option<Tensor<NdArray, 3>>,
}

fn run(cell: &CellKind, case: Case, fused: bool) -> Pass {
    let _serial = AUTODIFF
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let device = Default::default();
    let mut model = stack::<AD>(cell, case, &device);
    model.kernels = if fused {
        Kernels::Auto
    } else {
        Kernels::Generic
    };
    let Case {
        batch,
        time,
        input,
        hidden,
        ..
    } = case;
    let states = 2 * if case.bidirectional { 2 } else { 1 };
    let mut x = tensor::<AD, 3>([batch, time, input], 1, &device);
    if case.input_grad {
        x = x.require_grad();
    }
    let h0 = tensor::<AD, 3>([states, batch, hidden], 2, &device).require_grad();
    let c0 = cell
        .has_cell_state()
        .then(|| tensor::<AD, 3>([states, batch, hidden], 3, &device).require_grad());
    let initial = RecurrentState {
        hidden: h0.clone(),
        cell: c0.clone(),
    };
    let (y, last) = model.forward(x.clone(), Some(initial), case.lengths);
    let out_width = y.dims()[2];
    let mut loss = (y.clone() * tensor::<AD, 3>([batch, time, out_width], 4, &device)).sum()
        + (last.hidden.clone() * tensor::<AD, 3>([states, batch, hidden], 5, &device)).sum();
    if let Some(c) = &last.cell {
        loss = loss + (c.clone() * tensor::<AD, 3>([states, batch, hidden], 6, &device)).sum();
    }
    let grads = loss.backward();
    Pass {
        output: y.inner(),
        hidden: last.hidden.inner(),
        cell: last.cell.map(|c| c.inner()),
        weight_grads: model.gradient_dict(&grads),
        input_grad: x.grad(&grads),
        h0_grad: h0.grad(&grads).expect("h0 gradient"),
        c0_grad: c0.map(|c| c.grad(&grads).expect("c0 gradient")),
    }
}

impl Case {
    /// What differences of `tolerance` are measured against, for a reference `values`.
    fn scale(&self, values: impl Iterator<Item = f32>) -> f32 {
        if self.relative {
            values.map(f32::abs).fold(1.0, f32::max)
        } else {
            1.0
        }
    }
}

fn assert_close(
    case: Case,
    name: &str,
    what: &str,
    fused: Tensor<NdArray, 3>,
    generic: Tensor<NdArray, 3>,
) {
    let scale = case.scale(generic.to_data().iter::<f32>());
    let diff = max_abs_diff(fused, generic);
    assert!(
        diff <= 2e-5 * scale,
        "{name}: {what} differs by {diff} (scale {scale})"
    );
}

fn compare(cell: &CellKind, name: &str, case: Case) {
    let fused = run(cell, case, true);
    let generic = run(cell, case, false);
    assert_close(case, name, "output", fused.output, generic.output);
    assert_close(case, name, "final h", fused.hidden, generic.hidden);
    match (fused.input_grad, generic.input_grad) {
        (Some(a), Some(b)) => assert_close(case, name, "d input", a, b),
        (None, None) => assert!(!case.input_grad, "{name}: no input gradient"),
        _ => panic!("{name}: input gradient in only one pass"),
    }
    assert_close(case, name, "d h0", fused.h0_grad, generic.h0_grad);
    match (fused.cell, generic.cell) {
        (Some(a), Some(b)) => assert_close(case, name, "final c", a, b),
        (None, None) => {}
        _ => panic!("{name}: cell state present in only one pass"),
    }
    if let (Some(a), Some(b)) = (fused.c0_grad, generic.c0_grad) {
        assert_close(case, name, "d c0", a, b);
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
        let scale = case.scale(want.iter().copied());
        assert!(
            worst <= 5e-5 * scale,
            "{name}: d {key} differs by {worst} (scale {scale})"
        );
    }
}

#[test]
fn fused_kernels_equal_the_generic_driver_with_lengths_and_both_directions() {
    for (name, cell) in all_cells() {
        compare(&cell, name, SMALL);
    }
}

#[test]
fn fused_kernels_equal_the_generic_driver_on_full_unidirectional_batches() {
    let case = Case {
        lengths: None,
        bidirectional: false,
        ..SMALL
    };
    for (name, cell) in all_cells() {
        compare(&cell, name, case);
    }
}

#[test]
fn an_input_without_gradient_leaves_every_other_gradient_as_the_generic_driver_gives() {
    let case = Case {
        input_grad: false,
        ..SMALL
    };
    for (name, cell) in all_cells() {
        compare(&cell, name, case);
    }
}

/// The instruction sets this CPU can run, from the most portable up.
fn supported_isas() -> Vec<CpuIsa> {
    CpuIsa::ALL
        .into_iter()
        .filter(|isa| isa.is_supported())
        .collect()
}

#[test]
fn every_instruction_set_and_thread_count_equals_the_generic_driver() {
    for isa in supported_isas() {
        for threads in [1, 4] {
            models::set_cpu_isa_limit(Some(isa));
            models::set_num_threads(threads);
            assert_eq!(models::cpu_isa(), isa);
            for (name, cell) in all_cells() {
                compare(&cell, &format!("{name} ({isa:?}, {threads} threads)"), WIDE);
            }
        }
    }
}

#[test]
fn fused_inference_without_autodiff_equals_the_generic_driver() {
    let device = Default::default();
    for isa in supported_isas() {
        models::set_cpu_isa_limit(Some(isa));
        for case in [SMALL, WIDE] {
            for (name, cell) in all_cells() {
                let mut model = stack::<NdArray>(&cell, case, &device);
                let x = tensor::<NdArray, 3>([case.batch, case.time, case.input], 1, &device);
                let (fused, fused_last) = model.forward(x.clone(), None, case.lengths);
                model.kernels = Kernels::Generic;
                let (generic, generic_last) = model.forward(x, None, case.lengths);
                let name = format!("{name} ({isa:?})");
                assert_close(case, &name, "output", fused, generic);
                assert_close(
                    case,
                    &name,
                    "final h",
                    fused_last.hidden,
                    generic_last.hidden,
                );
            }
        }
    }
}
