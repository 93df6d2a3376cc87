//! Keyword spotting on a stream. A keyword model is trained on clips of about a second,
//! each heard from a fresh state, so live it starts afresh where a word may begin: after
//! each pause (0.3 s within 10 dB of the quietest frame of the last 3 s, by the frames' log
//! energy), and at the latest every [`KeywordOptions::restart`] seconds. Its per-step
//! logits are pooled over a window as the run pooled them in training (mean or max), and a
//! keyword is reported when the softmax of the pooled logits passes a threshold (the
//! posterior smoothing of Chen et al. 2014 and Hello Edge). For speech without pauses,
//! several lanes (copies of the state, restarted on staggered beats) make every word fall
//! whole in a lane that started shortly before it; a keyword heard by two lanes is
//! reported once. The classes `_silence_` and `_unknown_` are never reported: a model
//! trained with them stays quiet between words.

use std::collections::VecDeque;

use features::Features;
use models::Pooling;

use super::quiet::{FLOOR_WINDOW, QuietFrames};
use crate::data::sources::{SILENCE, is_filler};

/// When a keyword run reports a keyword.
///
/// ```
/// use train::listen::KeywordOptions;
/// let options = KeywordOptions::default();
/// assert_eq!((options.window, options.threshold), (0.75, 0.7));
/// assert_eq!((options.lanes, options.restart, options.pause), (1, 20.0, 0.3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordOptions {
    /// Seconds of steps whose logits are pooled into each decision (default 0.75 s).
    pub window: f64,
    /// The probability a keyword must reach (default 0.7). A lane reports a keyword again
    /// only after its probability has fallen below half the threshold, and the listener
    /// not within `window` seconds of its last report.
    pub threshold: f32,
    /// Copies of the model's state (default 1).
    pub lanes: usize,
    /// Seconds after which each lane starts afresh if no pause came first (default 20 s);
    /// lane `i` first at `i × restart / lanes` seconds after the last pause (or the
    /// stream's start), then every `restart` seconds.
    pub restart: f64,
    /// Seconds of quiet (within 10 dB of the quietest frame of the last 3 s) after which
    /// every lane starts afresh, and again each time as much more quiet passes (default
    /// 0.3 s; 0: never).
    pub pause: f64,
}

impl Default for KeywordOptions {
    fn default() -> Self {
        KeywordOptions {
            window: 0.75,
            threshold: 0.7,
            lanes: 1,
            restart: 20.0,
            pause: 0.3,
        }
    }
}

impl KeywordOptions {
    /// Refuses windows and beats that are not positive, no lane, and a threshold outside
    /// (0, 1].
    pub fn check(&self) -> Result<(), String> {
        for (name, seconds) in [("window", self.window), ("restart", self.restart)] {
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(format!(
                    "the keyword {name} must be positive seconds, not {seconds}"
                ));
            }
        }
        if !(self.pause.is_finite() && self.pause >= 0.0) {
            return Err(format!(
                "the keyword pause must be seconds (0: none), not {}",
                self.pause
            ));
        }
        if self.lanes == 0 {
            return Err("a keyword run needs at least one lane".into());
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(format!(
                "the keyword threshold must be in (0, 1], not {}",
                self.threshold
            ));
        }
        Ok(())
    }
}

/// A keyword heard, in frames counted from the spotter's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The class.
    pub label: usize,
    /// Its smoothed probability at the frame that reported it.
    pub score: f32,
    /// The first frame of the window whose arg-max is the keyword (the reporting frame
    /// when none is).
    pub start: usize,
    /// The frame after the one that reported it.
    pub end: usize,
}

