//! `experiment`: train the recurrent classifiers described in `experiments/*.toml`, and use
//! finished runs. Parses the command line ([`args`]) and calls the `train` library.

mod args;
mod corpus;
mod listen;
mod listen_bench;
#[cfg(feature = "mic")]
mod mic;
mod parallel;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use args::{Cli, Command, Decode, Experiment, Inference};
use burn_ndarray::NdArray;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use parallel::Parallel;
use train::backend::{BackendKind, wgpu_adapter};
use train::bench::bench_report;
use train::data::corpus::TaskData;
use train::data::sources::read_manifest;
use train::eval::ctc::Decoding;
use train::inference::Recogniser;
use train::report::metrics::EpochMetrics;
use train::run::{Observer, Run, RunFolder, RunMode, epoch_line, summary_text};

/// Makes burn-ndarray's results identical from run to run (see `models::AlignedAllocator`).
#[global_allocator]
static ALLOCATOR: models::AlignedAllocator = models::AlignedAllocator;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, outermost first ("cannot write …: Permission denied"),
/// skipping a cause whose text the message before it already quotes.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
    }
    message
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // burn's collective servers log every connection at INFO unless a logger is installed
    // already; this one keeps the output to what `experiment` prints.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    match cli.command {
        Command::Train {
            experiment,
            backend,
            folder,
            parallel,
        } => {
            let run = Run::load(&experiment.config, &experiment.overrides, backend.backend)?;
            train_run(run, &folder.out_dir, folder.mode(), parallel)
        }
        Command::Eval {
            run_dir,
            splits,
            manifest,
            decode,
            inference,
        } => eval(&run_dir, splits, manifest.as_deref(), &decode, &inference),
        Command::Predict {
            run_dir,
            wavs,
            top_k,
            decode,
            inference,
        } => predict(&run_dir, &wavs, top_k, &decode, &inference),
        Command::Export {
            run_dir,
            output,
            streaming,
            waveform,
            precision,
        } => {
            let options = train::export::ExportOptions {
                streaming,
                waveform,
                precision,
            };
            let exported = train::export::export_run(&run_dir, &output, options)?;
            println!("{}", serde_json::to_string(&exported)?);
            Ok(())
        }
        Command::Listen(args) => listen::listen(&args),
        Command::ListenBench(args) => listen_bench::listen_bench(&args),
        Command::Vanishing {
            experiment,
            backend,
            out_dir,
        } => {
            let config = load_config(&experiment, backend.backend)?;
            let run_dir = train::vanishing::study(&config, &out_dir, |line| println!("{line}"))?;
            println!(
                "wrote {0}/vanishing_gradients.csv and .png (log10 ‖∂L/∂h_t‖ against t; light: at initialisation, dark: trained; red RNN, blue LSTM, purple LSTM with chrono initialisation, green GRU)",
                run_dir.display()
            );
            Ok(())
        }
        Command::CorpusInfo { experiment } => corpus::corpus_info(&experiment),
        Command::CmvnStats {
            experiment,
            prior_frames,
        } => corpus::cmvn_stats(&experiment, prior_frames),
        Command::Coordinator {
            peers,
            port,
            bind,
            token_file,
        } => parallel::coordinate(peers, SocketAddr::new(bind, port), token_file.as_deref()),
        Command::Launch { peers, port, train } => {
            let exe =
                std::env::current_exe().context("cannot find this program to start the peers")?;
            Ok(train::run::launch_local(&exe, peers, port, &train)?)
        }
        Command::Backends => {
            println!("ndarray: CPU");
            match wgpu_adapter() {
                Some(name) => println!("wgpu: {name}"),
                None => println!("wgpu: no adapter (install mesa-vulkan-drivers for lavapipe)"),
            }
            Ok(())
        }
        Command::Bench(bench) => {
            let report = bench_report(&bench.backends, bench.shape(), bench.repeats)?;
            print!("{report}");
            Ok(())
        }
    }
}

/// The experiment file with `--set` overrides applied, and `--backend` over its `backend`.
pub(crate) fn load_config(
    experiment: &Experiment,
    backend: Option<BackendKind>,
) -> anyhow::Result<train::ExperimentConfig> {
    let config = train::ExperimentConfig::load(&experiment.config, &experiment.overrides)?;
    Ok(config.with_backend(backend))
}

