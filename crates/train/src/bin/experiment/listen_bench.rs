//! `experiment listen-bench`: a causal run streamed on one thread through its listener,
//! with what it heard, how soon, and the compute per chunk.

use burn_ndarray::NdArray;
use clap::Args;
use std::path::PathBuf;
use train::data::audio::LabelKind;
use train::data::sources::read_manifest;
use train::inference::Recogniser;
use train::listen::latency::{self, LatencyReport, join_digits, quantile};
use train::listen::spotting::{self, SpottingReport, join_clips};
use train::listen::{ListenOptions, Listener};

use crate::listen::Keywords;

/// Streams a run's test material on one thread and prints how well and how soon it
/// answered, and the compute it took.
pub fn listen_bench(args: &ListenBench) -> anyhow::Result<()> {
    let device = Default::default();
    let run = crate::load_recogniser(&args.run_dir, &args.inference, &device)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    match run.objective {
        LabelKind::Sequences => digit_bench(run, args, &pool),
        LabelKind::Classes => keyword_bench(run, args, &pool),
    }
}

/// Digit strings joined from single digits: each digit's emission delay and the final
/// result's.
fn digit_bench(
    run: Recogniser<NdArray>,
    args: &ListenBench,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<()> {
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
    let mut listener = Listener::new(run, options, Default::default())?;
    let report = pool.install(|| latency::measure(&mut listener, &strings, args.chunk(rate)))?;
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
        "precision": args.inference.precision.to_string(),
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

/// A split of a keyword run's corpus joined into one stream: detections, false alarms,
/// delays.
fn keyword_bench(
    run: Recogniser<NdArray>,
    args: &ListenBench,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<()> {
    let rate = run.task.sample_rate;
    let chosen: Vec<_> = run
        .task
        .utterances()?
        .into_iter()
        .filter(|u| u.split == args.split)
        .collect();
    anyhow::ensure!(
        !chosen.is_empty(),
        "the run's corpus has no utterance in split {}",
        args.split
    );
    let joined = join_clips(&chosen, rate, args.seed)?;
    let mut options = ListenOptions {
        keywords: args.keywords.options(),
        ..ListenOptions::default()
    };
    options.endpoint.trailing_silence = args.endpoint;
    let mut listener = Listener::new(run, options, Default::default())?;
    let report = pool.install(|| spotting::measure(&mut listener, &joined, args.chunk(rate)))?;
    print!("{}", spotting_table(&report, args));
    println!(
        "{}",
        serde_json::to_string(&spotting_summary(&report, args))?
    );
    Ok(())
}

fn ms(seconds: f64) -> f64 {
    (seconds * 1e4).round() / 10.0
}

fn spotting_summary(report: &SpottingReport, args: &ListenBench) -> serde_json::Value {
    serde_json::json!({
        "run": args.run_dir.display().to_string(),
        "precision": args.inference.precision.to_string(),
        "split": args.split,
        "keywords": report.keywords,
        "hits": report.hits,
        "fillers": report.fillers,
        "false_alarms": report.false_alarms,
        "detection_rate": (report.detection_rate() * 1e4).round() / 1e4,
        "false_alarms_per_hour": (report.false_alarms_per_hour() * 10.0).round() / 10.0,
        "audio_s": report.audio_seconds.round(),
        "window_s": args.keywords.window,
        "threshold": args.keywords.threshold,
        "chunk_ms": args.chunk_ms,
        "delay_ms": {"median": ms(quantile(&report.delays, 0.5)), "p95": ms(quantile(&report.delays, 0.95))},
        "chunk_compute_ms": {"median": ms(quantile(&report.chunk_seconds, 0.5)), "p99": ms(quantile(&report.chunk_seconds, 0.99))},
        "real_time_factor": (report.real_time_factor() * 1e4).round() / 1e4,
        "cpu": isa::cpu_model(),
        "cpu_flags": isa::cpu_flags(),
    })
}

fn spotting_table(report: &SpottingReport, args: &ListenBench) -> String {
    let q = |values: &[f64], q: f64| format!("{:7.1}", 1000.0 * quantile(values, q));
    format!(
        "CPU: {} ({}), one thread\n\
         {} keyword clips and {} others (split {:?} of the run's corpus) joined with 0.5–1.5 s pauses: {:.1} min; chunks of {} ms; window {} s, threshold {}\n\
         keywords detected: {} of {} ({:.1}%)\n\
         false alarms: {} ({:.1} per hour)\n\
         {:<44} {:>7} {:>7}\n\
         {:<44} {} {}\n\
         {:<44} {} {}\n\
         real-time factor: {:.4}\n",
        isa::cpu_model(),
        isa::cpu_flags(),
        report.keywords,
        report.fillers,
        args.split,
        report.audio_seconds / 60.0,
        args.chunk_ms,
        args.keywords.window,
        args.keywords.threshold,
        report.hits,
        report.keywords,
        100.0 * report.detection_rate(),
        report.false_alarms,
        report.false_alarms_per_hour(),
        "",
        "median",
        "p95/p99",
        "detection after the keyword's speech, ms (p95)",
        q(&report.delays, 0.5),
        q(&report.delays, 0.95),
        "compute per chunk, ms (p99)",
        q(&report.chunk_seconds, 0.5),
        q(&report.chunk_seconds, 0.99),
        report.real_time_factor(),
    )
}

/// `experiment listen-bench`'s options.
#[derive(Args)]
pub struct ListenBench {
    /// The run folder of a causal label-sequence or keyword run.
    pub run_dir: PathBuf,
    /// Label-sequence runs: a manifest of single-digit recordings (path,label,speaker,split),
    /// e.g. the main job's. Keyword runs read their own corpus.
    #[arg(long, default_value = "datasets/synthetic/manifest.csv")]
    pub digits: PathBuf,
    /// The split to join strings or clips from (voices the run never trained on; choose
    /// settings on valid).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// How many strings (label-sequence runs).
    #[arg(long, default_value_t = 60)]
    pub strings: usize,
    /// Audio per pushed chunk, in milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub chunk_ms: f64,
    /// Seconds of non-speech after a label that end an utterance.
    #[arg(long, default_value_t = 0.6)]
    pub endpoint: f64,
    /// Seed of the strings' digits, the clips' order, and the pauses.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[command(flatten)]
    pub keywords: Keywords,
    #[command(flatten)]
    pub inference: crate::args::Inference,
}

impl ListenBench {
    /// Samples per pushed chunk at `rate`.
    fn chunk(&self, rate: u32) -> usize {
        (self.chunk_ms / 1000.0 * rate as f64).round().max(1.0) as usize
    }
}
