//! The feature front end in ONNX operators (`--waveform`): float32 audio `[batch, samples]`
//! at the run's rate to the run's features `[batch, frames, F]`, as `crates/features`
//! computes them: framing with snipped edges, DC removal, raw energy, pre-emphasis and the
//! window, the power spectrum (a real DFT as two matrix products), the mel filterbank, log,
//! DCT and lifter, deltas with each utterance's edge frames repeated, and per-utterance
//! mean and variance normalisation over its own frames.

use features::{
    Cmvn, Energy, FeatureExtractor, FeatureOptions, FilePipeline, Framing, LogScale, Output,
    Preemphasis, Spectrum,
};
use onnx::{Attribute, GraphBuilder};

use super::ExportError;
use super::ops::{axis_size, count_to, unsqueeze};

/// What the front end computed: `[batch, frames, F]` features and `[batch]` frame counts.
pub struct FrontEndOutputs {
    /// The features, batch first.
    pub features: String,
    /// Frames of each utterance (int64).
    pub frame_lengths: String,
}

/// A run's feature pipeline, checked to be one the graph can compute.
#[derive(Debug, Clone)]
pub struct FrontEnd {
    options: FeatureOptions,
    output: Output,
    deltas: Option<(usize, usize)>,
    variance_normalised: Option<bool>,
    extractor: FeatureExtractor,
}

impl FrontEnd {
    /// The front end of `pipeline`, or the first setting ONNX export does not cover yet.
    pub fn of(pipeline: &FilePipeline) -> Result<Self, ExportError> {
        let options = pipeline.options.clone();
        let unsupported = |what: &str| Err(ExportError::Unsupported(what.to_string()));
        if options.frame.framing != Framing::SnipEdges {
            return unsupported(
                "frames other than Kaldi's snipped edges (the librosa and htk presets)",
            );
        }
        if options.frame.dither != 0.0 {
            return unsupported("dither");
        }
        if matches!(options.frame.preemphasis, Preemphasis::WholeSignal(_)) {
            return unsupported("pre-emphasis over the whole signal");
        }
        if !matches!(options.mel.log, LogScale::Natural { .. }) {
            return unsupported("the decibel scale");
        }
        if options.cepstral.energy == Energy::SpectrumSum {
            return unsupported("energy from the spectrum's sum");
        }
        let variance_normalised = match pipeline.cmvn {
            None => None,
            Some(Cmvn::Utterance { variance }) => Some(variance),
            Some(_) => return unsupported("sliding or causal normalisation"),
        };
        let extractor = FeatureExtractor::new(options.clone())
            .map_err(|e| ExportError::Unsupported(format!("its feature options: {e}")))?;
        Ok(FrontEnd {
            options,
            output: pipeline.output,
            deltas: pipeline.deltas,
            variance_normalised,
            extractor,
        })
    }

    /// Features per frame.
    pub fn dim(&self) -> usize {
        let blocks = self.deltas.map_or(1, |(order, _)| order + 1);
        self.extractor.dim(self.output) * blocks
    }

    fn win_hop(&self) -> (usize, usize) {
        let win = self.options.win_length().unwrap_or(0);
        let hop = self.options.hop_length().unwrap_or(1);
        (win, hop)
    }

    /// Appends the front end reading `waveform` `[batch, samples]` with `lengths` `[batch]`.
    pub fn lower(
        &self,
        graph: &mut GraphBuilder,
        waveform: &str,
        lengths: &str,
    ) -> FrontEndOutputs {
        let (frames, frame_lengths) = self.frames(graph, waveform, lengths);
        let (centred, log_energy) = self.centre(graph, &frames);
        let power = self.power_spectrum(graph, &centred);
        let log_mel = self.log_mel(graph, &power);
        let mut x = match self.output {
            Output::Mfcc => self.cepstra(graph, &log_mel, &log_energy),
            _ => log_mel,
        };
        let base_dim = self.extractor.dim(self.output);
        let valid = valid_frames(graph, &x, &frame_lengths);
        if let Some((order, window)) = self.deltas {
            x = deltas(graph, &x, &frame_lengths, (base_dim, order, window));
        }
        if let Some(variance) = self.variance_normalised {
            x = utterance_cmvn(graph, &x, &valid, &frame_lengths, variance);
        }
        FrontEndOutputs {
            features: x,
            frame_lengths,
        }
    }

