//! `mfcc`: WAV files to MFCC or log-mel `.npy` matrices, matching Kaldi, librosa or HTK.

mod inputs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use features::{
    Channel, Cmvn, FeatureError, FeatureOptions, FilePipeline, Output, Preset, Span, write_npy,
    write_png,
};
use indicatif::{ProgressBar, ProgressStyle};
use inputs::{collect_inputs, parse_shard, read_manifest, shard};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PresetArg {
    /// Kaldi's compute-mfcc-feats / compute-fbank-feats with --dither=0 (int16 scale, povey window, 23 mels, snip edges).
    Kaldi,
    /// librosa.feature.mfcc / power_to_db(melspectrogram) (centred frames, Hann, Slaney mels, dB with top_db 80).
    Librosa,
    /// python_speech_features.mfcc / logfbank (HTK-style: whole-signal pre-emphasis, rectangular window, 26 mels).
    Htk,
}

/// Computes MFCC (or log-mel) features of WAV files and writes float32 `.npy` matrices
/// of shape [frames, coefficients].
///
/// One input file: OUT is the `.npy` file. Several inputs or a directory: OUT is a
/// directory mirroring the inputs (`a/b.wav` → `OUT/a/b.npy`), processed in parallel
/// on all cores. Files that cannot be read are reported and counted; the exit status
/// is 1 if any failed. Outputs are written atomically (no partial files).
///
/// A corpus split over machines, as Kaldi's `split_data.sh` and `JOB=1:N` do it: every
/// job runs the same command with `--shard K/N` (K = 1…N) and writes its part of OUT;
/// the N parts together are exactly one run over everything, e.g. a Slurm array job
/// `mfcc --manifest data/manifest.csv --shard $SLURM_ARRAY_TASK_ID/8 -o feats/`.
#[derive(Debug, Parser)]
#[command(name = "mfcc", version)]
struct Args {
    /// Which reference to reproduce; every option below overrides one of its values.
    #[arg(long, value_enum, default_value = "kaldi")]
    preset: PresetArg,
    /// Compute at this rate (Hz), resampling files at other rates. Default: each file's own rate.
    #[arg(long, value_name = "HZ")]
    sample_rate: Option<u32>,
    /// Refuse files whose rate differs from --sample-rate instead of resampling them.
    #[arg(long, requires = "sample_rate")]
    no_resample: bool,
    /// FFT size (default: the preset's; Kaldi: next power of two above the window).
    #[arg(long, value_name = "N")]
    n_fft: Option<usize>,
    /// Window length in samples (default: the preset's, 25 ms for kaldi and htk, n_fft for librosa).
    #[arg(long, value_name = "N")]
    win_length: Option<usize>,
    /// Hop length in samples (default: 10 ms for kaldi and htk, win_length/4 for librosa).
    #[arg(long, value_name = "N")]
    hop_length: Option<usize>,
    /// Number of mel bands.
    #[arg(long, value_name = "N")]
    n_mels: Option<usize>,
    /// Number of cepstral coefficients.
    #[arg(long, value_name = "N")]
    n_mfcc: Option<usize>,
    /// Lowest mel band edge (Hz).
    #[arg(long, value_name = "HZ")]
    fmin: Option<f32>,
    /// Highest mel band edge (Hz); negative: offset below Nyquist (Kaldi).
    #[arg(long, value_name = "HZ", allow_negative_numbers = true)]
    fmax: Option<f32>,
    /// Vocal tract length warp factor of the filterbank (Kaldi's --vtln-warp; cutoffs 100 Hz
    /// and 500 Hz below Nyquist). Above 1 moves the bands down.
    #[arg(long, value_name = "ALPHA")]
    vtln_warp: Option<f32>,
    /// Play the file this many times faster (tempo and pitch, as sox's `speed`) before the
    /// features: speed perturbation.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    speed: f32,
    /// Add white noise at this signal-to-noise ratio (dB) before the features, seeded by the
    /// file's samples: noise augmentation.
    #[arg(long, value_name = "DB", allow_negative_numbers = true)]
    noise_snr: Option<f32>,
    /// Cepstral lifter L (0 turns it off).
    #[arg(long, value_name = "L")]
    lifter: Option<f32>,
    /// Append first and second order deltas (window 2, Kaldi's add-deltas).
    #[arg(long)]
    deltas: bool,
    /// Per-utterance mean and variance normalisation, applied last.
    #[arg(long)]
    cmvn: bool,
    /// Write log-mel energies instead of MFCC.
    #[arg(long)]
    log_mel: bool,
    /// Use this channel (from 0) instead of the mean of all channels.
    #[arg(long, value_name = "N")]
    channel: Option<usize>,
    /// Also draw the features of the (single) input as a PNG image.
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// WAV files or directories (searched recursively for .wav files).
    #[arg(required_unless_present = "manifest", value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Read the files from a list instead: a CSV with a `path` column (paths relative to
    /// the CSV's folder, as `datasets/*/manifest.csv`; OUT mirrors them), or a Kaldi
    /// `wav.scp` (`.scp`: `utterance-id path` per line; OUT gets `utterance-id.npy`).
    #[arg(long, value_name = "FILE", conflicts_with = "inputs")]
    manifest: Option<PathBuf>,
    /// Process only the K-th of N equal, contiguous parts of the sorted file list (K from 1).
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Output `.npy` file (one input) or directory (several inputs or a directory).
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

fn pipeline(args: &Args) -> Result<FilePipeline, FeatureError> {
    let preset = match args.preset {
        PresetArg::Kaldi => Preset::Kaldi,
        PresetArg::Librosa => Preset::Librosa,
        PresetArg::Htk => Preset::Htk,
    };
    let mut options = FeatureOptions::preset(preset);
    if let Some(rate) = args.sample_rate {
        options.frame.sample_rate = rate;
    }
    if let Some(n) = args.n_fft {
        options.frame.n_fft = Some(n);
    }
    if let Some(n) = args.win_length {
        options.frame.win_length = Some(Span::Samples(n));
    }
    if let Some(n) = args.hop_length {
        options.frame.hop_length = Some(Span::Samples(n));
    }
    if let Some(n) = args.n_mels {
        options.mel.n_mels = n;
    }
    if let Some(n) = args.n_mfcc {
        options.cepstral.n_mfcc = n;
    }
    if let Some(f) = args.fmin {
        options.mel.fmin = f;
    }
    if args.fmax.is_some() {
        options.mel.fmax = args.fmax;
    }
    if let Some(l) = args.lifter {
        options.cepstral.lifter = l;
    }
    if let Some(warp) = args.vtln_warp {
        options.mel.vtln = Some(features::Vtln {
            warp,
            ..features::Vtln::default()
        });
    }
    let mut pipeline = FilePipeline::new(options);
    pipeline.speed = args.speed;
    pipeline.noise_snr_db = args.noise_snr;
    pipeline.fixed_rate = args.sample_rate.is_some();
    pipeline.allow_resampling = !args.no_resample;
    pipeline.output = if args.log_mel {
        Output::LogMel
    } else {
        Output::Mfcc
    };
    pipeline.channel = args.channel.map_or(Channel::Mean, Channel::Index);
    pipeline.deltas = args.deltas.then_some((2, 2));
    pipeline.cmvn = args.cmvn.then_some(Cmvn::Utterance { variance: true });
    Ok(pipeline)
}

fn run(args: Args) -> Result<ExitCode, FeatureError> {
    let pipeline = pipeline(&args)?;
    let features_of = |input: &Path| pipeline.run(input).map_err(|e| e.in_file(input));
    let single = args.manifest.is_none()
        && args.shard.is_none()
        && args.inputs.len() == 1
        && !args.inputs[0].is_dir();
    if single {
        let input = &args.inputs[0];
        let features = features_of(input)?;
        write_npy(&args.output, &features)?;
        if let Some(plot) = &args.plot {
            write_png(plot, &features, &pipeline)?;
        }
        eprintln!(
            "{}: {} frames × {}",
            args.output.display(),
            features.num_frames,
            features.dim
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.plot.is_some() {
        return Err(FeatureError::InvalidOptions(
            "--plot needs a single input file".into(),
        ));
    }
    let mut files = match &args.manifest {
        Some(manifest) => read_manifest(manifest)?,
        None => collect_inputs(&args.inputs)?,
    };
    if let Some(part) = args.shard {
        files = shard(files, part);
    }
    let progress = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, {per_sec}, ETA {eta}")
            .expect("template"),
    );
    let failures: Vec<String> = files
        .par_iter()
        .filter_map(|(input, relative)| {
            let target = args.output.join(relative).with_extension("npy");
            let result = target
                .parent()
                .map_or(Ok(()), |dir| {
                    std::fs::create_dir_all(dir).map_err(|e| FeatureError::io(dir, e))
                })
                .and_then(|()| features_of(input))
                .and_then(|features| write_npy(&target, &features));
            progress.inc(1);
            result.err().map(|e| e.to_string())
        })
        .collect();
    progress.finish_and_clear();
    for failure in &failures {
        eprintln!("skipped {failure}");
    }
    eprintln!(
        "{} of {} files written to {}; {} skipped",
        files.len() - failures.len(),
        files.len(),
        args.output.display(),
        failures.len()
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mfcc: {error}");
            ExitCode::FAILURE
        }
    }
}
