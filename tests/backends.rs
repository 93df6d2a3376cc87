//! The same recurrent classifier, with the same weights and batch, on `Autodiff<NdArray>`
//! (CPU) and `Autodiff<Wgpu>` (GPU, Mesa's lavapipe in CI): loss and every gradient agree.
//! And every experiment in `experiments/` runs from its TOML on wgpu, at a tiny size.
//!
//! Runs under its own harness so that, on a machine with no wgpu adapter at all, the wgpu
//! checks are reported as ignored with the reason, never as passed.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_ndarray::NdArrayDevice;
use burn_wgpu::WgpuDevice;
use libtest_mimic::{Arguments, Failed, Trial};
use models::{
    CellKind, Nonlinearity, Pooling, RecurrentConfig, SequenceClassifierConfig, StateDict,
};
use train::ExperimentConfig;
use train::backend::{BackendKind, CpuBackend, GpuBackend, run_on, wgpu_adapter};
use train::config::TaskConfig;
use train::data::audio::CorpusSource;
use train::engine::{RunOptions, train};
use train::vanishing::{VanishingJob, probe_batch};

const TOLERANCE: f32 = 1e-4;
const BATCH: usize = 3;
const TIME: usize = 5;
const FEATURES: usize = 4;
const CLASSES: usize = 3;
const LENGTHS: [usize; BATCH] = [5, 4, 2];

fn config(cell: CellKind) -> SequenceClassifierConfig {
    SequenceClassifierConfig::new(RecurrentConfig::new(cell, FEATURES, 6), CLASSES)
}

/// Loss and gradients (by PyTorch's names) of one forward and backward pass.
fn loss_and_gradients<B: AutodiffBackend>(
    cell: CellKind,
    weights: &StateDict,
    device: &B::Device,
) -> (f32, StateDict) {
    let model = config(cell)
        .init::<B>(device)
        .load_state_dict(weights)
        .expect("weights fit");
    let inputs: Vec<f32> = (0..BATCH * TIME * FEATURES)
        .map(|i| ((i * 37 % 23) as f32 / 11.0) - 1.0)
        .collect();
    let x = Tensor::<B, 3>::from_data(TensorData::new(inputs, [BATCH, TIME, FEATURES]), device);
    let y = model.forward(x, Some(&LENGTHS));
    let logits = Pooling::Last.pool(y, Some(&LENGTHS));
    let targets =
        Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 1], [BATCH]), device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, targets);
    let grads = loss.backward();
    let value = loss.into_scalar().elem::<f32>();
    (value, model.gradient_dict(&grads))
}

fn compare_backends(cell: CellKind) -> Result<(), Failed> {
    let cpu = NdArrayDevice::Cpu;
    let weights = config(cell.clone()).init::<CpuBackend>(&cpu).state_dict();
    let (cpu_loss, cpu_grads) = loss_and_gradients::<CpuBackend>(cell.clone(), &weights, &cpu);
    let (gpu_loss, gpu_grads) =
        loss_and_gradients::<GpuBackend>(cell, &weights, &WgpuDevice::default());
    if (cpu_loss - gpu_loss).abs() > TOLERANCE {
        return Err(format!("loss: ndarray {cpu_loss} vs wgpu {gpu_loss}").into());
    }
    // Every parameter must have a gradient on both backends.
    let names = |dict: &StateDict| dict.keys().cloned().collect::<Vec<_>>();
    if names(&cpu_grads) != names(&weights) || names(&gpu_grads) != names(&weights) {
        return Err(format!(
            "parameters with gradients: ndarray {:?}, wgpu {:?}, expected {:?}",
            names(&cpu_grads),
            names(&gpu_grads),
            names(&weights)
        )
        .into());
    }
    for (name, cpu) in &cpu_grads {
        let gpu: Vec<f32> = gpu_grads[name].iter::<f32>().collect();
        for (i, (a, b)) in cpu.iter::<f32>().zip(gpu).enumerate() {
            if (a - b).abs() > TOLERANCE {
                return Err(format!("{name}[{i}]: ndarray {a} vs wgpu {b}").into());
            }
        }
    }
    Ok(())
}

fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The embedded corpus's synthetic training recordings.
fn embedded_wavs() -> Result<Vec<std::path::PathBuf>, Failed> {
    let corpus = repo().join("datasets/default");
    let utterances = train::data::sources::read_manifest(&corpus.join("manifest.csv"))?;
    Ok(utterances
        .into_iter()
        .filter(|u| u.split == "train")
        .map(|u| u.path)
        .collect())
}

/// A Speech Commands folder with the ten command words and one other word, said by four
/// speakers of the embedded corpus's recordings (two train, one in each list).
fn tiny_speech_commands(root: &std::path::Path) -> Result<(), Failed> {
    let wavs = embedded_wavs()?;
    let words = train::data::sources::COMMAND_WORDS.iter().chain(&["wow"]);
    let lists = ["training", "training", "validation", "testing"];
    let names: Vec<String> = (0..lists.len())
        .map(|speaker| format!("{speaker:08x}_nohash_0.wav"))
        .collect();
    let mut files = Vec::new();
    for (w, word) in words.enumerate() {
        for (speaker, list) in lists.iter().enumerate() {
            let wav = &wavs[(w * lists.len() + speaker) % wavs.len()];
            files.push((*word, names[speaker].as_str(), *list, wav.as_path()));
        }
    }
    testkit::layouts::speech_commands_layout(root, &files, 12)?;
    Ok(())
}

/// A manifest of a few utterances per split of the embedded corpus (absolute paths).
fn tiny_manifest(dir: &std::path::Path) -> Result<std::path::PathBuf, Failed> {
    let corpus = repo().join("datasets/default");
    let text = std::fs::read_to_string(corpus.join("manifest.csv"))?;
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().ok_or("empty manifest")?);
    let mut taken = std::collections::BTreeMap::<String, usize>::new();
    for line in lines {
        let split = line
            .split(',')
            .nth(4)
            .ok_or("short manifest row")?
            .to_string();
        let quota = if split == "train" { 8 } else { 3 };
        let count = taken.entry(split).or_default();
        if *count < quota {
            *count += 1;
            out.push_str(&format!("{}/{line}\n", corpus.display()));
        }
    }
    let path = dir.join("manifest.csv");
    std::fs::write(&path, out)?;
    Ok(path)
}

