//! The int8 form of the per-step product `C = init + A·B` ([`super::packed`] is the f32
//! one), for [`crate::Precision::Int8`].
//!
//! `B` (a layer's weights, `[k, n]`) is quantised once, symmetrically per column (per
//! output unit of the layer): `B[i, j] ≈ s_j · q[i, j]` with `s_j = max_i |B[i, j]| / 127`
//! and `q ∈ [−127, 127]`. Each row of `A` (a step's input or state) is quantised the same
//! way when the product runs, with its own scale `t_r`, so that
//! `C[r, j] = init_j + t_r · s_j · Σ_i qa[r, i] · q[i, j]`, the sum accumulated exactly in
//! `i32`. The integer sum is the same on every instruction set ([`Int8Isa`]), and the
//! conversion around it is the same scalar code, so every path gives the same bits.
//!
//! `q` is stored in groups of four rows, `[⌈k/4⌉, n padded to 16, 4]`: one 32-bit lane
//! holds the four values one `vpdpbusd` (or `vpmaddubsw` + `vpmaddwd`) multiplies with four
//! values of a row of `A`, and consecutive columns fill consecutive lanes.

use isa::Int8Isa;

/// Columns are padded to a multiple of this (two AVX2 or one AVX-512 register of lanes).
const COLUMN_BLOCK: usize = 16;
/// The largest magnitude of a quantised value: symmetric, so `−128` is never used.
const QMAX: f32 = 127.0;

/// A `[k, n]` matrix quantised to int8 per column.
#[derive(Debug)]
pub(crate) struct Int8Matrix {
    k: usize,
    padded: usize,
    /// `q`, `[⌈k/4⌉, padded, 4]`, zeros in the padding.
    values: Vec<i8>,
    /// `s_j`, zero in the padding.
    scales: Vec<f32>,
    /// `Σ_i q[i, j]`: the AVX-512 VNNI path multiplies `qa + 128` (unsigned) and takes
    /// `128 · Σ_i q[i, j]` back off.
    column_sums: Vec<i32>,
}

/// What the int8 product needs per call besides its operands, kept across the steps.
#[derive(Debug, Default)]
pub(crate) struct Int8Scratch {
    quantised: Vec<i8>,
    row_scales: Vec<f32>,
    sums: Vec<i32>,
}

/// `x` rounded to the nearest multiple of `scale` (`x · inverse`, ties to even), clamped to
/// ±127.
#[inline(always)]
fn quantise(x: f32, inverse: f32) -> i8 {
    (x * inverse).round_ties_even().clamp(-QMAX, QMAX) as i8
}

/// The scale `max |x| / 127` of some values and its inverse (both zero when all are zero;
/// NaNs are passed over).
#[inline(always)]
fn scale_of(values: impl Iterator<Item = f32>) -> (f32, f32) {
    scale_of_largest(values.fold(0.0f32, |m, v| if v.abs() > m { v.abs() } else { m }))
}

/// [`scale_of`] values whose largest magnitude is `largest`.
#[inline(always)]
fn scale_of_largest(largest: f32) -> (f32, f32) {
    if largest > 0.0 {
        (largest / QMAX, QMAX / largest)
    } else {
        (0.0, 0.0)
    }
}

impl Int8Matrix {
    /// Quantises `b[i·row_stride + j·col_stride]` for `i < k`, `j < n`.
    pub(crate) fn quantise(
        b: &[f32],
        (k, n): (usize, usize),
        (row_stride, col_stride): (usize, usize),
    ) -> Self {
        let padded = n.div_ceil(COLUMN_BLOCK) * COLUMN_BLOCK;
        let groups = k.div_ceil(4);
        let mut values = vec![0i8; groups * padded * 4];
        let mut scales = vec![0.0f32; padded];
        let mut column_sums = vec![0i32; padded];
        for j in 0..n {
            let at = |i: usize| b[i * row_stride + j * col_stride];
            let (scale, inverse) = scale_of((0..k).map(at));
            scales[j] = scale;
            for i in 0..k {
                let q = quantise(at(i), inverse);
                values[((i / 4) * padded + j) * 4 + i % 4] = q;
                column_sums[j] += i32::from(q);
            }
        }
        Self {
            k,
            padded,
            values,
            scales,
            column_sums,
        }
    }

