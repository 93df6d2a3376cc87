//! Reading every WAV encoding, refusing bad input with typed errors, streaming
//! equal to whole-signal computation, resampling, `.npy` files and CMVN.

use std::path::{Path, PathBuf};

use features::{
    Audio, Channel, Cmvn, FeatureError, FeatureExtractor, FeatureOptions, Features, Framing,
    LogScale, MelFilterbank, Output, Padding, Preset, Vtln, WavBlocks, apply_cmvn, decode_wav,
    read_npy, read_wav, resample, write_npy,
};

fn audio_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/audio")
        .join(name)
}

fn digit(name: &str, channel: Channel) -> Audio {
    read_wav(audio_path(name), channel).expect("readable test file")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_pcm_width_and_float_decodes_to_the_same_samples() {
    let reference = digit("digit7_8k.wav", Channel::Mean);
    assert_eq!(
        (reference.sample_rate, reference.samples.len()),
        (8000, 6561)
    );
    for exact in [
        "digit7_s24_extensible.wav",
        "digit7_s32.wav",
        "digit7_f32.wav",
    ] {
        let audio = digit(exact, Channel::Mean);
        assert_eq!(audio.sample_rate, 8000, "{exact}");
        assert_eq!(max_diff(&audio.samples, &reference.samples), 0.0, "{exact}");
    }
    let u8 = digit("digit7_u8.wav", Channel::Mean);
    assert!(
        max_diff(&u8.samples, &reference.samples) <= 1.0 / 128.0,
        "8-bit within one step"
    );
}

#[test]
fn channels_are_picked_or_averaged() {
    let mono = digit("digit7_8k.wav", Channel::Mean).samples;
    let left = digit("digit7_stereo.wav", Channel::Index(0)).samples;
    assert!(
        max_diff(&left, &mono) <= 1.0 / 32768.0,
        "sox's remix dithers by one step"
    );
    let right = digit("digit7_stereo.wav", Channel::Index(1)).samples;
    let half: Vec<f32> = mono.iter().map(|x| x * 0.5).collect();
    assert!(max_diff(&right, &half) <= 1.0 / 32768.0);
    let mean = digit("digit7_stereo.wav", Channel::Mean).samples;
    let expected: Vec<f32> = left
        .iter()
        .zip(&right)
        .map(|(l, r)| (l + r) / 2.0)
        .collect();
    assert!(max_diff(&mean, &expected) < 1e-7);
    let missing = read_wav(audio_path("digit7_stereo.wav"), Channel::Index(2));
    assert!(
        matches!(
            missing,
            Err(FeatureError::NoSuchChannel {
                index: 2,
                channels: 2
            })
        ),
        "{missing:?}"
    );
}

fn wav_bytes(
    spec: hound::WavSpec,
    write: impl FnOnce(&mut hound::WavWriter<std::io::Cursor<&mut Vec<u8>>>),
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).expect("writer");
    write(&mut writer);
    writer.finalize().expect("finalize");
    bytes
}

#[test]
fn bad_files_give_typed_errors() {
    let good = std::fs::read(audio_path("digit7_8k.wav")).expect("file");
    let decode = |bytes: &[u8]| decode_wav(bytes, Channel::Mean);

    assert!(matches!(
        decode(b"this is not audio at all, just text"),
        Err(FeatureError::NotWav(_))
    ));
    assert!(
        matches!(decode(&good[..20]), Err(FeatureError::NotWav(_))),
        "cut inside the header"
    );
    assert!(matches!(decode(&[]), Err(FeatureError::NotWav(_))), "empty");
    let truncated = decode(&good[..good.len() - 1000]);
    assert!(
        matches!(truncated, Err(FeatureError::Truncated { expected, found }) if expected == found + 1000),
        "{truncated:?}"
    );
    let alaw = read_wav(audio_path("alaw.wav"), Channel::Mean);
    assert!(
        matches!(alaw, Err(FeatureError::UnsupportedEncoding(_))),
        "{alaw:?}"
    );
    let missing = read_wav(audio_path("no-such-file.wav"), Channel::Mean);
    assert!(
        matches!(missing, Err(FeatureError::Io { .. })),
        "{missing:?}"
    );

    let mut zero_rate = good.clone();
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    assert!(decode(&zero_rate).is_err(), "zero sample rate");
    let mut absurd_rate = good.clone();
    absurd_rate[24..28].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    let absurd = decode(&absurd_rate);
    assert!(
        matches!(
            absurd,
            Err(FeatureError::BadSampleRate(_) | FeatureError::NotWav(_))
        ),
        "{absurd:?}"
    );
    let mut zero_channels = good.clone();
    zero_channels[22..24].copy_from_slice(&0u16.to_le_bytes());
    assert!(decode(&zero_channels).is_err(), "zero channels");

    let float = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    for bad in [f32::NAN, f32::INFINITY] {
        let bytes = wav_bytes(float, |w| {
            for v in [0.0, 0.5, bad, 0.1] {
                w.write_sample(v).expect("sample");
            }
        });
        assert!(matches!(
            decode(&bytes),
            Err(FeatureError::NonFiniteSample { index: 2, .. })
        ));
    }
}

