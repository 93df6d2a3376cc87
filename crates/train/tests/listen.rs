//! Live recognition (`train::listen`, `experiment listen`): a causal CTC model trained on the
//! embedded digit strings hears audio in random chunkings and gives, step by step, the
//! softmax of the whole-file forward pass and the same decoded labels; utterances end at
//! their endpoints; bad input and runs that read the future get clear errors.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use burn_ndarray::NdArray;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use train::eval::ctc::{BLANK, greedy_decode};
use train::inference::Recogniser;
use train::listen::{Event, ListenError, ListenOptions, Listener};

use common::experiment;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs trained once per test process, in a folder kept until it ends.
struct Runs {
    _scratch: tempfile::TempDir,
    causal: PathBuf,
    /// The causal model reading three frames per step (`task.stack_frames = 3`).
    stacked: PathBuf,
    bidirectional: PathBuf,
    classes: PathBuf,
}

/// A causal (one direction, no deltas, causal mean normalisation) and a bidirectional
/// model of the digit-string demo, small and briefly trained.
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let scratch = tempfile::tempdir().expect("tempdir");
        let out = scratch.path().to_str().expect("UTF-8").to_string();
        let toml = repo().join("experiments/digit-strings-demo.toml");
        let toml = toml.to_str().expect("UTF-8");
        let shared = [
            format!(
                "task.manifest={:?}",
                repo()
                    .join("datasets/default_strings/manifest.csv")
                    .display()
                    .to_string()
            ),
            format!(
                "task.cache_dir={:?}",
                scratch.path().join("cache").display().to_string()
            ),
            "task.augment={}".to_string(),
            "task.report_splits=[]".to_string(),
            "model.hidden_size=64".to_string(),
        ];
        let causal = [
            "name=\"causal\"",
            "model.bidirectional=false",
            "task.deltas=false",
            "task.cmvn=false",
            "task.causal_cmvn={window=100}",
            "training.epochs=150",
        ];
        let stacked = [&causal[1..], &["name=\"stacked\"", "task.stack_frames=3"]].concat();
        let prior = training_mean_prior(toml, &shared, &stacked);
        let stacked = [&stacked[..], &[prior.as_str()]].concat();
        let bidirectional = ["name=\"bidirectional\"", "training.epochs=1"];
        for extra in [&causal[..], &stacked[..], &bidirectional[..]] {
            let settings: Vec<String> = shared
                .iter()
                .cloned()
                .chain(extra.iter().map(|s| s.to_string()))
                .collect();
            experiment(&["train", toml, "--out-dir", &out], &settings);
        }
        let digits = repo().join("experiments/spoken-digits-demo.toml");
        let settings = [
            "name=\"classes\"".to_string(),
            "training.epochs=1".to_string(),
            "model.hidden_size=8".to_string(),
            "task.augment={}".to_string(),
            "task.report_splits=[]".to_string(),
            format!(
                "task.manifest={:?}",
                repo()
                    .join("datasets/default/manifest.csv")
                    .display()
                    .to_string()
            ),
            format!(
                "task.cache_dir={:?}",
                scratch.path().join("cache").display().to_string()
            ),
        ];
        experiment(
            &["train", digits.to_str().expect("UTF-8"), "--out-dir", &out],
            &settings,
        );
        Runs {
            causal: scratch.path().join("causal"),
            stacked: scratch.path().join("stacked"),
            bidirectional: scratch.path().join("bidirectional"),
            classes: scratch.path().join("classes"),
            _scratch: scratch,
        }
    })
}

