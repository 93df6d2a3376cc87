//! The per-step matrix product of a recurrent layer, `C += A · B`, with `B` (the recurrent
//! weights) laid out once per sequence in column panels and reused by every step.
//!
//! General-purpose GEMMs pack both operands on every call; at the per-step shape of a
//! recurrent layer (a few dozen rows) that packing costs about as much as the arithmetic.
//! Here `B` is packed once, `A` (the state, a few kilobytes) is read in place, and the
//! micro-kernel keeps a block of `C` in vector registers: one 16-float panel row is one
//! AVX-512 register, two AVX2 registers, or four SSE/NEON registers.

use super::bf16::{Bf16, PanelWeight};
use super::bf16_pairs::PackedBf16Pairs;
use super::pool::Buffer;

/// Columns per panel.
pub(super) const PANEL: usize = 16;

/// Rows of `B` per piece of a product's reduction: two 16-column panels of this depth
/// (32 KiB) fit in L1 beside the accumulators.
pub(super) const DEPTH: usize = 256;

/// A `[k, n]` matrix as `⌈n/16⌉` panels of 16 columns, each panel `k` rows of 16 floats,
/// the last one padded with zeros.
#[derive(Debug)]
pub(super) struct PackedMatrix {
    k: usize,
    panels: usize,
    values: Buffer,
}

impl PackedMatrix {
    /// Packs `b[i·row_stride + j·col_stride]` for `i < k`, `j < n`.
    ///
    /// The source is read in the order it lies in memory: a row-major `b` row by row (each
    /// row's 16-column pieces go to the panels side by side), a transposed one column by
    /// column. Walking it panel by panel instead reads one cache line per row from rows
    /// kilobytes apart, which the prefetchers do not follow.
    pub(super) fn pack(
        b: &[f32],
        (k, n): (usize, usize),
        (row_stride, col_stride): (usize, usize),
    ) -> Self {
        let panels = n.div_ceil(PANEL);
        let mut values = Buffer::with_stale_values(panels * k * PANEL);
        let panel_len = k * PANEL;
        if n % PANEL != 0 {
            // The last panel's padding columns.
            let last = (panels - 1) * panel_len;
            for row in values[last..].chunks_exact_mut(PANEL) {
                row[n % PANEL..].fill(0.0);
            }
        }
        if col_stride == 1 {
            for i in 0..k {
                let source = &b[i * row_stride..];
                for p in 0..panels {
                    let columns = p * PANEL..n.min(p * PANEL + PANEL);
                    let at = p * panel_len + i * PANEL;
                    if columns.len() == PANEL {
                        // A fixed-size copy, inlined (a `memcpy` call per 64 bytes is not).
                        let whole: &mut [f32; PANEL] = (&mut values[at..at + PANEL])
                            .try_into()
                            .expect("a full panel");
                        *whole = source[columns].try_into().expect("a full panel");
                    } else {
                        values[at..at + columns.len()].copy_from_slice(&source[columns]);
                    }
                }
            }
        } else {
            for j in 0..n {
                let (p, v) = (j / PANEL, j % PANEL);
                let panel = &mut values[p * panel_len..(p + 1) * panel_len];
                let source = &b[j * col_stride..];
                for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                    row[v] = source[i * row_stride];
                }
            }
        }
        Self { k, panels, values }
    }

    /// Columns including the padding: the row stride `C` needs.
    pub(super) fn padded_columns(&self) -> usize {
        self.panels * PANEL
    }

    /// Values held, the padding included.
    pub(super) fn value_count(&self) -> usize {
        self.values.len()
    }

    fn panels_ref(&self) -> Panels<'_, f32> {
        Panels {
            k: self.k,
            panels: self.panels,
            values: &self.values,
        }
    }

    /// The same values rounded to bf16, in pairs of rows, for `vdpbf16ps`.
    pub(super) fn to_bf16_pairs(&self) -> PackedBf16Pairs {
        PackedBf16Pairs::from_panels(self.k, self.panels, &self.values)
    }

    /// The same panels with every value rounded to the nearest bf16.
    pub(super) fn to_bf16(&self) -> PackedBf16 {
        PackedBf16 {
            k: self.k,
            panels: self.panels,
            values: self.values.iter().map(|&v| Bf16::from_f32(v)).collect(),
        }
    }
}

/// A [`PackedMatrix`] whose values are stored as bf16: half the memory, widened to f32 (an
/// exact conversion) as the micro-kernels load them.
#[derive(Debug)]
pub(crate) struct PackedBf16 {
    k: usize,
    panels: usize,
    values: Vec<Bf16>,
}