fn speech() -> Vec<f32> {
    digit("goforward_16k.wav", Channel::Mean).samples
}

fn chunked(
    extractor: &FeatureExtractor,
    samples: &[f32],
    output: Output,
    sizes: &[usize],
) -> Features {
    let mut stream = extractor.stream(output).expect("streamable");
    let mut frames = Features::empty(extractor.dim(output));
    let (mut at, mut i) = (0, 0);
    while at < samples.len() {
        let size = sizes[i % sizes.len()].min(samples.len() - at);
        frames.append(&stream.push(&samples[at..at + size]));
        at += size;
        i += 1;
    }
    frames.append(&stream.finish());
    frames
}

#[test]
fn streaming_in_any_chunks_equals_the_whole_signal() {
    let samples = &speech()[..12345];
    let mut librosa = FeatureOptions::preset(Preset::Librosa);
    librosa.frame.sample_rate = 16000;
    librosa.mel.log = LogScale::Decibel {
        amin: 1e-10,
        top_db: None,
    };
    let mut reflect = librosa.clone();
    reflect.frame.framing = Framing::Centered {
        pad: Padding::Reflect,
    };
    let mut dithered = FeatureOptions::preset(Preset::Kaldi);
    dithered.frame.dither = 1.0;
    for (name, options) in [
        ("kaldi", FeatureOptions::preset(Preset::Kaldi)),
        ("htk", FeatureOptions::preset(Preset::Htk)),
        ("librosa", librosa),
        ("librosa reflect", reflect),
        ("kaldi dithered", dithered),
    ] {
        let extractor = FeatureExtractor::new(options).expect("valid");
        for output in [Output::Mfcc, Output::LogMel] {
            let whole = extractor.compute(samples, output).expect("computes");
            assert_eq!(
                whole.num_frames,
                extractor.num_frames(samples.len()),
                "{name}"
            );
            for sizes in [&[1usize][..], &[7, 160, 1], &[399, 401], &[5000]] {
                let streamed = chunked(&extractor, samples, output, sizes);
                assert_eq!(streamed.num_frames, whole.num_frames, "{name} {sizes:?}");
                let diff = max_diff(&streamed.data, &whole.data);
                assert!(
                    diff <= 1e-6,
                    "{name} {output:?} chunks {sizes:?}: differs by {diff}"
                );
            }
        }
    }
}

#[test]
fn top_db_refuses_to_stream() {
    let mut options = FeatureOptions::preset(Preset::Librosa);
    options.frame.sample_rate = 16000;
    let extractor = FeatureExtractor::new(options).expect("valid");
    assert!(matches!(
        extractor.stream(Output::Mfcc),
        Err(FeatureError::NeedsWholeInput(_))
    ));
}

#[test]
fn dither_is_seeded() {
    let samples = &speech()[..4000];
    let mut options = FeatureOptions::preset(Preset::Kaldi);
    let plain = FeatureExtractor::new(options.clone())
        .expect("valid")
        .mfcc(samples)
        .expect("mfcc");
    options.frame.dither = 1.0;
    let once = FeatureExtractor::new(options.clone())
        .expect("valid")
        .mfcc(samples)
        .expect("mfcc");
    let again = FeatureExtractor::new(options.clone())
        .expect("valid")
        .mfcc(samples)
        .expect("mfcc");
    options.frame.dither_seed = 7;
    let other = FeatureExtractor::new(options)
        .expect("valid")
        .mfcc(samples)
        .expect("mfcc");
    assert_eq!(once, again);
    assert_ne!(once, plain);
    assert_ne!(once, other);
}

