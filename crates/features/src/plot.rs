//! A feature matrix drawn as a PNG image (time left to right, coefficient 0 at the bottom).

use std::path::Path;

use crate::npy::write_atomic;
use crate::{FeatureError, Features};

/// Pixels per frame and per coefficient.
const CELL: (usize, usize) = (2, 6);

/// Writes `features` as a colour image, each coefficient scaled to its own range
/// (viridis-like colours: dark blue low, yellow high). Written atomically.
pub fn write_png(path: impl AsRef<Path>, features: &Features) -> Result<(), FeatureError> {
    let path = path.as_ref();
    let (width, height) = (
        features.num_frames.max(1) * CELL.0,
        features.dim.max(1) * CELL.1,
    );
    // Each coefficient is scaled to its own range: c0 would otherwise flatten the rest.
    let ranges: Vec<(f32, f32)> = (0..features.dim)
        .map(|d| {
            let (lo, hi) = features
                .frames()
                .map(|f| f[d])
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            (lo, if hi > lo { hi - lo } else { 1.0 })
        })
        .collect();
    let mut pixels = vec![0u8; width * height * 3];
    for y in 0..height {
        let coefficient = features.dim.saturating_sub(1) - y / CELL.1;
        for x in 0..width {
            let frame = x / CELL.0;
            let value = if frame < features.num_frames && features.dim > 0 {
                let (low, span) = ranges[coefficient];
                (features.frame(frame)[coefficient] - low) / span
            } else {
                0.0
            };
            pixels[(y * width + x) * 3..][..3].copy_from_slice(&colour(value));
        }
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let failed = |e: png::EncodingError| FeatureError::io(path, std::io::Error::other(e));
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(&pixels).map_err(failed)?;
    }
    write_atomic(path, &bytes)
}

/// A few stops of matplotlib's viridis, linearly interpolated.
fn colour(value: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let position = value.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let (index, fraction) = ((position as usize).min(STOPS.len() - 2), position.fract());
    let fraction = if position as usize >= STOPS.len() - 1 {
        1.0
    } else {
        fraction
    };
    let (a, b) = (STOPS[index], STOPS[index + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * fraction).round() as u8)
}
