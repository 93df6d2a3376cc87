//! Inference calls of the fused CPU kernels reuse the weights packed by an earlier call
//! with the same weight tensors (a live stream calls once per frame). Another model, one
//! built where a dropped one was, or the same model after its weights change gets its own
//! packing: every output equals the output of a thread that packed nothing before.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};
use burn_ndarray::NdArray;
use models::{Recurrent, RecurrentConfig};

fn output(stack: &Recurrent<NdArray>, x: &Tensor<NdArray, 3>) -> TensorData {
    stack.forward(x.clone(), None, None).0.into_data()
}

/// The output from a new thread, whose cache of packed weights is empty.
fn fresh_output(stack: &Recurrent<NdArray>, x: &Tensor<NdArray, 3>) -> TensorData {
    std::thread::scope(|scope| scope.spawn(|| output(stack, x)).join().expect("runs"))
}

#[test]
fn packed_weights_are_reused_only_for_the_weights_they_were_packed_from() {
    let device = Default::default();
    let x = Tensor::<NdArray, 3>::random([2, 7, 13], Distribution::Default, &device);
    for (name, cell) in common::all_cells() {
        let config = RecurrentConfig::new(cell, 13, 24).with_num_layers(2);
        let first = config.init::<NdArray>(&device);
        let reference = fresh_output(&first, &x);
        assert_eq!(output(&first, &x), reference, "{name}: first call");
        assert_eq!(output(&first, &x), reference, "{name}: packed once, reused");
        // Models made and dropped in turn, whose buffers may take freed addresses.
        for round in 0..12 {
            let other = config.init::<NdArray>(&device);
            let expected = fresh_output(&other, &x);
            assert_ne!(expected, reference, "{name}: the weights differ");
            assert_eq!(output(&other, &x), expected, "{name}: model {round}");
        }
        // The same model with its weights changed.
        let changed = first.clone().map(&mut Doubler);
        assert_eq!(
            output(&changed, &x),
            fresh_output(&changed, &x),
            "{name}: changed"
        );
        assert_eq!(output(&first, &x), reference, "{name}: the first again");
    }
}

/// Doubles every parameter.
struct Doubler;

impl burn::module::ModuleMapper<NdArray> for Doubler {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<NdArray, D>>,
    ) -> burn::module::Param<Tensor<NdArray, D>> {
        param.map(|t| t * 2.0)
    }
}
