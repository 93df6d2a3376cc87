//! Connectionist Temporal Classification (Graves et al. 2006) over the per-step outputs
//! `y_t`: the loss and its gradient, greedy decoding with the frames of each label, prefix
//! beam search, and the edit distance that digit and word error rates count.
//!
//! The loss runs the forward–backward recursions in f64 on the CPU, one sequence at a time,
//! and hands burn's autodiff the exact gradient with respect to the logits. burn 0.21's
//! `ctc_loss` gives the same losses, but its gradients in f32 differ from PyTorch's (f64)
//! by up to 1e-4, against 2e-6 for PyTorch's own f32 kernel.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// The class index of the blank in this project's CTC models.
pub const BLANK: usize = 0;

/// Why a batch cannot go through the CTC loss.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CtcError {
    /// The batch's vectors disagree on how many sequences it holds.
    #[error("{what} has {got} entries for a batch of {batch}")]
    BatchSize {
        /// Which argument.
        what: &'static str,
        /// Its length.
        got: usize,
        /// Sequences in the logits.
        batch: usize,
    },
    /// A sequence longer than the padded logits, or shorter than its target.
    #[error(
        "sequence {index}: {frames} frames (of {padded} padded) for a target of {labels} labels"
    )]
    Length {
        /// Which sequence.
        index: usize,
        /// Its input length.
        frames: usize,
        /// The logits' time dimension.
        padded: usize,
        /// Its target length.
        labels: usize,
    },
    /// A target label that is the blank or not a class.
    #[error("sequence {index}: label {label} is the blank or not one of {classes} classes")]
    Label {
        /// Which sequence.
        index: usize,
        /// The label.
        label: usize,
        /// Classes, blank included.
        classes: usize,
    },
}

/// The CTC loss of each sequence, `−log p(target | input)`, from unnormalised `logits`
/// `[batch, time, classes]` (a log-softmax is taken here), for `targets` of any lengths
/// (labels never the blank). A target that no alignment fits (longer than its frames allow
/// once repeated labels are split by blanks) has an infinite loss, as in PyTorch.
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use burn_ndarray::NdArray;
///
/// let device = Default::default();
/// // Two frames, three classes (blank 0): the target "1" is certain when frame 0 says 1
/// // and frame 1 says blank.
/// let sure = 20.0;
/// let logits = Tensor::<NdArray, 3>::from_data(
///     TensorData::new(vec![0.0, sure, 0.0, sure, 0.0, 0.0], [1, 2, 3]),
///     &device,
/// );
/// let loss = train::eval::ctc::ctc_loss(logits, &[vec![1]], &[2], 0).unwrap();
/// assert!(loss.into_scalar() < 1e-6);
/// ```
pub fn ctc_loss<B: Backend>(
    logits: Tensor<B, 3>,
    targets: &[Vec<usize>],
    input_lengths: &[usize],
    blank: usize,
) -> Result<Tensor<B, 1>, CtcError> {
    let [batch, time, classes] = logits.dims();
    for (what, got) in [
        ("targets", targets.len()),
        ("input_lengths", input_lengths.len()),
    ] {
        if got != batch {
            return Err(CtcError::BatchSize { what, got, batch });
        }
    }
    for (index, (target, &frames)) in targets.iter().zip(input_lengths).enumerate() {
        if frames > time || frames < target.len() {
            return Err(CtcError::Length {
                index,
                frames,
                padded: time,
                labels: target.len(),
            });
        }
        if let Some(&label) = target.iter().find(|&&l| l == blank || l >= classes) {
            return Err(CtcError::Label {
                index,
                label,
                classes,
            });
        }
    }
    let device = logits.device();
    let values: Vec<f32> = logits.clone().into_data().iter::<f32>().collect();
    let mut losses = Vec::with_capacity(batch);
    let mut gradient = vec![0f32; values.len()];
    for (b, (target, &frames)) in targets.iter().zip(input_lengths).enumerate() {
        let at = b * time * classes;
        let (loss, grad) =
            sequence_loss(&values[at..at + frames * classes], classes, target, blank);
        losses.push(loss as f32);
        gradient[at..at + frames * classes].copy_from_slice(&grad);
    }
    // The losses as values, with `gradient` as their derivative: `x·g − detach(x·g)` is
    // zero in value and has derivative g.
    let gradient =
        Tensor::<B, 3>::from_data(TensorData::new(gradient, [batch, time, classes]), &device);
    let surrogate = (logits * gradient).sum_dim(2).sum_dim(1).reshape([batch]);
    let values = Tensor::<B, 1>::from_data(TensorData::new(losses, [batch]), &device);
    Ok(values + (surrogate.clone() - surrogate.detach()))
}