#[test]
fn non_finite_samples_and_bad_options_are_refused() {
    let extractor = FeatureExtractor::new(FeatureOptions::default()).expect("valid");
    let mut samples = vec![0.0f32; 1000];
    samples[500] = f32::NAN;
    assert!(matches!(
        extractor.mfcc(&samples),
        Err(FeatureError::NonFiniteSample { index: 500, .. })
    ));

    let mut too_long = FeatureOptions::default();
    too_long.frame.n_fft = Some(256);
    let mut too_many = FeatureOptions::default();
    too_many.cepstral.n_mfcc = 40;
    let mut above_nyquist = FeatureOptions::default();
    above_nyquist.mel.fmax = Some(9000.0);
    for options in [too_long, too_many, above_nyquist] {
        assert!(matches!(
            FeatureExtractor::new(options),
            Err(FeatureError::InvalidOptions(_))
        ));
    }
}

#[test]
fn resampling_keeps_a_tone_and_the_duration() {
    let tone = |rate: u32, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    };
    let audio = Audio {
        sample_rate: 8000,
        samples: tone(8000, 8000),
    };
    let up = resample(&audio, 16000).expect("resamples");
    assert_eq!((up.sample_rate, up.samples.len()), (16000, 16000));
    let expected = tone(16000, 16000);
    let middle = 2000..14000;
    let diff = max_diff(&up.samples[middle.clone()], &expected[middle]);
    assert!(diff < 1e-2, "440 Hz tone after 8→16 kHz differs by {diff}");
    let down = resample(
        &Audio {
            sample_rate: 44100,
            samples: tone(44100, 44100),
        },
        16000,
    )
    .expect("resamples");
    assert_eq!(down.samples.len(), 16000);
    let diff = max_diff(&down.samples[2000..14000], &tone(16000, 16000)[2000..14000]);
    // rubato reports its delay in whole output samples; a fraction of a sample remains.
    assert!(
        diff < 3e-2,
        "440 Hz tone after 44.1→16 kHz differs by {diff}"
    );
}

#[test]
fn npy_round_trips_and_leaves_no_temporary_file() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("features.npy");
    let features = Features {
        num_frames: 3,
        dim: 2,
        data: vec![1.0, -2.0, 3.5, 0.25, 1e-8, -7.0],
    };
    write_npy(&path, &features).expect("writes");
    let read = read_npy(&path).expect("reads");
    assert_eq!(read.shape, vec![3, 2]);
    assert_eq!(read.data, features.data);
    let names: Vec<_> = std::fs::read_dir(directory.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("features.npy")]);
    assert!(write_npy(directory.path().join("missing/dir/x.npy"), &features).is_err());
}

#[test]
fn sliding_cmvn_over_the_whole_utterance_equals_utterance_cmvn() {
    let extractor = FeatureExtractor::new(FeatureOptions::default()).expect("valid");
    let mfcc = extractor.mfcc(&speech()).expect("mfcc");
    for variance in [false, true] {
        let mut utterance = mfcc.clone();
        apply_cmvn(&mut utterance, Cmvn::Utterance { variance }).expect("cmvn");
        let mut sliding = mfcc.clone();
        let window = 2 * mfcc.num_frames;
        apply_cmvn(
            &mut sliding,
            Cmvn::Sliding {
                window,
                center: true,
                min_window: 100,
                variance,
            },
        )
        .expect("cmvn");
        assert!(max_diff(&utterance.data, &sliding.data) < 1e-4);
        let mut short = mfcc.clone();
        apply_cmvn(
            &mut short,
            Cmvn::Sliding {
                window: 50,
                center: false,
                min_window: 10,
                variance,
            },
        )
        .expect("cmvn");
        assert!(
            max_diff(&utterance.data, &short.data) > 1e-2,
            "a short window normalises locally"
        );
    }
}