/// Pools each step's logits over a window and reports keywords, frame by frame; the same
/// frames give the same detections whatever the chunks they came in.
///
/// ```
/// use models::Pooling;
/// use train::listen::{KeywordOptions, Spotter};
///
/// let labels = ["_silence_", "_unknown_", "yes"].map(String::from);
/// let options = KeywordOptions { window: 0.03, threshold: 0.6, ..Default::default() };
/// let mut spotter = Spotter::new(&labels, Pooling::Mean, options, 0.01).unwrap();
/// let logits = [[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 3.0]];
/// let heard: Vec<_> = logits.iter().map(|row| spotter.push(row)).collect();
/// // The softmax of the mean logits of the last three frames gives "yes" 0.11, then 0.55,
/// assert_eq!(heard[..2], [None, None]);
/// // then 0.71: reported, from the first frame it led.
/// let yes = heard[2].expect("0.71 passes 0.6");
/// assert_eq!((yes.label, yes.start, yes.end), (2, 1, 3));
/// // Not again until its probability falls below 0.3.
/// assert_eq!(heard[3], None);
/// ```
#[derive(Debug, Clone)]
pub struct Spotter {
    /// Whether each class may be reported.
    keywords: Vec<bool>,
    /// Mean or max over the window ([`Pooling::Last`]: the last step alone).
    pooling: Pooling,
    window: usize,
    threshold: f32,
    /// The last `window` steps' logits.
    recent: VecDeque<Vec<f32>>,
    /// Whether each class may be reported now.
    armed: Vec<bool>,
    /// Frames seen.
    pub frames: usize,
}

impl Spotter {
    /// A spotter over the classes `labels`, pooling the logits as the run did (`pooling`)
    /// over `options.window` seconds of `shift`-second frames.
    pub fn new(
        labels: &[String],
        pooling: Pooling,
        options: KeywordOptions,
        shift: f64,
    ) -> Result<Self, String> {
        options.check()?;
        let window = match pooling {
            Pooling::Last => 1,
            Pooling::Mean | Pooling::Max => ((options.window / shift).round() as usize).max(1),
        };
        Ok(Spotter {
            keywords: labels.iter().map(|l| !is_filler(l)).collect(),
            pooling,
            window,
            threshold: options.threshold,
            recent: VecDeque::with_capacity(window),
            armed: vec![true; labels.len()],
            frames: 0,
        })
    }

    /// The same spotter, having heard nothing.
    pub fn fresh(&self) -> Self {
        Spotter {
            recent: VecDeque::with_capacity(self.window),
            armed: vec![true; self.armed.len()],
            frames: 0,
            ..self.clone()
        }
    }

    /// Hears one step's outputs (logits, before the softmax); returns the keyword they
    /// completed, if any.
    pub fn push(&mut self, logits: &[f32]) -> Option<Detection> {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(logits.to_vec());
        self.frames += 1;
        let smoothed = self.smoothed();
        for (armed, score) in self.armed.iter_mut().zip(&smoothed) {
            *armed |= *score < self.threshold / 2.0;
        }
        let (label, score) = smoothed
            .iter()
            .enumerate()
            .filter(|(class, _)| self.keywords[*class])
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        if *score < self.threshold || !self.armed[label] {
            return None;
        }
        self.armed[label] = false;
        Some(Detection {
            label,
            score: *score,
            start: self.first_frame_of(label),
            end: self.frames,
        })
    }

    /// The softmax of the logits pooled over the window: what the run, trained on clips,
    /// says of a clip that is the window.
    fn smoothed(&self) -> Vec<f32> {
        let classes = self.keywords.len();
        let mut pooled = match self.pooling {
            Pooling::Max => (0..classes)
                .map(|c| {
                    let column = self.recent.iter().map(|row| row[c]);
                    column.fold(f32::NEG_INFINITY, f32::max)
                })
                .collect(),
            Pooling::Mean | Pooling::Last => {
                let mut sums = vec![0.0f32; classes];
                for row in &self.recent {
                    sums.iter_mut().zip(row).for_each(|(s, y)| *s += y);
                }
                let n = self.recent.len() as f32;
                sums.into_iter().map(|s| s / n).collect::<Vec<f32>>()
            }
        };
        crate::inference::softmax_rows(&mut pooled, classes);
        pooled
    }

    /// The first frame of the window whose arg-max is `label`, else the last frame.
    fn first_frame_of(&self, label: usize) -> usize {
        let first = self.frames - self.recent.len();
        let offset = self
            .recent
            .iter()
            .position(|row| arg_max(row) == label)
            .unwrap_or(self.recent.len() - 1);
        first + offset
    }
}