/// Log-probabilities by a log-softmax of each row of `classes` logits, in f64.
fn log_softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    logits
        .chunks_exact(classes)
        .flat_map(|row| {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
            let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
            let log_sum = max + sum.ln();
            row.iter().map(move |&x| x as f64 - log_sum)
        })
        .collect()
}

/// The states of the CTC lattice of `target`: its labels with blanks around and between
/// them (l′ of Graves et al.).
fn extended_target(target: &[usize], blank: usize) -> Vec<usize> {
    std::iter::once(blank)
        .chain(target.iter().flat_map(|&l| [l, blank]))
        .collect()
}

/// Whether lattice state `s` may be entered from two back: it is a label unlike the one
/// two back (the blank between them may be skipped).
fn can_skip(extended: &[usize], s: usize, blank: usize) -> bool {
    s >= 2 && extended[s] != blank && extended[s] != extended[s - 2]
}

/// The loss of one sequence and its gradient with respect to the logits
/// (`[frames, classes]`), by the forward–backward recursions in log space, in f64.
fn sequence_loss(
    logits: &[f32],
    classes: usize,
    target: &[usize],
    blank: usize,
) -> (f64, Vec<f32>) {
    let frames = logits.len() / classes;
    let log_probs = log_softmax_rows(logits, classes);
    let extended = extended_target(target, blank);
    let states = extended.len();
    let lp = |t: usize, s: usize| log_probs[t * classes + extended[s]];
    let skip = |s: usize| can_skip(&extended, s, blank);
    let neg_inf = f64::NEG_INFINITY;
    let mut alpha = vec![neg_inf; frames * states];
    let mut beta = vec![neg_inf; frames * states];
    if frames > 0 {
        alpha[0] = lp(0, 0);
        if states > 1 {
            alpha[1] = lp(0, 1);
        }
        for t in 1..frames {
            for s in 0..states {
                let mut sum = alpha[(t - 1) * states + s];
                if s >= 1 {
                    sum = log_add64(sum, alpha[(t - 1) * states + s - 1]);
                }
                if skip(s) {
                    sum = log_add64(sum, alpha[(t - 1) * states + s - 2]);
                }
                alpha[t * states + s] = sum + lp(t, s);
            }
        }
        let last = (frames - 1) * states;
        beta[last + states - 1] = lp(frames - 1, states - 1);
        if states > 1 {
            beta[last + states - 2] = lp(frames - 1, states - 2);
        }
        for t in (0..frames - 1).rev() {
            for s in 0..states {
                let mut sum = beta[(t + 1) * states + s];
                if s + 1 < states {
                    sum = log_add64(sum, beta[(t + 1) * states + s + 1]);
                }
                if s + 2 < states && skip(s + 2) {
                    sum = log_add64(sum, beta[(t + 1) * states + s + 2]);
                }
                beta[t * states + s] = sum + lp(t, s);
            }
        }
    }
    let log_likelihood = match (frames, states) {
        (0, _) => neg_inf,
        (_, 1) => alpha[(frames - 1) * states],
        _ => log_add64(
            alpha[(frames - 1) * states + states - 1],
            alpha[(frames - 1) * states + states - 2],
        ),
    };
    let loss = -log_likelihood;
    let mut gradient = vec![0f32; logits.len()];
    if !loss.is_finite() {
        // No alignment fits: no gradient (PyTorch's zero_infinity).
        return (f64::INFINITY, gradient);
    }
    // ∂loss/∂logit = softmax − posterior of the class over the states that emit it.
    let mut posterior = vec![neg_inf; classes];
    for t in 0..frames {
        posterior.fill(neg_inf);
        for s in 0..states {
            let occupancy = alpha[t * states + s] + beta[t * states + s] - lp(t, s);
            posterior[extended[s]] = log_add64(posterior[extended[s]], occupancy);
        }
        for c in 0..classes {
            let p = log_probs[t * classes + c].exp();
            gradient[t * classes + c] = (p - (posterior[c] - log_likelihood).exp()) as f32;
        }
    }
    (loss, gradient)
}

/// `log(exp(a) + exp(b))` in f64; `−∞` is the empty sum.
fn log_add64(a: f64, b: f64) -> f64 {
    let (high, low) = if a > b { (a, b) } else { (b, a) };
    if low == f64::NEG_INFINITY {
        high
    } else {
        high + (low - high).exp().ln_1p()
    }
}

