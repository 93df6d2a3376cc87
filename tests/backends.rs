//! The same recurrent classifier, with the same weights and batch, on `Autodiff<NdArray>`
//! (CPU) and `Autodiff<Wgpu>` (GPU, Mesa's lavapipe in CI): loss and every gradient agree.
//!
//! Runs under its own harness so that, on a machine with no wgpu adapter at all, the wgpu
//! checks are reported as ignored with the reason, never as passed.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_ndarray::NdArrayDevice;
use burn_wgpu::WgpuDevice;
use libtest_mimic::{Arguments, Failed, Trial};
use models::{
    CellKind, Nonlinearity, Pooling, RecurrentConfig, SequenceClassifierConfig, StateDict,
};
use train::backend::{CpuBackend, GpuBackend, wgpu_adapter};

const TOLERANCE: f32 = 1e-4;
const BATCH: usize = 3;
const TIME: usize = 5;
const FEATURES: usize = 4;
const CLASSES: usize = 3;
const LENGTHS: [usize; BATCH] = [5, 4, 2];

fn config(cell: CellKind) -> SequenceClassifierConfig {
    SequenceClassifierConfig::new(RecurrentConfig::new(cell, FEATURES, 6), CLASSES)
}

/// Loss and gradients (by PyTorch's names) of one forward and backward pass.
fn loss_and_gradients<B: AutodiffBackend>(
    cell: CellKind,
    weights: &StateDict,
    device: &B::Device,
) -> (f32, StateDict) {
    let model = config(cell)
        .init::<B>(device)
        .load_state_dict(weights)
        .expect("weights fit");
    let inputs: Vec<f32> = (0..BATCH * TIME * FEATURES)
        .map(|i| ((i * 37 % 23) as f32 / 11.0) - 1.0)
        .collect();
    let x = Tensor::<B, 3>::from_data(TensorData::new(inputs, [BATCH, TIME, FEATURES]), device);
    let y = model.forward(x, Some(&LENGTHS));
    let logits = Pooling::Last.pool(y, Some(&LENGTHS));
    let targets =
        Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 1], [BATCH]), device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    let grads = loss.backward();
    let value = loss.into_scalar().elem::<f32>();
    (value, model.gradient_dict(&grads))
}

fn compare_backends(cell: CellKind) -> Result<(), Failed> {
    let cpu = NdArrayDevice::Cpu;
    let weights = config(cell.clone()).init::<CpuBackend>(&cpu).state_dict();
    let (cpu_loss, cpu_grads) = loss_and_gradients::<CpuBackend>(cell.clone(), &weights, &cpu);
    let (gpu_loss, gpu_grads) =
        loss_and_gradients::<GpuBackend>(cell, &weights, &WgpuDevice::default());
    if (cpu_loss - gpu_loss).abs() > TOLERANCE {
        return Err(format!("loss: ndarray {cpu_loss} vs wgpu {gpu_loss}").into());
    }
    // Every parameter must have a gradient on both backends.
    let names = |dict: &StateDict| dict.keys().cloned().collect::<Vec<_>>();
    if names(&cpu_grads) != names(&weights) || names(&gpu_grads) != names(&weights) {
        return Err(format!(
            "parameters with gradients: ndarray {:?}, wgpu {:?}, expected {:?}",
            names(&cpu_grads),
            names(&gpu_grads),
            names(&weights)
        )
        .into());
    }
    for (name, cpu) in &cpu_grads {
        let gpu: Vec<f32> = gpu_grads[name].iter::<f32>().collect();
        for (i, (a, b)) in cpu.iter::<f32>().zip(gpu).enumerate() {
            if (a - b).abs() > TOLERANCE {
                return Err(format!("{name}[{i}]: ndarray {a} vs wgpu {b}").into());
            }
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let adapter = wgpu_adapter();
    match &adapter {
        Some(name) => eprintln!("wgpu adapter: {name}"),
        None => eprintln!(
            "SKIPPED wgpu checks: no wgpu adapter on this machine (scripts/setup.sh installs \
             mesa-vulkan-drivers for lavapipe)"
        ),
    }
    let lstm = |peephole, coupled_input_forget| CellKind::Lstm {
        peephole,
        coupled_input_forget,
        unit_forget_bias: false,
    };
    let cases = [
        ("rnn_tanh", CellKind::rnn(Nonlinearity::Tanh)),
        ("rnn_relu", CellKind::rnn(Nonlinearity::Relu)),
        ("rnn_sigmoid", CellKind::rnn(Nonlinearity::Sigmoid)),
        ("lstm", CellKind::lstm()),
        ("lstm_peephole", lstm(true, false)),
        ("lstm_coupled", lstm(false, true)),
        ("lstm_peephole_coupled", lstm(true, true)),
        ("gru", CellKind::gru()),
        ("gru_reset_before", CellKind::Gru { reset_after: false }),
    ];
    let trials = cases
        .into_iter()
        .map(|(name, cell)| {
            Trial::test(
                format!("{name}_loss_and_gradients_equal_on_ndarray_and_wgpu"),
                move || compare_backends(cell),
            )
            .with_ignored_flag(adapter.is_none())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