    /// `[batch, frames, win]` frames of the scaled samples, and each utterance's frame count
    /// `1 + (length − win) / hop` (0 below one window).
    fn frames(&self, graph: &mut GraphBuilder, waveform: &str, lengths: &str) -> (String, String) {
        let (win, hop) = self.win_hop();
        let scale = graph.constant_f32("sample_scale", &[], &[self.options.frame.sample_scale]);
        let scaled = graph.node("Mul", &[waveform, &scale], vec![]);
        let frame_count = |graph: &mut GraphBuilder, samples: &str| {
            let win_c = graph.constant_i64("win", &[], &[win as i64]);
            let hop_c = graph.constant_i64("hop", &[], &[hop as i64]);
            let one = graph.constant_i64("one", &[], &[1]);
            let zero = graph.constant_i64("zero", &[], &[0]);
            let short = graph.node("Less", &[samples, &win_c], vec![]);
            let past = graph.node("Sub", &[samples, &win_c], vec![]);
            let past = graph.node("Max", &[&past, &zero], vec![]);
            let count = graph.node("Div", &[&past, &hop_c], vec![]);
            let count = graph.node("Add", &[&count, &one], vec![]);
            graph.node("Where", &[&short, &zero, &count], vec![])
        };
        let samples = axis_size(graph, waveform, 1);
        let most = frame_count(graph, &samples);
        let frame_lengths = frame_count(graph, lengths);
        let starts = count_to(graph, &most);
        let hop_c = graph.constant_i64("hop", &[], &[hop as i64]);
        let starts = graph.node("Mul", &[&starts, &hop_c], vec![]);
        let starts = unsqueeze(graph, &starts, 1);
        let within: Vec<i64> = (0..win as i64).collect();
        let within = graph.constant_i64("within_frame", &[1, win], &within);
        let index = graph.node("Add", &[&starts, &within], vec![]);
        let frames = graph.node(
            "Gather",
            &[&scaled, &index],
            vec![("axis", Attribute::Int(1))],
        );
        (frames, frame_lengths)
    }

    /// Frames less their mean (Kaldi's DC removal), and the log energy Kaldi puts in c0.
    fn centre(&self, graph: &mut GraphBuilder, frames: &str) -> (String, String) {
        let centred = if self.options.frame.remove_dc_offset {
            let mean = graph.node(
                "ReduceMean",
                &[frames],
                vec![
                    ("axes", Attribute::Ints(vec![2])),
                    ("keepdims", Attribute::Int(1)),
                ],
            );
            graph.node("Sub", &[frames, &mean], vec![])
        } else {
            frames.to_string()
        };
        let energy_of = |graph: &mut GraphBuilder, x: &str| {
            graph.node(
                "ReduceSumSquare",
                &[x],
                vec![
                    ("axes", Attribute::Ints(vec![2])),
                    ("keepdims", Attribute::Int(1)),
                ],
            )
        };
        let energy = match self.options.cepstral.energy {
            Energy::WindowedFrame => {
                let shaped = self.shaped(graph, &centred);
                energy_of(graph, &shaped)
            }
            _ => energy_of(graph, &centred),
        };
        let floor = graph.constant_f32("epsilon", &[], &[f32::EPSILON]);
        let energy = graph.node("Max", &[&energy, &floor], vec![]);
        let mut log_energy = graph.node("Log", &[&energy], vec![]);
        let energy_floor = self.options.cepstral.energy_floor;
        if energy_floor > 0.0 {
            let floor = graph.constant_f32("log_energy_floor", &[], &[energy_floor.ln()]);
            log_energy = graph.node("Max", &[&log_energy, &floor], vec![]);
        }
        (centred, log_energy)
    }

    /// Pre-emphasis and the window as one `[win, win]` matrix: column j is
    /// `w_j·(e_j − k·e_{j−1})`, and Kaldi's first sample is its own predecessor.
    fn shaping_matrix(&self) -> Vec<f64> {
        let win = self.win_hop().0;
        let window = self.extractor.window();
        let k = match self.options.frame.preemphasis {
            Preemphasis::PerFrame(k) => k as f64,
            _ => 0.0,
        };
        let mut m = vec![0.0f64; win * win];
        for j in 0..win {
            let w = window[j] as f64;
            m[j * win + j] = w;
            if j == 0 {
                m[0] = w * (1.0 - k);
            } else {
                m[(j - 1) * win + j] -= k * w;
            }
        }
        m
    }

    fn shaped(&self, graph: &mut GraphBuilder, centred: &str) -> String {
        let win = self.win_hop().0;
        let m: Vec<f32> = self.shaping_matrix().iter().map(|&v| v as f32).collect();
        let m = graph.constant_f32("preemphasis_window", &[win, win], &m);
        graph.node("MatMul", &[centred, &m], vec![])
    }