/// PyTorch's `reduction="mean"` with `zero_infinity=True`: each sequence's loss divided by
/// its target length (at least 1), an infinite loss counted as zero (and given no
/// gradient), then the mean over the batch.
pub fn mean_over_target_lengths<B: Backend>(
    losses: Tensor<B, 1>,
    targets: &[Vec<usize>],
) -> Tensor<B, 1> {
    let device = losses.device();
    let n = targets.len();
    let lengths: Vec<f32> = targets.iter().map(|t| t.len().max(1) as f32).collect();
    let infinite = losses.clone().is_inf();
    let finite = losses.clone().mask_where(infinite, losses.zeros_like());
    (finite / Tensor::<B, 1>::from_data(TensorData::new(lengths, [n]), &device)).mean()
}

/// One label of a decoded sequence and the frames it was emitted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Emitted {
    /// The class.
    pub label: usize,
    /// First frame of the run that emitted it.
    pub start: usize,
    /// One past its last frame.
    pub end: usize,
}

/// Best-path decoding: the arg-max class of each of the first `frames` frames of
/// `log_probs` (`[frames ≥ …, classes]`, row-major), repeats merged, blanks dropped, each
/// label with the run of frames it came from.
///
/// ```
/// use train::eval::ctc::{Emitted, greedy_decode};
/// // Frames say: 1 1 blank 1 2 (classes: blank, 1, 2).
/// let frames = [[0.0, 9.0, 0.0], [0.0, 9.0, 0.0], [9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 9.0]];
/// let flat: Vec<f32> = frames.iter().flatten().copied().collect();
/// let labels: Vec<usize> = greedy_decode(&flat, 5, 3, 0).iter().map(|e| e.label).collect();
/// assert_eq!(labels, [1, 1, 2]);
/// assert_eq!(greedy_decode(&flat, 5, 3, 0)[0], Emitted { label: 1, start: 0, end: 2 });
/// ```
pub fn greedy_decode(
    log_probs: &[f32],
    frames: usize,
    classes: usize,
    blank: usize,
) -> Vec<Emitted> {
    let mut decoder = GreedyDecoder::new(blank);
    for row in log_probs.chunks_exact(classes).take(frames) {
        decoder.push(row);
    }
    decoder.emitted
}

/// Best-path decoding one frame at a time, as frames arrive: after any number of frames,
/// [`GreedyDecoder::emitted`] is what [`greedy_decode`] gives for those frames. A label,
/// once emitted, never changes; only the `end` of the last one grows while its run lasts.
///
/// ```
/// use train::eval::ctc::{Emitted, GreedyDecoder};
/// let mut decoder = GreedyDecoder::new(0);
/// assert_eq!(decoder.push(&[0.0, 9.0]), Some(1)); // a new label: class 1
/// assert_eq!(decoder.push(&[0.0, 9.0]), None); // its run goes on
/// assert_eq!(decoder.emitted, [Emitted { label: 1, start: 0, end: 2 }]);
/// ```
#[derive(Debug, Clone)]
pub struct GreedyDecoder {
    blank: usize,
    /// The arg-max class of the last frame (blank before the first).
    previous: usize,
    /// Frames seen.
    pub frames: usize,
    /// Frames since the last non-blank arg-max (all frames when there was none).
    pub trailing_blanks: usize,
    /// The labels so far, each with its run of frames.
    pub emitted: Vec<Emitted>,
}

impl GreedyDecoder {
    /// A decoder whose blank is class `blank`.
    pub fn new(blank: usize) -> Self {
        GreedyDecoder {
            blank,
            previous: blank,
            frames: 0,
            trailing_blanks: 0,
            emitted: Vec::new(),
        }
    }

    /// Reads one frame's scores (log-probabilities or probabilities); returns the class of
    /// a label it starts.
    pub fn push(&mut self, scores: &[f32]) -> Option<usize> {
        let t = self.frames;
        let best = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(self.blank, |(class, _)| class);
        self.frames += 1;
        let mut started = None;
        if best == self.blank {
            self.trailing_blanks += 1;
        } else {
            self.trailing_blanks = 0;
            match self.emitted.last_mut() {
                Some(last) if best == self.previous => last.end = t + 1,
                _ => {
                    self.emitted.push(Emitted {
                        label: best,
                        start: t,
                        end: t + 1,
                    });
                    started = Some(best);
                }
            }
        }
        self.previous = best;
        started
    }
}

