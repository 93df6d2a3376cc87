//! Whole-utterance post-processing: deltas and cepstral mean (and variance) normalisation.

use crate::{FeatureError, Features};

/// Appends regression deltas up to `order` (Kaldi's `add-deltas`, HTK's formula).
///
/// The first-order window is j / (2 Σ_{k=1..N} k²) for j = −N..N; each higher
/// order's window is the previous one convolved with it. Frames beyond the
/// edges repeat the first and last frame. Output rows are `[x, Δx, Δ²x, …]`.
///
/// ```
/// use features::{add_deltas, Features};
/// let ramp = Features { num_frames: 5, dim: 1, data: vec![0.0, 1.0, 2.0, 3.0, 4.0] };
/// let with_deltas = add_deltas(&ramp, 1, 2);
/// assert_eq!(with_deltas.frame(2), &[2.0, 1.0]); // slope 1 in the middle
/// ```
pub fn add_deltas(features: &Features, order: usize, window: usize) -> Features {
    let (frames, dim) = (features.num_frames, features.dim);
    let kernels = delta_kernels(order, window);
    let out_dim = dim * (order + 1);
    let mut data = vec![0.0f32; frames * out_dim];
    for t in 0..frames {
        for (block, kernel) in kernels.iter().enumerate() {
            let half = (kernel.len() / 2) as isize;
            let out = &mut data[t * out_dim + block * dim..t * out_dim + (block + 1) * dim];
            let mut sum = vec![0.0f64; dim];
            for (j, weight) in kernel.iter().enumerate() {
                if *weight == 0.0 {
                    continue;
                }
                let source =
                    (t as isize + j as isize - half).clamp(0, frames as isize - 1) as usize;
                for (s, x) in sum.iter_mut().zip(features.frame(source)) {
                    *s += weight * *x as f64;
                }
            }
            out.iter_mut().zip(&sum).for_each(|(o, s)| *o = *s as f32);
        }
    }
    Features {
        num_frames: frames,
        dim: out_dim,
        data,
    }
}

/// The regression kernels [`add_deltas`] applies, orders 0 to `order`: `[1]`, then each
/// order's the previous one convolved with `j / (2 Σ_{k=1..window} k²)`, `j = −window..window`
/// (centred: kernel `i` has `1 + 2·i·window` taps).
///
/// ```
/// let kernels = features::delta_kernels(1, 2);
/// assert_eq!(kernels[1], vec![-0.2, -0.1, 0.0, 0.1, 0.2]);
/// ```
pub fn delta_kernels(order: usize, window: usize) -> Vec<Vec<f64>> {
    let normaliser: f64 = 2.0 * (1..=window).map(|k| (k * k) as f64).sum::<f64>();
    let mut kernels: Vec<Vec<f64>> = vec![vec![1.0]];
    for _ in 0..order {
        let previous = kernels.last().expect("order 0 kernel");
        let mut next = vec![0.0; previous.len() + 2 * window];
        for (k, p) in previous.iter().enumerate() {
            for j in 0..=2 * window {
                next[k + j] += (j as f64 - window as f64) / normaliser * p;
            }
        }
        kernels.push(next);
    }
    kernels
}

/// Cepstral mean (and variance) normalisation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Cmvn {
    /// Over the whole utterance (Kaldi's `apply-cmvn` with per-utterance stats).
    Utterance { variance: bool },
    /// Over a sliding window of frames (Kaldi's `apply-cmvn-sliding`: window 600,
    /// `center` false, `min_window` 100 by default there).
    Sliding {
        window: usize,
        center: bool,
        min_window: usize,
        variance: bool,
    },
    /// The mean of the last `window` frames, this one included, subtracted (and with
    /// `variance`, divided by their standard deviation, its variance floored at 1): causal,
    /// so a live stream gets the same frames as the whole file ([`CausalCmvn`]).
    Causal {
        window: usize,
        #[serde(default)]
        variance: bool,
    },
}