#[test]
fn power_spectrum_equals_a_direct_dft_for_even_and_odd_sizes() {
    let samples = &speech()[8000..8000 + 600];
    for n_fft in [400usize, 401, 512, 255] {
        let mut options = FeatureOptions::preset(Preset::Kaldi);
        options.frame.win_length = Some(features::Span::Samples(n_fft.min(400)));
        options.frame.n_fft = Some(n_fft);
        options.frame.window = features::Window::Rectangular;
        options.frame.remove_dc_offset = false;
        options.frame.preemphasis = features::Preemphasis::None;
        options.frame.sample_scale = 1.0;
        let extractor = FeatureExtractor::new(options).expect("valid");
        let spectrum = extractor
            .compute(samples, Output::Spectrum)
            .expect("computes");
        assert_eq!(spectrum.dim, n_fft / 2 + 1);
        let frame = &samples[..n_fft.min(400)];
        for (k, &ours) in spectrum.frame(0).iter().enumerate() {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (n, &x) in frame.iter().enumerate() {
                let angle = -2.0 * std::f64::consts::PI * (k * n) as f64 / n_fft as f64;
                re += x as f64 * angle.cos();
                im += x as f64 * angle.sin();
            }
            let direct = re * re + im * im;
            assert!(
                (ours as f64 - direct).abs() <= 1e-4 * direct.max(1e-3),
                "n_fft {n_fft}, bin {k}: {ours} vs {direct}"
            );
        }
    }
}