/// `experiment cmvn-stats`'s mean of the training features, checked against the frames of
/// the run's feature pipeline without normalisation, as the stacked run's normalisation
/// prior (`task.causal_cmvn.prior`): the listening tests then cover normalisation that
/// starts from a prior.
fn training_mean_prior(toml: &str, shared: &[String], run: &[&str]) -> String {
    let settings: Vec<String> = shared
        .iter()
        .cloned()
        .chain(run.iter().map(|s| s.to_string()))
        .collect();
    let printed = experiment(&["cmvn-stats", toml], &settings);
    let stats: serde_json::Value = serde_json::from_str(printed.trim()).expect("one JSON line");
    let mean: Vec<f64> = stats["mean"]
        .as_array()
        .expect("a mean")
        .iter()
        .map(|m| m.as_f64().expect("numbers"))
        .collect();
    let manifest = repo().join("datasets/default_strings/manifest.csv");
    let train: Vec<PathBuf> = train::data::sources::read_manifest(&manifest)
        .expect("the embedded strings")
        .into_iter()
        .filter(|u| u.split == "train")
        .map(|u| u.path)
        .collect();
    let mut options = features::FeatureOptions::preset(features::Preset::Kaldi);
    options.frame.sample_rate = 8000;
    let pipeline = features::FilePipeline::new(options);
    let (mut sum, mut frames) = (vec![0.0f64; mean.len()], 0);
    for path in &train {
        let f = pipeline.run(path).expect("features");
        for row in f.data.chunks_exact(f.dim) {
            sum.iter_mut()
                .zip(row)
                .for_each(|(s, &x)| *s += f64::from(x));
        }
        frames += f.num_frames;
    }
    assert_eq!(stats["utterances"], train.len());
    assert_eq!(stats["frames"], frames);
    for (m, s) in mean.iter().zip(&sum) {
        assert!(
            (m - s / frames as f64).abs() < 1e-4,
            "{m} against {}",
            s / frames as f64
        );
    }
    let mean: Vec<String> = mean.iter().map(f64::to_string).collect();
    format!(
        "task.causal_cmvn={{window=100, prior={{frames=50, mean=[{}]}}}}",
        mean.join(",")
    )
}

/// The test split's strings of the embedded corpus.
fn test_wavs() -> Vec<PathBuf> {
    let utterances =
        train::data::sources::read_manifest(&repo().join("datasets/default_strings/manifest.csv"))
            .expect("the embedded strings");
    utterances
        .into_iter()
        .filter(|u| u.split == "test")
        .map(|u| u.path)
        .collect()
}

fn samples(path: &Path) -> features::Audio {
    features::read_wav(path, features::Channel::Mean).expect("a WAV file")
}

/// A listener that hears each file as one utterance (no endpoint inside it).
fn listener(run: &Path, rate: Option<u32>) -> Listener<NdArray> {
    let mut options = ListenOptions {
        sample_rate: rate,
        ..ListenOptions::default()
    };
    options.endpoint.trailing_silence = 1e6;
    options.endpoint.idle_silence = 1e6;
    options.endpoint.max_utterance = 1e6;
    listener_with(run, options)
}

fn listener_with(run: &Path, options: ListenOptions) -> Listener<NdArray> {
    let device = Default::default();
    let recogniser = Recogniser::<NdArray>::load(run, &device).expect("the run loads");
    let mut listener = Listener::new(recogniser, options, device).expect("a causal run");
    listener.keep_posteriors();
    listener
}

/// Pushes `audio` in chunks of random sizes from 1 sample to `longest`, then finishes;
/// returns the events and every step's softmax.
fn stream(
    listener: &mut Listener<NdArray>,
    audio: &[f32],
    rng: &mut StdRng,
    longest: usize,
) -> (Vec<Event>, Vec<f32>) {
    let (mut events, mut at) = (Vec::new(), 0);
    while at < audio.len() {
        let size = rng.random_range(1..=longest).min(audio.len() - at);
        events.extend(listener.push(&audio[at..at + size]).expect("hears"));
        at += size;
    }
    events.extend(listener.finish().expect("finishes"));
    (events, listener.take_posteriors())
}

/// The final events' labels, as (label, start, end).
fn finals(events: &[Event]) -> Vec<Vec<(String, f64, f64)>> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Final { labels, .. } => Some(
                labels
                    .iter()
                    .map(|l| (l.label.clone(), l.start, l.end))
                    .collect(),
            ),
            Event::Partial { .. } | Event::Detection { .. } => None,
        })
        .collect()
}

/// The final events' spans, as (start, end).
fn spans(events: &[Event]) -> Vec<(f64, f64)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Final { start, end, .. } => Some((*start, *end)),
            Event::Partial { .. } | Event::Detection { .. } => None,
        })
        .collect()
}

/// The offline result: the whole file's softmax and its best-path labels with their times.
fn offline(run: &Path, audio: features::Audio) -> (Vec<f32>, Vec<(String, f64, f64)>) {
    let device = Default::default();
    let recogniser = Recogniser::<NdArray>::load(run, &device).expect("the run loads");
    let posteriors = recogniser.posteriors(audio, &device).expect("features");
    let classes = recogniser.labels.len();
    let steps = posteriors.len() / classes;
    let shift = recogniser.step_shift().expect("a frame shift");
    let labels = greedy_decode(&posteriors, steps, classes, BLANK)
        .iter()
        .map(|e| {
            let seconds = |step: usize| (step as f64 * shift * 1000.0).round() / 1000.0;
            (
                recogniser.labels[e.label].clone(),
                seconds(e.start),
                seconds(e.end),
            )
        })
        .collect();
    (posteriors, labels)
}