/// Applies [`Cmvn`] to features, in place.
///
/// ```
/// use features::{apply_cmvn, Cmvn, Features};
/// let mut f = Features { num_frames: 2, dim: 1, data: vec![1.0, 3.0] };
/// features::apply_cmvn(&mut f, Cmvn::Utterance { variance: true })?;
/// assert_eq!(f.data, vec![-1.0, 1.0]);
/// # Ok::<(), features::FeatureError>(())
/// ```
pub fn apply_cmvn(features: &mut Features, cmvn: Cmvn) -> Result<(), FeatureError> {
    let (frames, dim) = (features.num_frames, features.dim);
    if frames == 0 {
        return Ok(());
    }
    let stats = |from: usize, to: usize, data: &[f32]| -> (Vec<f64>, Vec<f64>) {
        let mut sum = vec![0.0f64; dim];
        let mut squares = vec![0.0f64; dim];
        for row in data[from * dim..to * dim].chunks_exact(dim) {
            for d in 0..dim {
                sum[d] += row[d] as f64;
                squares[d] += (row[d] as f64).powi(2);
            }
        }
        (sum, squares)
    };
    let normalise =
        |row: &mut [f32], sum: &[f64], squares: &[f64], count: usize, variance: bool| {
            for d in 0..dim {
                let mean = sum[d] / count as f64;
                let mut value = row[d] as f64 - mean;
                if variance {
                    let var = (squares[d] / count as f64 - mean * mean).max(1e-20);
                    value /= var.sqrt();
                }
                row[d] = value as f32;
            }
        };
    match cmvn {
        Cmvn::Utterance { variance } => {
            let (sum, squares) = stats(0, frames, &features.data);
            for row in features.data.chunks_exact_mut(dim) {
                normalise(row, &sum, &squares, frames, variance);
            }
        }
        Cmvn::Causal { window, variance } => {
            let mut cmn = CausalCmvn::new(window, dim, variance)?;
            for row in features.data.chunks_exact_mut(dim) {
                cmn.normalise(row);
            }
        }
        Cmvn::Sliding {
            window,
            center,
            min_window,
            variance,
        } => {
            if window == 0 {
                return Err(FeatureError::InvalidOptions(
                    "CMVN window must be positive".into(),
                ));
            }
            let original = features.data.clone();
            for t in 0..frames {
                let (start, end) = sliding_window(t, frames, window, center, min_window);
                let (sum, squares) = stats(start, end, &original);
                normalise(
                    &mut features.data[t * dim..(t + 1) * dim],
                    &sum,
                    &squares,
                    end - start,
                    variance,
                );
            }
        }
    }
    Ok(())
}

/// The frames `[start, end)` Kaldi's sliding CMN averages for frame `t`.
fn sliding_window(
    t: usize,
    frames: usize,
    window: usize,
    center: bool,
    min_window: usize,
) -> (usize, usize) {
    let (t, frames, window) = (t as isize, frames as isize, window as isize);
    let (mut start, mut end) = if center {
        (t - window / 2, t - window / 2 + window)
    } else {
        (t - window, t + 1)
    };
    if start < 0 {
        end -= start;
        start = 0;
    }
    if !center && end > t {
        end = (t + 1).max(min_window as isize);
    }
    if end > frames {
        start -= end - frames;
        end = frames;
        start = start.max(0);
    }
    (start as usize, end as usize)
}

/// A mean known before a stream starts, for [`CausalCmvn::with_prior`]: e.g. the mean of the
/// training set's features (`experiment cmvn-stats`), standing in for `frames` frames.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmvnPrior {
    /// Frames of the prior in a window that has not filled yet (Kaldi's `--global-frames`,
    /// 200 there).
    pub frames: usize,
    /// One value per feature.
    pub mean: Vec<f32>,
}

/// Causal mean (and variance) normalisation, frame by frame: each frame less the mean of the
/// last `window` frames, itself included, and with `variance` divided by their standard
/// deviation ([`Cmvn::Causal`]). The variance is floored at [`CausalCmvn::VARIANCE_FLOOR`],
/// so the first frames of a stream, whose spread is not known yet, are not blown up. The
/// whole-utterance call runs the same code, so streamed and whole-file frames are equal bit
/// for bit.
///
/// ```
/// use features::CausalCmvn;
/// let mut cmn = CausalCmvn::new(2, 1, false)?;
/// let mut frames = [[4.0f32], [6.0], [10.0]];
/// for frame in &mut frames {
///     cmn.normalise(frame);
/// }
/// assert_eq!(frames, [[0.0], [1.0], [2.0]]); // 4 − 4, 6 − 5, 10 − 8
/// # Ok::<(), features::FeatureError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CausalCmvn {
    window: usize,
    dim: usize,
    variance: bool,
    prior: Option<CmvnPrior>,
    /// The last `window` frames as they came in, oldest first.
    recent: std::collections::VecDeque<Vec<f32>>,
    sum: Vec<f64>,
    squares: Vec<f64>,
}

