//! `experiment listen`: audio from a pipe (or the microphone) through a live recogniser,
//! one JSON line per event on standard output.

use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn_ndarray::NdArray;
use clap::Args;
use features::{PcmFormat, PcmReader};
use train::data::sources::read_manifest;
use train::inference::Recogniser;
use train::listen::latency::{LatencyReport, join_digits, measure, quantile};
use train::listen::{Event, ListenOptions, Listener};

/// Listens to standard input, `--input` or the microphone, printing events until the
/// stream ends.
pub fn listen(args: &Listen) -> anyhow::Result<()> {
    let device = Default::default();
    let run = Recogniser::<NdArray>::load(&args.run_dir, &device)?;
    if args.mic {
        return listen_to_microphone(run, args);
    }
    let run_rate = run.task.sample_rate;
    let reader: Box<dyn Read> = match &args.input {
        Some(path) => Box::new(open(path)?),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut pcm = PcmReader::new(
        reader,
        pcm_format(args.format),
        args.rate.unwrap_or(run_rate),
    )
    .context("reading the audio stream")?;
    let mut listener = Listener::new(run, options(args, pcm.sample_rate()), device)?;
    let mut out = Events::new();
    while let Some(samples) = pcm.next_chunk().context("reading the audio stream")? {
        if !out.print(listener.push(&samples)?)? {
            return Ok(());
        }
    }
    out.print(listener.finish()?)?;
    Ok(())
}

fn options(args: &Listen, sample_rate: u32) -> ListenOptions {
    let mut options = ListenOptions {
        sample_rate: Some(sample_rate),
        ..ListenOptions::default()
    };
    options.endpoint.trailing_silence = args.endpoint;
    options
}

/// Listens to the default input device until interrupted.
#[cfg(feature = "mic")]
fn listen_to_microphone(run: Recogniser<NdArray>, args: &Listen) -> anyhow::Result<()> {
    let microphone = crate::mic::open()?;
    let options = options(args, microphone.sample_rate);
    let mut listener = Listener::new(run, options, Default::default())?;
    let mut out = Events::new();
    eprintln!("listening at {} Hz; Ctrl-C ends", microphone.sample_rate);
    while let Ok(samples) = microphone.blocks.recv() {
        if !out.print(listener.push(&samples)?)? {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(not(feature = "mic"))]
fn listen_to_microphone(_: Recogniser<NdArray>, _: &Listen) -> anyhow::Result<()> {
    anyhow::bail!(
        "this build has no microphone support: build with `cargo build --release -p train --features mic` (ALSA's headers, libasound2-dev, on Linux), or pipe arecord into listen"
    )
}

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))
}

/// Standard output, flushed after every batch of events; a reader that went away (`| head`)
/// ends the stream quietly.
struct Events {
    out: BufWriter<std::io::StdoutLock<'static>>,
}

impl Events {
    fn new() -> Self {
        Events {
            out: BufWriter::new(std::io::stdout().lock()),
        }
    }

    /// Prints `events`; false once nobody reads them.
    fn print(&mut self, events: Vec<Event>) -> anyhow::Result<bool> {
        if events.is_empty() {
            return Ok(true);
        }
        let mut write = || -> std::io::Result<()> {
            for event in &events {
                let line = serde_json::to_string(event).expect("events serialise");
                writeln!(self.out, "{line}")?;
            }
            self.out.flush()
        };
        match write() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e).context("writing events"),
        }
    }
}

fn pcm_format(format: Format) -> PcmFormat {
    match format {
        Format::S16le => PcmFormat::S16le,
        Format::F32le => PcmFormat::F32le,
        Format::Wav => PcmFormat::Wav,
    }
}

/// Streams joined digit strings through the run on one thread and prints the delays and
/// compute times.
pub fn listen_bench(args: &ListenBench) -> anyhow::Result<()> {
    let device = Default::default();
    let run = Recogniser::<NdArray>::load(&args.run_dir, &device)?;
    let rate = run.task.sample_rate;
    let utterances = read_manifest(&args.digits)?;
    let chosen: Vec<_> = utterances
        .into_iter()
        .filter(|u| u.split == args.split && u.label.len() == 1)
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "{} has no single-digit utterance in split {}",
        args.digits.display(),
        args.split
    );
    let strings = join_digits(&chosen, rate, args.strings, args.seed)?;
    let mut options = ListenOptions::default();
    options.endpoint.trailing_silence = args.endpoint;
    let mut listener = Listener::new(run, options, device)?;
    let chunk = (args.chunk_ms / 1000.0 * rate as f64).round().max(1.0) as usize;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let report = pool.install(|| measure(&mut listener, &strings, chunk))?;
    print!("{}", latency_table(&report, args));
    println!(
        "{}",
        serde_json::to_string(&latency_summary(&report, args))?
    );
    Ok(())
}