    /// `|X_k|²` (or `|X_k|`) of the shaped, zero-padded frame, `k = 0..n_fft/2`: the shaping
    /// and the real DFT folded into two `[win, bins]` matrices.
    fn power_spectrum(&self, graph: &mut GraphBuilder, centred: &str) -> String {
        let win = self.win_hop().0;
        let n_fft = self.options.n_fft().unwrap_or(win);
        let bins = n_fft / 2 + 1;
        let shaping = self.shaping_matrix();
        let dft = |part: fn(f64) -> f64| -> Vec<f32> {
            let mut out = vec![0.0f32; win * bins];
            for i in 0..win {
                for k in 0..bins {
                    let mut sum = 0.0f64;
                    for j in 0..win {
                        let angle =
                            2.0 * std::f64::consts::PI * (j * k % n_fft) as f64 / n_fft as f64;
                        sum += shaping[i * win + j] * part(angle);
                    }
                    out[i * bins + k] = sum as f32;
                }
            }
            out
        };
        let cos = graph.constant_f32("dft_real", &[win, bins], &dft(f64::cos));
        let sin = graph.constant_f32("dft_imaginary", &[win, bins], &dft(f64::sin));
        let re = graph.node("MatMul", &[centred, &cos], vec![]);
        let im = graph.node("MatMul", &[centred, &sin], vec![]);
        let re2 = graph.node("Mul", &[&re, &re], vec![]);
        let im2 = graph.node("Mul", &[&im, &im], vec![]);
        let mut power = graph.node("Add", &[&re2, &im2], vec![]);
        if self.options.mel.spectrum == Spectrum::Magnitude {
            power = graph.node("Sqrt", &[&power], vec![]);
        }
        if self.options.mel.divide_by_n_fft {
            let scale = graph.constant_f32("inverse_n_fft", &[], &[1.0 / n_fft as f32]);
            power = graph.node("Mul", &[&power, &scale], vec![]);
        }
        power
    }

    fn log_mel(&self, graph: &mut GraphBuilder, power: &str) -> String {
        let dense = self.extractor.filterbank().to_dense();
        let (mels, bins) = (dense.len(), dense.first().map_or(0, Vec::len));
        let transposed: Vec<f32> = (0..bins)
            .flat_map(|b| dense.iter().map(move |row| row[b]))
            .collect();
        let mel = graph.constant_f32("mel_filterbank", &[bins, mels], &transposed);
        let energies = graph.node("MatMul", &[power, &mel], vec![]);
        let LogScale::Natural { floor } = self.options.mel.log else {
            unreachable!("checked in FrontEnd::of")
        };
        let floor = graph.constant_f32("log_floor", &[], &[floor]);
        let floored = graph.node("Max", &[&energies, &floor], vec![]);
        graph.node("Log", &[&floored], vec![])
    }

    /// DCT-II and lifter as one `[mels, n_mfcc]` matrix; c0 replaced by the log energy.
    fn cepstra(&self, graph: &mut GraphBuilder, log_mel: &str, log_energy: &str) -> String {
        let n_mfcc = self.options.cepstral.n_mfcc;
        let n_mels = self.options.mel.n_mels;
        let dct = features::dct_matrix(n_mfcc, n_mels);
        let lifter = features::lifter_weights(n_mfcc, self.options.cepstral.lifter);
        let matrix: Vec<f32> = (0..n_mels)
            .flat_map(|m| (0..n_mfcc).map(move |k| (m, k)))
            .map(|(m, k)| dct[k * n_mels + m] * lifter[k])
            .collect();
        let matrix = graph.constant_f32("dct_lifter", &[n_mels, n_mfcc], &matrix);
        let cepstra = graph.node("MatMul", &[log_mel, &matrix], vec![]);
        if self.options.cepstral.energy == Energy::None {
            return cepstra;
        }
        let start = graph.constant_i64("from_c1", &[1], &[1]);
        let end = graph.constant_i64("to_end", &[1], &[n_mfcc as i64]);
        let axes = graph.constant_i64("axis2", &[1], &[2]);
        let rest = graph.node("Slice", &[&cepstra, &start, &end, &axes], vec![]);
        graph.node(
            "Concat",
            &[log_energy, &rest],
            vec![("axis", Attribute::Int(2))],
        )
    }
}

/// `[batch, frames, 1]` float: 1 on each utterance's own frames, 0 on padding.
fn valid_frames(graph: &mut GraphBuilder, x: &str, frame_lengths: &str) -> String {
    let frames = axis_size(graph, x, 1);
    let t = count_to(graph, &frames);
    let t = unsqueeze(graph, &t, 0);
    let lengths = unsqueeze(graph, frame_lengths, 1);
    let valid = graph.node("Less", &[&t, &lengths], vec![]);
    let valid = graph.node("Cast", &[&valid], vec![("to", Attribute::Int(1))]);
    unsqueeze(graph, &valid, 2)
}

