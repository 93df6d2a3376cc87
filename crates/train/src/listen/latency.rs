//! How fast and how soon a [`Listener`] answers: digit strings joined from recordings of
//! single digits, with pauses between them, so that where each digit ends is known
//! exactly; streamed in fixed chunks, each chunk's compute timed.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Event, ListenError, Listener};
use crate::data::sources::Utterance;

/// A string said digit by digit, and when each digit's speech ends.
#[derive(Debug, Clone)]
pub struct JoinedString {
    /// The audio, at the listener's rate.
    pub samples: Vec<f32>,
    /// The digits said.
    pub text: String,
    /// Where each digit's speech ends, in seconds from the start.
    pub digit_ends: Vec<f64>,
}

/// Silence before the first digit and after the last, in seconds: the last lets an
/// endpoint fire before the stream ends.
const LEAD: f64 = 0.3;
const TAIL: f64 = 1.5;

/// `count` strings of 3–5 digits, each from one speaker's recordings of single digits
/// (`utterances`, one label each), separated by 50–400 ms of silence; drawn from `seed`.
pub fn join_digits(
    utterances: &[Utterance],
    rate: u32,
    count: usize,
    seed: u64,
) -> Result<Vec<JoinedString>, features::FeatureError> {
    let mut by_speaker: BTreeMap<&str, Vec<&Utterance>> = BTreeMap::new();
    for u in utterances {
        by_speaker.entry(&u.speaker).or_default().push(u);
    }
    let speakers: Vec<&Vec<&Utterance>> = by_speaker.values().collect();
    if speakers.is_empty() {
        return Ok(Vec::new());
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let silence = |seconds: f64| vec![0.0f32; (seconds * rate as f64).round() as usize];
    let mut strings = Vec::with_capacity(count);
    for i in 0..count {
        let said = speakers[i % speakers.len()];
        let digits = rng.random_range(3..=5);
        let mut string = JoinedString {
            samples: silence(LEAD),
            text: String::new(),
            digit_ends: Vec::new(),
        };
        for k in 0..digits {
            if k > 0 {
                string.samples.extend(silence(rng.random_range(0.05..0.4)));
            }
            let u = said[rng.random_range(0..said.len())];
            let audio = features::resample(&u.audio()?, rate)?;
            let end = string.samples.len() + speech_end(&audio.samples, rate);
            string.digit_ends.push(end as f64 / rate as f64);
            string.samples.extend(audio.samples);
            string.text += &u.label;
        }
        string.samples.extend(silence(TAIL));
        strings.push(string);
    }
    Ok(strings)
}

/// The sample after the last 10 ms frame whose RMS is within 26 dB of the loudest frame's.
pub(crate) fn speech_end(samples: &[f32], rate: u32) -> usize {
    let frame = (rate as usize / 100).max(1);
    let rms: Vec<f32> = samples
        .chunks(frame)
        .map(|c| (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let loudest = rms.iter().copied().fold(0.0f32, f32::max);
    rms.iter()
        .rposition(|&r| r > 0.05 * loudest)
        .map_or(0, |last| ((last + 1) * frame).min(samples.len()))
}

/// What streaming the strings showed.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// Strings streamed.
    pub strings: usize,
    /// Strings whose final results, joined, were exactly their digits.
    pub correct: usize,
    /// Digits read right (matched by an edit-distance alignment): when each was first
    /// printed (its partial) less where its speech ended, in seconds.
    pub emission_delays: Vec<f64>,
    /// Strings with a final result: when the last was printed less the end of the last digit.
    pub final_delays: Vec<f64>,
    /// Compute time of each pushed chunk, in seconds.
    pub chunk_seconds: Vec<f64>,
    /// Seconds of audio streamed.
    pub audio_seconds: f64,
}

impl LatencyReport {
    /// Compute time over audio time.
    pub fn real_time_factor(&self) -> f64 {
        self.chunk_seconds.iter().sum::<f64>() / self.audio_seconds
    }
}

/// The `q`-quantile (0–1) of `values` by nearest rank; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Streams each string through `listener` in chunks of `chunk` samples.
pub fn measure<B: Backend>(
    listener: &mut Listener<B>,
    strings: &[JoinedString],
    chunk: usize,
) -> Result<LatencyReport, ListenError> {
    let mut report = LatencyReport {
        strings: strings.len(),
        correct: 0,
        emission_delays: Vec::new(),
        final_delays: Vec::new(),
        chunk_seconds: Vec::new(),
        audio_seconds: 0.0,
    };
    for string in strings {
        let mut events = Vec::new();
        for piece in string.samples.chunks(chunk.max(1)) {
            let start = Instant::now();
            let heard = listener.push(piece)?;
            report.chunk_seconds.push(start.elapsed().as_secs_f64());
            events.extend(heard);
        }
        report.audio_seconds += listener.heard();
        events.extend(listener.finish()?);
        score_string(string, &events, &mut report);
    }
    Ok(report)
}

/// Adds one string's delays. Its final results together (an endpoint may fall in a long
/// pause) are aligned with its digits by edit distance; each digit read right gives the
/// delay of the partial that first printed it, and the last final result its delay after
/// the last digit.
fn score_string(string: &JoinedString, events: &[Event], report: &mut LatencyReport) {
    let mut heard = Vec::new();
    let mut partials = Vec::new();
    let mut last_final = None;
    for event in events {
        match event {
            Event::Final {
                labels, emitted_at, ..
            } => {
                heard.extend(labels.iter().map(|l| l.label.clone()));
                last_final = Some(*emitted_at);
            }
            Event::Partial { emitted_at, .. } => partials.push(*emitted_at),
            Event::Detection { .. } => {}
        }
    }
    let said: Vec<String> = string.text.chars().map(String::from).collect();
    if heard == said {
        report.correct += 1;
    }
    // Each partial adds one label, so the k-th partial printed the k-th label heard.
    for (heard_at, said_at) in matching_pairs(&heard, &said) {
        if let Some(emitted) = partials.get(heard_at) {
            report
                .emission_delays
                .push(emitted - string.digit_ends[said_at]);
        }
    }
    if let (Some(final_at), Some(last)) = (last_final, string.digit_ends.last()) {
        report.final_delays.push(final_at - last);
    }
}

/// The (heard, said) index pairs that a minimum edit-distance alignment matches with equal
/// labels.
fn matching_pairs(heard: &[String], said: &[String]) -> Vec<(usize, usize)> {
    let (n, m) = (heard.len(), said.len());
    let mut cost: Vec<Vec<usize>> = (0..=n).map(|i| vec![i; m + 1]).collect();
    cost[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let substitute = cost[i - 1][j - 1] + usize::from(heard[i - 1] != said[j - 1]);
            cost[i][j] = substitute.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let (mut i, mut j, mut pairs) = (n, m, Vec::new());
    while i > 0 && j > 0 {
        let same = heard[i - 1] == said[j - 1];
        if cost[i][j] == cost[i - 1][j - 1] + usize::from(!same) {
            if same {
                pairs.push((i - 1, j - 1));
            }
            (i, j) = (i - 1, j - 1);
        } else if cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

#[cfg(test)]
mod tests {
    use super::matching_pairs;

    fn labels(text: &str) -> Vec<String> {
        text.chars().map(String::from).collect()
    }

    #[test]
    fn the_alignment_pairs_only_equal_labels() {
        // "1 2 3 4" heard as "1 9 3 4 4": 2 → 9 substituted, a 4 inserted.
        let pairs = matching_pairs(&labels("19344"), &labels("1234"));
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[..2], [(0, 0), (2, 2)]);
        assert!(pairs[2] == (3, 3) || pairs[2] == (4, 3));
        assert!(matching_pairs(&labels(""), &labels("12")).is_empty());
        assert_eq!(
            matching_pairs(&labels("12"), &labels("12")),
            [(0, 0), (1, 1)]
        );
    }
}
