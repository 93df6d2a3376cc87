//! `exp`, `sigmoid` and `tanh` written with only arithmetic, comparisons and bit casts, so
//! that a loop over them compiles to vector code for whichever instruction set the calling
//! kernel was built for (see the `isa` crate).
//!
//! Accuracy, checked in the tests against `f64` over the whole `f32` range: relative error
//! at most 1e-6 wherever the exact result is a normal `f32`, absolute error at most
//! `f32::MIN_POSITIVE` below that; `sigmoid` saturates to exactly 0 and 1 and `tanh` to
//! exactly ±1; NaN propagates.

// The polynomial coefficients are Cephes' as published.
#![allow(clippy::excessive_precision)]

/// `1.5 · 2²³`: adding and subtracting it rounds an `f32` of magnitude below 2²² to the
/// nearest integer, and leaves that integer in the low mantissa bits.
const ROUNDER: f32 = 12_582_912.0;
/// `ln(f32::MIN_POSITIVE)`: below it `eˣ` is no longer a normal `f32`.
const EXP_LOW: f32 = -87.336_55;

/// `eˣ` for `x ≤ 0` (Cephes' `expf` reduction and polynomial); 0 below [`EXP_LOW`].
#[inline(always)]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Comparisons, not `max`, so that NaN goes through.
    let underflow = x < EXP_LOW;
    let x = if underflow { EXP_LOW } else { x };
    let shifted = x * LOG2E + ROUNDER;
    let k = shifted - ROUNDER;
    let k_bits = (shifted.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * (r * r) + r + 1.0;
    // k ∈ [−126, 0], so 2ᵏ is a normal f32.
    let scaled = y * f32::from_bits((k_bits.wrapping_add(127) as u32) << 23);
    if underflow { 0.0 } else { scaled }
}

/// The logistic function `1 / (1 + e⁻ˣ)`, with one `exp` of a non-positive argument.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    let e = exp_nonpositive(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// `tanh x`: Cephes' odd polynomial below 0.625, `(1 − e)/(1 + e)` with `e = e^{−2|x|}` above.
#[inline(always)]
pub(super) fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * ax + ax;
    let e = exp_nonpositive(-2.0 * ax);
    let large = (1.0 - e) / (1.0 + e);
    let magnitude = if ax < 0.625 { small } else { large };
    magnitude.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 257th `f32` bit pattern, both signs, plus the edges that matter.
    fn sweep() -> impl Iterator<Item = f32> {
        let specials = [
            0.0,
            -0.0,
            0.625,
            -0.625,
            EXP_LOW,
            EXP_LOW / 2.0,
            88.0,
            -88.0,
            -104.0,
            1e30,
            -1e30,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
        ];
        (0..u32::MAX / 257)
            .map(|i| f32::from_bits(i * 257))
            .filter(|x| x.is_finite())
            .flat_map(|x| [x, -x])
            .chain(specials)
    }

    fn check(name: &str, ours: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64) {
        let mut worst = (0.0f64, 0.0f32);
        for x in sweep() {
            let want = exact(f64::from(x));
            let got = f64::from(ours(x));
            if want.abs() >= f64::from(f32::MIN_POSITIVE) {
                let rel = (got - want).abs() / want.abs();
                if rel > worst.0 {
                    worst = (rel, x);
                }
            } else {
                assert!(
                    (got - want).abs() <= f64::from(f32::MIN_POSITIVE),
                    "{name}({x:e}) = {got:e}, exact {want:e}"
                );
            }
        }
        assert!(
            worst.0 <= 1e-6,
            "{name}: relative error {:e} at x = {:e}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn exp_is_within_1e_6_relative_of_f64_on_the_normal_range() {
        check("exp", |x| exp_nonpositive(-x.abs()), |x| (-x.abs()).exp());
    }

    #[test]
    fn sigmoid_is_within_1e_6_relative_of_f64() {
        check("sigmoid", sigmoid, |x| 1.0 / (1.0 + (-x).exp()));
    }

    #[test]
    fn tanh_is_within_1e_6_relative_of_f64() {
        check("tanh", tanh, f64::tanh);
    }

    #[test]
    fn saturation_is_exact_and_nan_propagates() {
        for x in [17.0, 20.0, 100.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(sigmoid(x), 1.0, "sigmoid({x})");
            if x >= 88.0 {
                assert_eq!(sigmoid(-x), 0.0, "sigmoid(-{x})");
            }
            assert_eq!(tanh(x), 1.0, "tanh({x})");
            assert_eq!(tanh(-x), -1.0, "tanh(-{x})");
        }
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(f32::NAN).is_nan());
        assert!(tanh(f32::NAN).is_nan());
    }
}