fn assert_close(streamed: &[f32], whole: &[f32], what: &str) {
    assert_eq!(streamed.len(), whole.len(), "{what}: steps × classes");
    let worst = streamed
        .iter()
        .zip(whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "{what}: largest difference {worst}");
}

#[test]
fn any_chunking_gives_the_whole_files_softmax_and_labels() {
    any_chunking_gives_the_whole_files(&runs().causal, 37);
}

#[test]
fn any_chunking_gives_the_whole_files_softmax_and_labels_with_frames_joined_into_steps() {
    any_chunking_gives_the_whole_files(&runs().stacked, 38);
}

fn any_chunking_gives_the_whole_files(run: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut decoded = 0;
    for path in test_wavs() {
        let audio = samples(&path);
        let (whole, labels) = offline(run, audio.clone());
        decoded += labels.len();
        for longest in [1, 80, 800, 40_000] {
            // One-sample chunks on a prefix only: they cost a forward pass per frame.
            let audio = if longest == 1 {
                &audio.samples[..2_000]
            } else {
                &audio.samples[..]
            };
            let mut listener = listener(run, None);
            let (events, streamed) = stream(&mut listener, audio, &mut rng, longest);
            let what = format!("{} in chunks of up to {longest}", path.display());
            if longest == 1 {
                let (prefix, _) = offline(
                    run,
                    features::Audio {
                        sample_rate: 8000,
                        samples: audio.to_vec(),
                    },
                );
                assert_close(&streamed, &prefix, &what);
                continue;
            }
            assert_close(&streamed, &whole, &what);
            let heard = finals(&events);
            let expected: Vec<_> = if labels.is_empty() {
                vec![]
            } else {
                vec![labels.clone()]
            };
            assert_eq!(heard, expected, "{what}");
        }
    }
    assert!(
        decoded > 0,
        "the model decodes no label at all: the comparison would be empty"
    );
}

#[test]
fn audio_at_another_rate_is_resampled_as_it_arrives() {
    let run = &runs().causal;
    let path = &test_wavs()[0];
    let audio = features::resample(&samples(path), 16_000).expect("resamples");
    let (whole, labels) = offline(run, audio.clone());
    let mut rng = StdRng::seed_from_u64(1);
    let mut listener = listener(run, Some(16_000));
    let (events, streamed) = stream(&mut listener, &audio.samples, &mut rng, 3_000);
    assert_close(&streamed, &whole, "16 kHz input");
    let expected: Vec<_> = if labels.is_empty() {
        vec![]
    } else {
        vec![labels]
    };
    assert_eq!(finals(&events), expected);
}

/// The test string `run` reads the most labels from.
fn best_decoded_wav(run: &Path) -> (PathBuf, Vec<(String, f64, f64)>) {
    test_wavs()
        .into_iter()
        .map(|path| {
            let (_, labels) = offline(run, samples(&path));
            (path, labels)
        })
        .max_by_key(|(_, labels)| labels.len())
        .expect("test strings")
}

/// `events`' final results, their label times moved `by` seconds.
fn shifted(finals: Vec<Vec<(String, f64, f64)>>, by: f64) -> Vec<Vec<(String, f64, f64)>> {
    let ms = |t: f64| ((t + by) * 1000.0).round() / 1000.0;
    finals
        .into_iter()
        .map(|labels| {
            labels
                .into_iter()
                .map(|(l, s, e)| (l, ms(s), ms(e)))
                .collect()
        })
        .collect()
}

#[test]
fn an_utterance_ends_after_its_trailing_silence_and_the_next_starts_afresh() {
    an_utterance_ends_and_the_next_starts_afresh(&runs().causal);
}

#[test]
fn an_utterance_ends_and_the_next_starts_afresh_with_frames_joined_into_steps() {
    an_utterance_ends_and_the_next_starts_afresh(&runs().stacked);
}

