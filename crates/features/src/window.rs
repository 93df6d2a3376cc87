//! Analysis windows, each one line of the formula its reference uses.

use std::f64::consts::PI;

use crate::Window;

/// The window of `length` samples, computed in f64 and rounded once to f32.
///
/// ```
/// use features::{window, Window};
/// let w = window(Window::Hann { periodic: false }, 5);
/// assert_eq!(w, vec![0.0, 0.5, 1.0, 0.5, 0.0]);
/// ```
pub fn window(kind: Window, length: usize) -> Vec<f32> {
    let denominator = |periodic: bool| {
        if periodic {
            length
        } else {
            length.saturating_sub(1)
        }
    };
    let cosine_sum = |periodic: bool, a: &[f64]| -> Vec<f32> {
        let m = denominator(periodic);
        (0..length)
            .map(|n| {
                if m == 0 {
                    return 1.0;
                }
                let x = 2.0 * PI * n as f64 / m as f64;
                let value: f64 = a
                    .iter()
                    .enumerate()
                    .map(|(k, ak)| if k % 2 == 0 { 1.0 } else { -1.0 } * ak * (k as f64 * x).cos())
                    .sum();
                value as f32
            })
            .collect()
    };
    match kind {
        Window::Hann { periodic } => cosine_sum(periodic, &[0.5, 0.5]),
        Window::Hamming { periodic } => cosine_sum(periodic, &[0.54, 0.46]),
        Window::Blackman { periodic } => cosine_sum(periodic, &[0.42, 0.5, 0.08]),
        Window::Povey => cosine_sum(false, &[0.5, 0.5])
            .into_iter()
            .map(|v| (v as f64).max(0.0).powf(0.85) as f32)
            .collect(),
        Window::Rectangular => vec![1.0; length],
    }
}
