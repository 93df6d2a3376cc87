//! `mfcc`: WAV files to MFCC or log-mel `.npy` matrices, matching Kaldi, librosa or HTK.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use features::{
    Channel, Cmvn, FeatureError, FeatureOptions, FilePipeline, Output, Preset, Span, write_npy,
    write_png,
};
use indicatif::{ProgressBar, ProgressStyle};
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

/// `K/N` with 1 ≤ K ≤ N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not K/N (e.g. 3/8)"))?;
    let parse = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
    let (k, n) = (parse(k)?, parse(n)?);
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {k}/{n}: K must be between 1 and N"));
    }
    Ok((k, n))
}

/// The `k`-th (from 1) of `n` contiguous parts of `files`, whose sizes differ by at most one.
fn shard<T>(files: Vec<T>, (k, n): (usize, usize)) -> Vec<T> {
    let len = files.len();
    let (start, end) = ((k - 1) * len / n, k * len / n);
    files.into_iter().skip(start).take(end - start).collect()
}

/// The files a manifest lists, as (path to read, path relative to the output directory).
fn read_manifest(manifest: &Path) -> Result<Vec<(PathBuf, PathBuf)>, FeatureError> {
    let bad = |line: usize, why: String| {
        FeatureError::InvalidOptions(format!("{}:{line}: {why}", manifest.display()))
    };
    let is_scp = manifest.extension().is_some_and(|e| e == "scp");
    let mut files = Vec::new();
    if is_scp {
        let text = std::fs::read_to_string(manifest).map_err(|e| FeatureError::io(manifest, e))?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (id, path) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(index + 1, "expected `utterance-id path`".into()))?;
            let path = path.trim();
            if path.ends_with('|') {
                return Err(bad(
                    index + 1,
                    "a command (`… |`) instead of a file; write the WAV files out first".into(),
                ));
            }
            files.push((PathBuf::from(path), PathBuf::from(format!("{id}.wav"))));
        }
    } else {
        let root = manifest.parent().unwrap_or(Path::new("."));
        let mut reader = csv::Reader::from_path(manifest).map_err(|e| bad(0, e.to_string()))?;
        let column = reader
            .headers()
            .map_err(|e| bad(1, e.to_string()))?
            .iter()
            .position(|h| h == "path")
            .ok_or_else(|| bad(1, "no `path` column in the header".into()))?;
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(index + 2, e.to_string()))?;
            let path = record
                .get(column)
                .ok_or_else(|| bad(index + 2, "no `path` field".into()))?;
            files.push((root.join(path), PathBuf::from(path)));
        }
    }
    // Each output stays inside OUT.
    if let Some((_, outside)) = files.iter().find(|(_, relative)| {
        relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
    }) {
        return Err(bad(
            0,
            format!(
                "{}: a listed path (or utterance id) must be relative and without `..`",
                outside.display()
            ),
        ));
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    if let Some(pair) = files.windows(2).find(|pair| pair[0].1 == pair[1].1) {
        return Err(bad(0, format!("{} is listed twice", pair[0].1.display())));
    }
    Ok(files)
}

/// Every input as (path to read, path relative to the output directory).
fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, FeatureError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, input, &mut files)?;
        } else {
            let name = input
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| input.clone());
            files.push((input.clone(), name));
        }
    }
    files.sort();
    Ok(files)
}

fn walk(
    root: &Path,
    directory: &Path,
    files: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), FeatureError> {
    let entries = std::fs::read_dir(directory).map_err(|e| FeatureError::io(directory, e))?;
    for entry in entries {
        let path = entry.map_err(|e| FeatureError::io(directory, e))?.path();
        if path.is_dir() {
            walk(root, &path, files)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            let relative = path
                .strip_prefix(root)
                .expect("walked from root")
                .to_path_buf();
            files.push((path, relative));
        }
    }
    Ok(())
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
