//! The one-flag backend switch: the same generic code on CPU (burn-ndarray) or GPU (burn-wgpu).

use burn::tensor::backend::AutodiffBackend;
use burn_autodiff::Autodiff;
use burn_ndarray::{NdArray, NdArrayDevice};
use burn_wgpu::{Wgpu, WgpuDevice};
use serde::{Deserialize, Serialize};

/// Training backend on the CPU: burn-ndarray under autodiff.
pub type CpuBackend = Autodiff<NdArray>;
/// Training backend on the GPU: burn-wgpu (Vulkan, Metal or DX12) under autodiff.
pub type GpuBackend = Autodiff<Wgpu>;

/// Where tensors live, chosen with `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// CPU, burn-ndarray (multi-threaded). The default.
    #[default]
    Ndarray,
    /// GPU through wgpu; on a machine without a GPU, Mesa's software Vulkan driver (lavapipe).
    Wgpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
        })
    }
}

/// Why a backend cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// wgpu found no Vulkan (or other) adapter at all.
    #[error(
        "no GPU adapter found for the wgpu backend; on Linux without a GPU install Mesa's \
         software Vulkan driver (`apt-get install mesa-vulkan-drivers`, done by scripts/setup.sh)"
    )]
    NoAdapter,
}

/// The name of the adapter wgpu would pick (for example `llvmpipe (LLVM 15.0.6, 256 bits)`),
/// or `None` when the machine has none. Asks wgpu directly, so it never panics.
pub fn wgpu_adapter() -> Option<String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapters =
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    adapters
        .into_iter()
        .map(|a| a.get_info())
        .max_by_key(|info| match info.device_type {
            wgpu::DeviceType::DiscreteGpu => 3,
            wgpu::DeviceType::IntegratedGpu => 2,
            wgpu::DeviceType::VirtualGpu => 1,
            _ => 0,
        })
        .map(|info| format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend))
}

/// Work that runs on whichever backend the user picked. Implement `run` once, generically.
pub trait OnBackend {
    /// What the work returns.
    type Output;
    /// Runs on backend `B` and its `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// Runs `work` on the chosen backend; fails cleanly when wgpu has no adapter.
pub fn run_on<W: OnBackend>(kind: BackendKind, work: W) -> Result<W::Output, BackendError> {
    match kind {
        BackendKind::Ndarray => Ok(work.run::<CpuBackend>(NdArrayDevice::Cpu)),
        BackendKind::Wgpu => {
            wgpu_adapter().ok_or(BackendError::NoAdapter)?;
            Ok(work.run::<GpuBackend>(WgpuDevice::default()))
        }
    }
}
