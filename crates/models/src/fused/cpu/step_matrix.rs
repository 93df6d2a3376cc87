//! A layer's weights in the format its precision stores them, and the per-step product
//! with them.

use isa::{Bf16Isa, Int8Isa};

use super::Matrix;
use crate::fused::bf16_pairs::{self, PackedBf16Pairs};
use crate::fused::int8::{Int8Matrix, Int8Scratch};
use crate::fused::packed::{self, Blocking, PackedBf16, PackedMatrix};
use crate::precision::Precision;

/// The instruction sets of the products of int8 and bf16 weights, detected once per call
/// on the calling thread (within its limits) and used by every step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuantisedIsas {
    pub(crate) int8: Int8Isa,
    pub(crate) bf16: Bf16Isa,
}

impl QuantisedIsas {
    pub(crate) fn detected() -> Self {
        Self {
            int8: Int8Isa::detected(),
            bf16: Bf16Isa::detected(),
        }
    }
}

/// A `[k, n]` weight matrix packed for the per-step product `C = init + A·B`.
#[derive(Debug)]
pub(crate) enum StepMatrix {
    F32(PackedMatrix),
    /// Widened to f32 by the f32 kernels ([`Bf16Isa::Widened`]).
    Bf16(PackedBf16),
    /// In pairs for `vdpbf16ps` ([`Bf16Isa::Avx512Bf16`]).
    Bf16Pairs(PackedBf16Pairs),
    Int8(Int8Matrix),
}

impl StepMatrix {
    /// The first `k` rows and `n` columns of `m`, in the layout of `precision`; bf16 in the
    /// layout of the calling thread's [`Bf16Isa`].
    pub(super) fn pack(m: Matrix, (k, n): (usize, usize), precision: Precision) -> Self {
        match precision {
            Precision::F32 => Self::F32(m.pack((k, n))),
            Precision::Bf16 => match Bf16Isa::detected() {
                Bf16Isa::Widened => Self::Bf16(m.pack((k, n)).to_bf16()),
                Bf16Isa::Avx512Bf16 => Self::Bf16Pairs(m.pack((k, n)).to_bf16_pairs()),
            },
            Precision::Int8 => Self::Int8(Int8Matrix::quantise(m.values, (k, n), m.strides)),
        }
    }

    /// Columns including the padding: the row stride `C` needs.
    pub(super) fn padded_columns(&self) -> usize {
        match self {
            Self::F32(m) => m.padded_columns(),
            Self::Bf16(m) => m.padded_columns(),
            Self::Bf16Pairs(m) => m.padded_columns(),
            Self::Int8(m) => m.padded_columns(),
        }
    }

    /// Bytes of weights held.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Self::F32(m) => 4 * m.value_count(),
            Self::Bf16(m) => m.bytes(),
            Self::Bf16Pairs(m) => m.bytes(),
            Self::Int8(m) => m.bytes(),
        }
    }

    /// `C = init + A·B` for `m` rows of `A` (see [`packed::gemm`]).
    ///
    /// # Safety
    /// The CPU has the instruction set `K` is compiled for.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product<K: Blocking>(
        &self,
        m: usize,
        a: &[f32],
        a_strides: (usize, usize),
        c: &mut [f32],
        ldc: usize,
        init: Option<&[f32]>,
        (scratch, isas): (&mut Int8Scratch, QuantisedIsas),
    ) {
        match self {
            // SAFETY: the caller vouches for the instruction set.
            Self::F32(b) => unsafe { packed::gemm::<K>(m, a, a_strides, b, c, ldc, init) },
            // SAFETY: as above.
            Self::Bf16(b) => unsafe { packed::gemm_bf16::<K>(m, a, a_strides, b, c, ldc, init) },
            Self::Bf16Pairs(b) => bf16_pairs::gemm(isas.bf16, m, a, a_strides, b, c, ldc, init),
            Self::Int8(b) => b.product(m, a, a_strides, c, ldc, init, scratch, isas.int8),
        }
    }
}