fn an_utterance_ends_and_the_next_starts_afresh(run: &Path) {
    let (path, _) = best_decoded_wav(run);
    let said = samples(&path).samples;
    let gap = vec![0.0f32; 12_000]; // 1.5 s at 8 kHz
    let audio: Vec<f32> = [&said[..], &gap, &said].concat();
    let device = Default::default();
    let recogniser = Recogniser::<NdArray>::load(run, &device).expect("the run loads");
    let stack = recogniser.task.stack_frames;
    let mut listener = Listener::new(recogniser, ListenOptions::default(), device).expect("causal");
    listener.keep_posteriors();
    let (events, streamed) = stream(&mut listener, &audio, &mut StdRng::seed_from_u64(2), 800);
    let heard = finals(&events);
    assert!(!heard.is_empty(), "no final result: {events:?}");
    // The first utterance ends 0.3–0.6 s after its last label: after 0.6 s of blanks, or
    // of quiet once the label is 0.3 s old; the next begins there.
    let last_end = heard[0].last().expect("labels").2;
    let spans = spans(&events);
    let ended = spans[0].1;
    assert!(
        (last_end + 0.3 - 1e-9..=last_end + 0.6 + 1e-9).contains(&ended),
        "the last label ends at {last_end} s, the utterance at {ended} s"
    );
    assert!(spans.windows(2).all(|w| w[1].0 == w[0].1), "{spans:?}");
    let reset = (ended / 0.01).round() as usize;
    assert_eq!(reset % stack, 0, "an utterance ends with a whole step");
    let steps = reset / stack;
    // Until then the stream is the whole file's forward pass, and the first final is the
    // offline reading of those frames.
    let whole = features::Audio {
        sample_rate: 8000,
        samples: audio.clone(),
    };
    let (offline_steps, _) = offline(run, whole);
    let classes = 11;
    let prefix = steps * classes;
    assert_close(
        &streamed[..prefix],
        &offline_steps[..prefix],
        "before the first endpoint",
    );
    let first: Vec<String> = greedy_decode(&offline_steps[..prefix], steps, classes, BLANK)
        .iter()
        .map(|e| listener.labels()[e.label].clone())
        .collect();
    let labels: Vec<String> = heard[0].iter().map(|l| l.0.clone()).collect();
    assert_eq!(labels, first);
    // After it the listener starts afresh: what follows is heard as a new stream from that
    // frame on would hear it, in the first stream's time. (Checked one frame per step: with
    // three, this model hears a label just after the endpoint, and the quiet rule, which keeps
    // the stream's energy history, then ends that utterance sooner than a new stream does.)
    if stack == 1 {
        let mut fresh = listener_with(run, ListenOptions::default());
        let rest = &audio[reset * 80..];
        let (later, _) = stream(&mut fresh, rest, &mut StdRng::seed_from_u64(4), 800);
        assert_eq!(
            heard[1..].to_vec(),
            shifted(finals(&later), reset as f64 * 0.01)
        );
    }
    // Partials grow by one label at a time within an utterance.
    let mut previous = String::new();
    for event in &events {
        match event {
            Event::Partial { text, .. } => {
                assert!(text.starts_with(&previous) && text.len() == previous.len() + 1);
                previous = text.clone();
            }
            Event::Final { text, .. } => {
                assert_eq!(text, &previous);
                previous.clear();
            }
            Event::Detection { .. } => panic!("a CTC run reported a keyword: {event:?}"),
        }
    }
}

#[test]
fn minutes_of_noise_keep_the_state_bounded_and_give_no_nan() {
    let run = &runs().causal;
    let mut listener = listener_with(run, ListenOptions::default());
    let mut rng = StdRng::seed_from_u64(3);
    let longest = ListenOptions::default().endpoint.max_utterance;
    // Three minutes of quiet noise, 100 ms at a time.
    for _ in 0..1_800 {
        let chunk: Vec<f32> = (0..800).map(|_| rng.random_range(-1e-3..1e-3)).collect();
        listener.push(&chunk).expect("hears");
        let steps = listener.take_posteriors();
        assert!(steps.iter().all(|p| p.is_finite()), "NaN in the softmax");
        assert!(listener.utterance_seconds() <= longest);
    }
    listener.finish().expect("finishes");
}

