//! `experiment listen`: audio from a pipe (or the microphone) through a live recogniser,
//! one JSON line per event on standard output.

use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn_ndarray::NdArray;
use clap::Args;
use features::{PcmFormat, PcmReader};
use train::inference::Recogniser;
use train::listen::{Event, KeywordOptions, ListenOptions, Listener};

/// Listens to standard input, `--input` or the microphone, printing events until the
/// stream ends.
pub fn listen(args: &Listen) -> anyhow::Result<()> {
    let device = Default::default();
    let run = crate::load_recogniser(&args.run_dir, &args.inference, &device)?;
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
        keywords: args.keywords.options(),
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

/// `experiment listen`'s options.
#[derive(Args)]
pub struct Listen {
    /// The run folder of a causal label-sequence or keyword run (holds config.toml and
    /// checkpoints/best.mpk).
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub inference: crate::args::Inference,
    /// How the stream's samples are written.
    #[arg(long, value_enum, default_value = "s16le")]
    pub format: Format,
    /// The raw stream's sample rate in Hz (default: the run's); other rates are resampled
    /// as the audio arrives. A WAV stream's header gives its own.
    #[arg(long, value_name = "HZ")]
    pub rate: Option<u32>,
    /// Seconds of non-speech after a label that end an utterance: blank frames, or quiet
    /// frames (log energy within 10 dB of the noise floor, or 26 dB under the loudest frame
    /// of the last 3 s) once the last label is half as old. Its final result is printed and
    /// the model starts afresh.
    #[arg(long, default_value_t = 0.6, value_name = "SECONDS")]
    pub endpoint: f64,
    #[command(flatten)]
    pub keywords: Keywords,
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

/// How keyword runs decide and start afresh (ignored by label-sequence runs).
#[derive(Args)]
pub struct Keywords {
    /// Seconds of steps whose softmax is smoothed (the run's pooling: mean or max) into
    /// each keyword decision.
    #[arg(long, default_value_t = KeywordOptions::default().window, value_name = "SECONDS")]
    pub window: f64,
    /// The score (the softmax of the pooled logits) at which a keyword is reported.
    #[arg(long, default_value_t = KeywordOptions::default().threshold, value_name = "P")]
    pub threshold: f32,
    /// Copies of the model's state, staggered so that each word falls whole in one that
    /// started shortly before it.
    #[arg(long, default_value_t = KeywordOptions::default().lanes, value_name = "N")]
    pub lanes: usize,
    /// Seconds after which each copy starts afresh if no pause came first (the model was
    /// trained on short clips).
    #[arg(long, default_value_t = KeywordOptions::default().restart, value_name = "SECONDS")]
    pub restart: f64,
    /// Seconds of quiet after which the model starts afresh (0: never).
    #[arg(long, default_value_t = KeywordOptions::default().pause, value_name = "SECONDS")]
    pub pause: f64,
}

impl Keywords {
    pub fn options(&self) -> KeywordOptions {
        KeywordOptions {
            window: self.window,
            threshold: self.threshold,
            lanes: self.lanes,
            restart: self.restart,
            pause: self.pause,
        }
    }
}
