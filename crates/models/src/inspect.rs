//! Reading parameters and their gradients by module path, for tests, checks and experiments.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

/// Module paths as `enter_module` / `exit_module` announce them.
#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn joined(&self) -> String {
        self.0.join(".")
    }
}

struct Gradients<'a, B: AutodiffBackend> {
    path: Path,
    grads: &'a B::Gradients,
    found: Vec<(String, Option<TensorData>)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gradients<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = param.val().grad(self.grads).map(|g| g.into_data());
        self.found.push((self.path.joined(), grad));
    }
}

/// Every float parameter's gradient, by module path (`recurrent.cells.0.Lstm.weights.weight_ih`),
/// in the module's visiting order; `None` where a parameter received no gradient.
pub fn named_gradients<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &B::Gradients,
) -> Vec<(String, Option<TensorData>)> {
    let mut visitor = Gradients::<B> {
        path: Path::default(),
        grads,
        found: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.found
}

struct Values {
    path: Path,
    found: Vec<(String, TensorData)>,
}

impl<B: Backend> ModuleVisitor<B> for Values {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.found
            .push((self.path.joined(), param.val().into_data()));
    }
}

/// Every float parameter's value, by module path, in the module's visiting order.
pub fn named_parameters<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, TensorData)> {
    let mut visitor = Values {
        path: Path::default(),
        found: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.found
}