#[test]
fn runs_that_read_the_future_or_classify_whole_utterances_are_refused() {
    let device = Default::default();
    for (run, why) in [
        (&runs().bidirectional, "bidirectional"),
        (&runs().classes, "classifies whole utterances"),
    ] {
        let recogniser = Recogniser::<NdArray>::load(run, &device).expect("the run loads");
        let refused = Listener::new(recogniser, ListenOptions::default(), device);
        let error = refused.err().expect("refused").to_string();
        assert!(error.contains(why), "{error}");
        let cli = listen_cli(run, &[], b"");
        assert!(!cli.status.success());
        let stderr = String::from_utf8_lossy(&cli.stderr);
        assert!(
            stderr.contains(why) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    let device = Default::default();
    let recogniser = Recogniser::<NdArray>::load(&runs().causal, &device).expect("loads");
    let mut options = ListenOptions::default();
    options.endpoint.trailing_silence = -1.0;
    let refused = Listener::new(recogniser, options, device)
        .err()
        .expect("refused");
    assert!(matches!(refused, ListenError::Endpoint(_)), "{refused}");
}

/// `experiment listen RUN ARGS` with `stdin` piped in.
fn listen_cli(run: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_experiment"))
        .arg("listen")
        .arg(run)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut input = child.stdin.take().expect("stdin");
    // A refused run exits before reading: a broken pipe here is expected.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("runs")
}

/// The `final` lines the CLI printed, as (text, labels).
fn cli_finals(output: &std::process::Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON lines"))
        .filter(|event| event["event"] == "final")
        .collect()
}

#[test]
fn the_cli_hears_raw_pcm_and_wav_streams_and_reads_what_a_cut_stream_held() {
    let run = &runs().causal;
    let (path, labels) = best_decoded_wav(run);
    let wav = std::fs::read(&path).expect("the WAV file");
    let audio = samples(&path);
    let s16le: Vec<u8> = audio
        .samples
        .iter()
        .flat_map(|x| ((x * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    let expected: String = labels.iter().map(|l| l.0.as_str()).collect();
    let raw = cli_finals(&listen_cli(run, &[], &s16le));
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0]["text"], expected.as_str());
    // A stream cut in the middle of a sample: the final result for what was heard.
    let cut = [&s16le[..], &[0x12]].concat();
    assert_eq!(cli_finals(&listen_cli(run, &[], &cut)), raw);
    // A WAV stream whose writer could not seek back to fill in the lengths.
    let mut piped = wav.clone();
    let data = piped
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk");
    piped[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    piped[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let from_wav = cli_finals(&listen_cli(run, &["--format", "wav"], &piped));
    assert_eq!(from_wav, raw);
    // 32-bit floats at 16 kHz, resampled as they arrive.
    let up = features::resample(&audio, 16_000).expect("resamples");
    let f32le: Vec<u8> = up.samples.iter().flat_map(|x| x.to_le_bytes()).collect();
    let resampled = cli_finals(&listen_cli(
        run,
        &["--format", "f32le", "--rate", "16000"],
        &f32le,
    ));
    assert_eq!(resampled.len(), 1, "{resampled:?}");
}

#[test]
fn bad_streams_get_clear_errors() {
    let run = &runs().causal;
    let cases: [(&[&str], &[u8], &str); 4] = [
        (
            &["--format", "wav"],
            b"RIFX\x24\x00\x00\x00WAVEfmt ",
            "not a readable WAV file",
        ),
        (&["--format", "wav"], b"RIFF", "the header ends early"),
        (
            &["--format", "mp3"],
            b"",
            "possible values: s16le, f32le, wav",
        ),
        (&["--rate", "0"], b"", "unusable sample rate 0 Hz"),
    ];
    for (args, stdin, why) in cases {
        let output = listen_cli(run, args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr.contains(why) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
    // NaN in a float stream.
    let nan: Vec<u8> = [0.0f32, f32::NAN]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let output = listen_cli(run, &["--format", "f32le"], &nan);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("not finite"),
        "{stderr}"
    );
}

/// At int8 and bf16 (`--precision`), streaming still gives the whole file's softmax at that
/// precision: each step's input and state are quantised on their own, whatever the chunks.
/// And the precision is really used: its softmax differs from f32's, a little.
#[test]
fn int8_and_bf16_listeners_stream_their_own_whole_file_softmax() {
    let run = &runs().causal;
    let device = Default::default();
    let mut rng = StdRng::seed_from_u64(41);
    let path = &test_wavs()[0];
    let audio = samples(path);
    let f32_whole = offline(run, audio.clone()).0;
    for precision in [models::Precision::Int8, models::Precision::Bf16] {
        let recogniser = Recogniser::<NdArray>::load(run, &device)
            .expect("the run loads")
            .with_precision(precision)
            .expect("an NdArray run quantises");
        assert_eq!(recogniser.model.precision(), precision);
        let whole = recogniser
            .posteriors(audio.clone(), &device)
            .expect("features");
        let mut options = ListenOptions::default();
        options.endpoint.trailing_silence = 1e6;
        options.endpoint.idle_silence = 1e6;
        options.endpoint.max_utterance = 1e6;
        let mut listener = Listener::new(recogniser, options, device).expect("a causal run");
        listener.keep_posteriors();
        let (_, streamed) = stream(&mut listener, &audio.samples, &mut rng, 800);
        assert_close(&streamed, &whole, &format!("{precision} streamed"));
        let largest = whole
            .iter()
            .zip(&f32_whole)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            largest > 0.0 && largest < 0.2,
            "{precision} against f32: {largest}"
        );
    }
}
