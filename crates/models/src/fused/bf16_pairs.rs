//! The bf16 × bf16 form of the per-step product `C = init + A·B`, for
//! [`crate::Precision::Bf16`] on CPUs with AVX-512 BF16 ([`Bf16Isa::Avx512Bf16`]).
//!
//! `vdpbf16ps` multiplies pairs of bf16 values from two registers and adds both products to
//! an `f32` lane: `acc += a₁·b₁`, then `acc += a₀·b₀`, each rounded to nearest (a product of
//! two bf16 values is exact in f32, so each step is one FMA). So `B` (a layer's weights) is
//! stored in pairs of rows, `[⌈k/2⌉, 16]` per 16-column panel, one 32-bit lane holding rows
//! `2i` (low half) and `2i + 1` of a column; each row of `A` (a step's input or state) is
//! rounded to bf16 when the product runs, and its pairs are broadcast to every lane.
//!
//! [`Emulated`] computes the same two FMAs per pair in scalar code: it is what a thread
//! runs where the CPU (or the limit of [`isa::set_bf16_isa_limit`]) lacks the instruction,
//! and the reference the instruction is tested against. `vdpbf16ps` treats bf16 values
//! below 2⁻¹²⁶ as zero; both paths round such inputs to zero when they are stored.

use std::cell::RefCell;

use isa::Bf16Isa;

use super::bf16::Bf16;
use super::packed::{DEPTH, PANEL};

/// A `[k, n]` matrix in bf16, as `⌈n/16⌉` panels of `⌈k/2⌉` rows of 16 pairs; zero in the
/// padding columns and, for odd `k`, in the high half of the last pair.
#[derive(Debug)]
pub(crate) struct PackedBf16Pairs {
    k: usize,
    pairs: usize,
    panels: usize,
    values: Vec<u32>,
}

/// Two bf16 values in one lane, `low` in the low half.
#[inline(always)]
fn pair(low: f32, high: f32) -> u32 {
    u32::from(bf16_bits(low)) | (u32::from(bf16_bits(high)) << 16)
}

/// `x` rounded to bf16, zero where `vdpbf16ps` would read zero (below 2⁻¹²⁶).
#[inline(always)]
fn bf16_bits(x: f32) -> u16 {
    let bits = Bf16::from_f32(x).bits();
    if bits & 0x7f80 == 0 { 0 } else { bits }
}

/// The `f32` values of the low and high halves of a lane.
#[inline(always)]
fn halves(lane: u32) -> (f32, f32) {
    (
        f32::from_bits(lane << 16),
        f32::from_bits(lane & 0xffff_0000),
    )
}

impl PackedBf16Pairs {
    /// From the panels of a [`super::packed::PackedMatrix`]: `panels` panels of `k` rows of
    /// 16 values each.
    pub(super) fn from_panels(k: usize, panels: usize, values: &[f32]) -> Self {
        let pairs = k.div_ceil(2);
        let mut packed = Vec::with_capacity(panels * pairs * PANEL);
        for panel in values.chunks_exact(k * PANEL).take(panels) {
            for i in 0..pairs {
                for v in 0..PANEL {
                    let low = panel[2 * i * PANEL + v];
                    let high = if 2 * i + 1 < k {
                        panel[(2 * i + 1) * PANEL + v]
                    } else {
                        0.0
                    };
                    packed.push(pair(low, high));
                }
            }
        }
        Self {
            k,
            pairs,
            panels,
            values: packed,
        }
    }

    /// Columns including the padding: the row stride `C` needs.
    pub(super) fn padded_columns(&self) -> usize {
        self.panels * PANEL
    }

    /// Bytes of weights held.
    pub(super) fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<u32>()
    }
}

