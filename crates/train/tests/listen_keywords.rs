//! Live keyword spotting (`train::listen` with a keyword run, `experiment listen`): a small
//! causal model of experiments/keywords-streaming.toml, trained on a folder in Speech
//! Commands' layout, hears the corpus's clips joined into one stream in random chunkings and
//! gives the same softmax and the same detections for each; without restarts its softmax is
//! the whole file's; the CLI prints what the library reports; options out of range and
//! minutes of quiet are handled.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use burn_ndarray::NdArray;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use train::data::sources::{COMMAND_WORDS, KeywordTask, keyword_spotting, read_manifest};
use train::inference::Recogniser;
use train::listen::spotting::join_clips;
use train::listen::{Event, KeywordOptions, ListenError, ListenOptions, Listener};

use common::experiment;

/// The run, trained once per test process, and the corpus's clips joined into a stream.
struct Trained {
    _scratch: tempfile::TempDir,
    run: PathBuf,
    stream: Vec<f32>,
}

/// The shipped keyword experiment's file.
fn keywords_toml() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/keywords-streaming.toml")
        .display()
        .to_string()
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let scratch = tempfile::tempdir().expect("tempdir");
        let root = scratch.path().join("speech_commands");
        learnable_stand_in(&root);
        let toml = keywords_toml();
        let out = scratch.path().display().to_string();
        let settings = [
            format!("task.corpus.root={:?}", root.display().to_string()),
            format!(
                "task.cache_dir={:?}",
                scratch.path().join("cache").display().to_string()
            ),
            "task.augment={}".to_string(),
            "task.report_splits=[]".to_string(),
            "model.hidden_size=32".to_string(),
            "training.epochs=60".to_string(),
            "training.learning_rate=0.01".to_string(),
        ];
        experiment(&["train", &toml, "--out-dir", &out], &settings);
        let clips = keyword_spotting(&root, &KeywordTask::twelve_class()).expect("the corpus");
        let joined = join_clips(&clips[..24], 16_000, 5).expect("joins");
        Trained {
            run: scratch.path().join("keywords-streaming"),
            stream: joined.samples,
            _scratch: scratch,
        }
    })
}

/// A folder in Speech Commands' layout where each command word is said as one digit of the
/// embedded corpus (`yes` as 0, `no` as 1, …) by eight speakers: six in train, one in each
/// list; no other words.
fn learnable_stand_in(root: &Path) {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/default/manifest.csv");
    let utterances = read_manifest(&manifest).expect("the embedded corpus");
    let lists = [
        "training",
        "training",
        "training",
        "training",
        "training",
        "training",
        "validation",
        "testing",
    ];
    let names: Vec<String> = (0..lists.len())
        .map(|speaker| format!("{:08x}_nohash_0.wav", 0xabc0 + speaker))
        .collect();
    let mut files = Vec::new();
    for (digit, word) in COMMAND_WORDS.iter().enumerate() {
        let said = utterances.iter().filter(|u| u.label == digit.to_string());
        for ((u, list), name) in said.zip(lists).zip(&names) {
            files.push((*word, name.as_str(), list, u.path.as_path()));
        }
    }
    testkit::layouts::speech_commands_layout(root, &files, 12).expect("layout");
}

fn listener(options: ListenOptions) -> Listener<NdArray> {
    let device = Default::default();
    let run = Recogniser::<NdArray>::load(&trained().run, &device).expect("the run loads");
    let mut listener = Listener::new(run, options, device).expect("a keyword run listens");
    listener.keep_posteriors();
    listener
}

/// Options that report keywords readily, so that a briefly trained model reports some.
fn ready() -> ListenOptions {
    ListenOptions {
        keywords: KeywordOptions {
            threshold: 0.3,
            ..KeywordOptions::default()
        },
        ..ListenOptions::default()
    }
}