/// Thousands of damaged copies of a real file (header bytes changed, data cut
/// short): each one either decodes and gives features, or returns an error.
/// A panic or an abort fails the test. (`fuzz/` runs the same path coverage-guided.)
#[test]
fn damaged_files_never_panic() {
    let good = std::fs::read(audio_path("digit7_8k.wav")).expect("file");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % 64) as usize;
            bytes[at] = next() as u8;
        }
        if next() % 3 == 0 {
            bytes.truncate((next() % good.len() as u64) as usize);
        }
        match decode_wav(&bytes[..], Channel::Mean) {
            Ok(audio) => {
                decoded += 1;
                let mut options = FeatureOptions::preset(Preset::Kaldi);
                options.frame.sample_rate = audio.sample_rate;
                if let Ok(extractor) = FeatureExtractor::new(options) {
                    let _ = extractor.mfcc(&audio.samples);
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(
        decoded > 100 && refused > 100,
        "decoded {decoded}, refused {refused}"
    );
}

/// Writes a 16-bit mono WAV of a `hz` tone, one second long.
fn tone_wav(path: &Path, rate: u32, hz: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..rate {
        let x = (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5;
        writer.write_sample((x * 32767.0) as i16).expect("sample");
    }
    writer.finalize().expect("finalize");
}

/// The FFT bin with the most power, averaged over frames.
fn peak_bin(spectrum: &Features) -> usize {
    let mut mean = vec![0.0f64; spectrum.dim];
    for frame in spectrum.data.chunks(spectrum.dim) {
        mean.iter_mut()
            .zip(frame)
            .for_each(|(m, &p)| *m += p as f64);
    }
    (0..mean.len())
        .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
        .expect("bins")
}

/// A one-second 1 kHz tone at 8 kHz in a temporary folder (kept alive by the first value),
/// and a pipeline giving its power spectrum without dither.
fn tone_spectrum_pipeline() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    features::FilePipeline,
) {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("tone.wav");
    tone_wav(&path, 8000, 1000.0);
    let mut options = FeatureOptions::preset(Preset::Kaldi);
    options.frame.sample_rate = 8000;
    options.frame.dither = 0.0;
    let mut pipeline = features::FilePipeline::new(options);
    pipeline.output = Output::Spectrum;
    (directory, path, pipeline)
}

#[test]
fn speed_perturbation_raises_pitch_and_shortens_the_file() {
    let (_directory, path, mut pipeline) = tone_spectrum_pipeline();
    let plain = pipeline.run(&path).expect("plain");
    pipeline.speed = 1.25;
    let faster = pipeline.run(&path).expect("faster");
    // 256-point FFT at 8 kHz: 31.25 Hz per bin; 1000 Hz → bin 32, 1250 Hz → bin 40.
    assert_eq!(peak_bin(&plain), 32);
    assert_eq!(peak_bin(&faster), 40);
    // 98 frames of 25/10 ms in one second; 0.8 s gives 78.
    assert_eq!((plain.num_frames, faster.num_frames), (98, 78));
    // Bytes already in memory (the feature cache hashes them) give the same features.
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(pipeline.run_bytes(&bytes).expect("from bytes"), faster);
    pipeline.speed = 0.0;
    assert!(matches!(
        pipeline.run(&path),
        Err(FeatureError::InvalidOptions(_))
    ));
}

#[test]
fn vtln_warp_moves_the_bands_and_bad_warps_are_refused() {
    let centre_of_band = |warp: f32, band: usize| {
        let mut options = FeatureOptions::preset(Preset::Kaldi);
        options.frame.sample_rate = 8000;
        options.mel.vtln = Some(Vtln {
            warp,
            ..Vtln::default()
        });
        let bank = MelFilterbank::new(&options).expect("valid");
        let filter = &bank.filters[band];
        let peak = (0..filter.weights.len())
            .max_by(|&a, &b| filter.weights[a].total_cmp(&filter.weights[b]))
            .expect("weights");
        filter.first + peak
    };
    // Warp > 1 moves the bands down in frequency, < 1 up; 1 changes nothing.
    for band in [5, 12, 18] {
        assert!(centre_of_band(1.15, band) < centre_of_band(1.0, band));
        assert!(centre_of_band(0.85, band) > centre_of_band(1.0, band));
    }
    let mut plain = FeatureOptions::preset(Preset::Kaldi);
    plain.frame.sample_rate = 8000;
    let mut unit = plain.clone();
    unit.mel.vtln = Some(Vtln::default());
    assert_eq!(
        MelFilterbank::new(&plain).expect("plain"),
        MelFilterbank::new(&unit).expect("warp 1")
    );
    for vtln in [
        Vtln {
            warp: 0.0,
            ..Vtln::default()
        },
        Vtln {
            warp: f32::NAN,
            ..Vtln::default()
        },
        Vtln {
            low: 10.0,
            ..Vtln::default()
        },
        Vtln {
            high: 4100.0,
            ..Vtln::default()
        },
        Vtln {
            warp: 2.0,
            high: 3000.0,
            low: 1900.0,
        },
    ] {
        let mut options = plain.clone();
        options.mel.vtln = Some(vtln);
        assert!(
            matches!(options.validate(), Err(FeatureError::InvalidOptions(_))),
            "{vtln:?} accepted"
        );
    }
}

#[test]
fn white_noise_is_added_at_the_asked_snr_and_repeats_per_file() {
    let tone = |hz: f32| -> Vec<f32> {
        (0..16000)
            .map(|n| 0.3 * (2.0 * std::f32::consts::PI * hz * n as f32 / 8000.0).sin())
            .collect()
    };
    let snr_of = |clean: &[f32], noisy: &[f32]| {
        let signal: f64 = clean.iter().map(|&x| (x as f64).powi(2)).sum();
        let noise: f64 = clean
            .iter()
            .zip(noisy)
            .map(|(&a, &b)| (b as f64 - a as f64).powi(2))
            .sum();
        10.0 * (signal / noise).log10()
    };
    for snr in [0.0f32, 10.0, 30.0] {
        let clean = tone(440.0);
        let mut noisy = clean.clone();
        features::noise::add_white_noise(&mut noisy, snr);
        assert!(
            (snr_of(&clean, &noisy) - snr as f64).abs() < 0.1,
            "{snr} dB"
        );
        // Seeded by the samples: the same file gets the same noise, another file other noise.
        let mut again = clean.clone();
        features::noise::add_white_noise(&mut again, snr);
        assert_eq!(again, noisy);
        let other = tone(880.0);
        let mut other_noisy = other.clone();
        features::noise::add_white_noise(&mut other_noisy, snr);
        let noise = |c: &[f32], n: &[f32]| c.iter().zip(n).map(|(a, b)| b - a).collect::<Vec<_>>();
        assert_ne!(noise(&clean, &noisy), noise(&other, &other_noisy));
    }
    let mut silence = vec![0.0f32; 100];
    features::noise::add_white_noise(&mut silence, 10.0);
    assert!(silence.iter().all(|&x| x == 0.0));

    // In a pipeline: a 1 kHz tone's spectrum gets a floor, 10 dB more at 10 dB than at 20.
    let (_directory, path, mut pipeline) = tone_spectrum_pipeline();
    let floor = |pipeline: &features::FilePipeline| {
        let spectrum = pipeline.run(&path).expect("runs");
        // Mean power of the bins well away from the tone (bin 32) and its window leakage.
        let (mut sum, mut count) = (0.0f64, 0usize);
        for frame in spectrum.data.chunks(spectrum.dim) {
            for &p in frame[60..120].iter() {
                sum += p as f64;
                count += 1;
            }
        }
        10.0 * (sum / count as f64).log10()
    };
    pipeline.noise_snr_db = Some(20.0);
    let at_20 = floor(&pipeline);
    pipeline.noise_snr_db = Some(10.0);
    let at_10 = floor(&pipeline);
    assert!(
        (at_10 - at_20 - 10.0).abs() < 0.5,
        "{at_20} dB → {at_10} dB"
    );
    pipeline.noise_snr_db = Some(f32::NAN);
    assert!(matches!(
        pipeline.run(&path),
        Err(FeatureError::InvalidOptions(_))
    ));
}

/// `samples` (±1) as 16-bit WAV bytes with `channels` identical-length channels, the
/// second channel the first one halved.
fn long_wav(samples: &[f32], channels: u16) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    wav_bytes(spec, |w| {
        for &s in samples {
            for c in 0..channels {
                let value = if c == 0 { s } else { s * 0.5 };
                w.write_sample((value * 32767.0).round() as i16)
                    .expect("sample");
            }
        }
    })
}

fn blocks_joined(bytes: &[u8], channel: Channel) -> Result<Vec<f32>, FeatureError> {
    let mut wav = WavBlocks::new(bytes, channel)?;
    let mut joined = Vec::new();
    while let Some(block) = wav.next_block()? {
        joined.extend_from_slice(block);
    }
    Ok(joined)
}

#[test]
fn reading_in_blocks_gives_the_samples_and_errors_of_reading_whole() {
    // Every encoding of the test files, and a stereo file several blocks long.
    let long: Vec<f32> = speech().iter().copied().cycle().take(300_001).collect();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(audio_path(""))
        .expect("test audio")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("reads")))
        .collect();
    files.push(("long stereo".into(), long_wav(&long, 2)));
    for (name, bytes) in &files {
        for channel in [Channel::Mean, Channel::Index(0), Channel::Index(1)] {
            match (
                decode_wav(&bytes[..], channel),
                blocks_joined(bytes, channel),
            ) {
                (Ok(whole), Ok(joined)) => assert_eq!(whole.samples, joined, "{name} {channel:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
                (a, b) => panic!("{name} {channel:?}: {a:?} against {:?}", b.map(|b| b.len())),
            }
        }
    }
    let mut truncated = long_wav(&long, 1);
    truncated.truncate(truncated.len() - 1001);
    let expected = FeatureError::Truncated {
        expected: 600_002,
        found: 599_001,
    };
    let whole = decode_wav(&truncated[..], Channel::Mean).expect_err("truncated");
    assert_eq!(whole.to_string(), expected.to_string());
    let blocks = blocks_joined(&truncated, Channel::Mean).expect_err("truncated");
    assert_eq!(blocks.to_string(), expected.to_string());
}

