//! How far back the loss reaches: ‖∂L/∂h_t‖ for every step t, measured for RNN, LSTM and
//! GRU at initialisation and after training (the vanishing-gradient problem, measured).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use models::{RecurrentState, SequenceClassifier};

use crate::task::Batch;

/// ‖∂L/∂h_t‖ for t = 0…T−1, averaged over the batch. L is the cross-entropy of the
/// softmax over `y` at the last step; h_t is the hidden state of the top layer after step
/// t. All sequences of `batch` must have its full length.
///
/// Each step is run on its own, carrying the state, and a zero tensor that requires a
/// gradient is added to the carried hidden state: its gradient is ∂L/∂h_t (burn keeps
/// gradients of leaves only).
pub fn hidden_gradient_norms<B: AutodiffBackend>(
    model: &SequenceClassifier<B>,
    batch: &Batch,
    device: &B::Device,
) -> Vec<f64> {
    let [size, time, features] = batch.shape;
    assert!(
        batch.lengths.iter().all(|&l| l == time),
        "full-length sequences only"
    );
    let x = Tensor::<B, 3>::from_data(TensorData::new(batch.inputs.clone(), batch.shape), device);
    let mut state: Option<RecurrentState<B, 3>> = None;
    let mut probes = Vec::with_capacity(time);
    for step in x.chunk(time, 1) {
        let (_, next) = model
            .recurrent
            .forward(step.reshape([size, 1, features]), state, None);
        let probe = Tensor::<B, 3>::zeros(next.hidden.dims(), device).require_grad();
        probes.push(probe.clone());
        state = Some(RecurrentState {
            hidden: next.hidden + probe,
            cell: next.cell,
        });
    }
    let hidden = state.expect("at least one step").hidden;
    let [layers, _, width] = hidden.dims();
    let top = hidden.narrow(0, layers - 1, 1).reshape([size, 1, width]);
    let y = model.output.forward(top);
    let classes = y.dims()[2];
    let logits = y.reshape([size, classes]);
    let targets = Tensor::<B, 1, Int>::from_data(
        TensorData::new(
            batch
                .sequence_classes()
                .expect("a task with one class per sequence")
                .to_vec(),
            [size],
        ),
        device,
    );
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    let grads = loss.backward();
    probes
        .iter()
        .map(|probe| {
            let grad = probe.grad(&grads).expect("every step reaches the loss");
            let top = grad.narrow(0, layers - 1, 1);
            let per_example = top.powi_scalar(2).sum_dim(2).sqrt();
            per_example.mean().into_scalar().elem::<f64>()
        })
        .collect()
}
