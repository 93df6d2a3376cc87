//! A trained run in onnxruntime beside ours, in one run on one machine: the main job's model
//! exported (`experiment export`, waveform in and features in, and features in at
//! `--precision int8`, onnxruntime's `DynamicQuantizeLSTM`) and timed one utterance at a
//! time on one thread, against `Recogniser` at f32 and int8 on the same test utterances
//! (resampled to the run's rate beforehand, untimed).
//!
//! ```sh
//! cargo bench -p train --bench onnx                       # runs/spoken-digits, the main job
//! BENCH_RUN=runs/other BENCH_UTTERANCES=100 BENCH_REPEATS=5 cargo bench -p train --bench onnx
//! ```
//! onnxruntime comes from the pinned environment of `tests/onnx/env.sh` (made on first use).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;
use models::Precision;
use serde_json::Value;
use train::export::{ExportOptions, export_run};
use train::inference::Recogniser;

type B = NdArray;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds of one `run`, the median of `repeats` after one warm-up run.
fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The first `count` WAV files of the run's `test` split.
fn test_utterances(recogniser: &Recogniser<B>, count: usize) -> Vec<PathBuf> {
    let manifest = recogniser
        .task
        .manifest
        .as_ref()
        .expect("the bench needs a run trained on a manifest corpus");
    train::data::sources::read_manifest(manifest)
        .expect("the run's manifest")
        .into_iter()
        .filter(|u| u.split == "test" && u.clip.is_none())
        .take(count)
        .map(|u| u.path)
        .collect()
}

/// Probabilities of one utterance's features: the model, pooling, softmax.
fn classify(recogniser: &Recogniser<B>, features: &features::Features) -> Vec<f32> {
    let shape = [1, features.num_frames, features.dim];
    let data = TensorData::new(features.data.clone(), shape);
    let x = Tensor::<B, 3>::from_data(data, &Default::default());
    let y = recogniser.model.forward(x, None);
    let logits = recogniser.task.pooling.pool(y, None);
    softmax(logits, 1).into_data().iter::<f32>().collect()
}

fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap_or(0)
}