/// Pushes `audio` in chunks of random sizes from 1 sample to `longest`, then finishes;
/// returns the events and every step's softmax.
fn stream(
    listener: &mut Listener<NdArray>,
    audio: &[f32],
    seed: u64,
    longest: usize,
) -> (Vec<Event>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut events, mut at) = (Vec::new(), 0);
    while at < audio.len() {
        let size = rng.random_range(1..=longest).min(audio.len() - at);
        events.extend(listener.push(&audio[at..at + size]).expect("hears"));
        at += size;
    }
    events.extend(listener.finish().expect("finishes"));
    (events, listener.take_posteriors())
}

/// Each detection as (label, start, end, score), the times of its frames.
fn detections(events: &[Event]) -> Vec<(String, f64, f64, f32)> {
    events
        .iter()
        .map(|event| match event {
            Event::Detection {
                label,
                start,
                end,
                score,
                emitted_at,
            } => {
                assert!(start < end && end <= emitted_at, "{event:?}");
                (label.clone(), *start, *end, *score)
            }
            _ => panic!("a keyword run reported {event:?}"),
        })
        .collect()
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "steps × classes");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn same_detections(a: &[(String, f64, f64, f32)], b: &[(String, f64, f64, f32)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: {a:?} against {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.0, x.1, x.2), (&y.0, y.1, y.2), "{what}");
        assert!((x.3 - y.3).abs() <= 1e-5, "{what}: {x:?} against {y:?}");
    }
}

#[test]
fn any_chunking_gives_the_same_softmax_and_detections() {
    let audio = &trained().stream;
    let (events, whole) = stream(&mut listener(ready()), audio, 0, audio.len());
    let reference = detections(&events);
    let keywords = whole
        .chunks_exact(12)
        .map(|row| row[2..].iter().copied().fold(0.0, f32::max));
    assert!(
        !reference.is_empty(),
        "the model reports no keyword (the highest step probability of one: {}): the comparison would be empty",
        keywords.fold(0.0, f32::max)
    );
    for (seed, longest) in [(1, 160), (2, 1_600), (3, 16_000)] {
        let (events, steps) = stream(&mut listener(ready()), audio, seed, longest);
        let what = format!("chunks of up to {longest} samples");
        let worst = largest_difference(&steps, &whole);
        assert!(worst <= 1e-6, "{what}: softmax differs by {worst}");
        same_detections(&detections(&events), &reference, &what);
    }
    // One-sample chunks over the first second: a forward pass per frame.
    let prefix = &audio[..16_000];
    let (_, one_by_one) = stream(&mut listener(ready()), prefix, 4, 1);
    let (_, at_once) = stream(&mut listener(ready()), prefix, 4, prefix.len());
    assert!(largest_difference(&one_by_one, &at_once) <= 1e-6);
}

#[test]
fn without_restarts_the_stream_gives_the_whole_files_softmax() {
    let audio = trained().stream.clone();
    let mut options = ready();
    options.keywords.pause = 0.0;
    options.keywords.restart = 1e6;
    let (_, streamed) = stream(&mut listener(options), &audio, 6, 4_000);
    let device = Default::default();
    let run = Recogniser::<NdArray>::load(&trained().run, &device).expect("loads");
    let whole = run
        .posteriors(
            features::Audio {
                sample_rate: 16_000,
                samples: audio,
            },
            &device,
        )
        .expect("features");
    let worst = largest_difference(&streamed, &whole);
    assert!(worst <= 1e-6, "softmax differs by {worst}");
}

#[test]
fn lanes_hear_the_same_stream_alike_in_any_chunking() {
    let audio = &trained().stream;
    let mut options = ready();
    options.keywords.lanes = 3;
    options.keywords.restart = 1.5;
    let (events, _) = stream(&mut listener(options), audio, 7, audio.len());
    let reference = detections(&events);
    let (events, _) = stream(&mut listener(options), audio, 8, 800);
    same_detections(&detections(&events), &reference, "three lanes");
    // Staggered lanes report a keyword once: never twice within the window.
    let window = options.keywords.window;
    for pair in reference.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[1].2 - pair[0].2 >= window - 1e-9,
            "{pair:?}"
        );
    }
}

