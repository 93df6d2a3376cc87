//! Which instruction set the CPU kernels run with, chosen at run time: the fused
//! recurrent kernels of `models` and the frame loop of `features`.
//!
//! The kernels are written once, as plain loops over `f32`, and compiled three times: for
//! AVX-512, for AVX2 with FMA, and for the target's baseline. The fastest one this CPU
//! supports runs, unless the caller limits it (as oneDNN's `ONEDNN_MAX_CPU_ISA` does) to
//! compare paths or to reproduce results of a smaller machine.

use std::cell::Cell;

/// An instruction set the CPU kernels are compiled for, from the most portable up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuIsa {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 (F, VL) with FMA.
    Avx512,
}

impl CpuIsa {
    /// Every variant, from the most portable up.
    pub const ALL: [CpuIsa; 3] = [CpuIsa::Portable, CpuIsa::Avx2, CpuIsa::Avx512];

    /// Whether this CPU can run kernels built for `self`.
    pub fn is_supported(self) -> bool {
        match self {
            CpuIsa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            CpuIsa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            CpuIsa::Avx512 => {
                CpuIsa::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest instruction set this CPU supports.
    pub fn detected() -> CpuIsa {
        *CpuIsa::ALL
            .iter()
            .rev()
            .find(|isa| isa.is_supported())
            .unwrap_or(&CpuIsa::Portable)
    }
}

thread_local! {
    static LIMIT: Cell<Option<CpuIsa>> = const { Cell::new(None) };
}

/// Caps the instruction set the kernels use on the calling thread (`None`: no cap).
///
/// ```
/// use isa::{CpuIsa, cpu_isa, set_cpu_isa_limit};
///
/// set_cpu_isa_limit(Some(CpuIsa::Portable));
/// assert_eq!(cpu_isa(), CpuIsa::Portable);
/// set_cpu_isa_limit(None);
/// assert_eq!(cpu_isa(), CpuIsa::detected());
/// ```
pub fn set_cpu_isa_limit(limit: Option<CpuIsa>) {
    LIMIT.with(|cell| cell.set(limit));
}

/// The instruction set the kernels run with on the calling thread: the fastest one the CPU
/// supports, within the limit of [`set_cpu_isa_limit`].
pub fn cpu_isa() -> CpuIsa {
    let detected = CpuIsa::detected();
    LIMIT
        .with(Cell::get)
        .map_or(detected, |limit| limit.min(detected))
}

/// An instruction set for the int8 dot products of the quantised recurrent kernels
/// (`models::Precision::Int8`). Integer accumulation is exact, so every one gives the same
/// bits; they differ in speed only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Int8Isa {
    /// Plain loops over `i32`.
    Portable,
    /// AVX2's `vpmaddubsw` and `vpmaddwd`.
    Avx2,
    /// AVX-VNNI's 256-bit `vpdpbusd` (Alder Lake, Sapphire Rapids, Zen 5).
    AvxVnni,
    /// AVX-512 VNNI's 512-bit `vpdpbusd` (Ice Lake, Zen 4 and later).
    Avx512Vnni,
}

impl Int8Isa {
    /// Every variant, from the most portable up.
    pub const ALL: [Int8Isa; 4] = [
        Int8Isa::Portable,
        Int8Isa::Avx2,
        Int8Isa::AvxVnni,
        Int8Isa::Avx512Vnni,
    ];

    /// Whether this CPU can run kernels built for `self`.
    pub fn is_supported(self) -> bool {
        match self {
            Int8Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Isa::AvxVnni => {
                Int8Isa::Avx2.is_supported() && std::arch::is_x86_feature_detected!("avxvnni")
            }
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni => {
                CpuIsa::Avx512.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest one this CPU supports, within the limit of [`set_int8_isa_limit`].
    pub fn detected() -> Int8Isa {
        let limit = INT8_LIMIT.with(Cell::get).unwrap_or(Int8Isa::Avx512Vnni);
        *Int8Isa::ALL
            .iter()
            .rev()
            .find(|isa| **isa <= limit && isa.is_supported())
            .unwrap_or(&Int8Isa::Portable)
    }
}

thread_local! {
    static INT8_LIMIT: Cell<Option<Int8Isa>> = const { Cell::new(None) };
}

/// Caps the int8 instruction set on the calling thread (`None`: no cap), as
/// [`set_cpu_isa_limit`] does for the f32 kernels.
///
/// ```
/// use isa::{Int8Isa, set_int8_isa_limit};
///
/// set_int8_isa_limit(Some(Int8Isa::Portable));
/// assert_eq!(Int8Isa::detected(), Int8Isa::Portable);
/// set_int8_isa_limit(None);
/// ```
pub fn set_int8_isa_limit(limit: Option<Int8Isa>) {
    INT8_LIMIT.with(|cell| cell.set(limit));
}

/// How the kernels of bf16 weights (`models::Precision::Bf16`) multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bf16Isa {
    /// Each weight widened to `f32` (exactly) and multiplied with the `f32` input and state
    /// by the f32 kernels of [`cpu_isa`]: bf16 saves memory, not arithmetic.
    Widened,
    /// AVX-512 BF16's `vdpbf16ps` (Cooper Lake, Sapphire Rapids, Zen 4 and later): the input
    /// and state rounded to bf16 too, each pair of products added to an `f32` sum, twice the
    /// products of an f32 FMA per instruction.
    Avx512Bf16,
}

impl Bf16Isa {
    /// Every variant, from the most portable up.
    pub const ALL: [Bf16Isa; 2] = [Bf16Isa::Widened, Bf16Isa::Avx512Bf16];

    /// Whether this CPU can run kernels built for `self` on the calling thread: AVX-512 BF16
    /// also needs the f32 kernels' AVX-512 ([`cpu_isa`], within its limit).
    pub fn is_supported(self) -> bool {
        match self {
            Bf16Isa::Widened => true,
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Avx512Bf16 => {
                cpu_isa() == CpuIsa::Avx512 && std::arch::is_x86_feature_detected!("avx512bf16")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest one this CPU supports, within the limit of [`set_bf16_isa_limit`].
    pub fn detected() -> Bf16Isa {
        let limit = BF16_LIMIT.with(Cell::get).unwrap_or(Bf16Isa::Avx512Bf16);
        *Bf16Isa::ALL
            .iter()
            .rev()
            .find(|isa| **isa <= limit && isa.is_supported())
            .unwrap_or(&Bf16Isa::Widened)
    }
}

thread_local! {
    static BF16_LIMIT: Cell<Option<Bf16Isa>> = const { Cell::new(None) };
}

/// Caps the bf16 instruction set on the calling thread (`None`: no cap), as
/// [`set_cpu_isa_limit`] does for the f32 kernels.
///
/// ```
/// use isa::{Bf16Isa, set_bf16_isa_limit};
///
/// set_bf16_isa_limit(Some(Bf16Isa::Widened));
/// assert_eq!(Bf16Isa::detected(), Bf16Isa::Widened);
/// set_bf16_isa_limit(None);
/// ```
pub fn set_bf16_isa_limit(limit: Option<Bf16Isa>) {
    BF16_LIMIT.with(|cell| cell.set(limit));
}

/// The SIMD flags the kernels care about, as `avx2+ fma+ avx512f- avx512vl-` (x86-64), or
/// the architecture's name elsewhere: printed beside every benchmark table.
pub fn cpu_flags() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let flags = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
            ("avxvnni", std::arch::is_x86_feature_detected!("avxvnni")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
            (
                "avx512bf16",
                std::arch::is_x86_feature_detected!("avx512bf16"),
            ),
        ];
        flags
            .iter()
            .map(|(name, on)| format!("{name}{}", if *on { "+" } else { "-" }))
            .collect::<Vec<_>>()
            .join(" ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// The CPU's model name from `/proc/cpuinfo` ("unknown CPU" where there is none).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