impl CausalCmvn {
    /// The smallest variance a frame is divided by.
    pub const VARIANCE_FLOOR: f64 = 1.0;

    /// Normalisation over `window` frames of `dim` values, of the variance too when asked.
    pub fn new(window: usize, dim: usize, variance: bool) -> Result<Self, FeatureError> {
        if window == 0 {
            return Err(FeatureError::InvalidOptions(
                "CMVN window must be positive".into(),
            ));
        }
        Ok(CausalCmvn {
            window,
            dim,
            variance,
            recent: std::collections::VecDeque::with_capacity(window),
            sum: vec![0.0; dim],
            squares: vec![0.0; dim],
            prior: None,
        })
    }

    /// Starts from `prior` ([`CmvnPrior`]) instead of the first frames alone: while fewer
    /// than `window` frames have come, up to `prior.frames` frames of its mean fill the
    /// window, as Kaldi's online CMVN fills it with global statistics (`--global-frames`).
    /// Refused with variance normalisation (the prior holds no variance), a mean of another
    /// width than the frames, or a mean that is not finite.
    ///
    /// ```
    /// use features::{CausalCmvn, CmvnPrior};
    /// let prior = CmvnPrior { mean: vec![2.0], frames: 3 };
    /// let mut cmn = CausalCmvn::new(4, 1, false)?.with_prior(prior)?;
    /// let mut frames = [[6.0f32], [6.0], [6.0]];
    /// for frame in &mut frames {
    ///     cmn.normalise(frame);
    /// }
    /// // 6 − (6 + 3·2)/4, 6 − (12 + 2·2)/4, 6 − (18 + 1·2)/4
    /// assert_eq!(frames, [[3.0], [2.0], [1.0]]);
    /// # Ok::<(), features::FeatureError>(())
    /// ```
    pub fn with_prior(mut self, prior: CmvnPrior) -> Result<Self, FeatureError> {
        let refuse = |why: String| Err(FeatureError::InvalidOptions(why));
        if self.variance {
            return refuse(
                "a CMVN prior holds a mean only: not with variance normalisation".into(),
            );
        }
        if prior.mean.len() != self.dim {
            return refuse(format!(
                "the CMVN prior's mean has {} values for frames of {}",
                prior.mean.len(),
                self.dim
            ));
        }
        if !prior.mean.iter().all(|m| m.is_finite()) {
            return refuse("the CMVN prior's mean is not finite".into());
        }
        self.prior = Some(prior);
        Ok(self)
    }

    /// Normalises the next frame in place.
    ///
    /// # Panics
    /// If `frame` does not hold `dim` values.
    pub fn normalise(&mut self, frame: &mut [f32]) {
        assert_eq!(frame.len(), self.dim, "frame width");
        if self.recent.len() == self.window {
            let oldest = self.recent.pop_front().expect("a full window");
            for ((s, q), x) in self.sum.iter_mut().zip(&mut self.squares).zip(&oldest) {
                *s -= *x as f64;
                *q -= (*x as f64).powi(2);
            }
        }
        for ((s, q), x) in self.sum.iter_mut().zip(&mut self.squares).zip(&*frame) {
            *s += *x as f64;
            *q += (*x as f64).powi(2);
        }
        self.recent.push_back(frame.to_vec());
        let seen = self.recent.len();
        if let Some(prior) = self.prior.as_ref().filter(|_| seen < self.window) {
            let filled = prior.frames.min(self.window - seen) as f64;
            let count = seen as f64 + filled;
            for ((x, s), m) in frame.iter_mut().zip(&self.sum).zip(&prior.mean) {
                *x = (*x as f64 - (s + filled * *m as f64) / count) as f32;
            }
            return;
        }
        let count = seen as f64;
        for ((x, s), q) in frame.iter_mut().zip(&self.sum).zip(&self.squares) {
            let mean = s / count;
            let mut value = *x as f64 - mean;
            if self.variance {
                value /= (q / count - mean * mean).max(Self::VARIANCE_FLOOR).sqrt();
            }
            *x = value as f32;
        }
    }

    /// Forgets every frame: the next one starts a new utterance.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.squares.iter_mut().for_each(|s| *s = 0.0);
    }
}
