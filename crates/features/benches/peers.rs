//! Every preset against its peers, side by side in one run, on a 10-minute 16 kHz speech
//! WAV (the goforward clip repeated), one thread, best of `BENCH_REPEATS` (default 5):
//! the features alone (samples in memory) and the file read plus the features. Then a
//! directory of files on 1 thread and on every core, as the `mfcc` CLI processes one.
//!
//! ```sh
//! BENCH_PYTHON=path/to/python cargo bench -p features --bench peers
//! ```
//!
//! `BENCH_PYTHON` names a Python with `requirements.txt` (beside this file) installed;
//! `reference_speed.py` times the peers in each of `BENCH_ROUNDS` rounds (default 3),
//! right after ours, and the ratio is the median over the rounds of peer time / ours
//! (above 1: ours is faster). Without it, only our times are printed. `BENCH_ISA=avx2`
//! (or `portable`) caps our frame loop's instruction set, to measure that path on a CPU
//! that has a wider one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{presets, speech, wav_bytes};
use features::{
    Channel, FeatureExtractor, FeatureOptions, FilePipeline, Output, Preset, read_wav, write_npy,
};
use isa::{CpuIsa, cpu_isa, set_cpu_isa_limit};
use rayon::prelude::*;

mod common;

const SECONDS: usize = 600;

/// `seconds` of speech written as 16-bit PCM at `path`; returns the samples as read back.
fn write_speech(path: &Path, seconds: usize) -> Vec<f32> {
    std::fs::write(path, wav_bytes(&speech(seconds))).expect("writes the WAV");
    read_wav(path, Channel::Mean).expect("reads back").samples
}

