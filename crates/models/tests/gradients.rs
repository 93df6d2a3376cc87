//! Gradients of every cell and option against central finite differences, in f64.

mod common;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use common::{all_cells, fixed_weights, values};
use models::{CellKind, RecurrentConfig, SequenceClassifier, SequenceClassifierConfig, StateDict};

type F64 = NdArray<f64>;
type AF64 = Autodiff<NdArray<f64>>;

const LENGTHS: [usize; 2] = [4, 3];

fn config(cell: CellKind) -> SequenceClassifierConfig {
    let recurrent = RecurrentConfig::new(cell, 2, 3)
        .with_num_layers(2)
        .with_bidirectional(true);
    SequenceClassifierConfig::new(recurrent, 2)
}

/// A scalar of every output: Σ y ⊙ R over the valid steps, with fixed R.
fn loss<B: Backend>(model: &SequenceClassifier<B>, device: &B::Device) -> Tensor<B, 1> {
    let to64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let x = Tensor::<B, 3>::from_data(TensorData::new(to64(values(16, 11)), [2, 4, 2]), device);
    let r = Tensor::<B, 3>::from_data(TensorData::new(to64(values(16, 12)), [2, 4, 2]), device);
    (model.forward(x, Some(&LENGTHS)) * r).sum()
}

fn loss_at(cell: &CellKind, dict: &StateDict, device: &burn_ndarray::NdArrayDevice) -> f64 {
    let model = config(cell.clone())
        .init::<F64>(device)
        .load_state_dict(dict)
        .expect("weights fit");
    loss(&model, device).into_scalar().elem()
}

#[test]
fn gradients_equal_central_finite_differences() {
    let device = Default::default();
    let eps = 1e-6;
    for (name, cell) in all_cells() {
        let model = config(cell.clone()).init::<AF64>(&device);
        let weights = fixed_weights(&model.state_dict(), 0.5);
        let model = model.load_state_dict(&weights).expect("same keys");
        let weights = model.state_dict();
        let analytic = model.gradient_dict(&loss(&model, &device).backward());
        assert_eq!(
            analytic.len(),
            weights.len(),
            "{name}: parameters without gradient"
        );
        let mut checked = 0;
        for (key, data) in &weights {
            let base: Vec<f64> = data.iter::<f64>().collect();
            let grad: Vec<f64> = analytic[key].iter::<f64>().collect();
            for i in 0..base.len() {
                let nudged = |delta: f64| {
                    let mut v = base.clone();
                    v[i] += delta;
                    let mut dict = weights.clone();
                    dict.insert(key.clone(), TensorData::new(v, data.shape.clone()));
                    loss_at(&cell, &dict, &device)
                };
                let numeric = (nudged(eps) - nudged(-eps)) / (2.0 * eps);
                let tolerance = 1e-6 + 1e-5 * numeric.abs();
                assert!(
                    (grad[i] - numeric).abs() <= tolerance,
                    "{name}: d loss / d {key}[{i}]: autodiff {} vs finite differences {numeric}",
                    grad[i]
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{name}: only {checked} entries checked");
    }
}
