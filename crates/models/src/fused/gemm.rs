//! The per-step matrix product of a recurrent layer, `C += A · B`, with `B` (the recurrent
//! weights) laid out once per sequence in column panels and reused by every step.
//!
//! General-purpose GEMMs pack both operands on every call; at the per-step shape of a
//! recurrent layer (a few dozen rows) that packing costs about as much as the arithmetic.
//! Here `B` is packed once, `A` (the state, a few kilobytes) is read in place, and the
//! micro-kernel is a plain loop over a block of accumulators that the compiler keeps in
//! vector registers: one 16-float panel row is one AVX-512 register, two AVX2 registers,
//! or four SSE/NEON registers.

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

    fn panel(&self, p: usize) -> &[f32] {
        &self.values[p * self.k * PANEL..(p + 1) * self.k * PANEL]
    }
}

/// Register blocking of the micro-kernel: rows of `A` per block (1, 2, 4, 6 or 8), and
/// whether `mul_add` compiles to one instruction.
pub(super) trait Blocking {
    const ROWS: usize;
    const FMA: bool;
}

#[inline(always)]
fn madd<K: Blocking>(a: f32, b: f32, c: f32) -> f32 {
    if K::FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `C[m, padded] += A[m, k] · B`, `A` with row stride `lda`, `C` with row stride `ldc`
/// (at least [`PackedMatrix::padded_columns`]).
#[inline(always)]
pub(super) fn gemm<K: Blocking>(
    m: usize,
    a: &[f32],
    lda: usize,
    b: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
) {
    let k = b.k;
    if m == 0 {
        return;
    }
    assert!(lda >= k && ldc >= b.padded_columns());
    assert!(a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + b.padded_columns());
    for p in 0..b.panels {
        let panel = b.panel(p);
        let mut row = 0;
        while row + K::ROWS <= m {
            block::<K>(
                K::ROWS,
                k,
                &a[row * lda..],
                lda,
                panel,
                &mut c[row * ldc + p * PANEL..],
                ldc,
            );
            row += K::ROWS;
        }
        while row < m {
            block::<K>(
                1,
                k,
                &a[row * lda..],
                lda,
                panel,
                &mut c[row * ldc + p * PANEL..],
                ldc,
            );
            row += 1;
        }
    }
}

/// `rows` rows of `A` times one panel, accumulated into `C`.
#[inline(always)]
fn block<K: Blocking>(
    rows: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    panel: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    match rows {
        1 => tile::<K, 1>(k, a, lda, panel, c, ldc),
        2 => tile::<K, 2>(k, a, lda, panel, c, ldc),
        4 => tile::<K, 4>(k, a, lda, panel, c, ldc),
        6 => tile::<K, 6>(k, a, lda, panel, c, ldc),
        8 => tile::<K, 8>(k, a, lda, panel, c, ldc),
        _ => unreachable!("blockings use 1, 2, 4, 6 or 8 rows"),
    }
}

#[inline(always)]
fn tile<K: Blocking, const R: usize>(
    k: usize,
    a: &[f32],
    lda: usize,
    panel: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    let mut acc = [[0.0f32; PANEL]; R];
    let rows: [&[f32]; R] = std::array::from_fn(|r| &a[r * lda..r * lda + k]);
    for (i, w) in panel[..k * PANEL].chunks_exact(PANEL).enumerate() {
        let w: &[f32; PANEL] = w.try_into().expect("panel rows are 16 wide");
        for r in 0..R {
            let x = rows[r][i];
            for v in 0..PANEL {
                acc[r][v] = madd::<K>(x, w[v], acc[r][v]);
            }
        }
    }
    for r in 0..R {
        let out = &mut c[r * ldc..r * ldc + PANEL];
        for v in 0..PANEL {
            out[v] += acc[r][v];
        }
    }
}
