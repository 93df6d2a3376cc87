//! `QuantizedRecurrent` against the f32 module it was built from: bit for bit at f32, the
//! same bits on every int8 instruction set, and each step within the error bound its
//! scales give, on every cell.

mod common;

use burn::tensor::{Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use common::{all_cells, fixed_weights, tensor, values};
use isa::{Bf16Isa, Int8Isa, set_bf16_isa_limit, set_int8_isa_limit};
use models::{
    CellKind, Nonlinearity, Precision, QuantizeError, Recurrent, RecurrentConfig, RecurrentError,
    RecurrentState,
};

type B = NdArray;

const INPUT: usize = 13;
const HIDDEN: usize = 24;

fn stack(cell: &CellKind, layers: usize, bidirectional: bool) -> Recurrent<B> {
    let device = Default::default();
    let module = RecurrentConfig::new(cell.clone(), INPUT, HIDDEN)
        .with_num_layers(layers)
        .with_bidirectional(bidirectional)
        .init::<B>(&device);
    let dict = fixed_weights(&module.state_dict(), 0.6);
    module.load_state_dict(&dict).expect("same keys")
}

fn initial_state(module: &Recurrent<B>, batch: usize, seed: u64) -> RecurrentState<B, 3> {
    let device = Default::default();
    let shape = [module.cells.len(), batch, HIDDEN];
    RecurrentState {
        hidden: tensor(shape, seed, &device),
        cell: module.cells[0]
            .has_cell_state()
            .then(|| tensor::<B, 3>(shape, seed + 1, &device).mul_scalar(3.0)),
    }
}

/// Inputs in [-1, 1), one value in 11 scaled by 20 so that some gates saturate.
fn input(batch: usize, time: usize, seed: u64) -> Tensor<B, 3> {
    let x: Vec<f32> = values(batch * time * INPUT, seed)
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i % 11 == 0 { 20.0 * v } else { v })
        .collect();
    Tensor::from_data(
        TensorData::new(x, [batch, time, INPUT]),
        &Default::default(),
    )
}

fn bits(t: Tensor<B, 3>) -> Vec<u32> {
    t.into_data()
        .to_vec::<f32>()
        .expect("f32")
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn run(
    module: &models::QuantizedRecurrent,
    x: Tensor<B, 3>,
    state: Option<RecurrentState<B, 3>>,
    lengths: Option<&[usize]>,
) -> Vec<Vec<u32>> {
    let (y, last) = module.forward(x, state, lengths);
    let mut all = vec![bits(y), bits(last.hidden)];
    all.extend(last.cell.map(bits));
    all
}

#[test]
fn f32_precision_is_the_module_bit_for_bit() {
    let lengths = [9, 4, 7];
    for (name, cell) in all_cells() {
        let module = stack(&cell, 2, true);
        let f32 = module.quantize(Precision::F32).unwrap();
        let x = input(3, 9, 1);
        let state = initial_state(&module, 3, 2);
        let (y, last) = module.forward(x.clone(), Some(state.clone()), Some(&lengths));
        let mut want = vec![bits(y), bits(last.hidden)];
        want.extend(last.cell.map(bits));
        assert_eq!(run(&f32, x, Some(state), Some(&lengths)), want, "{name}");
    }
}

#[test]
fn every_int8_instruction_set_gives_the_same_bits() {
    for (name, cell) in all_cells() {
        let module = stack(&cell, 2, true);
        let int8 = module.quantize(Precision::Int8).unwrap();
        let x = input(5, 6, 3);
        let state = initial_state(&module, 5, 4);
        set_int8_isa_limit(Some(Int8Isa::Portable));
        let portable = run(
            &int8,
            x.clone(),
            Some(state.clone()),
            Some(&[6, 2, 5, 6, 1]),
        );
        for isa in Int8Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
            set_int8_isa_limit(Some(isa));
            let got = run(
                &int8,
                x.clone(),
                Some(state.clone()),
                Some(&[6, 2, 5, 6, 1]),
            );
            assert_eq!(got, portable, "{name} on {isa:?}");
        }
        set_int8_isa_limit(None);
    }
}

/// A one-layer module's PyTorch weights as f64 rows: `W_ih` `[G·H, D]`, `W_hh` `[G·H, H]`,
/// `b_hh` and the peepholes.
struct Weights {
    ih: Vec<Vec<f64>>,
    hh: Vec<Vec<f64>>,
    b_hh: Vec<f64>,
    peephole: Vec<f64>,
}