#[test]
fn minutes_of_quiet_report_nothing_and_keep_the_state_short() {
    let mut listener = listener(ListenOptions::default());
    let mut rng = StdRng::seed_from_u64(9);
    let restart = KeywordOptions::default().restart;
    // A minute of digital silence, then two of quiet noise, 100 ms at a time.
    for second in 0..1_800 {
        let level = if second < 600 { 0.0 } else { 1e-3 };
        let chunk: Vec<f32> = (0..1_600)
            .map(|_| level * rng.random_range(-1.0..1.0))
            .collect();
        let events = listener.push(&chunk).expect("hears");
        assert!(events.is_empty(), "{events:?}");
        let steps = listener.take_posteriors();
        assert!(steps.iter().all(|p| p.is_finite()), "NaN in the softmax");
        assert!(listener.utterance_seconds() <= restart);
    }
    assert!(listener.finish().expect("finishes").is_empty());
}

#[test]
fn keyword_options_out_of_range_are_refused() {
    let refusals: [fn(&mut KeywordOptions); 6] = [
        |o| o.threshold = 0.0,
        |o| o.threshold = 1.5,
        |o| o.window = f64::NAN,
        |o| o.lanes = 0,
        |o| o.restart = -1.0,
        |o| o.pause = f64::INFINITY,
    ];
    let device = Default::default();
    for change in refusals {
        let mut options = ListenOptions::default();
        change(&mut options.keywords);
        let run = Recogniser::<NdArray>::load(&trained().run, &device).expect("loads");
        let refused = Listener::new(run, options, device).err().expect("refused");
        assert!(matches!(refused, ListenError::Keywords(_)), "{refused}");
    }
    let cli = listen_cli(&["--threshold", "2"], &[]);
    assert!(!cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(
        stderr.contains("threshold") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// A keyword run that joins frames into steps is refused: its spotting counts frames.
#[test]
fn a_keyword_run_with_frames_joined_into_steps_is_refused() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = trained()
        .run
        .parent()
        .expect("the scratch folder")
        .join("speech_commands");
    let toml = keywords_toml();
    let out = scratch.path().display().to_string();
    let settings = [
        format!("task.corpus.root={:?}", root.display().to_string()),
        "task.augment={}".to_string(),
        "task.report_splits=[]".to_string(),
        "task.stack_frames=3".to_string(),
        "model.hidden_size=8".to_string(),
        "training.epochs=1".to_string(),
    ];
    experiment(&["train", &toml, "--out-dir", &out], &settings);
    let device = Default::default();
    let run = scratch.path().join("keywords-streaming");
    let run = Recogniser::<NdArray>::load(&run, &device).expect("loads");
    let refused = Listener::new(run, ListenOptions::default(), device);
    let refused = refused.err().expect("refused");
    assert!(matches!(refused, ListenError::StackedKeywords), "{refused}");
    assert!(
        refused.to_string().contains("task.stack_frames"),
        "{refused}"
    );
}

/// `experiment listen RUN ARGS` with `stdin` piped in.
fn listen_cli(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_experiment"))
        .arg("listen")
        .arg(&trained().run)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&bytes);
    });
    let output = child.wait_with_output().expect("runs");
    writer.join().expect("writes");
    output
}

#[test]
fn the_cli_prints_the_libraries_detections_as_json_lines() {
    let audio = &trained().stream;
    let (events, _) = stream(&mut listener(ready()), audio, 10, 1_600);
    let expected: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).expect("serialises"))
        .collect();
    let pcm: Vec<u8> = audio.iter().flat_map(|x| x.to_le_bytes()).collect();
    let output = listen_cli(&["--format", "f32le", "--threshold", "0.3"], &pcm);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(!printed.is_empty());
    assert_eq!(printed.len(), expected.len());
    for (line, event) in printed.iter().zip(&expected) {
        assert_eq!(line["event"], "detection", "{line}");
        for field in ["label", "start", "end"] {
            assert_eq!(line[field], event[field], "{line} against {event}");
        }
        let score = |v: &serde_json::Value| v["score"].as_f64().expect("a score");
        assert!((score(line) - score(event)).abs() <= 1e-5, "{line}");
    }
}
