//! Global-norm and value clipping of gradients.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use models::{CellKind, RecurrentConfig, SequenceClassifier, SequenceClassifierConfig};
use train::backend::CpuBackend;
use train::engine::clip::{clip_global_norm, clip_value, global_norm};

type B = CpuBackend;

fn model_and_grads() -> (SequenceClassifier<B>, GradientsParams) {
    let device = Default::default();
    let model = SequenceClassifierConfig::new(RecurrentConfig::new(CellKind::lstm(), 3, 8), 4)
        .init::<B>(&device);
    let values: Vec<f32> = (0..2 * 5 * 3)
        .map(|i| (i as f32 * 0.37).sin() * 3.0)
        .collect();
    let x = Tensor::<B, 3>::from_data(TensorData::new(values, [2, 5, 3]), &device);
    let loss = model.forward(x, None).powi_scalar(2).sum() * 100.0;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (model, grads)
}

struct LargestElement<'a> {
    grads: &'a GradientsParams,
    largest: f64,
}

impl ModuleVisitor<B> for LargestElement<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self
            .grads
            .get::<<B as burn::tensor::backend::AutodiffBackend>::InnerBackend, D>(param.id)
            .expect("every parameter has a gradient");
        self.largest = self
            .largest
            .max(grad.abs().max().into_scalar().elem::<f64>());
    }
}

#[test]
fn global_norm_clipping_scales_all_gradients_together() {
    let (model, mut grads) = model_and_grads();
    let before = global_norm::<B, _>(&model, &grads);
    assert!(
        before > 1.0,
        "the test needs a large gradient, got {before}"
    );
    let reported = clip_global_norm::<B, _>(&model, &mut grads, before / 4.0);
    assert_eq!(reported, before);
    let after = global_norm::<B, _>(&model, &grads);
    assert!(
        (after - before / 4.0).abs() < 1e-4 * before,
        "{after} vs {}",
        before / 4.0
    );
    // Below the limit nothing changes.
    clip_global_norm::<B, _>(&model, &mut grads, before);
    assert!((global_norm::<B, _>(&model, &grads) - after).abs() < 1e-9 * before);
}

#[test]
fn value_clipping_bounds_every_element() {
    let (model, mut grads) = model_and_grads();
    let mut largest = LargestElement {
        grads: &grads,
        largest: 0.0,
    };
    model.visit(&mut largest);
    assert!(largest.largest > 0.01);
    clip_value::<B, _>(&model, &mut grads, 0.01);
    let mut largest = LargestElement {
        grads: &grads,
        largest: 0.0,
    };
    model.visit(&mut largest);
    assert!(largest.largest <= 0.01 + 1e-9, "{}", largest.largest);
}