impl PackedBf16 {
    pub(super) fn padded_columns(&self) -> usize {
        self.panels * PANEL
    }

    /// Bytes of weights held.
    pub(super) fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<Bf16>()
    }

    fn panels_ref(&self) -> Panels<'_, Bf16> {
        Panels {
            k: self.k,
            panels: self.panels,
            values: &self.values,
        }
    }
}

/// The panels of a packed matrix of either element type.
#[derive(Clone, Copy)]
struct Panels<'a, W> {
    k: usize,
    panels: usize,
    values: &'a [W],
}

/// A micro-kernel: `R` rows of `A` times `P` consecutive panels of `B`, accumulated into
/// `C`, with `1 ≤ R ≤` [`Blocking::ROWS`] (at most 8) and `P` ∈ {1, [`Blocking::PANELS`]}.
pub(super) trait Blocking {
    const ROWS: usize;
    const PANELS: usize;

    /// `C = init + A·B` where `init` (one row, broadcast over the rows) is not null,
    /// `C += A·B` where it is.
    ///
    /// # Safety
    /// `a` reaches `R` rows of `k` values (element `(r, i)` at `r·strides.0 + i·strides.1`),
    /// `w` reaches `P` panels of `k` rows, `panel_len` values apart,
    /// `c` reaches `R` rows of `16·P` values `ldc` apart, a non-null `init` reaches `16·P`
    /// values, and the CPU has the instruction set the implementation is compiled for.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<W: PanelWeight, const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        a_strides: (usize, usize),
        w: *const W,
        panel_len: usize,
        c: *mut f32,
        ldc: usize,
        init: *const f32,
    );
}

/// `C[m, padded] += A[m, k] · B`, or `C = init + A·B` with `init` one row of
/// [`PackedMatrix::padded_columns`] values added to every row. Element `(r, i)` of `A` is
/// `a[r·row_stride + i·k_stride]` (so `Aᵀ` of a row-major matrix is read in place); `C`
/// has row stride `ldc` (at least the padded columns).
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for.
#[inline(always)]
pub(super) unsafe fn gemm<K: Blocking>(
    m: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    // SAFETY: the caller vouches for the instruction set.
    unsafe { gemm_k_range::<K, f32>(m, a, a_strides, b.panels_ref(), 0..b.k, c, ldc, init) }
}

/// [`gemm`] with bf16 weights.
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for.
#[inline(always)]
pub(super) unsafe fn gemm_bf16<K: Blocking>(
    m: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &PackedBf16,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    // SAFETY: the caller vouches for the instruction set.
    unsafe { gemm_k_range::<K, Bf16>(m, a, a_strides, b.panels_ref(), 0..b.k, c, ldc, init) }
}

/// [`gemm`] over the rows `k_range` of `B` only; `a` holds the matching columns of `A`,
/// from column `k_range.start` on (element `(r, i)` at `(i − k_range.start)·k_stride`).
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn gemm_k_range<K: Blocking, W: PanelWeight>(
    m: usize,
    a: &[f32],
    (row_stride, k_stride): (usize, usize),
    b: Panels<'_, W>,
    k_range: std::ops::Range<usize>,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    let k = k_range.len();
    if m == 0 {
        return;
    }
    assert!(k_range.end <= b.k);
    let padded_columns = b.panels * PANEL;
    assert!(ldc >= padded_columns);
    assert!(init.is_none_or(|row| row.len() >= padded_columns));
    assert!(k == 0 || a.len() > (m - 1) * row_stride + (k - 1) * k_stride);
    let panel_len = b.k * PANEL;
    assert!(c.len() >= (m - 1) * ldc + padded_columns);
    // The reduction is cut into pieces of at most `DEPTH` rows of `B`, so that the panels a
    // micro-kernel streams stay in L1 while every row block of a chunk of `A` passes over
    // them; the chunk of `A` stays in L2 while every panel passes over it.
    let chunk = 16 * K::ROWS;
    for first in (0..m).step_by(chunk) {
        let last = m.min(first + chunk);
        for depth in (0..k.max(1)).step_by(DEPTH) {
            let piece = depth..k.min(depth + DEPTH);
            let init = if depth == 0 { init } else { None };
            let mut p = 0;
            while p < b.panels {
                let pair = K::PANELS == 2 && p + 1 < b.panels;
                let mut row = first;
                while row < last {
                    // A full block of rows, or one block of exactly the rows left over, so
                    // that every tile streams its panels once for up to `ROWS` rows.
                    let rows = K::ROWS.min(last - row);
                    // SAFETY: the asserts above keep rows `row..row + rows` of `A` and `C`, and
                    // panels `p..p + 2` (or `p`) of `B`, inside their slices; the caller
                    // vouches for the instruction set.
                    unsafe {
                        let a = a.as_ptr().add(row * row_stride + piece.start * k_stride);
                        let c = c.as_mut_ptr().add(row * ldc + p * PANEL);
                        let w = b
                            .values
                            .as_ptr()
                            .add(p * panel_len + (k_range.start + piece.start) * PANEL);
                        let init = init.map_or(std::ptr::null(), |row| row.as_ptr().add(p * PANEL));
                        let (k, a_strides) = (piece.len(), (row_stride, k_stride));
                        macro_rules! tile {
                            ($rows:literal) => {
                                if pair {
                                    K::tile::<W, $rows, 2>(
                                        k, a, a_strides, w, panel_len, c, ldc, init,
                                    )
                                } else {
                                    K::tile::<W, $rows, 1>(
                                        k, a, a_strides, w, panel_len, c, ldc, init,
                                    )
                                }
                            };
                        }
                        by_rows!(rows, tile)
                    }
                    row += rows;
                }
                p += if pair { 2 } else { 1 };
            }
        }
    }
}