#[test]
fn features_of_a_file_read_in_blocks_equal_the_whole_signal_bit_for_bit() {
    let long: Vec<f32> = speech().iter().copied().cycle().take(400_003).collect();
    let bytes = long_wav(&long, 1);
    let samples = decode_wav(&bytes[..], Channel::Mean)
        .expect("decodes")
        .samples;
    let mut librosa = FeatureOptions::preset(Preset::Librosa);
    librosa.frame.sample_rate = 16000;
    let mut mfcc_as_wide_as_mels = FeatureOptions::preset(Preset::Kaldi);
    mfcc_as_wide_as_mels.cepstral.n_mfcc = mfcc_as_wide_as_mels.mel.n_mels;
    for (name, options) in [
        ("kaldi", FeatureOptions::preset(Preset::Kaldi)),
        ("htk", FeatureOptions::preset(Preset::Htk)),
        ("librosa (top_db)", librosa),
        ("kaldi, n_mfcc = n_mels", mfcc_as_wide_as_mels),
    ] {
        let extractor = FeatureExtractor::new(options).expect("valid");
        for output in [Output::Mfcc, Output::LogMel, Output::Spectrum] {
            let whole = extractor.compute(&samples, output).expect("computes");
            let mut wav = WavBlocks::new(&bytes[..], Channel::Mean).expect("header");
            let blocks = extractor.compute_wav(&mut wav, output).expect("computes");
            assert_eq!(
                whole.num_frames,
                extractor.num_frames(samples.len()),
                "{name}"
            );
            assert_eq!(whole.dim, extractor.dim(output), "{name} {output:?}");
            assert_eq!(blocks, whole, "{name} {output:?}");
        }
    }
}