/// The index of the largest value (the first of equals).
fn arg_max(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// A keyword run's lanes: when each starts afresh, and one report per keyword said.
#[derive(Debug, Clone)]
pub(super) struct Keywords {
    /// Each lane's spotter, fresh.
    pub spotter: Spotter,
    lanes: usize,
    /// Frames between a lane's restarts.
    period: usize,
    /// Frames after a report in which the same keyword is not reported again.
    lockout: usize,
    /// The frame after each class's last report.
    last: Vec<Option<usize>>,
    /// Pauses, after which every lane starts afresh.
    pauses: PauseGate,
    /// The frame of the last pause (or the stream's start): the lanes' beats count from it.
    epoch: usize,
}

impl Keywords {
    /// Refuses a run without `_silence_` and options out of range.
    pub fn new(
        labels: &[String],
        pooling: Pooling,
        options: KeywordOptions,
        shift: f64,
    ) -> Result<Self, String> {
        if !labels.iter().any(|l| l == SILENCE) {
            return Err(format!("a keyword run needs a {SILENCE} class"));
        }
        let spotter = Spotter::new(labels, pooling, options, shift)?;
        let frames = |seconds: f64| ((seconds / shift).round() as usize).max(1);
        let period = frames(options.restart);
        if period < options.lanes {
            return Err(format!(
                "{} lanes need a restart of at least {} frames",
                options.lanes, options.lanes
            ));
        }
        Ok(Keywords {
            spotter,
            lanes: options.lanes,
            period,
            lockout: frames(options.window),
            last: vec![None; labels.len()],
            pauses: PauseGate::new(
                (options.pause > 0.0).then(|| frames(options.pause)),
                frames(FLOOR_WINDOW),
            ),
            epoch: 0,
        })
    }

    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// The frame at which lane `lane` first starts afresh after the stream's start.
    fn offset(&self, lane: usize) -> usize {
        lane * self.period / self.lanes
    }

    /// Whether each lane starts afresh on its beat at the stream's frame `frame`.
    pub fn restarts_at(&self, frame: usize) -> Vec<bool> {
        let frame = frame - self.epoch;
        (0..self.lanes)
            .map(|lane| {
                let offset = self.offset(lane);
                frame > 0 && frame >= offset && (frame - offset).is_multiple_of(self.period)
            })
            .collect()
    }

    /// Every lane starts afresh at the stream's frame `frame` after a pause; the beats
    /// count from there.
    pub fn pause_at(&mut self, frame: usize) {
        self.epoch = frame;
    }

    /// Frames from `frame` to the next lane's restart on its beat (at least 1).
    pub fn frames_to_restart(&self, frame: usize) -> usize {
        let frame = frame - self.epoch;
        (0..self.lanes)
            .map(|lane| {
                let offset = self.offset(lane);
                let next = if frame < offset {
                    offset
                } else {
                    offset + ((frame - offset) / self.period + 1) * self.period
                };
                next - frame
            })
            .min()
            .unwrap_or(usize::MAX)
    }

    /// The lanes' detections in the order of their ends, less repeats of a keyword within
    /// the lockout of its last report.
    pub fn once_each(&mut self, mut heard: Vec<Detection>) -> impl Iterator<Item = Detection> {
        heard.sort_by_key(|d| d.end);
        let mut kept = Vec::with_capacity(heard.len());
        for d in heard {
            let locked = self.last[d.label].is_some_and(|last| d.end < last + self.lockout);
            if !locked {
                self.last[d.label] = Some(d.end);
                kept.push(d);
            }
        }
        kept.into_iter()
    }

    /// Forgets the reports and the pauses, for a new stream.
    pub fn forget(&mut self) {
        self.last.iter_mut().for_each(|l| *l = None);
        self.pauses = self.pauses.fresh();
        self.epoch = 0;
    }

    /// Hears the first feature (the log energy, with the Kaldi preset's MFCC) of each of
    /// `frames`' rows until one completes a pause; returns how many it heard.
    pub fn frames_to_pause(&mut self, frames: &Features, most: usize) -> (usize, bool) {
        for (i, row) in frames.data.chunks_exact(frames.dim).take(most).enumerate() {
            if self.pauses.push(row[0]) {
                return (i + 1, true);
            }
        }
        (most.min(frames.num_frames), false)
    }
}

/// Finds pauses: runs of quiet frames ([`QuietFrames`]).
#[derive(Debug, Clone)]
struct PauseGate {
    /// Quiet frames that make a pause (`None`: no pauses are looked for).
    pause: Option<usize>,
    quiet: QuietFrames,
}

impl PauseGate {
    fn new(pause: Option<usize>, window: usize) -> Self {
        PauseGate {
            pause,
            quiet: QuietFrames::new(window),
        }
    }

    /// Hears one frame's log energy; true when it completes a pause (and every `pause`
    /// quiet frames after).
    fn push(&mut self, energy: f32) -> bool {
        let Some(pause) = self.pause else {
            return false;
        };
        let run = self.quiet.push(energy);
        run > 0 && run.is_multiple_of(pause)
    }

    /// The same gate, having heard nothing.
    fn fresh(&self) -> Self {
        PauseGate {
            pause: self.pause,
            quiet: self.quiet.fresh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Detection, KeywordOptions, Keywords, PauseGate};
    use models::Pooling;

    fn labels() -> Vec<String> {
        ["_silence_", "_unknown_", "yes", "no"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_pause_is_quiet_frames_near_the_floor_and_recurs_while_quiet() {
        let mut gate = PauseGate::new(Some(3), 100);
        let heard: Vec<bool> = [5.0, 5.5, 6.0, 8.0, 6.0, 6.0, 20.0, 5.0, 5.0, 5.0]
            .iter()
            .map(|&e| gate.push(e))
            .collect();
        // Quiet within 2.3 of the floor (5): a pause after three quiet frames; 8.0 and 20.0
        // are loud and start the count again.
        let expected = [
            false, false, true, false, false, false, false, false, false, true,
        ];
        assert_eq!(heard, expected);
        let mut quiet = PauseGate::new(Some(3), 100);
        let pauses = (0..9).filter(|_| quiet.push(1.0)).count();
        assert_eq!(pauses, 3, "again after each three quiet frames");
        let mut never = PauseGate::new(None, 100);
        assert!((0..50).all(|_| !never.push(0.0)));
    }

    #[test]
    fn lanes_start_afresh_on_staggered_beats() {
        let options = KeywordOptions {
            lanes: 2,
            restart: 0.1,
            ..KeywordOptions::default()
        };
        let keywords = Keywords::new(&labels(), Pooling::Mean, options, 0.01).expect("valid");
        // Ten frames per beat: lane 0 at 10, 20, …; lane 1 at 5, 15, ….
        assert_eq!(keywords.restarts_at(0), [false, false]);
        assert_eq!(keywords.restarts_at(5), [false, true]);
        assert_eq!(keywords.restarts_at(10), [true, false]);
        assert_eq!(keywords.frames_to_restart(0), 5);
        assert_eq!(keywords.frames_to_restart(5), 5);
        assert_eq!(keywords.frames_to_restart(12), 3);
    }

    #[test]
    fn a_keyword_heard_by_two_lanes_is_reported_once() {
        let options = KeywordOptions {
            window: 0.1,
            ..KeywordOptions::default()
        };
        let mut keywords = Keywords::new(&labels(), Pooling::Mean, options, 0.01).expect("valid");
        let heard = |label, end| Detection {
            label,
            score: 0.9,
            start: end - 5,
            end,
        };
        let first = keywords.once_each(vec![heard(2, 50), heard(3, 52), heard(2, 45)]);
        let ends: Vec<_> = first.map(|d| (d.label, d.end)).collect();
        assert_eq!(ends, [(2, 45), (3, 52)]);
        let later: Vec<_> = keywords
            .once_each(vec![heard(2, 54), heard(2, 56)])
            .collect();
        assert_eq!(later.iter().map(|d| d.end).collect::<Vec<_>>(), [56]);
        assert!(Keywords::new(&labels()[1..], Pooling::Mean, options, 0.01).is_err());
    }
}
