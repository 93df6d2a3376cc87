//! Gradient clipping by the global L2 norm over all parameters (PyTorch's
//! `clip_grad_norm_`), and by value (`clip_grad_value_`). burn's own clipping acts on each
//! parameter tensor separately.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

struct SumOfSquares<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SumOfSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.total += grad.powi_scalar(2).sum().into_scalar().elem::<f64>();
        }
    }
}

struct Transform<'a, F> {
    grads: &'a mut GradientsParams,
    apply: F,
}

impl<B: AutodiffBackend, F> ModuleVisitor<B> for Transform<'_, F>
where
    F: FnMut(Tensor<B::InnerBackend, 1>) -> Tensor<B::InnerBackend, 1>,
{
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let shape = grad.shape();
            let flat = grad.reshape([shape.num_elements()]);
            self.grads
                .register::<B::InnerBackend, D>(param.id, (self.apply)(flat).reshape(shape));
        }
    }
}

/// The L2 norm of all of `model`'s gradients taken together.
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut visitor = SumOfSquares { grads, total: 0.0 };
    model.visit(&mut visitor);
    visitor.total.sqrt()
}

/// Scales every gradient by `max_norm / norm` when the global norm exceeds `max_norm`;
/// returns the norm before clipping.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
    let norm = global_norm::<B, M>(model, grads);
    if norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        let mut visitor = Transform {
            grads,
            apply: |g: Tensor<B::InnerBackend, 1>| g.mul_scalar(factor),
        };
        model.visit(&mut visitor);
    }
    norm
}

/// Clamps every gradient element to `[-max, max]`.
pub fn clip_value<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max: f64,
) {
    let mut visitor = Transform {
        grads,
        apply: |g: Tensor<B::InnerBackend, 1>| g.clamp(-max, max),
    };
    model.visit(&mut visitor);
}