thread_local! {
    /// The rows of `A` in bf16 pairs, kept across the steps of a thread.
    static A_PAIRS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// `C[m, padded] += A[m, k] · B`, or `C = init + A·B` (as [`super::packed::gemm`]), with
/// `A` rounded to bf16, on `isa`: [`Bf16Isa::Avx512Bf16`] runs `vdpbf16ps` where the CPU
/// has it, and anything else the [`Emulated`] kernel.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    isa: Bf16Isa,
    m: usize,
    a: &[f32],
    (row_stride, k_stride): (usize, usize),
    b: &PackedBf16Pairs,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    if m == 0 {
        return;
    }
    let padded_columns = b.padded_columns();
    assert!(ldc >= padded_columns);
    assert!(c.len() >= (m - 1) * ldc + padded_columns);
    assert!(init.is_none_or(|row| row.len() >= padded_columns));
    assert!(b.k == 0 || a.len() > (m - 1) * row_stride + (b.k - 1) * k_stride);
    A_PAIRS.with_borrow_mut(|a_pairs| {
        round_rows(m, a, (row_stride, k_stride), (b.k, b.pairs), a_pairs);
        #[cfg(target_arch = "x86_64")]
        if isa == Bf16Isa::Avx512Bf16 && isa.is_supported() {
            // SAFETY: the CPU has AVX-512 BF16, checked just now.
            return unsafe { tiles::<Avx512Bf16>(m, a_pairs, b, c, ldc, init) };
        }
        let _ = isa;
        // SAFETY: the emulation needs no instruction set.
        unsafe { tiles::<Emulated>(m, a_pairs, b, c, ldc, init) }
    });
}

/// The `m` rows of `A`, `k` columns each, in `pairs` bf16 pairs per row (the last one's
/// high half zero where `k` is odd).
fn round_rows(
    m: usize,
    a: &[f32],
    (row_stride, k_stride): (usize, usize),
    (k, pairs): (usize, usize),
    out: &mut Vec<u32>,
) {
    out.clear();
    out.reserve(m * pairs);
    for r in 0..m {
        let at = |i: usize| {
            if i < k {
                a[r * row_stride + i * k_stride]
            } else {
                0.0
            }
        };
        out.extend((0..pairs).map(|i| pair(at(2 * i), at(2 * i + 1))));
    }
}

/// The loops around a micro-kernel: chunks of rows, pieces of the reduction, panels in
/// twos, blocks of up to eight rows (the order of [`super::packed::gemm`]'s).
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for; `a_pairs` holds `m` rows of
/// `b.pairs` lanes; `c` and `init` are as [`gemm`] asserts.
unsafe fn tiles<K: PairKernel>(
    m: usize,
    a_pairs: &[u32],
    b: &PackedBf16Pairs,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    const ROWS: usize = 8;
    let panel_len = b.pairs * PANEL;
    for first in (0..m).step_by(16 * ROWS) {
        let last = m.min(first + 16 * ROWS);
        for depth in (0..b.pairs.max(1)).step_by(DEPTH / 2) {
            let piece = depth..b.pairs.min(depth + DEPTH / 2);
            let init = if depth == 0 { init } else { None };
            let mut p = 0;
            while p < b.panels {
                let two = p + 1 < b.panels;
                let mut row = first;
                while row < last {
                    let rows = ROWS.min(last - row);
                    // SAFETY: rows `row..row + rows` of `A` and `C`, panels `p..p + 2` (or
                    // `p`) and pairs `piece` of `B` lie inside their slices.
                    unsafe {
                        let tile = Tile {
                            pairs: piece.len(),
                            a: a_pairs.as_ptr().add(row * b.pairs + piece.start),
                            a_stride: b.pairs,
                            w: b.values.as_ptr().add(p * panel_len + piece.start * PANEL),
                            panel_len,
                            c: c.as_mut_ptr().add(row * ldc + p * PANEL),
                            ldc,
                            init: init.map_or(std::ptr::null(), |row| row.as_ptr().add(p * PANEL)),
                        };
                        dispatch::<K>(&tile, rows, two);
                    }
                    row += rows;
                }
                p += if two { 2 } else { 1 };
            }
        }
    }
}

/// One micro-kernel call: `rows` rows of `A` (in pairs) times one or two panels of `B`.
struct Tile {
    pairs: usize,
    a: *const u32,
    a_stride: usize,
    w: *const u32,
    panel_len: usize,
    c: *mut f32,
    ldc: usize,
    /// One row added to every row of `C` in place of `C`'s own values, or null.
    init: *const f32,
}