impl Weights {
    fn of(module: &Recurrent<B>) -> Self {
        let dict = module.state_dict();
        let flat = |key: &str| -> Vec<f64> {
            dict.get(key).map_or(Vec::new(), |d| {
                d.to_vec::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(f64::from)
                    .collect()
            })
        };
        let rows = |key: &str| -> Vec<Vec<f64>> {
            let shape = &dict[key].shape;
            flat(key).chunks(shape[1]).map(<[f64]>::to_vec).collect()
        };
        Self {
            ih: rows("weight_ih_l0"),
            hh: rows("weight_hh_l0"),
            b_hh: flat("bias_hh_l0"),
            peephole: flat("weight_peephole_l0"),
        }
    }
}

/// A precision and how its bf16 products are computed (ignored at the other precisions).
type Rounding = (Precision, Bf16Isa);

/// Every rounding this CPU runs: int8, and bf16 on each supported [`Bf16Isa`].
fn roundings() -> Vec<Rounding> {
    let bf16 = Bf16Isa::ALL.into_iter().filter(|isa| isa.is_supported());
    std::iter::once((Precision::Int8, Bf16Isa::Widened))
        .chain(bf16.map(|isa| (Precision::Bf16, isa)))
        .collect()
}

/// `module` at `precision`, its bf16 products computed on `bf16`.
fn quantize(module: &Recurrent<B>, (precision, bf16): Rounding) -> models::QuantizedRecurrent {
    set_bf16_isa_limit(Some(bf16));
    let quantized = module.quantize(precision).unwrap();
    set_bf16_isa_limit(None);
    quantized
}

fn largest(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, f64::max)
}

/// The bound on `|Σ_i a_i w_i − the precision's product|` for one output unit, where
/// `|a_i| ≤ a[i]` and `max_i |a_i| ≤ a_max`: int8 rounds `a` to a multiple of
/// `t = max|a|/127` and `w` to a multiple of `s = max|w|/127` (half a step each), so the
/// error is at most `Σ_i |a_i| s/2 + |w_i| t/2 + t·s/4`; bf16 rounds `w` by at most
/// `2⁻⁸ |w_i|`, and with `vdpbf16ps` `a` too, so each product by at most `(2⁻⁷ + 2⁻¹⁶)
/// |a_i w_i|`. A little more for f32's own rounding of the sums.
fn product_bound((precision, bf16): Rounding, a: &[f64], a_max: f64, w: &[f64]) -> f64 {
    let magnitude: f64 = a.iter().zip(w).map(|(a, w)| (a * w).abs()).sum();
    let bound: f64 = match precision {
        Precision::Int8 => {
            let (t, s) = (a_max / 127.0, largest(w.iter().map(|v| v.abs())) / 127.0);
            a.iter()
                .zip(w)
                .map(|(a, w)| a.abs() * s / 2.0 + w.abs() * t / 2.0 + t * s / 4.0)
                .sum()
        }
        Precision::Bf16 => match bf16 {
            Bf16Isa::Widened => magnitude / 256.0,
            Bf16Isa::Avx512Bf16 => magnitude * (1.0 / 128.0 + 1.0 / 65536.0),
        },
        Precision::F32 => 0.0,
    };
    bound * 1.001 + 1e-5 * magnitude + 1e-6
}

/// The bound on one step's `|Δh|` (and `|Δc|`) for one sequence, from the pre-activation
/// bounds of [`product_bound`] carried through the cell: `σ′ ≤ ¼`, `tanh′ ≤ 1`, gates in
/// [0, 1] and `|tanh| ≤ 1`.
fn step_bound(
    cell: &CellKind,
    precision: Rounding,
    w: &Weights,
    x: &[f64],
    h: &[f64],
    c: &[f64],
) -> (f64, f64) {
    let units = HIDDEN;
    let x_max = largest(x.iter().map(|v| v.abs()));
    let h_max = largest(h.iter().map(|v| v.abs()));
    let pre = |rows: std::ops::Range<usize>, hh: bool| {
        largest(rows.map(|j| {
            product_bound(precision, x, x_max, &w.ih[j])
                + if hh {
                    product_bound(precision, h, h_max, &w.hh[j])
                } else {
                    0.0
                }
        }))
    };
    match cell {
        CellKind::Rnn { nonlinearity } => {
            let e = pre(0..units, true);
            let slope = if *nonlinearity == Nonlinearity::Sigmoid {
                0.25
            } else {
                1.0
            };
            (slope * e, 0.0)
        }
        CellKind::Lstm { peephole, .. } => {
            let e = pre(0..4 * units, true);
            let (d_gate, d_g) = (e / 4.0, e);
            let c_max = largest(c.iter().map(|v| v.abs()));
            let d_c = c_max * d_gate + d_gate + d_g + d_gate * d_g;
            let p_o = if *peephole {
                largest(w.peephole[2 * units..].iter().map(|v| v.abs()))
            } else {
                0.0
            };
            let d_o = (e + p_o * d_c) / 4.0;
            (d_o + d_c + d_o * d_c, d_c)
        }
        CellKind::Gru { reset_after: true } => {
            let e = pre(0..3 * units, true);
            let hn_max = largest((2 * units..3 * units).map(|j| {
                (w.hh[j].iter().zip(h).map(|(w, h)| w * h).sum::<f64>()
                    + w.b_hh.get(j).unwrap_or(&0.0))
                .abs()
            }));
            let d_gate = e / 4.0;
            let d_n = e + d_gate * (hn_max + e);
            (d_n + d_gate * (h_max + 1.0) + d_gate * d_n, 0.0)
        }
        CellKind::Gru { reset_after: false } => {
            let d_gate = pre(0..2 * units, true) / 4.0;
            // `r ⊙ h` is off by at most `d_rh` before its own product with `W_hn` rounds it;
            // `|r ⊙ h| ≤ |h|` either way.
            let d_rh = d_gate * h_max;
            let d_hn = largest((2 * units..3 * units).map(|j| {
                let w_abs: f64 = w.hh[j].iter().map(|v| v.abs()).sum();
                product_bound(precision, h, h_max, &w.hh[j]) + w_abs * d_rh
            }));
            let d_n = pre(2 * units..3 * units, false) + d_hn;
            (d_n + d_gate * (h_max + 1.0) + d_gate * d_n, 0.0)
        }
    }
}

