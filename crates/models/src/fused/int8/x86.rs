//! The x86-64 kernels of the int8 product: AVX2, AVX-VNNI and AVX-512 VNNI integer sums, and
//! the AVX-512 row quantisation.

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
                    let a =
                        unsafe { _mm256_set1_epi32(four(qa.as_ptr(), 4 * groups, first + r, g)) };
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
            by_rows!(rows, tile);
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
