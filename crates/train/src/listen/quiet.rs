//! Quiet frames by their log energy against the room's noise floor: where speech has
//! stopped, whatever the model makes of it.

use std::collections::VecDeque;

/// The noise floor is the quietest frame of this many seconds.
pub(super) const FLOOR_WINDOW: f64 = 3.0;
/// A frame within this much of the noise floor (log energy: 10 dB) is quiet.
const QUIET_MARGIN: f32 = 2.3;
/// A frame this much under the loudest of the window (log energy: 26 dB) is past the end of
/// speech, when [`QuietFrames::or_below_peak`] says so: the rule by which
/// [`super::latency`] finds where a recording's speech ends.
pub(super) const BELOW_PEAK: f32 = 6.0;

/// Counts quiet frames in a row: frames whose log energy is within 10 dB of the quietest
/// of the last [`FLOOR_WINDOW`] seconds (or, if asked, far under the loudest).
#[derive(Debug, Clone)]
pub(super) struct QuietFrames {
    /// Frames over which the floor is the minimum.
    window: usize,
    recent: VecDeque<f32>,
    /// Quiet frames in a row, up to the last frame heard.
    run: usize,
    /// Frames this much under the loudest of the window are quiet too.
    below_peak: Option<f32>,
}

impl QuietFrames {
    /// A floor over the last `window` frames (at least one).
    pub fn new(window: usize) -> Self {
        let window = window.max(1);
        QuietFrames {
            window,
            recent: VecDeque::with_capacity(window),
            run: 0,
            below_peak: None,
        }
    }

    /// Also counts as quiet a frame `margin` under the loudest of the window: speech that
    /// has stopped, where the floor is far below the room's (digital silence between
    /// recordings) or not yet heard.
    pub fn or_below_peak(mut self, margin: f32) -> Self {
        self.below_peak = Some(margin);
        self
    }

    /// Hears one frame's log energy; returns how many quiet frames in a row end with it
    /// (0 when it is loud).
    pub fn push(&mut self, energy: f32) -> usize {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(energy);
        let floor = self.recent.iter().copied().fold(f32::INFINITY, f32::min);
        let mut quiet = floor + QUIET_MARGIN;
        if let Some(margin) = self.below_peak {
            let peak = self
                .recent
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            quiet = quiet.max(peak - margin);
        }
        self.run = if energy <= quiet { self.run + 1 } else { 0 };
        self.run
    }

    /// The same tracker, having heard nothing.
    pub fn fresh(&self) -> Self {
        QuietFrames {
            below_peak: self.below_peak,
            ..QuietFrames::new(self.window)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QuietFrames;

    #[test]
    fn quiet_frames_are_near_the_floor_of_the_window() {
        let mut quiet = QuietFrames::new(3);
        let runs: Vec<usize> = [5.0, 5.5, 8.0, 6.0, 9.0, 9.5, 20.0, 9.0]
            .iter()
            .map(|&e| quiet.push(e))
            .collect();
        // Within 2.3 of the floor of the last three: 8.0 is loud against 5.0; 6.0 is quiet
        // against 5.5; 9.0 and 9.5 are loud against 6.0, 20.0 against 9.0; the last 9.0 is
        // the floor itself.
        assert_eq!(runs, [1, 2, 0, 1, 0, 0, 0, 1]);
        assert_eq!(
            quiet.fresh().push(100.0),
            1,
            "a fresh tracker's first frame is its floor"
        );
    }

    #[test]
    fn frames_far_under_the_peak_are_quiet_when_asked() {
        let energies = [-20.0, 10.0, 5.0, 3.5, 4.5, 3.0];
        let floor_only: Vec<usize> = {
            let mut quiet = QuietFrames::new(10);
            energies.iter().map(|&e| quiet.push(e)).collect()
        };
        assert_eq!(
            floor_only,
            [1, 0, 0, 0, 0, 0],
            "all far above digital silence"
        );
        let mut quiet = QuietFrames::new(10).or_below_peak(6.0);
        let runs: Vec<usize> = energies.iter().map(|&e| quiet.push(e)).collect();
        // Quiet at 4.0 and under, 6 under the peak of 10.0.
        assert_eq!(runs, [1, 0, 0, 1, 0, 1]);
        assert_eq!(quiet.fresh().below_peak, Some(6.0));
    }
}
