//! Every golden case written by `reference/make_goldens.py` (Kaldi through
//! kaldi-native-fbank, librosa, python_speech_features, scipy), reproduced by
//! our presets: frame counts exactly, values within each case's tolerance.

use std::path::{Path, PathBuf};

use features::{
    Channel, Cmvn, FeatureExtractor, FeatureOptions, MelFilterbank, MelNorm, MelScale, Output,
    Span, Vtln, Window, add_deltas, apply_cmvn, dct_matrix, read_npy, read_wav, window,
};
use serde_json::Value;

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn cases() -> Vec<Value> {
    let text =
        std::fs::read_to_string(tests_dir().join("reference/goldens.json")).expect("manifest");
    serde_json::from_str::<Vec<Value>>(&text).expect("json")
}

/// Our options for a case: its preset plus the overrides the script recorded.
fn options_for(case: &Value, sample_rate: u32) -> FeatureOptions {
    let o = &case["options"];
    let mut options = FeatureOptions::preset(
        o["preset"]
            .as_str()
            .expect("preset")
            .parse()
            .expect("known preset"),
    );
    options.frame.sample_rate = o["sample_rate"].as_u64().map_or(sample_rate, |r| r as u32);
    let int = |key: &str| o[key].as_u64().map(|v| v as usize);
    if let Some(n) = int("n_fft") {
        options.frame.n_fft = Some(n);
    }
    if let Some(n) = int("win_length") {
        options.frame.win_length = Some(Span::Samples(n));
    }
    if let Some(n) = int("hop_length") {
        options.frame.hop_length = Some(Span::Samples(n));
    }
    if let Some(n) = int("n_mels") {
        options.mel.n_mels = n;
    }
    if let Some(n) = int("n_mfcc") {
        options.cepstral.n_mfcc = n;
    }
    if let Some(f) = o["fmin"].as_f64() {
        options.mel.fmin = f as f32;
    }
    if let Some(f) = o["fmax"].as_f64() {
        options.mel.fmax = Some(f as f32);
    }
    if o["mel_scale"] == "htk" {
        options.mel.scale = MelScale::Htk;
    }
    if o["mel_norm"] == "none" {
        options.mel.norm = MelNorm::None;
    }
    if let Some(warp) = o["vtln_warp"].as_f64() {
        options.mel.vtln = Some(Vtln {
            warp: warp as f32,
            ..Vtln::default()
        });
    }
    options
}

/// Checks |ours − golden| ≤ atol + rtol·|golden| everywhere; returns a message on failure.
fn compare(case: &Value, shape: &[usize], ours: &[f32]) -> Result<f64, String> {
    let name = case["name"].as_str().expect("name");
    let golden = read_npy(
        tests_dir()
            .join("reference")
            .join(case["output"].as_str().expect("output")),
    )
    .map_err(|e| format!("{name}: {e}"))?;
    if golden.shape != shape {
        return Err(format!(
            "{name}: shape {shape:?}, golden {:?}",
            golden.shape
        ));
    }
    let (atol, rtol) = (
        case["atol"].as_f64().expect("atol"),
        case["rtol"].as_f64().expect("rtol"),
    );
    let mut worst = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(&golden.data).enumerate() {
        let (a, b) = (*a as f64, *b as f64);
        let excess = (a - b).abs() / (atol + rtol * b.abs());
        if excess.is_nan() || excess > 1.0 {
            return Err(format!(
                "{name}: element {i}: ours {a}, golden {b} (tolerance {atol} + {rtol}·|b|)"
            ));
        }
        worst = worst.max(excess);
    }
    Ok(worst)
}