/// The baseline micro-kernel: plain loops the compiler vectorises for the target's
/// baseline (SSE2 on x86-64, NEON on aarch64).
pub(super) struct Portable;

impl Blocking for Portable {
    const ROWS: usize = 2;
    const PANELS: usize = 1;

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<W: PanelWeight, const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const W,
        panel_len: usize,
        c: *mut f32,
        ldc: usize,
        init: *const f32,
    ) {
        let mut acc = [[[0.0f32; PANEL]; P]; R];
        for i in 0..k {
            for (r, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY (every block here): inside the ranges of the trait's contract.
                let x = unsafe { *a.add(r * row_stride + i * k_stride) };
                for (q, acc_panel) in acc_row.iter_mut().enumerate() {
                    let weights = unsafe { W::row(w.add(q * panel_len + i * PANEL)) };
                    for (sum, weight) in acc_panel.iter_mut().zip(weights) {
                        *sum += x * weight;
                    }
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (q, acc_panel) in acc_row.iter().enumerate() {
                for (v, sum) in acc_panel.iter().enumerate() {
                    unsafe {
                        let out = c.add(r * ldc + q * PANEL + v);
                        let base = if init.is_null() {
                            *out
                        } else {
                            *init.add(q * PANEL + v)
                        };
                        *out = base + sum;
                    }
                }
            }
        }
    }
}

/// AVX2 + FMA: a panel row is two 8-float registers; 6 rows × 1 panel keeps 12 accumulators.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Blocking for Avx2 {
    const ROWS: usize = 6;
    const PANELS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<W: PanelWeight, const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const W,
        panel_len: usize,
        c: *mut f32,
        ldc: usize,
        init: *const f32,
    ) {
        use std::arch::x86_64::*;
        let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
        for i in 0..k {
            let mut weights = [[_mm256_setzero_ps(); 2]; P];
            for (q, pair) in weights.iter_mut().enumerate() {
                // SAFETY (every block here): inside the ranges of the trait's contract.
                let row = unsafe { w.add(q * panel_len + i * PANEL) };
                *pair = unsafe { W::row_avx2(row) };
            }
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let x = _mm256_set1_ps(unsafe { *a.add(r * row_stride + i * k_stride) });
                for (acc_panel, pair) in acc_row.iter_mut().zip(&weights) {
                    acc_panel[0] = _mm256_fmadd_ps(x, pair[0], acc_panel[0]);
                    acc_panel[1] = _mm256_fmadd_ps(x, pair[1], acc_panel[1]);
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (q, acc_panel) in acc_row.iter().enumerate() {
                for (half, sum) in acc_panel.iter().enumerate() {
                    unsafe {
                        let out = c.add(r * ldc + q * PANEL + 8 * half);
                        let base = if init.is_null() {
                            out
                        } else {
                            init.add(q * PANEL + 8 * half)
                        };
                        _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(base), *sum));
                    }
                }
            }
        }
    }
}

