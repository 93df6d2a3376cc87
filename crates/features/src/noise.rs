//! Additive noise at a chosen signal-to-noise ratio, for augmentation.

use crate::extractor::Gaussian;

/// Adds white Gaussian noise to `samples` so that the ratio of the signal's mean power to
/// the noise's is `snr_db` decibels (torchaudio's `add_noise` with a white noise). The
/// noise is seeded from the samples themselves, so a file always gets the same noise and
/// two files get different noise. Silence (zero power) is left alone.
///
/// ```
/// let mut tone: Vec<f32> = (0..8000).map(|n| (n as f32 * 0.1).sin()).collect();
/// let clean = tone.clone();
/// features::noise::add_white_noise(&mut tone, 20.0);
/// let noise: f32 = tone.iter().zip(&clean).map(|(a, b)| (a - b).powi(2)).sum();
/// let signal: f32 = clean.iter().map(|x| x * x).sum();
/// assert!((10.0 * (signal / noise).log10() - 20.0).abs() < 0.3);
/// ```
pub fn add_white_noise(samples: &mut [f32], snr_db: f32) {
    let power =
        samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    if power == 0.0 {
        return;
    }
    let scale = (power / 10f64.powf(snr_db as f64 / 10.0)).sqrt() as f32;
    let seed = samples.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, x| {
        (h ^ x.to_bits() as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut gauss = Gaussian::new(seed);
    for x in samples {
        *x += scale * gauss.next();
    }
}