/// # Safety
/// As [`PairKernel::tile`], with `1 ≤ rows ≤ 8`.
#[inline(always)]
unsafe fn dispatch<K: PairKernel>(tile: &Tile, rows: usize, two: bool) {
    macro_rules! call {
        ($rows:literal) => {
            // SAFETY: the caller's contract.
            unsafe {
                if two {
                    K::tile::<$rows, 2>(tile)
                } else {
                    K::tile::<$rows, 1>(tile)
                }
            }
        };
    }
    by_rows!(rows, call)
}

/// A micro-kernel over bf16 pairs: `R` rows times `P` panels.
trait PairKernel {
    /// # Safety
    /// `tile.a` reaches `R` rows of `tile.pairs` lanes, `tile.w` `P` panels of as many rows
    /// of 16 lanes, `tile.c` `R` rows of `16·P` values, a non-null `tile.init` `16·P`
    /// values, and the CPU has the instruction set the implementation is compiled for.
    unsafe fn tile<const R: usize, const P: usize>(tile: &Tile);
}

/// Adds a tile's sums to `C` (or to `init`, into `C`).
///
/// # Safety
/// As [`PairKernel::tile`].
#[inline(always)]
unsafe fn store<const R: usize, const P: usize>(tile: &Tile, acc: &[[[f32; PANEL]; P]; R]) {
    for (r, acc_row) in acc.iter().enumerate() {
        for (q, sums) in acc_row.iter().enumerate() {
            for (v, sum) in sums.iter().enumerate() {
                // SAFETY: the caller's contract.
                unsafe {
                    let out = tile.c.add(r * tile.ldc + q * PANEL + v);
                    let base = if tile.init.is_null() {
                        *out
                    } else {
                        *tile.init.add(q * PANEL + v)
                    };
                    *out = base + sum;
                }
            }
        }
    }
}

/// `vdpbf16ps` in scalar code: per pair, the high halves' product, then the low halves',
/// each added with one rounding.
pub(super) struct Emulated;

impl PairKernel for Emulated {
    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(tile: &Tile) {
        let mut acc = [[[0.0f32; PANEL]; P]; R];
        for i in 0..tile.pairs {
            for (r, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY (both): inside the ranges of the trait's contract.
                let (a_low, a_high) = halves(unsafe { *tile.a.add(r * tile.a_stride + i) });
                for (q, sums) in acc_row.iter_mut().enumerate() {
                    let w = unsafe { tile.w.add(q * tile.panel_len + i * PANEL) };
                    for (v, sum) in sums.iter_mut().enumerate() {
                        let (w_low, w_high) = halves(unsafe { *w.add(v) });
                        *sum = a_high.mul_add(w_high, *sum);
                        *sum = a_low.mul_add(w_low, *sum);
                    }
                }
            }
        }
        // SAFETY: the caller's contract.
        unsafe { store(tile, &acc) }
    }
}

/// AVX-512 BF16: a panel's pair row is one register; 8 rows × 2 panels keeps 16 sums.
#[cfg(target_arch = "x86_64")]
struct Avx512Bf16;