/// `bench_onnxruntime.py`'s JSON line for the exported models (waveform, features, int8
/// features) on `audio` (at the run's rate, handed over as `.npy` files beside the models).
fn onnxruntime(models: [&Path; 3], audio: &[features::Audio], repeats: usize) -> Value {
    let env = Command::new("bash")
        .arg("tests/onnx/env.sh")
        .output()
        .expect("bash tests/onnx/env.sh");
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(env.status.success(), "tests/onnx/env.sh: {}", stderr(&env));
    let python = String::from_utf8_lossy(&env.stdout).trim().to_string();
    let folder = models[0].parent().expect("the models' folder");
    let mut lines = Vec::new();
    for (index, a) in audio.iter().enumerate() {
        let path = folder.join(format!("{index}.npy"));
        let column = features::Features {
            num_frames: a.samples.len(),
            dim: 1,
            data: a.samples.clone(),
        };
        features::write_npy(&path, &column).expect("an utterance's samples");
        lines.push(path.display().to_string());
    }
    let list = folder.join("utterances.txt");
    std::fs::write(&list, lines.join("\n")).expect("the list of utterances");
    let output = Command::new(python)
        .arg("tests/onnx/bench_onnxruntime.py")
        .args([models[0], models[1], &list])
        .arg(format!("--repeats={repeats}"))
        .arg("--int8")
        .arg(models[2])
        .output()
        .expect("bench_onnxruntime.py");
    assert!(
        output.status.success(),
        "bench_onnxruntime.py: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// Seconds per pass over the utterances: waveform → probabilities, features → probabilities.
fn ours(
    recogniser: &Recogniser<B>,
    (audio, feats, wavs): (&[features::Audio], &[features::Features], &[PathBuf]),
    repeats: usize,
) -> (f64, f64) {
    let device = Default::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        let waveform = median_seconds(repeats, || {
            for (a, p) in audio.iter().zip(wavs) {
                let prediction = recogniser.predict_audio(a.clone(), p, 1, &device);
                prediction.expect("a prediction");
            }
        });
        let features = median_seconds(repeats, || {
            for f in feats {
                classify(recogniser, f);
            }
        });
        (waveform, features)
    })
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(&root).expect("the repository root");
    let run = PathBuf::from(std::env::var("BENCH_RUN").unwrap_or("runs/spoken-digits".into()));
    let repeats = env_or("BENCH_REPEATS", 5);
    let device = Default::default();
    let Ok(recogniser) = Recogniser::<B>::load(&run, &device) else {
        eprintln!(
            "no finished run in {} (train the main job first, or set BENCH_RUN)",
            run.display()
        );
        std::process::exit(1);
    };
    let int8 = Recogniser::<B>::load(&run, &device)
        .and_then(|r| r.with_precision(Precision::Int8))
        .expect("the int8 recogniser");
    let wavs = test_utterances(&recogniser, env_or("BENCH_UTTERANCES", 200));
    let folder = tempfile::tempdir().expect("a temporary folder");
    let waveform_model = folder.path().join("waveform.onnx");
    let features_model = folder.path().join("features.onnx");
    let int8_model = folder.path().join("features-int8.onnx");
    let models = [
        (&waveform_model, true, Precision::F32),
        (&features_model, false, Precision::F32),
        (&int8_model, false, Precision::Int8),
    ];
    for (path, waveform, precision) in models {
        let options = ExportOptions {
            waveform,
            precision,
            ..Default::default()
        };
        export_run(&run, path, options).expect("the export");
    }
    // At the run's rate beforehand (untimed): the graph takes audio at that rate only.
    let rate = recogniser.task.sample_rate;
    let audio: Vec<features::Audio> = wavs
        .iter()
        .map(|p| features::read_wav(p, features::Channel::Mean).expect("a test WAV"))
        .map(|a| features::resample::resample(&a, rate).expect("resampled"))
        .collect();
    let pipeline = recogniser.task.pipeline();
    let feats: Vec<features::Features> = audio
        .iter()
        .map(|a| pipeline.run_audio(a.clone()).expect("features"))
        .collect();
    let inputs = (&audio[..], &feats[..], &wavs[..]);
    let (f32_waveform, f32_features) = ours(&recogniser, inputs, repeats);
    let (int8_waveform, int8_features) = ours(&int8, inputs, repeats);
    let theirs = onnxruntime(
        [&waveform_model, &features_model, &int8_model],
        &audio,
        repeats,
    );
    let ort = |key: &str| theirs[key].as_f64().expect("a time");
    println!(
        "CPU: {} ({} threads), {}",
        isa::cpu_model(),
        std::thread::available_parallelism().map_or(1, usize::from),
        isa::cpu_flags()
    );
    let n = wavs.len();
    println!(
        "\n{} ({n} test utterances), batch 1, one thread each; ms per utterance, median of {repeats} passes; onnxruntime {}",
        run.display(),
        theirs["onnxruntime"].as_str().unwrap_or("?")
    );
    println!(
        "| input | ours f32 | ours int8 | onnxruntime | onnxruntime ÷ ours f32 | onnxruntime ÷ ours int8 |"
    );
    println!("|---|---|---|---|---|---|");
    let rows = [
        (
            "waveform",
            f32_waveform,
            int8_waveform,
            ort("waveform_seconds"),
        ),
        (
            "features",
            f32_features,
            int8_features,
            ort("features_seconds"),
        ),
        (
            "features, int8 file",
            f32_features,
            int8_features,
            ort("int8_features_seconds"),
        ),
    ];
    for (input, f32_s, int8_s, ort_s) in rows {
        let ms = |s: f64| 1e3 * s / n as f64;
        println!(
            "| {input} → probabilities | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} |",
            ms(f32_s),
            ms(int8_s),
            ms(ort_s),
            ort_s / f32_s,
            ort_s / int8_s
        );
    }
    let same = |key: &str, ours: &Recogniser<B>| {
        let top = theirs[key].as_array()?;
        let same_class = |(t, f): &(&Value, &features::Features)| {
            t.as_u64() == Some(argmax(&classify(ours, f)) as u64)
        };
        Some(top.iter().zip(&feats).filter(same_class).count())
    };
    if let Some(same) = same("top", &recogniser) {
        println!("\nsame top class, ours f32 and onnxruntime's waveform graph: {same} of {n}");
    }
    if let Some(same) = same("int8_top", &int8) {
        println!("same top class, ours int8 and onnxruntime's int8 file: {same} of {n}");
    }
}