/// Runs `experiments/NAME.toml` on wgpu for one epoch of two small batches (the vanishing
/// experiment through its measurement, the others through `train`), and checks that every
/// figure it reports is finite and in range.
fn experiment_runs_on_wgpu(file: std::path::PathBuf) -> Result<(), Failed> {
    let text = std::fs::read_to_string(&file)?;
    let stem = file
        .file_stem()
        .ok_or("no name")?
        .to_string_lossy()
        .to_string();
    let scratch = tempfile::tempdir()?;
    let mut overrides: Vec<String> = [
        "training.epochs=1",
        "training.steps_per_epoch=2",
        "training.batch_size=4",
        "training.validation_size=8",
        "model.hidden_size=8",
    ]
    .map(String::from)
    .to_vec();
    let parsed = ExperimentConfig::parse(&text, &stem, &[])?.task;
    match &parsed {
        _ if parsed.audio().is_some() => {
            let (task, _) = parsed.audio().ok_or("an audio task")?;
            let cache = scratch.path().join("cache");
            overrides.push(format!("task.cache_dir={:?}", cache.display().to_string()));
            let (setting, path) = match task.source() {
                CorpusSource::Manifest { .. } if task.manifest.is_some() => {
                    ("task.manifest", tiny_manifest(scratch.path())?)
                }
                CorpusSource::Manifest { .. } => {
                    ("task.corpus.path", tiny_manifest(scratch.path())?)
                }
                CorpusSource::Fsdd { .. } => {
                    let root = scratch.path().join("fsdd");
                    testkit::layouts::free_spoken_digits_layout(
                        &root,
                        &embedded_wavs()?,
                        &[0, 5, 10, 11],
                    )?;
                    ("task.corpus.root", root)
                }
                CorpusSource::SpeechCommands { .. } => {
                    let root = scratch.path().join("speech_commands");
                    tiny_speech_commands(&root)?;
                    ("task.corpus.root", root)
                }
            };
            overrides.push(format!("{setting}={:?}", path.display().to_string()));
            // The tiny manifest holds the embedded corpus's splits only (no paused strings).
            let splits = ["train", "valid", "test", "real"];
            let reported: Vec<String> = task
                .report_splits
                .iter()
                .filter(|s| splits.contains(&s.as_str()))
                .map(|s| format!("{s:?}"))
                .collect();
            overrides.push(format!("task.report_splits=[{}]", reported.join(", ")));
        }
        TaskConfig::TemporalOrder(_) => {
            for short in [
                "task.min_length=8",
                "task.max_length=9",
                "task.first_window=[1, 2]",
                "task.second_window=[4, 5]",
            ] {
                overrides.push(short.to_string());
            }
        }
        _ => {}
    }
    let mut config = ExperimentConfig::parse(&text, &stem, &overrides)?;
    config.backend = BackendKind::Wgpu;
    let finite = |what: &str, value: f64| -> Result<(), Failed> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(format!("{stem}: {what} is {value}").into())
        }
    };
    if stem == "vanishing-gradients" {
        let TaskConfig::TemporalOrder(task) = &config.task else {
            return Err("vanishing-gradients is a temporal-order experiment".into());
        };
        let probe = probe_batch(task, 1, 4);
        let job = VanishingJob {
            config: &config,
            probe: &probe,
        };
        let measured = run_on(BackendKind::Wgpu, job)??;
        for norms in [&measured.before, &measured.after] {
            if norms.len() != probe.shape[1] || norms.iter().any(|n| !(n.is_finite() && *n > 0.0)) {
                return Err(format!("‖∂L/∂h_t‖ for {} steps: {norms:?}", probe.shape[1]).into());
            }
        }
        return Ok(());
    }
    let data = config.prepare_data()?;
    let outcome = train::<GpuBackend>(
        config.spec(),
        &data,
        &WgpuDevice::default(),
        &RunOptions::default(),
        (),
    )?;
    let [epoch] = outcome.history.as_slice() else {
        return Err(format!("{stem}: {} epochs, not 1", outcome.history.len()).into());
    };
    finite("training loss", epoch.train_loss)?;
    finite("validation loss", epoch.valid_loss)?;
    let accuracies = [epoch.train_accuracy, epoch.valid_accuracy];
    if accuracies.iter().any(|a| !(0.0..=1.0).contains(a)) {
        return Err(format!("{stem}: accuracies {accuracies:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let adapter = wgpu_adapter();
    match &adapter {
        Some(name) => eprintln!("wgpu adapter: {name}"),
        None => eprintln!(
            "SKIPPED wgpu checks: no wgpu adapter on this machine (scripts/setup.sh installs \
             mesa-vulkan-drivers for lavapipe)"
        ),
    }
    let lstm = |peephole, coupled_input_forget| CellKind::Lstm {
        peephole,
        coupled_input_forget,
        unit_forget_bias: false,
        chrono_init: None,
    };
    let cases = [
        ("rnn_tanh", CellKind::rnn(Nonlinearity::Tanh)),
        ("rnn_relu", CellKind::rnn(Nonlinearity::Relu)),
        ("rnn_sigmoid", CellKind::rnn(Nonlinearity::Sigmoid)),
        ("lstm", CellKind::lstm()),
        ("lstm_peephole", lstm(true, false)),
        ("lstm_coupled", lstm(false, true)),
        ("lstm_peephole_coupled", lstm(true, true)),
        ("gru", CellKind::gru()),
        ("gru_reset_before", CellKind::Gru { reset_after: false }),
    ];
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|(name, cell)| {
            Trial::test(
                format!("{name}_loss_and_gradients_equal_on_ndarray_and_wgpu"),
                move || compare_backends(cell),
            )
            .with_ignored_flag(adapter.is_none())
        })
        .collect();
    let mut experiments: Vec<std::path::PathBuf> = std::fs::read_dir(repo().join("experiments"))
        .expect("experiments/ is readable")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    experiments.sort();
    assert!(experiments.len() >= 5, "experiments/ has its TOML files");
    for file in experiments {
        let stem = file
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .replace('-', "_");
        trials.push(
            Trial::test(format!("experiment_{stem}_runs_on_wgpu"), move || {
                experiment_runs_on_wgpu(file)
            })
            .with_ignored_flag(adapter.is_none()),
        );
    }
    libtest_mimic::run(&args, trials).exit();
}
