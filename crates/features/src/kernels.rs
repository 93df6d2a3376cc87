//! Sums and dot products with eight independent accumulators.
//!
//! `iter().sum()` on floats is one dependent chain of additions (the compiler may
//! not reorder them), four cycles each; eight lanes let it vectorise. The order
//! of additions differs from a sequential sum by rounding only.

const LANES: usize = 8;

/// Σ a[i]·b[i] over the shorter of the two slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0.0f32; LANES];
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = rest_a.iter().zip(rest_b).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// Σ a[i].
#[inline(always)]
pub fn sum(a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for x in chunks {
        for i in 0..LANES {
            lanes[i] += x[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Σ (scale·a[i] − mean)².
#[inline(always)]
pub fn squared_deviation(a: &[f32], scale: f32, mean: f32) -> f32 {
    let deviation = |x: f32| (x * scale - mean) * (x * scale - mean);
    let mut lanes = [0.0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&x| deviation(x)).sum();
    for x in chunks {
        for i in 0..LANES {
            lanes[i] += deviation(x[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}
