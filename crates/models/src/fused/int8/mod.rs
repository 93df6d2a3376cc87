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

    /// The matrix as a `[n, k]` row-major one quantises (a row per column of `B`): its
    /// values `q[i, j]` at `[j·k + i]` and the scales `s_j`, the padding left out.
    #[cfg(test)]
    fn unpacked(&self) -> (Vec<i8>, Vec<f32>) {
        let n = self
            .scales
            .iter()
            .rposition(|&s| s != 0.0)
            .map_or(0, |j| j + 1);
        let values = (0..n * self.k)
            .map(|at| {
                let (j, i) = (at / self.k, at % self.k);
                self.values[((i / 4) * self.padded + j) * 4 + i % 4]
            })
            .collect();
        (values, self.scales[..n].to_vec())
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
        // Contiguous rows on the VNNI path are quantised with AVX-512, which it implies.
        #[cfg(target_arch = "x86_64")]
        let avx512_rows = k_stride == 1 && isa == Int8Isa::Avx512Vnni && isa.is_supported();
        for r in 0..m {
            let row = &mut quantised[r * depth..(r + 1) * depth];
            let (values, padding) = row.split_at_mut(self.k);
            padding.fill(0);
            let scale = match self.k {
                0 => 0.0,
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512 F and BW (`avx512_rows`).
                _ if avx512_rows => unsafe {
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

/// `weight`, `[rows, cols]` row-major, quantised per row as [`Int8Matrix::quantise`]
/// quantises the columns of its transpose: the values, row-major, and a scale per row.
pub(crate) fn quantise_rows(weight: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut values = vec![0i8; weight.len()];
    let scales = weight
        .chunks(cols.max(1))
        .zip(values.chunks_mut(cols.max(1)))
        .map(|(row, out)| quantise_row(row, 1, out))
        .collect();
    (values, scales)
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
mod x86;

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1), a few of them large (saturating the gates).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut values = crate::fused::packed::tests::values(n, seed);
        values.iter_mut().step_by(97).for_each(|v| *v *= 40.0);
        values
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

    #[test]
    fn rows_are_quantised_as_the_packed_matrix_quantises_its_columns() {
        for (rows, cols) in [(20, 7), (1024, 64), (3, 1)] {
            let mut weight = values(rows * cols, 6);
            weight[cols..2 * cols].fill(0.0);
            let packed = Int8Matrix::quantise(&weight, (cols, rows), (1, cols));
            let (values, scales) = quantise_rows(&weight, cols);
            let (packed_values, packed_scales) = packed.unpacked();
            assert_eq!(values, packed_values);
            assert_eq!(scales[..packed_scales.len()], packed_scales);
            assert!(scales[packed_scales.len()..].iter().all(|&s| s == 0.0));
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
