//! Frame stacking: every `n` consecutive frames joined into one row of `n·dim` values, so
//! that a model reads them as one step and runs at `1/n` of the frame rate (the stacking
//! with a reduced frame rate of Sak et al., 2015, "Fast and accurate recurrent neural
//! network acoustic models for speech recognition").

use crate::Features;

/// `features` with frames `0..n`, `n..2n`, … each joined into one row, oldest first; a last,
/// partial run of frames is completed with zeros. `n = 1` returns the frames as they are.
/// Row-major frames joined this way are the same values in the same order, so the matrix is
/// only reshaped (and padded), never copied.
///
/// ```
/// use features::{stack_frames, Features};
/// let frames = Features { num_frames: 3, dim: 1, data: vec![1.0, 2.0, 3.0] };
/// let stacked = stack_frames(frames, 2);
/// assert_eq!((stacked.num_frames, stacked.dim), (2, 2));
/// assert_eq!(stacked.data, [1.0, 2.0, 3.0, 0.0]);
/// ```
///
/// # Panics
/// If `n` is 0.
pub fn stack_frames(features: Features, n: usize) -> Features {
    assert!(n > 0, "frames per step must be positive");
    let rows = features.num_frames.div_ceil(n);
    let mut data = features.data;
    data.resize(rows * n * features.dim, 0.0);
    Features {
        num_frames: rows,
        dim: n * features.dim,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(frames: usize, dim: usize) -> Features {
        Features {
            num_frames: frames,
            dim,
            data: (0..frames * dim).map(|i| i as f32 + 1.0).collect(),
        }
    }

    #[test]
    fn rows_join_consecutive_frames_and_the_last_is_zero_filled() {
        let stacked = stack_frames(ramp(5, 2), 3);
        assert_eq!((stacked.num_frames, stacked.dim), (2, 6));
        assert_eq!(stacked.frame(0), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(stacked.frame(1), &[7.0, 8.0, 9.0, 10.0, 0.0, 0.0]);
        assert_eq!(stack_frames(ramp(4, 3), 1), ramp(4, 3));
        assert_eq!(stack_frames(ramp(0, 3), 2).num_frames, 0);
    }
}