/// The `train` subcommand: folder, data, training with a progress bar, summary.
fn train_run(run: Run, out_dir: &Path, mode: RunMode, parallel: Parallel) -> anyhow::Result<()> {
    // Held until the command ends: no other process can write into this run.
    let folder = RunFolder::open(out_dir, &run.folder_name(parallel.peer_id), mode)?;
    let peers = parallel::peers(&parallel)?;
    let config = &run.config;
    println!(
        "experiment {} on {} ({} cell, hidden {})",
        config.name,
        config.backend,
        config.model.cell.name(),
        config.model.hidden_size
    );
    let prepared = run.prepare()?;
    if let TaskData::Corpus(corpus) = &prepared.data {
        for (path, why) in &corpus.skipped {
            eprintln!("skipped {}: {why}", path.display());
        }
        let skipped = match corpus.skipped.len() {
            0 => String::new(),
            n => format!("; {n} files skipped"),
        };
        println!(
            "corpus: {} train, {} valid utterances, {} features per frame{skipped}",
            corpus.train.len(),
            corpus.valid.len(),
            corpus.train.dim(),
        );
    }
    let mut progress = Progress::new(prepared.total_steps());
    let summary = prepared.fit(&folder, peers, &mut progress)?;
    progress.bar.finish_and_clear();
    let text = summary_text(&prepared.config, &prepared.data, &summary, folder.path());
    println!("{text}");
    Ok(())
}

/// A progress bar over the run's steps, with a line per epoch printed above it.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    fn new(total_steps: usize) -> Self {
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps, {elapsed} elapsed, ETA {eta} {msg}",
        )
        .expect("valid template");
        Self {
            bar: ProgressBar::new(total_steps as u64).with_style(style),
        }
    }
}

impl Observer for Progress {
    fn on_step(&mut self, _epoch: usize, _step: usize) {
        self.bar.inc(1);
    }

    fn on_epoch(&mut self, metrics: &EpochMetrics) {
        self.bar.suspend(|| println!("{}", epoch_line(metrics)));
    }
}

/// The `eval` subcommand: each split's score with the run's best weights.
fn eval(
    run_dir: &Path,
    splits: Vec<String>,
    manifest: Option<&Path>,
    decode: &Decode,
    inference: &Inference,
) -> anyhow::Result<()> {
    let device = Default::default();
    let recogniser = load_recogniser(run_dir, inference, &device)?;
    let task = &recogniser.task;
    let utterances = match manifest {
        Some(manifest) => read_manifest(manifest)?,
        None => task.utterances()?,
    };
    let splits = match splits.is_empty() {
        true => std::iter::once("valid".to_string())
            .chain(task.report_splits.iter().cloned())
            .collect(),
        false => splits,
    };
    let decoding = Decoding::with_beam_width(decode.beam_width);
    for split in splits {
        println!(
            "{}",
            recogniser.score_split(&split, &utterances, decoding, &device)?
        );
    }
    Ok(())
}

/// A finished run's recogniser on the CPU, at the precision asked for.
fn load_recogniser(
    run_dir: &Path,
    inference: &Inference,
    device: &burn_ndarray::NdArrayDevice,
) -> anyhow::Result<Recogniser<NdArray>> {
    Ok(Recogniser::<NdArray>::load(run_dir, device)?.with_precision(inference.precision)?)
}

/// The `predict` subcommand: a JSON line per file; unreadable files are named and skipped.
fn predict(
    run_dir: &Path,
    wavs: &[std::path::PathBuf],
    top_k: usize,
    decode: &Decode,
    inference: &Inference,
) -> anyhow::Result<()> {
    let device = Default::default();
    let mut recogniser = load_recogniser(run_dir, inference, &device)?;
    recogniser.decoding = Decoding::with_beam_width(decode.beam_width);
    let mut failed = 0;
    for wav in wavs {
        match recogniser.predict(wav, top_k, &device) {
            Ok(prediction) => println!(
                "{}",
                serde_json::to_string(&prediction).expect("predictions serialise")
            ),
            Err(error) => {
                eprintln!("skipped {error}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be read", wavs.len());
    }
    Ok(())
}