fn f64_values(t: &Tensor<B, 3>) -> Vec<f64> {
    let values = t.to_data().to_vec::<f32>().unwrap();
    values.into_iter().map(f64::from).collect()
}

fn rows(t: &Tensor<B, 3>) -> Vec<Vec<f64>> {
    let [_, batch, hidden] = t.dims();
    let values = f64_values(t);
    (0..batch)
        .map(|b| values[b * hidden..(b + 1) * hidden].to_vec())
        .collect()
}

/// Steps taken one at a time from the f32 module's own states (so each step starts where
/// f32 does): the lower precision's `h_t` and `c_t` within [`step_bound`] of f32's.
#[test]
fn each_step_is_within_the_bound_of_its_scales_on_every_cell() {
    let (batch, time) = (4, 12);
    for (name, cell) in all_cells() {
        let module = stack(&cell, 1, false);
        let weights = Weights::of(&module);
        let x = input(batch, time, 7);
        let x_rows = f64_values(&x);
        for rounding in roundings() {
            let quantized = quantize(&module, rounding);
            let precision = format!("{} {:?}", rounding.0, rounding.1);
            let mut state = initial_state(&module, batch, 8);
            let mut worst = 0.0f64;
            for t in 0..time {
                let step = x.clone().narrow(1, t, 1);
                let (_, want) = module.forward(step.clone(), Some(state.clone()), None);
                let (_, got) = quantized.forward(step, Some(state.clone()), None);
                let (h, c) = (rows(&state.hidden), state.cell.as_ref().map(rows));
                let (want_h, got_h) = (rows(&want.hidden), rows(&got.hidden));
                for b in 0..batch {
                    let at = (b * time + t) * INPUT;
                    let c_b = c.as_ref().map_or(&[][..], |c| &c[b][..]);
                    let (bound_h, bound_c) = step_bound(
                        &cell,
                        rounding,
                        &weights,
                        &x_rows[at..at + INPUT],
                        &h[b],
                        c_b,
                    );
                    for (g, w) in got_h[b].iter().zip(&want_h[b]) {
                        assert!(
                            (g - w).abs() <= bound_h,
                            "{name} {precision} t={t} b={b}: h {g} vs {w}, bound {bound_h}"
                        );
                        worst = worst.max((g - w).abs() / bound_h);
                    }
                    if let (Some(got_c), Some(want_c)) = (&got.cell, &want.cell) {
                        for (g, w) in rows(got_c)[b].iter().zip(&rows(want_c)[b]) {
                            assert!(
                                (g - w).abs() <= bound_c,
                                "{name} {precision} t={t} b={b}: c {g} vs {w}, bound {bound_c}"
                            );
                        }
                    }
                }
                state = want;
            }
            // The bound is not vacuous: the precision does change the outputs.
            assert!(
                worst > 0.0,
                "{name} {precision}: no difference from f32 at all"
            );
        }
    }
}

#[test]
fn a_whole_stack_stays_close_to_f32() {
    for (name, cell) in all_cells() {
        let module = stack(&cell, 2, true);
        let x = input(3, 20, 9);
        let (want, _) = module.forward(x.clone(), None, None);
        for rounding in roundings() {
            // Bf16 with `vdpbf16ps` rounds both factors: twice the widened form's bound.
            let tolerance = match rounding {
                (Precision::Int8, _) => 0.15,
                (_, Bf16Isa::Widened) => 0.05,
                (_, Bf16Isa::Avx512Bf16) => 0.10,
            };
            let precision = format!("{} {:?}", rounding.0, rounding.1);
            let (got, _) = quantize(&module, rounding).forward(x.clone(), None, None);
            // Relative to the outputs' range (a ReLU RNN's grow without bound).
            let scale = want.clone().abs().max().into_scalar().max(1.0);
            let diff = common::max_abs_diff(got, want.clone()) / scale;
            assert!(diff < tolerance, "{name} {precision}: {diff}");
        }
    }
}