fn run(case: &Value) -> Result<f64, String> {
    let o = &case["options"];
    let int = |key: &str| o[key].as_u64().expect(key) as usize;
    match case["kind"].as_str().expect("kind") {
        "mfcc" | "log_mel" | "power_spectrum" => {
            let input = tests_dir().join(case["input"].as_str().expect("input"));
            let audio = read_wav(&input, Channel::Mean).map_err(|e| e.to_string())?;
            let extractor = FeatureExtractor::new(options_for(case, audio.sample_rate))
                .map_err(|e| e.to_string())?;
            let output = match case["kind"].as_str() {
                Some("mfcc") => Output::Mfcc,
                Some("log_mel") => Output::LogMel,
                _ => Output::Spectrum,
            };
            let features = extractor
                .compute(&audio.samples, output)
                .map_err(|e| e.to_string())?;
            if output == Output::Spectrum {
                let (first, rows) = (
                    int("first_frame"),
                    case["shape"][0].as_u64().expect("rows") as usize,
                );
                let picked = &features.data[first * features.dim..(first + rows) * features.dim];
                return compare(case, &[rows, features.dim], picked);
            }
            compare(case, &[features.num_frames, features.dim], &features.data)
        }
        "window" => {
            let periodic = o["periodic"].as_bool().expect("periodic");
            let kind = match o["window"].as_str().expect("window") {
                "hann" => Window::Hann { periodic },
                "hamming" => Window::Hamming { periodic },
                "blackman" => Window::Blackman { periodic },
                "povey" => Window::Povey,
                other => return Err(format!("unknown window {other}")),
            };
            let length = int("length");
            compare(case, &[length], &window(kind, length))
        }
        "mel_matrix" => {
            let options = options_for(case, 0);
            let dense = MelFilterbank::new(&options)
                .map_err(|e| e.to_string())?
                .to_dense();
            compare(case, &[dense.len(), dense[0].len()], &dense.concat())
        }
        "dct" => {
            let (n_mfcc, n_mels) = (int("n_mfcc"), int("n_mels"));
            compare(case, &[n_mfcc, n_mels], &dct_matrix(n_mfcc, n_mels))
        }
        "deltas" | "cmvn" => {
            let source = read_npy(tests_dir().join(format!(
                "reference/golden/{}.npy",
                o["source"].as_str().expect("source")
            )))
            .map_err(|e| e.to_string())?;
            let mut features = features::Features {
                num_frames: source.shape[0],
                dim: source.shape[1],
                data: source.data,
            };
            if case["kind"] == "deltas" {
                features = add_deltas(&features, int("order"), int("window"));
                let dim = features.dim;
                let keep = source.shape[1] * int("order");
                // psf's `delta` returns only the first-order block.
                let picked: Vec<f32> = if o["order"] == 1 {
                    features
                        .frames()
                        .flat_map(|f| f[dim - keep..].to_vec())
                        .collect()
                } else {
                    features.data.clone()
                };
                let width = if o["order"] == 1 { keep } else { dim };
                compare(case, &[features.num_frames, width], &picked)
            } else {
                let variance = o["variance"].as_bool().expect("variance");
                apply_cmvn(&mut features, Cmvn::Utterance { variance })
                    .map_err(|e| e.to_string())?;
                compare(case, &[features.num_frames, features.dim], &features.data)
            }
        }
        other => Err(format!("unknown case kind {other}")),
    }
}

#[test]
fn every_golden_case_matches_its_reference() {
    let cases = cases();
    assert!(
        cases.len() >= 60,
        "the manifest lists {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        match run(case) {
            Ok(worst) => println!(
                "{:45} worst {:.3} of tolerance",
                case["name"].as_str().unwrap_or("?"),
                worst
            ),
            Err(message) => failures.push(message),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn golden_inputs_are_the_files_the_script_hashed() {
    for case in cases() {
        let (Some(input), Some(hash)) = (case["input"].as_str(), case["input_sha256"].as_str())
        else {
            continue;
        };
        let bytes = std::fs::read(tests_dir().join(input)).expect("input file");
        assert_eq!(
            sha256_hex(&bytes),
            hash,
            "{input} changed since the goldens were made"
        );
    }
}

/// SHA-256 (FIPS 180-4), enough to check the golden inputs without another dependency.
fn sha256_hex(bytes: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = bytes.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((bytes.len() as u64) * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (h, v) in h.iter_mut().zip(v) {
            *h = h.wrapping_add(v);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}
