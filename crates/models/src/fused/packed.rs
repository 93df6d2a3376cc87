//! The per-step matrix product of a recurrent layer, `C += A · B`, with `B` (the recurrent
//! weights) laid out once per sequence in column panels and reused by every step.
//!
//! General-purpose GEMMs pack both operands on every call; at the per-step shape of a
//! recurrent layer (a few dozen rows) that packing costs about as much as the arithmetic.
//! Here `B` is packed once, `A` (the state, a few kilobytes) is read in place, and the
//! micro-kernel keeps a block of `C` in vector registers: one 16-float panel row is one
//! AVX-512 register, two AVX2 registers, or four SSE/NEON registers.

/// Columns per panel.
pub(super) const PANEL: usize = 16;

/// A `[k, n]` matrix as `⌈n/16⌉` panels of 16 columns, each panel `k` rows of 16 floats,
/// the last one padded with zeros.
#[derive(Debug, Clone)]
pub(super) struct PackedMatrix {
    k: usize,
    panels: usize,
    values: Vec<f32>,
}

impl PackedMatrix {
    /// Packs `b[i·row_stride + j·col_stride]` for `i < k`, `j < n`.
    pub(super) fn pack(
        b: &[f32],
        (k, n): (usize, usize),
        (row_stride, col_stride): (usize, usize),
    ) -> Self {
        let panels = n.div_ceil(PANEL);
        let mut values = vec![0.0; panels * k * PANEL];
        for (p, panel) in values.chunks_exact_mut(k * PANEL).enumerate() {
            let columns = (p * PANEL)..n.min((p + 1) * PANEL);
            for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                for (slot, j) in row.iter_mut().zip(columns.clone()) {
                    *slot = b[i * row_stride + j * col_stride];
                }
            }
        }
        Self { k, panels, values }
    }

    /// Columns including the padding: the row stride `C` needs.
    pub(super) fn padded_columns(&self) -> usize {
        self.panels * PANEL
    }
}

/// A micro-kernel: `R` rows of `A` times `P` consecutive panels of `B`, accumulated into
/// `C`, with `R` ∈ {1, [`Blocking::ROWS`]} and `P` ∈ {1, [`Blocking::PANELS`]}.
pub(super) trait Blocking {
    const ROWS: usize;
    const PANELS: usize;

    /// `C = init + A·B` where `init` (one row, broadcast over the rows) is not null,
    /// `C += A·B` where it is.
    ///
    /// # Safety
    /// `a` reaches `R` rows of `k` values (element `(r, i)` at `r·strides.0 + i·strides.1`),
    /// `w` reaches `P` panels of `k` rows,
    /// `c` reaches `R` rows of `16·P` values `ldc` apart, a non-null `init` reaches `16·P`
    /// values, and the CPU has the instruction set the implementation is compiled for.
    unsafe fn tile<const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        a_strides: (usize, usize),
        w: *const f32,
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
    (row_stride, k_stride): (usize, usize),
    b: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    init: Option<&[f32]>,
) {
    let k = b.k;
    if m == 0 {
        return;
    }
    assert!(ldc >= b.padded_columns());
    assert!(init.is_none_or(|row| row.len() >= b.padded_columns()));
    assert!(k == 0 || a.len() > (m - 1) * row_stride + (k - 1) * k_stride);
    assert!(c.len() >= (m - 1) * ldc + b.padded_columns());
    let mut p = 0;
    while p < b.panels {
        let pair = K::PANELS == 2 && p + 1 < b.panels;
        let mut row = 0;
        while row < m {
            let full = row + K::ROWS <= m;
            // SAFETY: the asserts above keep rows `row..row + ROWS` (or `row`) of `A` and
            // `C`, and panels `p..p + 2` (or `p`) of `B`, inside their slices; the caller
            // vouches for the instruction set.
            unsafe {
                let a = a.as_ptr().add(row * row_stride);
                let c = c.as_mut_ptr().add(row * ldc + p * PANEL);
                let w = b.values.as_ptr().add(p * k * PANEL);
                let init = init.map_or(std::ptr::null(), |row| row.as_ptr().add(p * PANEL));
                match (full, pair, K::ROWS) {
                    (true, true, 8) => {
                        K::tile::<8, 2>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, false, 8) => {
                        K::tile::<8, 1>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, true, 6) => {
                        K::tile::<6, 2>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, false, 6) => {
                        K::tile::<6, 1>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, true, 4) => {
                        K::tile::<4, 2>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, false, 4) => {
                        K::tile::<4, 1>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, true, 2) => {
                        K::tile::<2, 2>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (true, false, 2) => {
                        K::tile::<2, 1>(k, a, (row_stride, k_stride), w, c, ldc, init)
                    }
                    (_, true, _) => K::tile::<1, 2>(k, a, (row_stride, k_stride), w, c, ldc, init),
                    (_, false, _) => K::tile::<1, 1>(k, a, (row_stride, k_stride), w, c, ldc, init),
                }
            }
            row += if full { K::ROWS } else { 1 };
        }
        p += if pair { 2 } else { 1 };
    }
}

/// `C[m, padded] += Aᵀ · B` for a row-major `A` `[k, m]` with row stride `lda`: the
/// products whose reduction runs over the rows of both operands (weight gradients summed
/// over steps). `Aᵀ` is first laid out in blocks of `K::ROWS` rows, `k` values by `ROWS`,
/// in one pass over `A`, so that the micro-kernel reads it contiguously.
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for.
#[inline(always)]
pub(super) unsafe fn gemm_transposed_a<K: Blocking>(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
) {
    let k = b.k;
    let blocks = m.div_ceil(K::ROWS);
    let block_len = k * K::ROWS;
    let mut packed = vec![0.0; blocks * block_len];
    for (i, row) in a.chunks(lda).take(k).enumerate() {
        for (q, values) in row[..m].chunks(K::ROWS).enumerate() {
            let at = q * block_len + i * K::ROWS;
            packed[at..at + values.len()].copy_from_slice(values);
        }
    }
    for q in 0..blocks {
        let rows = K::ROWS.min(m - q * K::ROWS);
        let block = &packed[q * block_len..(q + 1) * block_len];
        // SAFETY: the caller vouches for the instruction set.
        unsafe {
            gemm::<K>(
                rows,
                block,
                (1, K::ROWS),
                b,
                &mut c[q * K::ROWS * ldc..],
                ldc,
                None,
            )
        };
    }
}

/// The baseline micro-kernel: plain loops the compiler vectorises for the target's
/// baseline (SSE2 on x86-64, NEON on aarch64).
pub(super) struct Portable;

impl Blocking for Portable {
    const ROWS: usize = 2;
    const PANELS: usize = 1;

    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const f32,
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
                    let weights = unsafe { &*(w.add((q * k + i) * PANEL) as *const [f32; PANEL]) };
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
    unsafe fn tile<const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const f32,
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
                let row = unsafe { w.add((q * k + i) * PANEL) };
                *pair = unsafe { [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8))] };
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
    unsafe fn tile<const R: usize, const P: usize>(
        k: usize,
        a: *const f32,
        (row_stride, k_stride): (usize, usize),
        w: *const f32,
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
                *panel = unsafe { _mm512_loadu_ps(w.add((q * k + i) * PANEL)) };
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