/// Prefix beam search (Hannun et al. 2014, without a language model): the labelling with
/// the highest total probability over its alignments among the `beam` best prefixes kept
/// at each frame, from `log_probs` (`[frames ≥ …, classes]`, row-major log-probabilities).
/// Unlike best-path decoding it sums the alignments of a labelling, so a string spread
/// over many weak paths can win over one strong path.
///
/// ```
/// use train::eval::ctc::prefix_beam_search;
/// // Two frames, classes blank / 1: best path is "blank blank" (0.6 × 0.6 = 0.36), but
/// // "1" has 0.4·0.6 + 0.6·0.4 + 0.4·0.4 = 0.64.
/// let p = [0.6f32, 0.4, 0.6, 0.4];
/// let log_p: Vec<f32> = p.iter().map(|x| x.ln()).collect();
/// assert_eq!(prefix_beam_search(&log_p, 2, 2, 0, 4), vec![1]);
/// ```
pub fn prefix_beam_search(
    log_probs: &[f32],
    frames: usize,
    classes: usize,
    blank: usize,
    beam: usize,
) -> Vec<usize> {
    use std::collections::HashMap;
    // Each prefix: (log p ending in blank, log p ending in its last label), in f64.
    let neg_inf = f64::NEG_INFINITY;
    let mut beams: Vec<(Vec<usize>, (f64, f64))> = vec![(Vec::new(), (0.0, neg_inf))];
    for row in log_probs.chunks_exact(classes).take(frames) {
        let mut next: HashMap<Vec<usize>, (f64, f64)> = HashMap::new();
        for (prefix, (blank_end, label_end)) in &beams {
            let total = log_add64(*blank_end, *label_end);
            for (class, &p) in row.iter().enumerate() {
                let p = p as f64;
                if class == blank {
                    let entry = next.entry(prefix.clone()).or_insert((neg_inf, neg_inf));
                    entry.0 = log_add64(entry.0, total + p);
                    continue;
                }
                let mut extended = prefix.clone();
                extended.push(class);
                // A repeated label extends the prefix only across a blank; right after the
                // same label it is the same prefix, one frame longer.
                let repeat = prefix.last() == Some(&class);
                let entry = next.entry(extended).or_insert((neg_inf, neg_inf));
                entry.1 = log_add64(entry.1, if repeat { *blank_end } else { total } + p);
                if repeat {
                    let same = next.entry(prefix.clone()).or_insert((neg_inf, neg_inf));
                    same.1 = log_add64(same.1, label_end + p);
                }
            }
        }
        let mut ranked: Vec<(Vec<usize>, (f64, f64))> = next.into_iter().collect();
        // Ties broken by the prefix itself, so the result does not depend on hashing.
        ranked.sort_by(|a, b| {
            log_add64(b.1.0, b.1.1)
                .total_cmp(&log_add64(a.1.0, a.1.1))
                .then_with(|| a.0.cmp(&b.0))
        });
        ranked.truncate(beam.max(1));
        beams = ranked;
    }
    beams
        .into_iter()
        .next()
        .map(|(prefix, _)| prefix)
        .unwrap_or_default()
}

