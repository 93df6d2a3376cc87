//! The feature front end in ONNX operators (`--waveform`): float32 audio `[batch, samples]`
//! at the run's rate to the run's features `[batch, frames, F]`, as `crates/features`
//! computes them for each preset: whole-signal pre-emphasis, framing (snipped edges, centred
//! with zero or reflected padding, or the last frame zero-padded), DC removal, the energy,
//! pre-emphasis per frame and the window, the power spectrum (a real DFT as two matrix
//! products), the mel filterbank, the natural log or decibels (with `top_db` under each
//! utterance's peak), DCT and lifter, deltas with each utterance's edge frames repeated, and
//! per-utterance mean and variance normalisation over its own frames.

use features::{
    Cmvn, Energy, FeatureExtractor, FeatureOptions, FilePipeline, Framing, LogScale, Output,
    Padding, Preemphasis, Spectrum,
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
    /// The front end of `pipeline`, or the first setting ONNX export does not cover.
    pub fn of(pipeline: &FilePipeline) -> Result<Self, ExportError> {
        let options = pipeline.options.clone();
        let unsupported = |what: &str| Err(ExportError::Unsupported(what.to_string()));
        if options.frame.dither != 0.0 {
            return unsupported("dither");
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

    fn n_fft(&self) -> usize {
        self.options.n_fft().unwrap_or(self.win_hop().0)
    }

    /// Appends the front end reading `waveform` `[batch, samples]` with `lengths` `[batch]`.
    pub fn lower(
        &self,
        graph: &mut GraphBuilder,
        waveform: &str,
        lengths: &str,
    ) -> FrontEndOutputs {
        let signal = self.scaled_signal(graph, waveform);
        let (frames, frame_lengths) = self.frames(graph, &signal, lengths);
        let valid = valid_frames(graph, &frames, &frame_lengths);
        let centred = self.centre(graph, &frames);
        let power = self.power_spectrum(graph, &centred);
        let log_energy = self.log_energy(graph, &centred, &power);
        let mut x = match self.output {
            Output::Mfcc => {
                let log_mel = self.log_mel(graph, &power, &valid);
                self.cepstra(graph, &log_mel, log_energy.as_deref())
            }
            Output::LogMel => self.log_mel(graph, &power, &valid),
            Output::Spectrum => power,
        };
        let base_dim = self.extractor.dim(self.output);
        if let Some((order, window)) = self.deltas {
            x = deltas(graph, &x, &frame_lengths, (base_dim, order, window));
        }
        if let Some(variance) = self.variance_normalised {
            let valid = graph.node("Cast", &[&valid], vec![("to", Attribute::Int(1))]);
            x = utterance_cmvn(graph, &x, &valid, &frame_lengths, variance);
        }
        FrontEndOutputs {
            features: x,
            frame_lengths,
        }
    }

    /// The samples times the preset's scale, pre-emphasised here when the preset does it over
    /// the whole signal (`y[n] = x[n] − k·x[n−1]`, `y[0] = x[0]`).
    fn scaled_signal(&self, graph: &mut GraphBuilder, waveform: &str) -> String {
        let scale = graph.constant_f32("sample_scale", &[], &[self.options.frame.sample_scale]);
        let scaled = graph.node("Mul", &[waveform, &scale], vec![]);
        let Preemphasis::WholeSignal(k) = self.options.frame.preemphasis else {
            return scaled;
        };
        // The previous sample of each: a zero before the first, the last one dropped.
        let pads = graph.constant_i64("one_leading_sample", &[4], &[0, 1, 0, 0]);
        let shifted = graph.node("Pad", &[&scaled, &pads], vec![]);
        let start = graph.constant_i64("zero_1d", &[1], &[0]);
        let end = graph.constant_i64("last_excluded", &[1], &[-1]);
        let axes = graph.constant_i64("axis1_1d", &[1], &[1]);
        let previous = graph.node("Slice", &[&shifted, &start, &end, &axes], vec![]);
        let k = graph.constant_f32("preemphasis", &[], &[k]);
        let scaled_previous = graph.node("Mul", &[&previous, &k], vec![]);
        graph.node("Sub", &[&scaled, &scaled_previous], vec![])
    }

    /// The frame count of `samples` samples (an int64 tensor of any shape), by the framing's
    /// formula ([`FeatureExtractor::num_frames`]).
    fn frame_count(&self, graph: &mut GraphBuilder, samples: &str) -> String {
        let (win, hop) = self.win_hop();
        let n_fft = self.n_fft();
        // count = 1 + (max(n + extra − need, 0) + round_up) / hop, and 0 where n + extra < need.
        let (extra, need, round_up, may_be_empty) = match self.options.frame.framing {
            Framing::SnipEdges => (0, win, 0, true),
            Framing::Centered { .. } => (2 * (n_fft / 2), n_fft, 0, true),
            Framing::PadLast => (0, win, hop - 1, false),
        };
        let constant = |graph: &mut GraphBuilder, name: &str, v: usize| {
            graph.constant_i64(name, &[], &[v as i64])
        };
        let extra = constant(graph, "frame_padding", extra);
        let need = constant(graph, "frame_need", need);
        let round_up = constant(graph, "frame_round_up", round_up);
        let hop_c = constant(graph, "hop", hop);
        let one = constant(graph, "one", 1);
        let zero = constant(graph, "zero", 0);
        let padded = graph.node("Add", &[samples, &extra], vec![]);
        let past = graph.node("Sub", &[&padded, &need], vec![]);
        let past = graph.node("Max", &[&past, &zero], vec![]);
        let past = graph.node("Add", &[&past, &round_up], vec![]);
        let count = graph.node("Div", &[&past, &hop_c], vec![]);
        let count = graph.node("Add", &[&count, &one], vec![]);
        if !may_be_empty {
            return count;
        }
        let short = graph.node("Less", &[&padded, &need], vec![]);
        graph.node("Where", &[&short, &zero, &count], vec![])
    }

    /// `[batch, frames, win]` frames of the signal, and each utterance's frame count.
    fn frames(&self, graph: &mut GraphBuilder, signal: &str, lengths: &str) -> (String, String) {
        let (win, hop) = self.win_hop();
        let samples = axis_size(graph, signal, 1);
        let most = self.frame_count(graph, &samples);
        let frame_lengths = self.frame_count(graph, lengths);
        let starts = count_to(graph, &most);
        let hop_c = graph.constant_i64("hop", &[], &[hop as i64]);
        let starts = graph.node("Mul", &[&starts, &hop_c], vec![]);
        let starts = unsqueeze(graph, &starts, 1);
        // librosa centres frame t on sample t·hop (the window in the middle of n_fft).
        let first = match self.options.frame.framing {
            Framing::Centered { .. } => {
                let n_fft = self.n_fft();
                ((n_fft - win) / 2) as i64 - (n_fft / 2) as i64
            }
            Framing::SnipEdges | Framing::PadLast => 0,
        };
        let within: Vec<i64> = (0..win as i64).map(|j| first + j).collect();
        let within = graph.constant_i64("within_frame", &[1, win], &within);
        let index = graph.node("Add", &[&starts, &within], vec![]);
        let frames = match self.options.frame.framing {
            // Every index is inside the batch's samples.
            Framing::SnipEdges => graph.node(
                "Gather",
                &[signal, &index],
                vec![("axis", Attribute::Int(1))],
            ),
            Framing::Centered { pad } => padded_frames(graph, signal, lengths, &index, pad),
            Framing::PadLast => padded_frames(graph, signal, lengths, &index, Padding::Zero),
        };
        (frames, frame_lengths)
    }

    /// Frames less their mean when the preset removes the DC offset (Kaldi).
    fn centre(&self, graph: &mut GraphBuilder, frames: &str) -> String {
        if !self.options.frame.remove_dc_offset {
            return frames.to_string();
        }
        let mean = graph.node(
            "ReduceMean",
            &[frames],
            vec![
                ("axes", Attribute::Ints(vec![2])),
                ("keepdims", Attribute::Int(1)),
            ],
        );
        graph.node("Sub", &[frames, &mean], vec![])
    }

    /// The log energy that replaces c0 (`[batch, frames, 1]`), if the preset uses one: of the
    /// raw or the windowed frame floored at `f32::EPSILON` (Kaldi), or of the power spectrum's
    /// sum with an exact zero replaced by `f64::EPSILON` (python_speech_features).
    fn log_energy(&self, graph: &mut GraphBuilder, centred: &str, power: &str) -> Option<String> {
        let sum_squares = |graph: &mut GraphBuilder, x: &str| {
            let energy = graph.node(
                "ReduceSumSquare",
                &[x],
                vec![
                    ("axes", Attribute::Ints(vec![2])),
                    ("keepdims", Attribute::Int(1)),
                ],
            );
            let floor = graph.constant_f32("epsilon", &[], &[f32::EPSILON]);
            graph.node("Max", &[&energy, &floor], vec![])
        };
        let energy = match self.options.cepstral.energy {
            Energy::None => return None,
            Energy::RawFrame => sum_squares(graph, centred),
            Energy::WindowedFrame => {
                let shaped = self.shaped(graph, centred);
                sum_squares(graph, &shaped)
            }
            Energy::SpectrumSum => {
                let axes = graph.constant_i64("axis2_1d", &[1], &[2]);
                let total = graph.node(
                    "ReduceSum",
                    &[power, &axes],
                    vec![("keepdims", Attribute::Int(1))],
                );
                let zero = graph.constant_f32("zero_f32", &[], &[0.0]);
                let is_zero = graph.node("Equal", &[&total, &zero], vec![]);
                let epsilon = graph.constant_f32("f64_epsilon", &[], &[f64::EPSILON as f32]);
                graph.node("Where", &[&is_zero, &epsilon, &total], vec![])
            }
        };
        let mut log_energy = graph.node("Log", &[&energy], vec![]);
        let energy_floor = self.options.cepstral.energy_floor;
        if energy_floor > 0.0 {
            let floor = graph.constant_f32("log_energy_floor", &[], &[energy_floor.ln()]);
            log_energy = graph.node("Max", &[&log_energy, &floor], vec![]);
        }
        Some(log_energy)
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
        let n_fft = self.n_fft();
        let bins = n_fft / 2 + 1;
        let shaping = self.shaping_matrix();
        let dft = |part: fn(f64) -> f64| -> Vec<f32> {
            let mut out = vec![0.0f32; win * bins];
            for i in 0..win {
                for k in 0..bins {
                    let mut sum = 0.0f64;
                    // Row i of the shaping matrix is zero outside columns i and i + 1.
                    for j in i..(i + 2).min(win) {
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

    /// The mel energies of `power` on the preset's log scale; decibels are floored at `top_db`
    /// under the peak of each utterance's own frames (`valid`, bool `[batch, frames, 1]`).
    fn log_mel(&self, graph: &mut GraphBuilder, power: &str, valid: &str) -> String {
        let dense = self.extractor.filterbank().to_dense();
        let (mels, bins) = (dense.len(), dense.first().map_or(0, Vec::len));
        let transposed: Vec<f32> = (0..bins)
            .flat_map(|b| dense.iter().map(move |row| row[b]))
            .collect();
        let mel = graph.constant_f32("mel_filterbank", &[bins, mels], &transposed);
        let energies = graph.node("MatMul", &[power, &mel], vec![]);
        let (floor, db_top) = match self.options.mel.log {
            LogScale::Natural { floor } => (floor, None),
            LogScale::Decibel { amin, top_db } => (amin, Some(top_db)),
        };
        let floor = graph.constant_f32("log_floor", &[], &[floor]);
        let floored = graph.node("Max", &[&energies, &floor], vec![]);
        let log = graph.node("Log", &[&floored], vec![]);
        let Some(top_db) = db_top else {
            return log;
        };
        let db_per_neper = 10.0 * std::f32::consts::LOG10_E;
        let db_per_neper = graph.constant_f32("db_per_neper", &[], &[db_per_neper]);
        let db = graph.node("Mul", &[&log, &db_per_neper], vec![]);
        let Some(top_db) = top_db else {
            return db;
        };
        let lowest = graph.constant_f32("lowest", &[], &[f32::NEG_INFINITY]);
        let own = graph.node("Where", &[valid, &db, &lowest], vec![]);
        let peak = graph.node(
            "ReduceMax",
            &[&own],
            vec![
                ("axes", Attribute::Ints(vec![1, 2])),
                ("keepdims", Attribute::Int(1)),
            ],
        );
        let top_db = graph.constant_f32("top_db", &[], &[top_db]);
        let bottom = graph.node("Sub", &[&peak, &top_db], vec![]);
        graph.node("Max", &[&db, &bottom], vec![])
    }

    /// DCT-II and lifter as one `[mels, n_mfcc]` matrix; c0 replaced by the log energy if
    /// the preset uses one.
    fn cepstra(&self, graph: &mut GraphBuilder, log_mel: &str, log_energy: Option<&str>) -> String {
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
        let Some(log_energy) = log_energy else {
            return cepstra;
        };
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

/// `[batch, frames, win]` frames read from each utterance's own samples, `index` `[frames,
/// win]` of sample indices extended past its ends by `pad`: zeros, or numpy's `reflect` (the
/// index folded with period `2(n − 1)`, as `features`' stream does).
fn padded_frames(
    graph: &mut GraphBuilder,
    signal: &str,
    lengths: &str,
    index: &str,
    pad: Padding,
) -> String {
    let n = unsqueeze(graph, lengths, 1);
    let n = unsqueeze(graph, &n, 2);
    let index = unsqueeze(graph, index, 0);
    let source = match pad {
        Padding::Zero => index,
        Padding::Reflect => {
            let one = graph.constant_i64("one", &[], &[1]);
            let two = graph.constant_i64("two", &[], &[2]);
            let last = graph.node("Sub", &[&n, &one], vec![]);
            let period = graph.node("Mul", &[&last, &two], vec![]);
            let period = graph.node("Max", &[&period, &one], vec![]);
            let folded = graph.node("Mod", &[&index, &period], vec![]);
            let beyond = graph.node("GreaterOrEqual", &[&folded, &n], vec![]);
            let mirrored = graph.node("Sub", &[&period, &folded], vec![]);
            graph.node("Where", &[&beyond, &mirrored, &folded], vec![])
        }
    };
    // One zero sample after the batch's last, so that an empty batch has one to point at.
    let pads = graph.constant_i64("one_trailing_sample", &[4], &[0, 0, 0, 1]);
    let signal = graph.node("Pad", &[signal, &pads], vec![]);
    let samples = axis_size(graph, &signal, 1);
    let zero = graph.constant_i64("zero", &[], &[0]);
    let one = graph.constant_i64("one", &[], &[1]);
    let after = graph.node("GreaterOrEqual", &[&source, &zero], vec![]);
    let before = graph.node("Less", &[&source, &n], vec![]);
    let inside = graph.node("And", &[&after, &before], vec![]);
    let last = graph.node("Sub", &[&samples, &one], vec![]);
    let clamped = graph.node("Where", &[&inside, &source, &last], vec![]);
    let batch = axis_size(graph, &signal, 0);
    let b = count_to(graph, &batch);
    let b = unsqueeze(graph, &b, 1);
    let b = unsqueeze(graph, &b, 2);
    let row_start = graph.node("Mul", &[&b, &samples], vec![]);
    let flat_index = graph.node("Add", &[&clamped, &row_start], vec![]);
    let everything = graph.constant_i64("flat", &[1], &[-1]);
    let flat = graph.node("Reshape", &[&signal, &everything], vec![]);
    graph.node(
        "Gather",
        &[&flat, &flat_index],
        vec![("axis", Attribute::Int(0))],
    )
}

/// `[batch, frames, 1]` bool: true on each utterance's own frames, false on padding.
fn valid_frames(graph: &mut GraphBuilder, x: &str, frame_lengths: &str) -> String {
    let frames = axis_size(graph, x, 1);
    let t = count_to(graph, &frames);
    let t = unsqueeze(graph, &t, 0);
    let lengths = unsqueeze(graph, frame_lengths, 1);
    let valid = graph.node("Less", &[&t, &lengths], vec![]);
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
