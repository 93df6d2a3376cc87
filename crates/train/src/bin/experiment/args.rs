//! The command line of `experiment`: every subcommand and its options.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use train::backend::BackendKind;
use train::bench::BenchShape;
use train::run::RunMode;

use crate::listen::Listen;
use crate::listen_bench::ListenBench;
use crate::parallel::Parallel;

#[derive(Parser)]
#[command(
    version,
    about = "Train recurrent sequence classifiers (RNN, LSTM, GRU) on CPU or GPU."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// An experiment file and the overrides applied to it.
#[derive(Args)]
pub struct Experiment {
    /// The experiment, e.g. experiments/temporal-order-smoke.toml.
    pub config: PathBuf,
    /// Override any field, as key.path=value in TOML syntax (repeatable),
    /// e.g. --set training.epochs=3 --set model.cell.kind=gru.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// The backend a command trains on.
#[derive(Args)]
pub struct Backend {
    /// Backend: ndarray (CPU) or wgpu (GPU; lavapipe where there is no GPU).
    /// Overrides the file's `backend`.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
}

/// How a label-sequence (CTC) run's output is read.
#[derive(Args)]
pub struct Decode {
    /// Label sequences (CTC) only: 1 reads each frame's most probable class (best path);
    /// N > 1 runs prefix beam search keeping N prefixes per frame (and gives each label's
    /// times from the best alignment of the result).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub beam_width: usize,
}

/// The number format inference runs the recurrent layers in.
#[derive(Args)]
pub struct Inference {
    /// f32 (the trained weights), bf16 (weights rounded to bfloat16, half the memory; on CPUs
    /// with AVX-512 BF16 the inputs and states too, multiplied by vdpbf16ps) or int8
    /// (weights quantised per unit, a quarter of the memory; inputs and states quantised per
    /// step, as PyTorch's dynamic quantisation). The output layer stays f32.
    #[arg(long, default_value = "f32", value_name = "f32|bf16|int8")]
    pub precision: models::Precision,
}

/// Where a run is written, and what to do with a run already there.
#[derive(Args)]
pub struct Folder {
    /// Folder for runs; this run writes to OUT_DIR/NAME/ (checkpoints in
    /// OUT_DIR/NAME/checkpoints/, one per epoch, and best.mpk). A folder that holds a
    /// run is refused unless --resume or --overwrite says what to do with it, and one
    /// process at a time may use it (it is locked while the run lasts).
    #[arg(long, default_value = "runs")]
    pub out_dir: PathBuf,
    /// Continue the run in OUT_DIR/NAME/ from its latest checkpoint (same configuration).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Delete the run in OUT_DIR/NAME/ and start a new one there.
    #[arg(long)]
    pub overwrite: bool,
}

impl Folder {
    /// What `--resume` and `--overwrite` ask for.
    pub fn mode(&self) -> RunMode {
        match (self.resume, self.overwrite) {
            (true, _) => RunMode::Resume,
            (_, true) => RunMode::Overwrite,
            _ => RunMode::New,
        }
    }
}

/// The problem size and repetitions of `bench`.
#[derive(Args)]
pub struct Bench {
    /// Backends to compare (repeatable; default: ndarray, and wgpu when an adapter exists).
    #[arg(long = "backend", value_enum)]
    pub backends: Vec<BackendKind>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Steps per sequence.
    #[arg(long, default_value_t = 100)]
    pub time: usize,
    /// Features per step (40: MFCC-sized).
    #[arg(long, default_value_t = 40)]
    pub input: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// Timed steps per module (the median is reported), after one warm-up step.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

impl Bench {
    /// The problem size.
    pub fn shape(&self) -> BenchShape {
        BenchShape {
            batch: self.batch,
            time: self.time,
            input: self.input,
            hidden: self.hidden,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Train the experiment described by a TOML file and report validation accuracy.
    Train {
        #[command(flatten)]
        experiment: Experiment,
        #[command(flatten)]
        backend: Backend,
        #[command(flatten)]
        folder: Folder,
        #[command(flatten)]
        parallel: Parallel,
    },
    /// Coordinate a data-parallel run of `train --peers N` processes: burn's collective
    /// orchestrator on PORT and the peers' liveness service on PORT+1, listening on --bind
    /// only. With a token, connections that do not present it are refused and printed.
    /// Exits when every peer is done, or with an error naming the first peer that went away
    /// (the others are told and stop too).
    Coordinator {
        /// Peers in the run.
        #[arg(long, value_name = "N")]
        peers: usize,
        /// The orchestrator's port (PyTorch's default MASTER_PORT).
        #[arg(long, default_value_t = 29500)]
        port: u16,
        /// The interface to listen on: across machines, the address the peers give as
        /// --coordinator (or 0.0.0.0 for every interface).
        #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
        bind: IpAddr,
        /// A file whose first line is the run's shared secret, which every peer must
        /// present. Default: the SPEECHRNN_RUN_TOKEN environment variable; with neither,
        /// no token.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Start a data-parallel run on this machine, as torchrun --nproc-per-node does: a
    /// coordinator and N `experiment train` peers with one thread each
    /// (RAYON_NUM_THREADS=1). Every socket listens on 127.0.0.1 only, and the run has a
    /// fresh token that only its peers know. The arguments after `--` go to every peer, e.g.
    /// `experiment launch --peers 2 -- experiments/spoken-digits.toml --set training.epochs=1`.
    Launch {
        /// Peers to start.
        #[arg(long, value_name = "N")]
        peers: usize,
        /// The coordinator's port; peer I serves its tensors on PORT + 2 + I. Default: the
        /// first of a free run of ports.
        #[arg(long)]
        port: Option<u16>,
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
        #[command(flatten)]
        decode: Decode,
        #[command(flatten)]
        inference: Inference,
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
        #[command(flatten)]
        decode: Decode,
        #[command(flatten)]
        inference: Inference,
    },
    /// Write a finished run as one ONNX file (opset 17): `features` `[batch, time, F]` and
    /// `lengths` `[batch]` in; `probabilities` `[batch, classes]` out (`log_probs` `[batch,
    /// time, classes]` for CTC), class names in the metadata (docs/export.md). Prints one
    /// JSON line: experiment export runs/spoken-digits -o digits.onnx --waveform
    Export {
        /// The run folder (holds config.toml and checkpoints/best.mpk).
        run_dir: PathBuf,
        /// The file to write (atomically).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// A step graph for streaming (unidirectional runs): `features` and the states `h_0`
        /// (and `c_0`) in; every step's output and the states `h_n` (and `c_n`) to feed to
        /// the next chunk out.
        #[arg(long)]
        streaming: bool,
        /// Audio in: `waveform` `[batch, samples]` (float32, ±1, mono, the run's rate) and
        /// `lengths` in samples; the run's features (kaldi preset) are computed in the graph.
        #[arg(long, conflicts_with = "streaming")]
        waveform: bool,
        /// f32 (ONNX's own LSTM/GRU/RNN operators, any runtime) or int8: the weights
        /// quantised per unit as `--precision int8` quantises them (a quarter of the size).
        /// An LSTM run's layers become onnxruntime's com.microsoft.DynamicQuantizeLSTM
        /// (onnxruntime only); a GRU's or RNN's a Scan of MatMulInteger steps in standard
        /// operators (onnxruntime, tract).
        #[arg(long, default_value = "f32", value_name = "f32|int8")]
        precision: models::Precision,
    },
    /// Recognise live audio with a finished causal run (e.g. one of
    /// experiments/digit-strings-streaming.toml or experiments/keywords-streaming.toml): raw
    /// PCM or a WAV stream on standard input, one JSON line per event on standard output as
    /// the audio is heard. CTC runs print `partial` (the text so far) and `final` (text, each
    /// label's start and end, `emitted_at`) at each endpoint and at the end of the stream;
    /// keyword runs print `detection` (label, score, start, end, emitted_at) as each keyword
    /// is said. Times are seconds of audio from the start.
    ///
    /// arecord -q -f S16_LE -r 8000 -c 1 -t raw | experiment listen runs/digit-strings-streaming
    ///
    /// sox in.wav -t raw -e signed -b 16 -r 8000 -c 1 - | experiment listen runs/X
    Listen(Listen),
    /// Measure a causal run live, on one thread. CTC runs: digit strings joined from
    /// recordings of single digits (3–5 digits, 50–400 ms pauses, so each digit's end is
    /// known) streamed in fixed chunks; prints each digit's emission delay (its partial
    /// against the end of its speech), the final result's delay after the last digit.
    /// Keyword runs: a split of the run's corpus joined into one stream with 0.5–1.5 s
    /// pauses; prints the keywords detected, the false alarms and each detection's delay
    /// after the keyword's speech. Both: each chunk's compute time and the real-time factor,
    /// then one JSON line with them.
    ListenBench(ListenBench),
    /// Measure ‖∂L/∂h_t‖ against t for RNN, LSTM (PyTorch's and chrono initialisation) and
    /// GRU, at initialisation and after training on a generated task; writes
    /// vanishing_gradients.csv and .png.
    Vanishing {
        /// A temporal-order experiment, e.g. experiments/vanishing-gradients.toml, and overrides.
        #[command(flatten)]
        experiment: Experiment,
        #[command(flatten)]
        backend: Backend,
        /// Folder for runs; this writes to OUT_DIR/NAME/.
        #[arg(long, default_value = "runs")]
        out_dir: PathBuf,
    },
    /// List what an audio experiment's corpus holds: utterances per split, per label and
    /// per speaker, and the class order the run will use. Reads no audio but Speech
    /// Commands' noise recordings, which its silence clips are cut from.
    CorpusInfo {
        /// The experiment, e.g. experiments/speech-commands-12.toml, and overrides such as
        /// --set task.corpus.root=data/speech_commands_v0.02.
        #[command(flatten)]
        experiment: Experiment,
    },
    /// Print the mean of the training split's features before normalisation, as one JSON
    /// line ({"utterances", "frames", "mean"}), and on standard error the TOML that makes it
    /// the starting point of the run's causal normalisation (task.causal_cmvn.prior, as
    /// Kaldi's online CMVN starts from global statistics).
    CmvnStats {
        /// The experiment, e.g. experiments/digit-strings-streaming.toml, and overrides.
        #[command(flatten)]
        experiment: Experiment,
        /// Frames of the mean in a window that has not filled yet, for the printed TOML.
        #[arg(long, default_value_t = 100)]
        prior_frames: usize,
    },
    /// List the backends and the GPU adapter wgpu would use.
    Backends,
    /// Time training steps (forward + backward) of our LSTM and GRU and burn's built-in
    /// ones, on each backend, at the same shapes; prints steps/s and the ratios.
    Bench(Bench),
}