/// The most probable alignment of `labels` to the first `frames` frames of `log_probs`
/// (`[frames ≥ …, classes]`, row-major log-probabilities): Viterbi over the CTC lattice
/// (`torchaudio.functional.forced_align`), each label with the frames it holds on that
/// path. `None` when no alignment fits (more labels, counting a blank between repeats,
/// than frames; or only impossible frames).
///
/// ```
/// use train::eval::ctc::{Emitted, forced_align};
/// // Three frames, classes blank / 1 / 2: "1 2" on frames 0–1 and 2.
/// let p = [[0.1f32, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]];
/// let log_p: Vec<f32> = p.iter().flatten().map(|x| x.ln()).collect();
/// let aligned = forced_align(&log_p, 3, 3, 0, &[1, 2]).unwrap();
/// assert_eq!(aligned, [Emitted { label: 1, start: 0, end: 2 }, Emitted { label: 2, start: 2, end: 3 }]);
/// ```
pub fn forced_align(
    log_probs: &[f32],
    frames: usize,
    classes: usize,
    blank: usize,
    labels: &[usize],
) -> Option<Vec<Emitted>> {
    if labels.is_empty() {
        return Some(Vec::new());
    }
    let rows: Vec<&[f32]> = log_probs.chunks_exact(classes).take(frames).collect();
    // Labels sit at the odd states, blanks at the even ones.
    let extended = extended_target(labels, blank);
    let states = extended.len();
    let neg_inf = f64::NEG_INFINITY;
    let mut score = vec![neg_inf; states];
    let mut from = vec![0usize; rows.len() * states];
    for (t, row) in rows.iter().enumerate() {
        let mut next = vec![neg_inf; states];
        for s in 0..states {
            let (best, previous) = if t == 0 {
                (if s < 2 { 0.0 } else { neg_inf }, s)
            } else {
                // Stay, advance one, or skip a blank between two different labels.
                let skip = can_skip(&extended, s, blank);
                let mut best = (score[s], s);
                if s >= 1 && score[s - 1] > best.0 {
                    best = (score[s - 1], s - 1);
                }
                if skip && score[s - 2] > best.0 {
                    best = (score[s - 2], s - 2);
                }
                best
            };
            next[s] = best + f64::from(row[extended[s]]);
            from[t * states + s] = previous;
        }
        score = next;
    }
    let last = (states - 2..states)
        .max_by(|&a, &b| score[a].total_cmp(&score[b]).then(b.cmp(&a)))
        .filter(|&s| score[s] > neg_inf)?;
    let mut emitted: Vec<Emitted> = labels
        .iter()
        .map(|&label| Emitted {
            label,
            start: usize::MAX,
            end: 0,
        })
        .collect();
    let mut s = last;
    for t in (0..rows.len()).rev() {
        if s % 2 == 1 {
            let e = &mut emitted[s / 2];
            e.start = e.start.min(t);
            e.end = e.end.max(t + 1);
        }
        s = from[t * states + s];
    }
    Some(emitted)
}

/// How a per-frame CTC output becomes a labelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoding {
    /// [`greedy_decode`]: the most probable class of each frame.
    #[default]
    BestPath,
    /// [`prefix_beam_search`] keeping `width` prefixes per frame, each label's frames from
    /// [`forced_align`].
    PrefixBeam {
        /// Prefixes kept per frame.
        width: usize,
    },
}

impl Decoding {
    /// Best path for a width of 1 (or 0), prefix beam search above: the `--beam-width`
    /// of `experiment eval` and `predict`.
    pub fn with_beam_width(width: usize) -> Self {
        if width <= 1 {
            Decoding::BestPath
        } else {
            Decoding::PrefixBeam { width }
        }
    }

    /// The labels of the first `frames` frames of `logits` (`[frames ≥ …, classes]`,
    /// row-major, unnormalised), each with its frames.
    ///
    /// ```
    /// use train::eval::ctc::Decoding;
    /// // Two frames, classes blank / 1: best path says nothing, the beam finds "1".
    /// let logits: Vec<f32> = [0.6f32, 0.4, 0.6, 0.4].iter().map(|p| p.ln()).collect();
    /// assert!(Decoding::BestPath.decode(&logits, 2, 2, 0).is_empty());
    /// let beam = Decoding::with_beam_width(4).decode(&logits, 2, 2, 0);
    /// assert_eq!(beam.iter().map(|e| e.label).collect::<Vec<_>>(), [1]);
    /// ```
    pub fn decode(
        self,
        logits: &[f32],
        frames: usize,
        classes: usize,
        blank: usize,
    ) -> Vec<Emitted> {
        let width = match self {
            // The arg-max of the logits is the arg-max of the softmax.
            Decoding::BestPath => return greedy_decode(logits, frames, classes, blank),
            Decoding::PrefixBeam { width } => width,
        };
        let valid = &logits[..(frames * classes).min(logits.len())];
        let log_probs: Vec<f32> = log_softmax_rows(valid, classes)
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let labels = prefix_beam_search(&log_probs, frames, classes, blank, width);
        // The beam's labelling came from alignments of these frames, so one fits.
        forced_align(&log_probs, frames, classes, blank, &labels).unwrap_or_else(|| {
            labels
                .iter()
                .map(|&label| Emitted {
                    label,
                    start: 0,
                    end: 0,
                })
                .collect()
        })
    }
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions that turn
/// `hypothesis` into `reference` (the numerator of a digit or word error rate).
///
/// ```
/// assert_eq!(train::eval::ctc::edit_distance(&[1, 2, 3], &[1, 3]), 1);
/// assert_eq!(train::eval::ctc::edit_distance(&[5, 5], &[]), 2);
/// ```
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[hypothesis.len()]
}
