//! How well and how soon a keyword run answers: a split's clips (keywords, other words and
//! background noise) joined into one stream with pauses between them, streamed in fixed
//! chunks; each detection is matched with the clip it fell in.

use std::time::Instant;

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::latency::speech_end;
use super::{Event, ListenError, Listener};
use crate::data::sources::{Utterance, is_filler};

/// A detection belongs to the clip it falls in, or to the one before it if it falls at
/// most this many seconds into the pause after it.
pub const TOLERANCE: f64 = 0.5;

/// One clip of a joined stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacedClip {
    /// Its class.
    pub label: String,
    /// Where it starts and ends in the stream, in seconds.
    pub start: f64,
    /// The end of its last loud frame (within 26 dB of its loudest).
    pub speech_end: f64,
    /// Its end.
    pub end: f64,
}

/// Clips joined into one stream.
#[derive(Debug, Clone)]
pub struct JoinedClips {
    /// The audio, at the listener's rate.
    pub samples: Vec<f32>,
    /// The clips in stream order.
    pub clips: Vec<PlacedClip>,
}

/// Every utterance of `utterances`, in an order drawn from `seed`, separated by 0.5–1.5 s of
/// silence, at `rate`.
pub fn join_clips(
    utterances: &[Utterance],
    rate: u32,
    seed: u64,
) -> Result<JoinedClips, features::FeatureError> {
    let mut order: Vec<&Utterance> = utterances.iter().collect();
    let mut rng = StdRng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    let seconds = |samples: usize| samples as f64 / rate as f64;
    let mut joined = JoinedClips {
        samples: Vec::new(),
        clips: Vec::with_capacity(order.len()),
    };
    for u in order {
        let pause = (rng.random_range(0.5..1.5) * rate as f64).round() as usize;
        joined.samples.resize(joined.samples.len() + pause, 0.0);
        let audio = features::resample(&u.audio()?, rate)?;
        let start = joined.samples.len();
        joined.clips.push(PlacedClip {
            label: u.label.clone(),
            start: seconds(start),
            speech_end: seconds(start + speech_end(&audio.samples, rate)),
            end: seconds(start + audio.samples.len()),
        });
        joined.samples.extend(audio.samples);
    }
    joined
        .samples
        .resize(joined.samples.len() + rate as usize, 0.0);
    Ok(joined)
}

/// What streaming a joined split showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpottingReport {
    /// Clips of keywords.
    pub keywords: usize,
    /// Keyword clips reported with their own label.
    pub hits: usize,
    /// Clips of other words (`_unknown_`) and of noise (`_silence_`).
    pub fillers: usize,
    /// Detections that are not hits: a wrong label, a second report of a clip, a filler, a
    /// pause.
    pub false_alarms: usize,
    /// Each hit's emission time less the end of its clip's speech, in seconds.
    pub delays: Vec<f64>,
    /// Compute time of each pushed chunk, in seconds.
    pub chunk_seconds: Vec<f64>,
    /// Seconds of audio streamed.
    pub audio_seconds: f64,
}

impl SpottingReport {
    /// Hits over keyword clips.
    pub fn detection_rate(&self) -> f64 {
        self.hits as f64 / self.keywords.max(1) as f64
    }

    /// False alarms per hour of audio.
    pub fn false_alarms_per_hour(&self) -> f64 {
        self.false_alarms as f64 * 3600.0 / self.audio_seconds.max(f64::MIN_POSITIVE)
    }

    /// Compute time over audio time.
    pub fn real_time_factor(&self) -> f64 {
        self.chunk_seconds.iter().sum::<f64>() / self.audio_seconds.max(f64::MIN_POSITIVE)
    }
}

/// Streams `joined` through `listener` in chunks of `chunk` samples and scores its
/// detections.
pub fn measure<B: Backend>(
    listener: &mut Listener<B>,
    joined: &JoinedClips,
    chunk: usize,
) -> Result<SpottingReport, ListenError> {
    let mut report = SpottingReport::default();
    let mut events = Vec::new();
    for piece in joined.samples.chunks(chunk.max(1)) {
        let start = Instant::now();
        let heard = listener.push(piece)?;
        report.chunk_seconds.push(start.elapsed().as_secs_f64());
        events.extend(heard);
    }
    report.audio_seconds = listener.heard();
    events.extend(listener.finish()?);
    score(&joined.clips, &events, &mut report);
    Ok(report)
}

/// Matches each detection with its clip.
fn score(clips: &[PlacedClip], events: &[Event], report: &mut SpottingReport) {
    report.fillers = clips.iter().filter(|c| is_filler(&c.label)).count();
    report.keywords = clips.len() - report.fillers;
    let mut hit = vec![false; clips.len()];
    for event in events {
        let Event::Detection {
            label,
            end,
            emitted_at,
            ..
        } = event
        else {
            continue;
        };
        // The last clip that starts before the detection's frame ends.
        let owner = clips
            .partition_point(|c| c.start < *end)
            .checked_sub(1)
            .filter(|&i| *end <= clips[i].end + TOLERANCE);
        match owner {
            Some(i) if clips[i].label == *label && !hit[i] => {
                hit[i] = true;
                report.hits += 1;
                report.delays.push(emitted_at - clips[i].speech_end);
            }
            _ => report.false_alarms += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, PlacedClip, SpottingReport, score};

    fn clip(label: &str, start: f64) -> PlacedClip {
        PlacedClip {
            label: label.into(),
            start,
            speech_end: start + 0.8,
            end: start + 1.0,
        }
    }

    fn detection(label: &str, end: f64) -> Event {
        Event::Detection {
            label: label.into(),
            score: 0.9,
            start: end - 0.3,
            end,
            emitted_at: end + 0.01,
        }
    }

    #[test]
    fn detections_are_matched_with_the_clip_they_fall_in() {
        let clips = [clip("yes", 1.0), clip("_unknown_", 3.0), clip("no", 5.0)];
        let events = [
            detection("yes", 1.9), // a hit
            detection("yes", 2.2), // the same clip again, in its tolerance
            detection("no", 3.5),  // on another word
            detection("no", 6.4),  // a hit, 0.4 s into the pause
            detection("up", 0.5),  // before any clip
        ];
        let mut report = SpottingReport::default();
        score(&clips, &events, &mut report);
        assert_eq!((report.keywords, report.fillers), (2, 1));
        assert_eq!((report.hits, report.false_alarms), (2, 3));
        let delays: Vec<f64> = report.delays.iter().map(|d| (d * 100.0).round()).collect();
        assert_eq!(delays, [11.0, 61.0]);
    }
}