#[cfg(target_arch = "x86_64")]
impl PairKernel for Avx512Bf16 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize, const P: usize>(tile: &Tile) {
        use std::arch::x86_64::*;
        let as_bf16 = |x: __m512i| -> __m512bh {
            // SAFETY: both are 512 bits of plain data.
            unsafe { std::mem::transmute(x) }
        };
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for i in 0..tile.pairs {
            let mut weights = [as_bf16(_mm512_setzero_si512()); P];
            for (q, panel) in weights.iter_mut().enumerate() {
                // SAFETY (every block here): inside the ranges of the trait's contract.
                let row = unsafe { tile.w.add(q * tile.panel_len + i * PANEL) };
                *panel = as_bf16(unsafe { _mm512_loadu_si512(row as *const __m512i) });
            }
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let lane = unsafe { *tile.a.add(r * tile.a_stride + i) };
                let x = as_bf16(_mm512_set1_epi32(lane as i32));
                for (sum, panel) in acc_row.iter_mut().zip(&weights) {
                    *sum = _mm512_dpbf16_ps(*sum, x, *panel);
                }
            }
        }
        let mut sums = [[[0.0f32; PANEL]; P]; R];
        for (out_row, acc_row) in sums.iter_mut().zip(&acc) {
            for (out, sum) in out_row.iter_mut().zip(acc_row) {
                // SAFETY: `out` holds 16 floats.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr(), *sum) };
            }
        }
        // SAFETY: the caller's contract.
        unsafe { store(tile, &sums) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::packed::PackedMatrix;
    use crate::fused::packed::tests::values;

    fn round(x: f32) -> f64 {
        f64::from(Bf16::from_f32(x).to_f32())
    }

    /// The product of every instruction set against a plain triple loop in f64 over the
    /// operands rounded to bf16, with `A` row-major and transposed, for shapes that cross the
    /// row chunks, the reduction pieces, odd depths and partial panels; and `vdpbf16ps`
    /// against its emulation, to within the rounding of the sums' order.
    #[test]
    fn products_equal_a_triple_loop_over_the_rounded_operands() {
        for (m, k, n) in [
            (1, 1, 1),
            (11, 5, 20),
            (8, 128, 512),
            (300, 601, 40),
            (131, 257, 33),
        ] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let packed = PackedMatrix::pack(&b, (k, n), (n, 1)).to_bf16_pairs();
            let ldc = packed.padded_columns();
            let init = values(ldc, 3);
            let a_t: Vec<f32> = (0..k * m).map(|at| a[(at % m) * k + at / m]).collect();
            let run = |isa: Bf16Isa, transposed: bool| {
                let mut c = vec![0.0; m * ldc];
                let (a, strides) = if transposed {
                    (&a_t, (1, m))
                } else {
                    (&a, (k, 1))
                };
                gemm(isa, m, a, strides, &packed, &mut c, ldc, Some(&init));
                c
            };
            let emulated = run(Bf16Isa::Widened, false);
            for isa in Bf16Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
                for transposed in [false, true] {
                    let c = run(isa, transposed);
                    for i in 0..m {
                        for j in 0..n {
                            let terms = (0..k).map(|l| round(a[i * k + l]) * round(b[l * n + j]));
                            let magnitude: f64 = terms.clone().map(f64::abs).sum();
                            let want = terms.sum::<f64>();
                            let got = f64::from(c[i * ldc + j]) - f64::from(init[j]);
                            let tolerance = 1e-5 * (k as f64).sqrt() * want.abs().max(1.0);
                            let case = format!("{isa:?} {m}×{k}×{n} Aᵀ {transposed} [{i},{j}]");
                            assert!((got - want).abs() <= tolerance, "{case}: {got} vs {want}");
                            let reference = f64::from(emulated[i * ldc + j]);
                            let order = k as f64 * magnitude * f64::from(f32::EPSILON);
                            let got = f64::from(c[i * ldc + j]);
                            assert!(
                                (got - reference).abs() <= order,
                                "{case}: {got} vs {reference}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Rounding to bf16 pairs keeps each value's place: low half row `2i`, high `2i + 1`,
    /// zero past `k` and past `n`.
    #[test]
    fn pairs_hold_rows_two_by_two() {
        let (k, n) = (5, 18);
        let b: Vec<f32> = (0..k * n).map(|i| 1.0 + i as f32).collect();
        let packed = PackedMatrix::pack(&b, (k, n), (n, 1)).to_bf16_pairs();
        assert_eq!(packed.padded_columns(), 32);
        assert_eq!(packed.values.len(), 2 * 3 * PANEL);
        for p in 0..2 {
            for i in 0..3 {
                for v in 0..PANEL {
                    let (low, high) = halves(packed.values[(p * 3 + i) * PANEL + v]);
                    let j = p * PANEL + v;
                    let at = |row: usize| {
                        if row < k && j < n {
                            Bf16::from_f32(b[row * n + j]).to_f32()
                        } else {
                            0.0
                        }
                    };
                    assert_eq!(
                        (low, high),
                        (at(2 * i), at(2 * i + 1)),
                        "panel {p} pair {i} column {v}"
                    );
                }
            }
        }
        assert_eq!(bf16_bits(1e-39), 0, "below 2⁻¹²⁶ reads as zero");
    }
}