    /// Columns including the padding: the row stride `C` needs.
    pub(crate) fn padded_columns(&self) -> usize {
        self.padded
    }

    /// Bytes of weights held (the int8 values and the per-column scales).
    pub(crate) fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }

    fn groups(&self) -> usize {
        self.k.div_ceil(4)
    }

    /// `C = init + A·B` (`C += A·B` without `init`) for `m` rows of `A`, element `(r, i)`
    /// at `a[r·row_stride + i·k_stride]`; `C` has row stride `ldc`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn product(
        &self,
        m: usize,
        a: &[f32],
        (row_stride, k_stride): (usize, usize),
        c: &mut [f32],
        ldc: usize,
        init: Option<&[f32]>,
        scratch: &mut Int8Scratch,
        isa: Int8Isa,
    ) {
        if m == 0 {
            return;
        }
        assert!(self.k == 0 || a.len() > (m - 1) * row_stride + (self.k - 1) * k_stride);
        assert!(ldc >= self.padded && c.len() >= (m - 1) * ldc + self.padded);
        assert!(init.is_none_or(|row| row.len() >= self.padded));
        let depth = 4 * self.groups();
        let Int8Scratch {
            quantised,
            row_scales,
            sums,
        } = scratch;
        grow(quantised, m * depth);
        grow(sums, m * self.padded);
        let (quantised, sums) = (&mut quantised[..m * depth], &mut sums[..m * self.padded]);
        row_scales.clear();
        for r in 0..m {
            let row = &mut quantised[r * depth..(r + 1) * depth];
            let (values, padding) = row.split_at_mut(self.k);
            padding.fill(0);
            let scale = match self.k {
                0 => 0.0,
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the VNNI path runs only where the CPU has AVX-512 F and BW.
                _ if k_stride == 1 && isa == Int8Isa::Avx512Vnni && isa.is_supported() => unsafe {
                    x86::quantise_row_avx512(&a[r * row_stride..][..self.k], values)
                },
                _ => quantise_row(&a[r * row_stride..], k_stride, values),
            };
            row_scales.push(scale);
        }
        integer_product(isa, self, m, quantised, sums);
        for (r, (sums, &row_scale)) in sums.chunks_exact(self.padded).zip(&*row_scales).enumerate()
        {
            let out = &mut c[r * ldc..r * ldc + self.padded];
            let terms = sums.iter().zip(&self.scales);
            // `base + Σ·(t·s)`, the same operations in the same order on every path.
            match init {
                Some(init) => {
                    for ((out, base), (&sum, &scale)) in out.iter_mut().zip(init).zip(terms) {
                        *out = base + sum as f32 * (row_scale * scale);
                    }
                }
                None => {
                    for (out, (&sum, &scale)) in out.iter_mut().zip(terms) {
                        *out += sum as f32 * (row_scale * scale);
                    }
                }
            }
        }
    }
}

/// Makes `buffer` at least `len` long (what lies beyond the old length is zero).
fn grow<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}

/// Quantises `out.len()` values of `a`, `k_stride` apart, into `out`; returns their scale.
#[inline(always)]
fn quantise_row(a: &[f32], k_stride: usize, out: &mut [i8]) -> f32 {
    let k = out.len();
    if k_stride == 1 {
        // Contiguous: both loops vectorise.
        let row = &a[..k];
        let (scale, inverse) = scale_of(row.iter().copied());
        for (q, &x) in out.iter_mut().zip(row) {
            *q = quantise(x, inverse);
        }
        scale
    } else {
        let at = |i: usize| a[i * k_stride];
        let (scale, inverse) = scale_of((0..k).map(at));
        for (i, q) in out.iter_mut().enumerate() {
            *q = quantise(at(i), inverse);
        }
        scale
    }
}