/// `[x, Δx, Δ²x, …]` as `features::add_deltas` computes them within each utterance: every
/// offset's frames gathered with the index clamped to the utterance's own frames, then one
/// matrix product applies all the regression kernels.
fn deltas(
    graph: &mut GraphBuilder,
    x: &str,
    frame_lengths: &str,
    (dim, order, window): (usize, usize, usize),
) -> String {
    let kernels = features::delta_kernels(order, window);
    let half = kernels.last().map_or(0, |k| k.len() / 2);
    let frames = axis_size(graph, x, 1);
    let batch = axis_size(graph, x, 0);
    let zero = graph.constant_i64("zero", &[], &[0]);
    let one = graph.constant_i64("one", &[], &[1]);
    let t = count_to(graph, &frames);
    let t = unsqueeze(graph, &t, 0);
    let last = graph.node("Sub", &[frame_lengths, &one], vec![]);
    let last = graph.node("Max", &[&last, &zero], vec![]);
    let last = unsqueeze(graph, &last, 1);
    let b = count_to(graph, &batch);
    let b = unsqueeze(graph, &b, 1);
    let row_start = graph.node("Mul", &[&b, &frames], vec![]);
    let flat_shape = graph.constant_i64("rows_by_dim", &[2], &[-1, dim as i64]);
    let flat = graph.node("Reshape", &[x, &flat_shape], vec![]);
    let mut gathered = Vec::new();
    for offset in -(half as i64)..=(half as i64) {
        let shift = graph.constant_i64("offset", &[], &[offset]);
        let source = graph.node("Add", &[&t, &shift], vec![]);
        let source = graph.node("Max", &[&source, &zero], vec![]);
        let source = graph.node("Min", &[&source, &last], vec![]);
        let rows = graph.node("Add", &[&source, &row_start], vec![]);
        gathered.push(graph.node("Gather", &[&flat, &rows], vec![("axis", Attribute::Int(0))]));
    }
    let refs: Vec<&str> = gathered.iter().map(String::as_str).collect();
    let stacked = graph.node("Concat", &refs, vec![("axis", Attribute::Int(2))]);
    let taps = 2 * half + 1;
    let out_dim = dim * kernels.len();
    let mut matrix = vec![0.0f32; taps * dim * out_dim];
    for (block, kernel) in kernels.iter().enumerate() {
        let pad = half - kernel.len() / 2;
        for (j, weight) in kernel.iter().enumerate() {
            for d in 0..dim {
                matrix[((pad + j) * dim + d) * out_dim + block * dim + d] = *weight as f32;
            }
        }
    }
    let matrix = graph.constant_f32("delta_kernels", &[taps * dim, out_dim], &matrix);
    graph.node("MatMul", &[&stacked, &matrix], vec![])
}

/// Each utterance less its mean over its own frames, and divided by their standard deviation
/// (variance floored at 1e-20) with `variance`.
fn utterance_cmvn(
    graph: &mut GraphBuilder,
    x: &str,
    valid: &str,
    frame_lengths: &str,
    variance: bool,
) -> String {
    let count = graph.node("Cast", &[frame_lengths], vec![("to", Attribute::Int(1))]);
    let shape = graph.constant_i64("batch_1_1", &[3], &[-1, 1, 1]);
    let count = graph.node("Reshape", &[&count, &shape], vec![]);
    let axis1 = graph.constant_i64("axis1", &[1], &[1]);
    let mean_over_frames = |graph: &mut GraphBuilder, v: &str| {
        let masked = graph.node("Mul", &[v, valid], vec![]);
        let sum = graph.node(
            "ReduceSum",
            &[&masked, &axis1],
            vec![("keepdims", Attribute::Int(1))],
        );
        graph.node("Div", &[&sum, &count], vec![])
    };
    let mean = mean_over_frames(graph, x);
    let centred = graph.node("Sub", &[x, &mean], vec![]);
    if !variance {
        return centred;
    }
    let squares = graph.node("Mul", &[&centred, &centred], vec![]);
    let var = mean_over_frames(graph, &squares);
    let floor = graph.constant_f32("variance_floor", &[], &[1e-20]);
    let var = graph.node("Max", &[&var, &floor], vec![]);
    let std = graph.node("Sqrt", &[&var], vec![]);
    graph.node("Div", &[&centred, &std], vec![])
}
