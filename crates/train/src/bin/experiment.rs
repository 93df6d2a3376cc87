//! `experiment`: train the recurrent classifiers described in `experiments/*.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use burn_ndarray::NdArray;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use train::backend::{BackendKind, OnBackend, run_on, wgpu_adapter};
use train::bench::{BenchShape, bench_modules, format_table};
use train::checkpoint::Checkpoints;
use train::config::ExperimentConfig;
use train::config::TaskConfig;
use train::corpus::TaskData;
use train::corpus::{Objective, load_labelled};
use train::ctc::Decoding;
use train::datasets::{CorpusCounts, read_manifest};
use train::inference::Recogniser;
use train::metrics::RunSummary;
use train::output::{write_atomic, write_run_files};
use train::peers::{Coordinator, PeerSetup, Peers};
use train::run_dir::{RunDir, RunMode};
use train::trainer::{RunOptions, TrainError, TrainOutcome, evaluate, sequence_report, train};

#[derive(Parser)]
#[command(
    version,
    about = "Train recurrent sequence classifiers (RNN, LSTM, GRU) on CPU or GPU."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the experiment described by a TOML file and report validation accuracy.
    Train {
        /// The experiment, e.g. experiments/temporal-order-smoke.toml.
        config: PathBuf,
        /// Backend: ndarray (CPU) or wgpu (GPU; lavapipe where there is no GPU).
        /// Overrides the file's `backend`.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Override any field, as key.path=value in TOML syntax (repeatable),
        /// e.g. --set training.epochs=3 --set model.cell.kind=gru.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Folder for runs; this run writes to OUT_DIR/NAME/ (checkpoints in
        /// OUT_DIR/NAME/checkpoints/, one per epoch, and best.mpk). A folder that holds a
        /// run is refused unless --resume or --overwrite says what to do with it, and one
        /// process at a time may use it (it is locked while the run lasts).
        #[arg(long, default_value = "runs")]
        out_dir: PathBuf,
        /// Continue the run in OUT_DIR/NAME/ from its latest checkpoint (same configuration).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Delete the run in OUT_DIR/NAME/ and start a new one there.
        #[arg(long)]
        overwrite: bool,
        /// Data-parallel training: this process is one of N peers, each computing part of
        /// every batch; they sum their gradients (burn's collective all-reduce) and hold the
        /// same weights after every step. Needs --coordinator. `launch` starts all the peers
        /// of one machine.
        #[arg(long, default_value_t = 1, value_name = "N", requires = "coordinator")]
        peers: usize,
        /// This peer's number, 0 to N−1. Peer 0 writes OUT_DIR/NAME/, peer I
        /// OUT_DIR/NAME.peer-I/ (the same weights: every peer can resume on its own).
        #[arg(long, default_value_t = 0, value_name = "I")]
        peer_id: usize,
        /// The run's coordinator (`experiment coordinator`): burn's orchestrator at
        /// HOST:PORT, its liveness service at HOST:PORT+1.
        #[arg(long, value_name = "HOST:PORT")]
        coordinator: Option<std::net::SocketAddr>,
        /// Where the other peers reach this one; its tensor service listens on PORT.
        /// Default: 127.0.0.1, port = the coordinator's + 2 + I (one machine).
        #[arg(long, value_name = "HOST:PORT", requires = "coordinator")]
        peer_address: Option<std::net::SocketAddr>,
    },
    /// Coordinate a data-parallel run of `train --peers N` processes: burn's collective
    /// orchestrator on PORT and the peers' liveness service on PORT+1, on every interface.
    /// Exits when every peer is done, or with an error naming the first peer that went away
    /// (the others are told and stop too).
    Coordinator {
        /// Peers in the run.
        #[arg(long, value_name = "N")]
        peers: usize,
        /// The orchestrator's port (PyTorch's default MASTER_PORT).
        #[arg(long, default_value_t = 29500)]
        port: u16,
    },
    /// Start a data-parallel run on this machine, as torchrun --nproc-per-node does: a
    /// coordinator and N `experiment train` peers with one thread each
    /// (RAYON_NUM_THREADS=1), on 127.0.0.1. The arguments after `--` go to every peer, e.g.
    /// `experiment launch --peers 2 -- experiments/spoken-digits.toml --set training.epochs=1`.
    Launch {
        /// Peers to start.
        #[arg(long, value_name = "N")]
        peers: usize,
        /// The coordinator's port; peer I serves its tensors on PORT + 2 + I.
        #[arg(long, default_value_t = 29500)]
        port: u16,
        /// `experiment train` arguments: the experiment file, then any options.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        train: Vec<String>,
    },
    /// Score a finished run's best checkpoint on splits of its corpus (or of a manifest).
    Eval {
        /// The run folder (holds config.toml and checkpoints/best.mpk).
        run_dir: PathBuf,
        /// Splits to score (default: the run's valid split and its report splits).
        #[arg(long = "split", value_name = "NAME")]
        splits: Vec<String>,
        /// Another manifest instead of the run's own.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Label sequences (CTC) only: 1 reads each frame's most probable class (best
        /// path); N > 1 runs prefix beam search keeping N prefixes per frame.
        #[arg(long, default_value_t = 1, value_name = "N")]
        beam_width: usize,
    },
    /// Print the top-k labels of WAV files with a finished run, one JSON line per file.
    Predict {
        /// The run folder (holds config.toml and checkpoints/best.mpk).
        run_dir: PathBuf,
        /// WAV files.
        #[arg(required = true)]
        wavs: Vec<PathBuf>,
        /// How many labels to print per file.
        #[arg(long, default_value_t = 3)]
        top_k: usize,
        /// Label sequences (CTC) only: 1 reads each frame's most probable class (best
        /// path); N > 1 runs prefix beam search keeping N prefixes per frame, and gives each
        /// label's times from the best alignment of the result.
        #[arg(long, default_value_t = 1, value_name = "N")]
        beam_width: usize,
    },
    /// Measure ‖∂L/∂h_t‖ against t for RNN, LSTM (PyTorch's and chrono initialisation) and
    /// GRU, at initialisation and after training on a generated task; writes
    /// vanishing_gradients.csv and .png.
    Vanishing {
        /// A temporal-order experiment, e.g. experiments/vanishing-gradients.toml.
        config: PathBuf,
        /// Backend: ndarray (CPU) or wgpu (GPU; lavapipe where there is no GPU).
        /// Overrides the file's `backend`.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Override any field (repeatable), as for `train`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Folder for runs; this writes to OUT_DIR/NAME/.
        #[arg(long, default_value = "runs")]
        out_dir: PathBuf,
    },
    /// List what an audio experiment's corpus holds: utterances per split, per label and
    /// per speaker, and the class order the run will use. Reads no audio but Speech
    /// Commands' noise recordings, which its silence clips are cut from.
    CorpusInfo {
        /// The experiment, e.g. experiments/speech-commands-12.toml.
        config: PathBuf,
        /// Override any field (repeatable), as for `train`,
        /// e.g. --set task.corpus.root=data/speech_commands_v0.02.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// List the backends and the GPU adapter wgpu would use.
    Backends,
    /// Time training steps (forward + backward) of our LSTM and GRU and burn's built-in
    /// ones, on each backend, at the same shapes; prints steps/s and the ratios.
    Bench {
        /// Backends to compare (repeatable; default: ndarray, and wgpu when an adapter exists).
        #[arg(long = "backend", value_enum)]
        backends: Vec<BackendKind>,
        /// Sequences per batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Steps per sequence.
        #[arg(long, default_value_t = 100)]
        time: usize,
        /// Features per step (40: MFCC-sized).
        #[arg(long, default_value_t = 40)]
        input: usize,
        /// Hidden units.
        #[arg(long, default_value_t = 128)]
        hidden: usize,
        /// Timed steps per module (the median is reported), after one warm-up step.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
}

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
        Command::Bench {
            backends,
            batch,
            time,
            input,
            hidden,
            repeats,
        } => {
            let backends = if backends.is_empty() {
                let mut all = vec![BackendKind::Ndarray];
                all.extend(wgpu_adapter().map(|_| BackendKind::Wgpu));
                all
            } else {
                backends
            };
            let shape = BenchShape {
                batch,
                time,
                input,
                hidden,
            };
            println!(
                "forward+backward steps/s, batch {batch}, {time} steps, {input} inputs, {hidden} hidden, median of {repeats}"
            );
            let mut results = Vec::new();
            for backend in backends {
                let rows = run_on(backend, BenchJob { shape, repeats })?;
                results.push((backend.to_string(), rows));
            }
            print!("{}", format_table(&results));
            Ok(())
        }
        Command::Eval {
            run_dir,
            splits,
            manifest,
            beam_width,
        } => {
            let device = Default::default();
            let recogniser = Recogniser::<NdArray>::load(&run_dir, &device)?;
            let task = &recogniser.task;
            let utterances = match manifest {
                Some(manifest) => read_manifest(&manifest)?,
                None => task.utterances()?,
            };
            let splits = if splits.is_empty() {
                std::iter::once("valid".to_string())
                    .chain(task.report_splits.iter().cloned())
                    .collect()
            } else {
                splits
            };
            for split in splits {
                let chosen: Vec<_> = utterances.iter().filter(|u| u.split == split).collect();
                let loaded = load_labelled(
                    &chosen,
                    &recogniser.labels,
                    recogniser.objective,
                    &task.pipeline(),
                    None,
                    false,
                )?;
                let (loss, score) = evaluate(
                    &recogniser.model,
                    &loaded.examples,
                    64,
                    task.pooling,
                    &device,
                );
                let error_rate = score
                    .label_error_rate()
                    .map(|rate| format!(", label error rate {:.1}%", 100.0 * rate))
                    .unwrap_or_default();
                println!(
                    "{split}: accuracy {:.1}% ({} right){error_rate}, loss {loss:.4} ({} utterances, {} skipped)",
                    100.0 * score.accuracy(),
                    score.correct,
                    loaded.examples.len(),
                    loaded.skipped.len()
                );
                if recogniser.objective == Objective::Sequences {
                    let decoding = Decoding::with_beam_width(beam_width);
                    let examples = &loaded.examples;
                    let report = sequence_report(
                        &recogniser.model,
                        &split,
                        examples,
                        (64, decoding),
                        &device,
                    );
                    match decoding {
                        Decoding::BestPath => println!("{report}"),
                        Decoding::PrefixBeam { width } => {
                            println!("prefix beam search, width {width}:\n{report}")
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Predict {
            run_dir,
            wavs,
            top_k,
            beam_width,
        } => {
            let device = Default::default();
            let mut recogniser = Recogniser::<NdArray>::load(&run_dir, &device)?;
            recogniser.decoding = Decoding::with_beam_width(beam_width);
            let mut failed = 0;
            for wav in &wavs {
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
        Command::Vanishing {
            config,
            backend,
            overrides,
            out_dir,
        } => vanishing(&config, backend, &overrides, &out_dir),
        Command::CorpusInfo { config, overrides } => corpus_info(&config, &overrides),
        Command::Coordinator { peers, port } => {
            let coordinator = Coordinator::start(port, peers)?;
            println!(
                "coordinating {peers} peers: orchestrator on port {port}, liveness on port {}",
                port.wrapping_add(1)
            );
            coordinator.wait()?;
            println!("all {peers} peers are done");
            Ok(())
        }
        Command::Launch { peers, port, train } => launch(peers, port, &train),
        Command::Backends => {
            println!("ndarray: CPU");
            match wgpu_adapter() {
                Some(name) => println!("wgpu: {name}"),
                None => println!("wgpu: no adapter (install mesa-vulkan-drivers for lavapipe)"),
            }
            Ok(())
        }
        Command::Train {
            config,
            backend,
            overrides,
            out_dir,
            resume,
            overwrite,
            peers,
            peer_id,
            coordinator,
            peer_address,
        } => {
            let mut config = load_config(&config, backend, &overrides)?;
            let mode = match (resume, overwrite) {
                (true, _) => RunMode::Resume,
                (_, true) => RunMode::Overwrite,
                _ => RunMode::New,
            };
            let peers = coordinator.map(|coordinator| Peers {
                setup: PeerSetup {
                    peers,
                    id: peer_id,
                    coordinator,
                    address: peer_address.unwrap_or_else(|| {
                        let port = coordinator.port().wrapping_add(2 + peer_id as u16);
                        std::net::SocketAddr::from(([127, 0, 0, 1], port))
                    }),
                },
                // The training thread may be waiting in an all-reduce that can no longer
                // complete: stop the process (checkpoints are written whole or not at all).
                on_lost: std::sync::Arc::new(|error: &train::peers::PeerError| {
                    eprintln!("error: {error}");
                    std::process::exit(3);
                }),
            });
            let folder = match peer_id {
                0 => config.name.clone(),
                id => format!("{}.peer-{id}", config.name),
            };
            // Held until the command ends: no other process can write into this run.
            let run = RunDir::open(&out_dir.join(folder), mode)?;
            let run_dir = run.path();
            println!(
                "experiment {} on {} ({} cell, hidden {})",
                config.name,
                config.backend,
                config.model.cell.name(),
                config.model.hidden_size
            );
            let data = TaskData::prepare(&config)?;
            // Saved with the run, so that `predict` and `eval` use the same class order.
            if let (Some(task), TaskData::Corpus(corpus)) = (config.task.audio_mut(), &data) {
                task.labels = Some(corpus.labels_setting());
            }
            let total_steps = config.training.epochs * data.steps_per_epoch(&config);
            config
                .training
                .check_warmup(total_steps)
                .context("invalid configuration")?;
            // The first file of a run: from here on the folder holds one.
            write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())
                .with_context(|| format!("cannot write {}", run_dir.display()))?;
            if let TaskData::Corpus(corpus) = &data {
                for (path, why) in &corpus.skipped {
                    eprintln!("skipped {}: {why}", path.display());
                }
                println!(
                    "corpus: {} train, {} valid utterances, {} features per frame{}",
                    corpus.train.len(),
                    corpus.valid.len(),
                    corpus.train.dim(),
                    if corpus.skipped.is_empty() {
                        String::new()
                    } else {
                        format!("; {} files skipped", corpus.skipped.len())
                    }
                );
            }
            let summary = run_on(
                config.backend,
                TrainJob {
                    config: &config,
                    data: &data,
                    run: RunOptions {
                        checkpoints: Some(Checkpoints::new(run_dir.join("checkpoints"))),
                        resume,
                        peers,
                    },
                },
            )??;
            write_run_files(run_dir, &summary, &data.class_names())?;
            let RunSummary {
                history,
                best_epoch,
                reports,
                confusions: summary_confusions,
            } = summary;
            let last = history.last().expect("at least one epoch");
            let target = config.training.stop_at_accuracy;
            if let Some(target) = target.filter(|&target| last.valid_accuracy >= target) {
                let sequences =
                    last.epoch * data.steps_per_epoch(&config) * config.training.batch_size;
                println!(
                    "solved (validation accuracy ≥ {:.1}%) after epoch {}: {sequences} training sequences",
                    100.0 * target,
                    last.epoch
                );
            } else if history.len() < config.training.epochs {
                println!(
                    "stopped early after epoch {}: no better validation accuracy for {} epochs",
                    last.epoch,
                    config.training.early_stopping_patience.unwrap_or(0)
                );
            }
            let sequences = matches!(&data, TaskData::Corpus(corpus) if corpus.sequences);
            let chance = match data.class_names().len() {
                _ if sequences => String::new(),
                0 => String::new(),
                classes => format!(" (chance {:.1}%)", 100.0 / classes as f64),
            };
            println!(
                "final validation accuracy {:.1}%{chance}; metrics in {}",
                100.0 * last.valid_accuracy,
                run_dir.display()
            );
            if let Some(best) = history.iter().find(|m| m.epoch == best_epoch)
                && !reports.is_empty()
            {
                println!(
                    "scored with epoch {best_epoch}'s model (best.mpk, the best validation accuracy: {:.1}%):",
                    100.0 * best.valid_accuracy
                );
            }
            for report in &reports {
                println!("{report}");
            }
            let names = data.class_names();
            for (split, counts) in &summary_confusions {
                println!("{split} per class: {}", per_class(counts, &names));
            }
            Ok(())
        }
    }
}

struct BenchJob {
    shape: BenchShape,
    repeats: usize,
}

impl OnBackend for BenchJob {
    type Output = Vec<train::bench::BenchRow>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        bench_modules::<B>(self.shape, self.repeats, &device)
    }
}

struct TrainJob<'a> {
    config: &'a ExperimentConfig,
    data: &'a TaskData,
    run: RunOptions,
}

impl OnBackend for TrainJob<'_> {
    type Output = Result<RunSummary, TrainError>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let steps = self.data.steps_per_epoch(self.config);
        let bar = ProgressBar::new((self.config.training.epochs * steps) as u64).with_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps, {elapsed} elapsed, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        let result = train::<B>(
            self.config,
            self.data,
            &device,
            &self.run,
            |_, _| bar.inc(1),
            |m| {
                bar.suspend(|| println!(
                    "epoch {:>3}  train loss {:.4} acc {:.1}%  valid loss {:.4} acc {:.1}%{}  ({:.1} s)",
                    m.epoch,
                    m.train_loss,
                    100.0 * m.train_accuracy,
                    m.valid_loss,
                    100.0 * m.valid_accuracy,
                    m.valid_label_error_rate
                        .map(|rate| format!(" label error rate {:.1}%", 100.0 * rate))
                        .unwrap_or_default(),
                    m.seconds
                ))
            },
        );
        bar.finish_and_clear();
        result.map(TrainOutcome::into_summary)
    }
}

/// Runs a coordinator and `peers` local `experiment train` peers, one thread each, until all
/// have ended; fails naming the first peer that failed.
fn launch(peers: usize, port: u16, train_args: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(peers >= 1, "--peers must be at least 1");
    let coordinator = Coordinator::start(port, peers)?;
    let exe = std::env::current_exe().context("cannot find this program to start the peers")?;
    let mut children = Vec::new();
    for id in 0..peers {
        let child = std::process::Command::new(&exe)
            .arg("train")
            .args(train_args)
            .args(["--peers", &peers.to_string(), "--peer-id", &id.to_string()])
            .args(["--coordinator", &format!("127.0.0.1:{port}")])
            .env("RAYON_NUM_THREADS", "1")
            .spawn()
            .with_context(|| format!("cannot start peer {id}"))?;
        children.push(child);
    }
    let mut failed = None;
    for (id, mut child) in children.into_iter().enumerate() {
        let status = child
            .wait()
            .with_context(|| format!("waiting for peer {id}"))?;
        if !status.success() && failed.is_none() {
            failed = Some((id, status));
        }
    }
    if let Some((id, status)) = failed {
        anyhow::bail!("peer {id} failed ({status}); the run stopped");
    }
    coordinator.wait()?;
    Ok(())
}

/// The experiment file with `--set` overrides applied, and `--backend` over its `backend`.
fn load_config(
    path: &std::path::Path,
    backend: Option<BackendKind>,
    overrides: &[String],
) -> anyhow::Result<ExperimentConfig> {
    let mut config = ExperimentConfig::load(path, overrides)?;
    config.backend = backend.unwrap_or(config.backend);
    Ok(config)
}

/// Each class's accuracy from a confusion matrix (row = truth): `yes 97.1% (99/102), …`.
fn per_class(counts: &[Vec<usize>], names: &[String]) -> String {
    counts
        .iter()
        .zip(names)
        .enumerate()
        .map(|(class, (row, name))| {
            let total: usize = row.iter().sum();
            let right = row.get(class).copied().unwrap_or(0);
            format!(
                "{name} {:.1}% ({right}/{total})",
                100.0 * right as f64 / total.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `corpus-info` subcommand.
fn corpus_info(config: &std::path::Path, overrides: &[String]) -> anyhow::Result<()> {
    let config = load_config(config, None, overrides)?;
    let Some((task, objective)) = config.task.audio() else {
        anyhow::bail!("corpus-info needs an audio_classification or digit_strings task");
    };
    let utterances = task.utterances()?;
    let counts = CorpusCounts::new(&utterances);
    let labels = task.resolve_labels(&utterances, objective);
    println!("{}: {} utterances", config.name, utterances.len());
    println!("classes, in output order: {}", labels.join(", "));
    let splits: Vec<&String> = counts.splits.keys().collect();
    let width = labels
        .iter()
        .chain(counts.labels.keys().map(|(_, l)| l))
        .map(|l| l.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut header = format!("{:width$}", "label");
    for split in &splits {
        header.push_str(&format!(" {split:>8}"));
    }
    println!("\n{header}");
    let mut all_labels: Vec<&String> = labels.iter().collect();
    for (_, label) in counts.labels.keys() {
        if !all_labels.contains(&label) {
            all_labels.push(label);
        }
    }
    for label in all_labels {
        let mut row = format!("{label:width$}");
        for split in &splits {
            let n = counts
                .labels
                .get(&((*split).clone(), label.clone()))
                .copied()
                .unwrap_or(0);
            row.push_str(&format!(" {n:>8}"));
        }
        if !labels.contains(label) {
            row.push_str("  (not a class: skipped)");
        }
        println!("{row}");
    }
    let mut total = format!("{:width$}", "all");
    for split in &splits {
        total.push_str(&format!(" {:>8}", counts.splits[*split]));
    }
    println!("{total}\n");
    for split in &splits {
        let speakers: Vec<(&String, usize)> = counts
            .speakers
            .iter()
            .filter(|((s, _), _)| s == *split)
            .map(|((_, speaker), &n)| (speaker, n))
            .collect();
        let mut sizes: Vec<usize> = speakers.iter().map(|(_, n)| *n).collect();
        sizes.sort_unstable();
        println!(
            "{split}: {} speakers, {}–{} utterances each (median {})",
            speakers.len(),
            sizes.first().copied().unwrap_or(0),
            sizes.last().copied().unwrap_or(0),
            sizes.get(sizes.len() / 2).copied().unwrap_or(0)
        );
        if speakers.len() <= train::metrics::SplitReport::MAX_SPEAKERS_SHOWN {
            for (speaker, n) in speakers {
                println!("  {speaker}: {n}");
            }
        }
    }
    Ok(())
}

/// The `vanishing` subcommand: every cell, before and after training.
fn vanishing(
    config: &std::path::Path,
    backend: Option<BackendKind>,
    overrides: &[String],
    out_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use train::vanishing::{Measurement, VanishingJob, compared_cells, probe_batch, write_report};

    let base = load_config(config, backend, overrides)?;
    let TaskConfig::TemporalOrder(task) = &base.task else {
        anyhow::bail!("vanishing needs a temporal_order task");
    };
    let probe = probe_batch(task, base.seed + 2, 64);
    let mut results = Vec::new();
    println!("vanishing gradients on {}", base.backend);
    for compared in compared_cells(task.max_length) {
        let mut config = base.clone();
        config.model.cell = compared.cell.clone();
        let job = VanishingJob {
            config: &config,
            probe: &probe,
        };
        let measurement: Measurement = run_on(config.backend, job)??;
        let (before, after) = (&measurement.before, &measurement.after);
        println!(
            "{:5} ‖∂L/∂h_t‖ at t=0 / t=T−1: init {:.2e} / {:.2e}, trained {:.2e} / {:.2e} (validation accuracy {:.1}%)",
            compared.name,
            before[0],
            before[before.len() - 1],
            after[0],
            after[after.len() - 1],
            100.0 * measurement.valid_accuracy
        );
        results.push((compared, measurement));
    }
    let run_dir = out_dir.join(&base.name);
    write_report(&run_dir, &results)?;
    println!(
        "wrote {0}/vanishing_gradients.csv and .png (log10 ‖∂L/∂h_t‖ against t; light: at initialisation, dark: trained; red RNN, blue LSTM, purple LSTM with chrono initialisation, green GRU)",
        run_dir.display()
    );
    Ok(())
}