#[test]
fn weights_take_a_quarter_and_a_half_of_the_memory() {
    // The benchmark's small shape, two layers, both directions.
    let module = RecurrentConfig::new(CellKind::lstm(), 40, 128)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init::<B>(&Default::default());
    let bytes = |p: Precision| module.quantize(p).unwrap().weight_bytes() as f64;
    let f32 = bytes(Precision::F32);
    assert_eq!(f32, (4 * 128 * 4 * (40 + 128 + 256 + 128) * 2) as f64);
    assert_eq!(bytes(Precision::Bf16) * 2.0, f32);
    // int8 values plus one f32 scale per output unit (4 bytes per 40 to 256 values).
    let ratio = f32 / bytes(Precision::Int8);
    assert!((3.8..4.0).contains(&ratio), "{ratio}");
}

#[test]
fn an_autodiff_module_is_refused_with_a_typed_error() {
    let device = Default::default();
    let module = RecurrentConfig::new(CellKind::gru(), INPUT, HIDDEN).init::<Autodiff<B>>(&device);
    let err = module.quantize(Precision::Int8).unwrap_err();
    assert!(matches!(err, QuantizeError::Backend { .. }), "{err}");
    assert!(err.to_string().contains("NdArray"), "{err}");
}

#[test]
fn a_non_finite_weight_is_refused_and_named() {
    let module = stack(&CellKind::lstm(), 2, true);
    let mut dict = module.state_dict();
    let data = &dict["weight_hh_l1_reverse"];
    let mut v = data.to_vec::<f32>().unwrap();
    v[5] = f32::NAN;
    let shape = data.shape.clone();
    dict.insert("weight_hh_l1_reverse".into(), TensorData::new(v, shape));
    let module = module.load_state_dict(&dict).unwrap();
    match module.quantize(Precision::Bf16) {
        Err(QuantizeError::NonFinite { name, index, .. }) => {
            assert_eq!((name.as_str(), index), ("weight_hh_l1_reverse", 5));
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
}

#[test]
fn bad_shapes_get_the_modules_errors() {
    let module = stack(&CellKind::lstm(), 1, false);
    let int8 = module.quantize(Precision::Int8).unwrap();
    let device = Default::default();
    let wrong = Tensor::<B, 3>::zeros([2, 3, INPUT + 1], &device);
    assert!(matches!(
        int8.try_forward(wrong, None, None),
        Err(RecurrentError::InputSize { .. })
    ));
    let x = input(2, 3, 1);
    let no_cell = RecurrentState {
        hidden: Tensor::<B, 3>::zeros([1, 2, HIDDEN], &device),
        cell: None,
    };
    assert_eq!(
        int8.try_forward(x.clone(), Some(no_cell), None)
            .unwrap_err(),
        RecurrentError::MissingCellState
    );
    assert!(matches!(
        int8.try_forward(x, None, Some(&[3, 4])),
        Err(RecurrentError::LengthOutOfRange { .. })
    ));
}

/// A sequence alone (a batch of 1, whose input projections are computed a block of steps at
/// a time) gets the bits it gets inside a batch of 16 (every step's rows in one product), in
/// both directions and at every precision, through blocks that end inside the sequence.
#[test]
fn a_sequence_alone_gets_its_bits_in_a_batch() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let x = input(16, 70, 5);
    let row = |y: &Tensor<B, 3>, b: usize| bits(y.clone().narrow(0, b, 1));
    for (name, cell) in all_cells() {
        let module = stack(&cell, 2, true);
        let (batch, _) = pool.install(|| module.forward(x.clone(), None, None));
        for b in [0, 9] {
            let (alone, _) = pool.install(|| module.forward(x.clone().narrow(0, b, 1), None, None));
            assert_eq!(bits(alone), row(&batch, b), "{name}, module, row {b}");
        }
        for rounding in roundings() {
            let quantized = quantize(&module, rounding);
            let precision = format!("{} {:?}", rounding.0, rounding.1);
            let (batch, _) = pool.install(|| quantized.forward(x.clone(), None, None));
            for b in [0, 9] {
                let one = x.clone().narrow(0, b, 1);
                let (alone, _) = pool.install(|| quantized.forward(one, None, None));
                assert_eq!(bits(alone), row(&batch, b), "{name}, {precision}, row {b}");
            }
        }
    }
}