/// AVX-512: a panel row is one register; 8 rows × 2 panels keeps 16 accumulators.
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Blocking for Avx512 {
    const ROWS: usize = 8;
    const PANELS: usize = 2;

    #[inline]
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<W: PanelWeight, const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const W,
        panel_len: usize,
        c: *mut f32,
        ldc: usize,
        init: *const f32,
    ) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for i in 0..k {
            let mut weights = [_mm512_setzero_ps(); P];
            for (q, panel) in weights.iter_mut().enumerate() {
                // SAFETY (every block here): inside the ranges of the trait's contract.
                *panel = unsafe { W::row_avx512(w.add(q * panel_len + i * PANEL)) };
            }
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(unsafe { *a.add(r * row_stride + i * k_stride) });
                for (sum, panel) in acc_row.iter_mut().zip(&weights) {
                    *sum = _mm512_fmadd_ps(x, *panel, *sum);
                }
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (q, sum) in acc_row.iter().enumerate() {
                unsafe {
                    let out = c.add(r * ldc + q * PANEL);
                    let base = if init.is_null() {
                        out
                    } else {
                        init.add(q * PANEL)
                    };
                    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_loadu_ps(base), *sum));
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use isa::CpuIsa;

    /// Deterministic values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The product, with `A` read row-major and transposed, against a plain triple loop in
    /// f64, for shapes that cross the row chunks, the reduction pieces, partial panels and
    /// partial register blocks.
    fn check<K: Blocking>(name: &str) {
        for (m, k, n) in [
            (1, 1, 1),
            (11, 5, 20),
            (8, 128, 512),
            (300, 600, 40),
            (131, 257, 33),
        ] {
            let a = values(m * k, 1);
            let b = values(k * n, 2);
            let packed = PackedMatrix::pack(&b, (k, n), (n, 1));
            let ldc = packed.padded_columns();
            let exact = |i: usize, j: usize, a_at: &dyn Fn(usize, usize) -> f32| {
                (0..k)
                    .map(|l| f64::from(a_at(i, l)) * f64::from(b[l * n + j]))
                    .sum::<f64>()
            };
            let init = values(ldc, 3);
            let mut c = vec![0.0; m * ldc];
            // SAFETY: `check` runs only for instruction sets the CPU has.
            unsafe { gemm::<K>(m, &a, (k, 1), &packed, &mut c, ldc, Some(&init)) };
            // `A` stored transposed, `[k, m]`, and read in place.
            let a_t: Vec<f32> = (0..k * m).map(|at| a[(at % m) * k + at / m]).collect();
            let mut c_t = vec![0.0; m * ldc];
            // SAFETY: as above.
            unsafe { gemm::<K>(m, &a_t, (1, m), &packed, &mut c_t, ldc, None) };
            for i in 0..m {
                for j in 0..n {
                    let want = exact(i, j, &|i, l| a[i * k + l]);
                    let tolerance = 1e-5 * (k as f64).sqrt() * want.abs().max(1.0);
                    let got = f64::from(c[i * ldc + j]) - f64::from(init[j]);
                    assert!(
                        (got - want).abs() <= tolerance,
                        "{name} {m}×{k}×{n} [{i},{j}]: {got} vs {want}"
                    );
                    let got_t = f64::from(c_t[i * ldc + j]);
                    assert!(
                        (got_t - want).abs() <= tolerance,
                        "{name} Aᵀ {m}×{k}×{n} [{i},{j}]: {got_t} vs {want}"
                    );
                }
            }
        }
    }

    /// Every element of `B` lands in its panel slot, the padding is zero, and a transposed
    /// source read in place packs to the same values as its row-major copy.
    #[test]
    fn packing_places_every_element_and_zeroes_the_padding() {
        for (k, n) in [(1, 1), (3, 16), (40, 512), (257, 33), (5, 47)] {
            let b = values(k * n, 4);
            let b_t: Vec<f32> = (0..n * k).map(|at| b[(at % k) * n + at / k]).collect();
            let padded = n.div_ceil(PANEL) * PANEL;
            let want: Vec<f32> = (0..padded / PANEL)
                .flat_map(|p| (0..k).flat_map(move |i| (0..PANEL).map(move |v| (p, i, v))))
                .map(|(p, i, v)| {
                    let j = p * PANEL + v;
                    if j < n { b[i * n + j] } else { 0.0 }
                })
                .collect();
            for (packed, layout) in [
                (PackedMatrix::pack(&b, (k, n), (n, 1)), "row-major"),
                (PackedMatrix::pack(&b_t, (k, n), (1, k)), "transposed"),
            ] {
                assert_eq!(packed.padded_columns(), padded);
                assert_eq!(&packed.values[..], &want[..], "{k}×{n} {layout}");
            }
        }
    }

    #[test]
    fn products_equal_a_plain_triple_loop_on_every_instruction_set() {
        check::<Portable>("portable");
        #[cfg(target_arch = "x86_64")]
        {
            if CpuIsa::Avx2.is_supported() {
                check::<Avx2>("avx2");
            }
            if CpuIsa::Avx512.is_supported() {
                check::<Avx512>("avx512");
            }
        }
    }
}