fn best_of(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

struct Peer {
    preset: String,
    tool: String,
    features_s: f64,
    file_s: f64,
}

fn peers(wav: &Path, repeats: usize) -> Vec<Peer> {
    let Ok(python) = std::env::var("BENCH_PYTHON") else {
        return Vec::new();
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/reference_speed.py");
    let output = Command::new(python)
        .arg(script)
        .arg("--wav")
        .arg(wav)
        .args(["--repeats", &repeats.to_string()])
        .output()
        .expect("runs BENCH_PYTHON");
    if !output.status.success() {
        eprintln!(
            "reference_speed.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return Vec::new();
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| Peer {
            preset: v["preset"].as_str().unwrap_or_default().into(),
            tool: v["tool"].as_str().unwrap_or_default().into(),
            features_s: v["features_s"].as_f64().unwrap_or(f64::NAN),
            file_s: v["file_s"].as_f64().unwrap_or(f64::NAN),
        })
        .collect()
}

/// Our Python package against the fastest Python peer of `preset`, per round, median.
fn print_python_margin(preset: &str, rounds: &[Vec<Peer>]) {
    const OURS: &str = "speechrnn (Python)";
    let margins: Vec<(f64, f64)> = rounds
        .iter()
        .filter_map(|round| {
            let of_preset = || round.iter().filter(|p| p.preset == preset);
            let ours = of_preset().find(|p| p.tool.starts_with(OURS))?;
            let fastest = |time: fn(&Peer) -> f64| {
                of_preset()
                    .filter(|p| !p.tool.starts_with(OURS))
                    .map(time)
                    .fold(f64::INFINITY, f64::min)
            };
            Some((
                fastest(|p| p.features_s) / ours.features_s,
                fastest(|p| p.file_s) / ours.file_s,
            ))
        })
        .filter(|(features, _)| features.is_finite())
        .collect();
    if !margins.is_empty() {
        println!(
            "| {preset} | {OURS} against the fastest Python peer | | | {:.2} | {:.2} |",
            median(margins.iter().map(|m| m.0).collect()),
            median(margins.iter().map(|m| m.1).collect())
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The instruction set `BENCH_ISA` names, if any.
fn isa_limit() -> Option<CpuIsa> {
    let name = std::env::var("BENCH_ISA").ok().filter(|v| !v.is_empty())?;
    let isa = CpuIsa::ALL
        .into_iter()
        .find(|isa| format!("{isa:?}").eq_ignore_ascii_case(&name));
    assert!(
        isa.is_some(),
        "BENCH_ISA={name}: not one of {:?}",
        CpuIsa::ALL
    );
    isa
}

/// Seconds to turn every file of `files` into `.npy` files in `out` on `threads` threads.
fn directory_seconds(files: &[PathBuf], out: &Path, threads: usize, repeats: usize) -> f64 {
    let pipeline = FilePipeline::new(FeatureOptions::preset(Preset::Kaldi));
    let limit = isa_limit();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| set_cpu_isa_limit(limit))
        .build()
        .expect("thread pool");
    best_of(repeats, || {
        pool.install(|| {
            files.par_iter().enumerate().for_each(|(i, file)| {
                let features = pipeline.run(file).expect("features");
                write_npy(out.join(format!("{i}.npy")), &features).expect("writes");
            })
        })
    })
}

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (repeats, rounds) = (env("BENCH_REPEATS", 5), env("BENCH_ROUNDS", 3).max(1));
    let dir = tempfile::tempdir().expect("temporary folder");
    let wav = dir.path().join("ten_minutes.wav");
    let samples = write_speech(&wav, SECONDS);
    set_cpu_isa_limit(isa_limit());
    println!(
        "CPU: {}, {}; our frame loop runs with {:?}",
        isa::cpu_model(),
        isa::cpu_flags(),
        cpu_isa()
    );
    println!(
        "{SECONDS} s of 16 kHz speech, one thread, best of {repeats}; x real time; ratio = median over {rounds} rounds of peer time / ours (above 1: ours is faster)"
    );

    // (preset, features, file) seconds of ours, and the peers' rows, per round.
    let mut ours: Vec<Vec<(f64, f64)>> = vec![Vec::new(); presets().len()];
    let mut theirs: Vec<Vec<Peer>> = Vec::new();
    for _ in 0..rounds {
        for (i, (_, options)) in presets().into_iter().enumerate() {
            let extractor = FeatureExtractor::new(options.clone()).expect("valid");
            let features = best_of(repeats, || {
                std::hint::black_box(extractor.compute(&samples, Output::Mfcc).expect("mfcc"));
            });
            let pipeline = FilePipeline::new(options);
            let file = best_of(repeats, || {
                std::hint::black_box(pipeline.run(&wav).expect("mfcc"));
            });
            ours[i].push((features, file));
        }
        theirs.push(peers(&wav, repeats));
    }
    let realtime = |seconds: f64| SECONDS as f64 / seconds;
    println!(
        "| preset | tool | features ×RT | file + features ×RT | ours / peer, features | ours / peer, file + features |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, (preset, _)) in presets().iter().enumerate() {
        let features = median(ours[i].iter().map(|o| o.0).collect());
        let file = median(ours[i].iter().map(|o| o.1).collect());
        println!(
            "| {preset} | speechrnn `features` | {:.0} | {:.0} | | |",
            realtime(features),
            realtime(file)
        );
        let tools: Vec<String> = theirs[0]
            .iter()
            .filter(|p| p.preset == *preset)
            .map(|p| p.tool.clone())
            .collect();
        for tool in tools {
            let rows: Vec<(&Peer, (f64, f64))> = theirs
                .iter()
                .zip(&ours[i])
                .filter_map(|(round, o)| {
                    let same = |p: &&Peer| p.tool == tool && p.preset == *preset;
                    round.iter().find(same).map(|p| (p, *o))
                })
                .collect();
            let peer_features = median(rows.iter().map(|(p, _)| p.features_s).collect());
            let peer_file = median(rows.iter().map(|(p, _)| p.file_s).collect());
            let ratio_features = median(rows.iter().map(|(p, o)| p.features_s / o.0).collect());
            let ratio_file = median(rows.iter().map(|(p, o)| p.file_s / o.1).collect());
            println!(
                "| {preset} | {tool} | {:.0} | {:.0} | {ratio_features:.2} | {ratio_file:.2} |",
                realtime(peer_features),
                realtime(peer_file)
            );
        }
        print_python_margin(preset, &theirs);
    }

    // A directory: 40 files of 15 s, the kaldi preset, .npy written, as `mfcc DIR -o OUT`.
    let files: Vec<PathBuf> = (0..40)
        .map(|i| {
            let path = dir.path().join(format!("file{i}.wav"));
            write_speech(&path, 15);
            path
        })
        .collect();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("output folder");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let one = directory_seconds(&files, &out, 1, repeats);
    let all = directory_seconds(&files, &out, threads, repeats);
    println!(
        "directory of 40 × 15 s (kaldi preset, .npy written): 1 thread {:.0}× real time, {threads} threads {:.0}× ({:.2}× the one-thread speed; ideal {threads})",
        (40.0 * 15.0) / one,
        (40.0 * 15.0) / all,
        one / all
    );
}
