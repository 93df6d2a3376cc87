//! bfloat16 weights for the micro-kernels of [`super::packed`]: the value type, and how a
//! panel row of either `f32` or bf16 values is loaded as `f32`s.

use super::packed::PANEL;

/// A bfloat16 value: the upper 16 bits of an `f32` (8 exponent bits, 7 mantissa bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Bf16(u16);

impl Bf16 {
    /// The nearest bf16 (ties to even), as `torch.bfloat16` rounds; NaN stays NaN.
    pub(crate) fn from_f32(x: f32) -> Self {
        if x.is_nan() {
            return Self(0x7fc0);
        }
        let bits = x.to_bits();
        let round = 0x7fff + ((bits >> 16) & 1);
        Self((bits.wrapping_add(round) >> 16) as u16)
    }

    /// The value's bits.
    #[inline(always)]
    pub(crate) fn bits(self) -> u16 {
        self.0
    }

    /// The exact `f32` of this value.
    #[inline(always)]
    pub(crate) fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self.0) << 16)
    }
}

/// A value the micro-kernels read a panel row of as 16 `f32`s: `f32`, or [`Bf16`] widened.
pub(super) trait PanelWeight: Copy {
    /// A panel row (16 values) as `f32`.
    ///
    /// # Safety
    /// `row` reaches 16 values.
    unsafe fn row(row: *const Self) -> [f32; PANEL];

    /// A panel row as two AVX2 registers.
    ///
    /// # Safety
    /// As [`PanelWeight::row`], and the CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn row_avx2(row: *const Self) -> [std::arch::x86_64::__m256; 2];

    /// A panel row as one AVX-512 register.
    ///
    /// # Safety
    /// As [`PanelWeight::row`], and the CPU has AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn row_avx512(row: *const Self) -> std::arch::x86_64::__m512;
}

impl PanelWeight for f32 {
    #[inline(always)]
    unsafe fn row(row: *const Self) -> [f32; PANEL] {
        // SAFETY: the caller's contract.
        unsafe { *(row as *const [f32; PANEL]) }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(row: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::_mm256_loadu_ps;
        // SAFETY: the caller's contract.
        unsafe { [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))] }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn row_avx512(row: *const Self) -> std::arch::x86_64::__m512 {
        // SAFETY: the caller's contract.
        unsafe { std::arch::x86_64::_mm512_loadu_ps(row) }
    }
}

impl PanelWeight for Bf16 {
    #[inline(always)]
    unsafe fn row(row: *const Self) -> [f32; PANEL] {
        // SAFETY: the caller's contract.
        let values = unsafe { &*(row as *const [Bf16; PANEL]) };
        values.map(Bf16::to_f32)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_avx2(row: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::*;
        let widen = |half: *const Bf16| {
            // SAFETY: the caller's contract.
            let bits = unsafe { _mm_loadu_si128(half as *const __m128i) };
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(bits)))
        };
        // SAFETY: the caller's contract.
        [widen(row), widen(unsafe { row.add(8) })]
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn row_avx512(row: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract.
        let bits = unsafe { _mm256_loadu_si256(row as *const __m256i) };
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
    }
}