/// `sums[r, j] = Σ_i qa[r, i] · q[i, j]` for `m` rows of `qa` (`[m, 4·⌈k/4⌉]`, zero-padded),
/// on `isa` where the CPU has it (the portable loops otherwise). `qa` is scratch: the
/// AVX-512 VNNI path changes it.
fn integer_product(isa: Int8Isa, b: &Int8Matrix, m: usize, qa: &mut [i8], sums: &mut [i32]) {
    assert_eq!(qa.len(), m * 4 * b.groups());
    assert_eq!(sums.len(), m * b.padded);
    #[cfg(target_arch = "x86_64")]
    if isa.is_supported() {
        // SAFETY: the CPU has the instruction set (checked above); the slices have the
        // lengths the kernels read (asserted above).
        match isa {
            Int8Isa::Avx512Vnni => return unsafe { x86::product_avx512_vnni(b, m, qa, sums) },
            Int8Isa::AvxVnni => return unsafe { x86::product_avx_vnni(b, m, qa, sums) },
            Int8Isa::Avx2 => return unsafe { x86::product_avx2(b, m, qa, sums) },
            Int8Isa::Portable => {}
        }
    }
    let _ = isa;
    product_portable(b, m, qa, sums);
}

fn product_portable(b: &Int8Matrix, m: usize, qa: &[i8], sums: &mut [i32]) {
    let (groups, padded) = (b.groups(), b.padded);
    for r in 0..m {
        let row = &mut sums[r * padded..(r + 1) * padded];
        row.fill(0);
        for g in 0..groups {
            let a = &qa[(r * groups + g) * 4..][..4];
            let w = &b.values[g * padded * 4..(g + 1) * padded * 4];
            for (sum, w) in row.iter_mut().zip(w.chunks_exact(4)) {
                *sum += (0..4)
                    .map(|t| i32::from(a[t]) * i32::from(w[t]))
                    .sum::<i32>();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Int8Matrix;
    use std::arch::x86_64::*;

    /// Rows of `A` per register block.
    const ROWS: usize = 4;

    /// Calls `tile::<R>(first_row)` over `m` rows in blocks of [`ROWS`] and the rest.
    #[inline(always)]
    fn row_blocks(m: usize, mut tile: impl FnMut(usize, usize)) {
        let mut r = 0;
        while r < m {
            let rows = ROWS.min(m - r);
            tile(r, rows);
            r += rows;
        }
    }

    /// Four values of row `r` of `qa` at group `g`, as one 32-bit lane.
    ///
    /// # Safety
    /// `qa` reaches them.
    #[inline(always)]
    unsafe fn four(qa: *const i8, depth: usize, r: usize, g: usize) -> i32 {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::read_unaligned(qa.add(r * depth + 4 * g) as *const i32) }
    }

    /// AVX2: `|a| · sign(q, a)` through `vpmaddubsw` (unsigned × signed, pairs summed to
    /// i16) and `vpmaddwd` with ones (pairs summed to i32). With both factors within ±127 a
    /// pair sums to at most 2·127² = 32258, so the i16 step never saturates.
    ///
    /// # Safety
    /// The CPU has AVX2; `qa` and `sums` have the lengths of [`super::integer_product`].
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn product_avx2(b: &Int8Matrix, m: usize, qa: &[i8], sums: &mut [i32]) {
        let ones = _mm256_set1_epi16(1);
        // SAFETY: this function runs only where the CPU has AVX2; the caller's lengths.
        unsafe {
            product_256(b, m, qa, sums, |acc, magnitude, signed| {
                let pairs = _mm256_maddubs_epi16(magnitude, signed);
                _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones))
            })
        };
    }

    /// AVX-VNNI: `vpdpbusd` on `|a|` and `sign(q, a)`, four products per lane at once.
    ///
    /// # Safety
    /// The CPU has AVX2 and AVX-VNNI; the lengths as [`product_avx2`].
    #[target_feature(enable = "avx2,avxvnni")]
    pub(super) unsafe fn product_avx_vnni(b: &Int8Matrix, m: usize, qa: &[i8], sums: &mut [i32]) {
        // SAFETY: this function runs only where the CPU has AVX2 and AVX-VNNI; the lengths.
        unsafe {
            product_256(b, m, qa, sums, |acc, magnitude, signed| {
                _mm256_dpbusd_avx_epi32(acc, magnitude, signed)
            })
        };
    }

    /// The 256-bit kernels' loops: [`ROWS`] rows × 16 columns in registers, each group of
    /// four adding `accumulate(acc, |a|, sign(q, a))` (the four products of each lane).
    ///
    /// # Safety
    /// The caller runs on a CPU with AVX2 and whatever `accumulate` uses; the lengths as
    /// [`product_avx2`].
    #[inline(always)]
    unsafe fn product_256(
        b: &Int8Matrix,
        m: usize,
        qa: &[i8],
        sums: &mut [i32],
        accumulate: impl Fn(__m256i, __m256i, __m256i) -> __m256i,
    ) {
        let (groups, padded) = (b.groups(), b.padded);
        for j in (0..padded).step_by(16) {
            row_blocks(m, |first, rows| {
                // SAFETY (every block here): inside the lengths of the contract, on a CPU
                // with AVX2.
                let mut acc = [[unsafe { _mm256_setzero_si256() }; 2]; ROWS];
                for g in 0..groups {
                    let w = unsafe { b.values.as_ptr().add((g * padded + j) * 4) };
                    let w = unsafe {
                        [
                            _mm256_loadu_si256(w as *const __m256i),
                            _mm256_loadu_si256(w.add(32) as *const __m256i),
                        ]
                    };
                    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
                        let a = unsafe {
                            _mm256_set1_epi32(four(qa.as_ptr(), 4 * groups, first + r, g))
                        };
                        let magnitude = unsafe { _mm256_abs_epi8(a) };
                        for (acc, w) in acc.iter_mut().zip(w) {
                            *acc = accumulate(*acc, magnitude, unsafe { _mm256_sign_epi8(w, a) });
                        }
                    }
                }
                store_256(&acc[..rows], &mut sums[first * padded + j..], padded);
            });
        }
    }

    /// Each row's two registers (16 columns) into `sums`, rows `padded` apart.
    #[inline(always)]
    fn store_256(acc: &[[__m256i; 2]], sums: &mut [i32], padded: usize) {
        for (r, halves) in acc.iter().enumerate() {
            for (h, half) in halves.iter().enumerate() {
                let out = &mut sums[r * padded + 8 * h..r * padded + 8 * h + 8];
                // SAFETY: `out` holds 8 values.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, *half) };
            }
        }
    }

    /// [`super::quantise_row`] of a contiguous row with AVX-512: the same scale and values
    /// (NaNs passed over in the scale and quantised to zero, as the scalar code does).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW; `out` is as long as `row`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantise_row_avx512(row: &[f32], out: &mut [i8]) -> f32 {
        let magnitude = _mm512_set1_epi32(0x7fff_ffff);
        let infinity = _mm512_set1_epi32(0x7f80_0000);
        let mut largest = _mm512_setzero_si512();
        let chunks = row.chunks_exact(16);
        let tail = chunks.remainder();
        for chunk in chunks {
            // SAFETY: `chunk` holds 16 values.
            let bits = unsafe { _mm512_loadu_si512(chunk.as_ptr() as *const __m512i) };
            let bits = _mm512_and_si512(bits, magnitude);
            // Non-negative floats order as their bits; NaNs (above infinity's) count as zero.
            let finite_or_infinite = _mm512_cmple_epu32_mask(bits, infinity);
            largest = _mm512_mask_max_epu32(largest, finite_or_infinite, largest, bits);
        }
        let largest = tail
            .iter()
            .fold(f32::from_bits(_mm512_reduce_max_epu32(largest)), |m, v| {
                if v.abs() > m { v.abs() } else { m }
            });
        let (scale, inverse_value) = super::scale_of_largest(largest);
        let (low, high, inverse) = (
            _mm512_set1_ps(-super::QMAX),
            _mm512_set1_ps(super::QMAX),
            _mm512_set1_ps(inverse_value),
        );
        let mut outs = out.chunks_exact_mut(16);
        for (chunk, out) in row.chunks_exact(16).zip(&mut outs) {
            // SAFETY: `chunk` holds 16 values.
            let x = _mm512_mul_ps(unsafe { _mm512_loadu_ps(chunk.as_ptr()) }, inverse);
            let x = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
            // `max(low, NaN)` is NaN, whose integer 0x8000_0000 truncates to the byte 0, as
            // `NaN as i8` is 0; every other value is within ±127 and converts exactly.
            let x = _mm512_min_ps(high, _mm512_max_ps(low, x));
            let bytes = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(x));
            // SAFETY: `out` holds 16 values.
            unsafe { _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, bytes) };
        }
        let start = row.len() - tail.len();
        for (q, &x) in outs.into_remainder().iter_mut().zip(&row[start..]) {
            *q = super::quantise(x, inverse_value);
        }
        scale
    }

    /// AVX-512 VNNI: `vpdpbusd` takes an unsigned and a signed factor and AVX-512 has no
    /// `vpsignb`, so `a + 128` (the sign bit flipped, in place in `qa` first) is multiplied
    /// and `128 · Σ_i q[i, j]` subtracted after: the same integer. Tiles of up to 8 rows ×
    /// 32 columns keep 16 sums in registers, so each broadcast of `A` feeds two `vpdpbusd`
    /// and each load of `B` eight.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI; the lengths as [`product_avx2`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn product_avx512_vnni(
        b: &Int8Matrix,
        m: usize,
        qa: &mut [i8],
        sums: &mut [i32],
    ) {
        for value in qa.iter_mut() {
            *value ^= i8::MIN;
        }
        let mut j = 0;
        while j < b.padded {
            let two = j + 32 <= b.padded;
            let mut first = 0;
            while first < m {
                let rows = 8.min(m - first);
                macro_rules! tile {
                    ($rows:literal) => {
                        // SAFETY: rows `first..first + rows` and columns `j..j + 16·P` lie
                        // inside the lengths of the contract.
                        unsafe {
                            if two {
                                tile_vnni::<$rows, 2>(b, qa, sums, first, j)
                            } else {
                                tile_vnni::<$rows, 1>(b, qa, sums, first, j)
                            }
                        }
                    };
                }
                match rows {
                    8 => tile!(8),
                    7 => tile!(7),
                    6 => tile!(6),
                    5 => tile!(5),
                    4 => tile!(4),
                    3 => tile!(3),
                    2 => tile!(2),
                    _ => tile!(1),
                }
                first += rows;
            }
            j += if two { 32 } else { 16 };
        }
    }

    /// Rows `first..first + R` of the flipped `qa` times columns `j..j + 16·P` of `q`.
    ///
    /// # Safety
    /// As [`product_avx512_vnni`], and the rows and columns lie inside it.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_vnni<const R: usize, const P: usize>(
        b: &Int8Matrix,
        qa: &[i8],
        sums: &mut [i32],
        first: usize,
        j: usize,
    ) {
        let (groups, padded) = (b.groups(), b.padded);
        let mut acc = [[_mm512_setzero_si512(); P]; R];
        for g in 0..groups {
            let mut w = [_mm512_setzero_si512(); P];
            for (q, w) in w.iter_mut().enumerate() {
                // SAFETY (every block here): inside the lengths of the contract.
                let at = unsafe { b.values.as_ptr().add((g * padded + j + 16 * q) * 4) };
                *w = unsafe { _mm512_loadu_si512(at as *const __m512i) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_epi32(unsafe { four(qa.as_ptr(), 4 * groups, first + r, g) });
                for (acc, w) in acc.iter_mut().zip(&w) {
                    *acc = _mm512_dpbusd_epi32(*acc, a, *w);
                }
            }
        }
        for (q, column) in (j..j + 16 * P).step_by(16).enumerate() {
            // SAFETY: `column_sums` holds `padded` values.
            let offset = _mm512_slli_epi32::<7>(unsafe {
                _mm512_loadu_si512(b.column_sums.as_ptr().add(column) as *const __m512i)
            });
            for (r, acc) in acc.iter().enumerate() {
                let out = &mut sums[(first + r) * padded + column..][..16];
                let value = _mm512_sub_epi32(acc[q], offset);
                // SAFETY: `out` holds 16 values.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, value) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1), a few of them large (saturating the gates).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0;
                if i % 97 == 0 { 40.0 * v } else { v }
            })
            .collect()
    }

    /// Shapes that cross partial groups of four, partial column blocks and row blocks.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 1, 1),
        (1, 13, 512),
        (5, 7, 20),
        (11, 40, 33),
        (64, 256, 1024),
        (3, 0, 16),
    ];

    #[test]
    fn every_instruction_set_gives_the_portable_bits() {
        for (shape, (m, k, n)) in SHAPES.into_iter().enumerate() {
            let mut a = values(m * k, 1);
            if shape == 3 {
                // A NaN, which the scales pass over, and an infinite row.
                a[17] = f32::NAN;
                a[2 * k..3 * k].fill(f32::INFINITY);
            }
            let b = values(k * n, 2);
            let matrix = Int8Matrix::quantise(&b, (k, n), (n, 1));
            let ldc = matrix.padded_columns();
            let init = values(ldc, 3);
            let run = |isa: Int8Isa| {
                let mut c = vec![0.0; m * ldc];
                let mut scratch = Int8Scratch::default();
                matrix.product(m, &a, (k, 1), &mut c, ldc, Some(&init), &mut scratch, isa);
                c
            };
            let portable = run(Int8Isa::Portable);
            for isa in Int8Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
                let got = run(isa);
                assert!(
                    got.iter()
                        .zip(&portable)
                        .all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan()),
                    "{isa:?} {m}×{k}×{n}"
                );
            }
        }
    }

    /// Against the exact product in f64: the error of `Σ_i a_i b_i` with both factors
    /// rounded to a multiple of their scales (`t/2`, `s/2` at most) is at most
    /// `Σ_i |a_i| s/2 + |b_i| t/2 + t·s/4`.
    #[test]
    fn the_error_is_within_the_bound_of_the_scales() {
        for (m, k, n) in SHAPES {
            let a = values(m * k, 4);
            let b = values(k * n, 5);
            let matrix = Int8Matrix::quantise(&b, (k, n), (1, k));
            let ldc = matrix.padded_columns();
            let mut c = vec![0.0; m * ldc];
            let a_t: Vec<f32> = (0..k * m).map(|at| a[(at % m) * k + at / m]).collect();
            let mut scratch = Int8Scratch::default();
            let isa = Int8Isa::detected();
            matrix.product(m, &a_t, (1, m), &mut c, ldc, None, &mut scratch, isa);
            for r in 0..m {
                let t = a[r * k..(r + 1) * k]
                    .iter()
                    .fold(0.0f64, |x, v| x.max(f64::from(v.abs())))
                    / 127.0;
                for j in 0..n {
                    let column = |i: usize| f64::from(b[j * k + i]);
                    let s = (0..k).fold(0.0f64, |x, i| x.max(column(i).abs())) / 127.0;
                    let exact: f64 = (0..k).map(|i| f64::from(a[r * k + i]) * column(i)).sum();
                    let bound: f64 = (0..k)
                        .map(|i| {
                            f64::from(a[r * k + i]).abs() * s / 2.0
                                + column(i).abs() * t / 2.0
                                + t * s / 4.0
                        })
                        .sum::<f64>()
                        * (1.0 + 1e-5)
                        + 1e-6 * exact.abs();
                    let got = f64::from(c[r * ldc + j]);
                    assert!(
                        (got - exact).abs() <= bound,
                        "{m}×{k}×{n} [{r},{j}]: {got} vs {exact} (bound {bound})"
                    );
                }
            }
        }
    }
}