fn latency_summary(report: &LatencyReport, args: &ListenBench) -> serde_json::Value {
    let ms = |seconds: f64| (seconds * 1e4).round() / 10.0;
    serde_json::json!({
        "run": args.run_dir.display().to_string(),
        "strings": report.strings,
        "correct": report.correct,
        "digits_timed": report.emission_delays.len(),
        "finals_timed": report.final_delays.len(),
        "chunk_ms": args.chunk_ms,
        "endpoint_s": args.endpoint,
        "emission_delay_ms": {"median": ms(quantile(&report.emission_delays, 0.5)), "p95": ms(quantile(&report.emission_delays, 0.95))},
        "final_delay_ms": {"median": ms(quantile(&report.final_delays, 0.5)), "p95": ms(quantile(&report.final_delays, 0.95))},
        "chunk_compute_ms": {"median": ms(quantile(&report.chunk_seconds, 0.5)), "p99": ms(quantile(&report.chunk_seconds, 0.99))},
        "real_time_factor": (report.real_time_factor() * 1e4).round() / 1e4,
        "cpu": isa::cpu_model(),
        "cpu_flags": isa::cpu_flags(),
    })
}

fn latency_table(report: &LatencyReport, args: &ListenBench) -> String {
    let ms = |values: &[f64], q: f64| format!("{:7.1}", 1000.0 * quantile(values, q));
    let (emitted, finals, chunks) = (
        &report.emission_delays,
        &report.final_delays,
        &report.chunk_seconds,
    );
    format!(
        "CPU: {} ({}), one thread\n\
         {} strings joined from single digits of split {:?} of {}, {} read right ({} digits read right timed); chunks of {} ms, endpoint {} s\n\
         {:<44} {:>7} {:>7}\n\
         {:<44} {} {}\n\
         {:<44} {} {}\n\
         {:<44} {} {}\n\
         real-time factor: {:.4}\n",
        isa::cpu_model(),
        isa::cpu_flags(),
        report.strings,
        args.split,
        args.digits.display(),
        report.correct,
        report.emission_delays.len(),
        args.chunk_ms,
        args.endpoint,
        "",
        "median",
        "p95/p99",
        "digit emission delay, ms (p95)",
        ms(emitted, 0.5),
        ms(emitted, 0.95),
        "final result after the last digit, ms (p95)",
        ms(finals, 0.5),
        ms(finals, 0.95),
        "compute per chunk, ms (p99)",
        ms(chunks, 0.5),
        ms(chunks, 0.99),
        report.real_time_factor(),
    )
}

/// `experiment listen`'s options.
#[derive(Args)]
pub struct Listen {
    /// The run folder of a causal label-sequence run (holds config.toml and
    /// checkpoints/best.mpk).
    pub run_dir: PathBuf,
    /// How the stream's samples are written.
    #[arg(long, value_enum, default_value = "s16le")]
    pub format: Format,
    /// The raw stream's sample rate in Hz (default: the run's); other rates are resampled
    /// as the audio arrives. A WAV stream's header gives its own.
    #[arg(long, value_name = "HZ")]
    pub rate: Option<u32>,
    /// Seconds of non-speech (blank frames) after a label that end an utterance: its final
    /// result is printed and the model starts afresh.
    #[arg(long, default_value_t = 0.6, value_name = "SECONDS")]
    pub endpoint: f64,
    /// Read the stream from this file instead of standard input.
    #[arg(long, value_name = "FILE", conflicts_with = "mic")]
    pub input: Option<PathBuf>,
    /// Capture from the default input device (at its own rate, resampled as it arrives)
    /// until interrupted. Needs a build with `--features mic`.
    #[arg(long)]
    pub mic: bool,
}

/// The sample formats of `listen --format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// Signed 16-bit little-endian, mono (arecord -f S16_LE -t raw; sox -e signed -b 16 -t raw).
    S16le,
    /// 32-bit float little-endian, mono, ±1 scale.
    F32le,
    /// A WAV stream: its header first (its own rate and channels, averaged to mono).
    Wav,
}

/// `experiment listen-bench`'s options.
#[derive(Args)]
pub struct ListenBench {
    /// The run folder of a causal label-sequence run.
    pub run_dir: PathBuf,
    /// Manifest of single-digit recordings (path,label,speaker,split), e.g. the main job's.
    #[arg(long, default_value = "datasets/synthetic/manifest.csv")]
    pub digits: PathBuf,
    /// The manifest's split to join strings from (voices the run never trained on).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// How many strings.
    #[arg(long, default_value_t = 60)]
    pub strings: usize,
    /// Audio per pushed chunk, in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub chunk_ms: f64,
    /// Seconds of non-speech after a label that end an utterance.
    #[arg(long, default_value_t = 0.6)]
    pub endpoint: f64,
    /// Seed of the strings' digits and pauses.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
