//! An exponential moving average of a model's weights, updated after every optimiser step:
//! `average = decay · average + (1 − decay) · weights`, as PyTorch's
//! `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))` and Keras's
//! `use_ema=True, ema_momentum=decay`. With `training.ema_decay` set, validation, `best.mpk`
//! and the reports use the average; the optimiser keeps updating the raw weights.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Every float parameter of a module, flattened, by id.
struct Collect<B: Backend> {
    tensors: HashMap<ParamId, Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.tensors.insert(param.id, value.reshape([n]));
    }
}

struct Blend<B: Backend> {
    weights: HashMap<ParamId, Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, average, mapper) = param.consume();
        let Some(weights) = self.weights.remove(&id) else {
            return Param::from_mapped_value(id, average, mapper);
        };
        let blended = average.clone().mul_scalar(self.decay).add(
            weights
                .reshape(average.shape())
                .mul_scalar(1.0 - self.decay),
        );
        Param::from_mapped_value(id, blended, mapper)
    }
}

/// `average` moved towards `weights` by `1 − decay`, parameter by parameter (matched by
/// id, so `weights` is the same model after some optimiser steps; parameters it lacks are
/// left as they are).
pub(crate) fn blend<B: Backend, M: Module<B>>(average: M, weights: &M, decay: f64) -> M {
    let mut collect = Collect {
        tensors: HashMap::new(),
    };
    weights.visit(&mut collect);
    average.map(&mut Blend {
        weights: collect.tensors,
        decay,
    })
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    use burn_ndarray::NdArray;
    use models::{CellKind, RecurrentConfig, SequenceClassifier, SequenceClassifierConfig};

    use super::blend;

    struct Values(Vec<f32>);
    impl ModuleVisitor<NdArray> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<NdArray, D>>) {
            self.0
                .extend(param.val().into_data().to_vec::<f32>().expect("f32"));
        }
    }

    fn flat(model: &SequenceClassifier<NdArray>) -> Vec<f32> {
        let mut values = Values(Vec::new());
        model.visit(&mut values);
        values.0
    }

    #[test]
    fn blending_moves_each_weight_by_one_minus_decay() {
        let device = Default::default();
        let config = SequenceClassifierConfig::new(RecurrentConfig::new(CellKind::gru(), 3, 5), 2);
        let start = config.init::<NdArray>(&device);
        // Parameters are drawn on first use: draw them before the copies share them.
        let drawn = flat(&start);
        // The same parameters (same ids) with other values: every weight doubled plus one.
        let moved = start.clone().map(&mut Shift);
        let average = blend(start.clone(), &moved, 0.75);
        let (a, m, b) = (flat(&start), flat(&moved), flat(&average));
        assert_eq!(a, drawn);
        assert_eq!(a.len(), b.len());
        assert!(a.len() > 20);
        for ((a, m), b) in a.iter().zip(&m).zip(&b) {
            let expected = 0.75 * a + 0.25 * m;
            assert!(
                (b - expected).abs() <= 1e-6 * (1.0 + expected.abs()),
                "{b} vs {expected}"
            );
        }
    }

    struct Shift;
    impl burn::module::ModuleMapper<NdArray> for Shift {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<NdArray, D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<NdArray, D>> {
            let (id, tensor, mapper) = param.consume();
            burn::module::Param::from_mapped_value(
                id,
                tensor.mul_scalar(2.0).add_scalar(1.0),
                mapper,
            )
        }
    }
}
