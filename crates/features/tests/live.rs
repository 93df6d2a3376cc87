//! Audio as it arrives: the streamed resampler equals the whole-signal one for any
//! chunking, causal mean normalisation reads only the past, and the pipe reader decodes raw
//! PCM and WAV streams whose header does not know their length, refusing broken headers.

use features::{
    Audio, CausalCmvn, Cmvn, CmvnPrior, FeatureError, Features, FilePipeline, PcmFormat, PcmReader,
    Preset, StreamResampler, apply_cmvn, resample,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn tone(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.031).sin() * 0.5).collect()
}

#[test]
fn the_streamed_resampler_equals_the_whole_signal_for_any_chunking() {
    let samples = tone(23_456);
    let mut rng = StdRng::seed_from_u64(5);
    for (from, to) in [
        (16_000, 8_000),
        (8_000, 16_000),
        (44_100, 16_000),
        (22_050, 8_000),
    ] {
        let whole = resample(
            &Audio {
                sample_rate: from,
                samples: samples.clone(),
            },
            to,
        )
        .expect("resamples")
        .samples;
        for longest in [1, 37, 1_024, 5_000] {
            let mut stream = StreamResampler::new(from, to).expect("a resampler");
            let (mut out, mut at) = (Vec::new(), 0);
            while at < samples.len() {
                let size = rng.random_range(1..=longest).min(samples.len() - at);
                out.extend(stream.push(&samples[at..at + size]).expect("pushes"));
                at += size;
            }
            out.extend(stream.finish().expect("finishes"));
            assert_eq!(out, whole, "{from} → {to} Hz in chunks of up to {longest}");
        }
    }
}

#[test]
fn causal_normalisation_of_a_prefix_is_the_prefix_of_the_normalised_whole() {
    let mut rng = StdRng::seed_from_u64(6);
    let data: Vec<f32> = (0..300 * 4).map(|_| rng.random_range(-5.0..5.0)).collect();
    let mut whole = Features {
        num_frames: 300,
        dim: 4,
        data: data.clone(),
    };
    apply_cmvn(
        &mut whole,
        Cmvn::Causal {
            window: 50,
            variance: false,
        },
    )
    .expect("normalises");
    let mut prefix = Features {
        num_frames: 120,
        dim: 4,
        data: data[..480].to_vec(),
    };
    apply_cmvn(
        &mut prefix,
        Cmvn::Causal {
            window: 50,
            variance: false,
        },
    )
    .expect("normalises");
    assert_eq!(prefix.data, whole.data[..480]);
    // Frame 200 less the mean of frames 151..=200, computed directly.
    let mean: f64 = (151..=200).map(|t| data[t * 4 + 2] as f64).sum::<f64>() / 50.0;
    assert!((whole.data[200 * 4 + 2] as f64 - (data[200 * 4 + 2] as f64 - mean)).abs() < 1e-5);
    assert!(CausalCmvn::new(0, 4, true).is_err());
    // With the variance: frame 200 of the window above, over its standard deviation.
    let mut scaled = Features {
        num_frames: 300,
        dim: 4,
        data: data.clone(),
    };
    apply_cmvn(
        &mut scaled,
        Cmvn::Causal {
            window: 50,
            variance: true,
        },
    )
    .expect("normalises");
    let column: Vec<f64> = (151..=200).map(|t| data[t * 4 + 2] as f64).collect();
    let variance = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 50.0;
    let expected = (data[200 * 4 + 2] as f64 - mean) / variance.max(1.0).sqrt();
    assert!((scaled.data[200 * 4 + 2] as f64 - expected).abs() < 1e-5);
    // The first frame's variance is 0: floored, so the frame is only centred.
    assert_eq!(&scaled.data[..4], &[0.0; 4]);
    assert!(
        apply_cmvn(
            &mut prefix,
            Cmvn::Causal {
                window: 0,
                variance: false
            }
        )
        .is_err()
    );
}

/// With a prior, each frame of a window that has not filled yet is centred on the mean of the
/// frames so far and `min(frames, window − seen)` copies of the prior's mean (Kaldi's online
/// CMVN with global statistics); a full window forgets the prior, and the pipeline applies it.
#[test]
fn a_prior_fills_the_window_until_the_frames_do() {
    let mut rng = StdRng::seed_from_u64(8);
    let (window, dim, frames) = (40, 3, 25);
    let data: Vec<f32> = (0..100 * dim)
        .map(|_| rng.random_range(-5.0..5.0))
        .collect();
    let mean = vec![1.5f32, -2.0, 0.25];
    let prior = CmvnPrior {
        frames,
        mean: mean.clone(),
    };
    let mut cmn = CausalCmvn::new(window, dim, false)
        .unwrap()
        .with_prior(prior.clone())
        .unwrap();
    let mut plain = CausalCmvn::new(window, dim, false).unwrap();
    for (t, row) in data.chunks_exact(dim).enumerate() {
        let (mut with, mut without) = (row.to_vec(), row.to_vec());
        cmn.normalise(&mut with);
        plain.normalise(&mut without);
        let seen = (t + 1).min(window);
        let filled = if seen < window {
            frames.min(window - seen)
        } else {
            0
        };
        for d in 0..dim {
            let sum: f64 = (t + 1 - seen..=t).map(|u| data[u * dim + d] as f64).sum();
            let centre = (sum + filled as f64 * mean[d] as f64) / (seen + filled) as f64;
            let expected = data[t * dim + d] as f64 - centre;
            assert!((with[d] as f64 - expected).abs() < 1e-5, "frame {t}, {d}");
        }
        if seen == window {
            assert_eq!(with, without, "frame {t}");
        }
    }
    let refused = |prior: CmvnPrior, variance: bool| {
        CausalCmvn::new(window, dim, variance)
            .unwrap()
            .with_prior(prior)
            .is_err()
    };
    assert!(refused(prior.clone(), true));
    assert!(refused(
        CmvnPrior {
            frames,
            mean: vec![0.0; 2]
        },
        false
    ));
    assert!(refused(
        CmvnPrior {
            frames,
            mean: vec![0.0, f32::NAN, 0.0]
        },
        false
    ));
    // The file pipeline gives the same frames as the normaliser fed one at a time.
    let rate = 16000;
    let bytes = wav_bytes(&tone(8000), 1, rate);
    let mut pipeline = FilePipeline::new(features::FeatureOptions::preset(Preset::Kaldi));
    pipeline.cmvn = Some(Cmvn::Causal {
        window,
        variance: false,
    });
    let raw = {
        let mut p = pipeline.clone();
        p.cmvn = None;
        p.run_bytes(&bytes).unwrap()
    };
    pipeline.cmvn_prior = Some(CmvnPrior {
        frames,
        mean: vec![-1.0; raw.dim],
    });
    let whole = pipeline.run_bytes(&bytes).unwrap();
    let mut cmn = CausalCmvn::new(window, raw.dim, false)
        .unwrap()
        .with_prior(pipeline.cmvn_prior.clone().unwrap())
        .unwrap();
    let mut streamed = raw.data.clone();
    streamed
        .chunks_exact_mut(raw.dim)
        .for_each(|row| cmn.normalise(row));
    assert_eq!(whole.data, streamed);
}

/// A WAV file of `samples` as 16-bit PCM with `channels` interleaved copies.
fn wav_bytes(samples: &[f32], channels: u16, rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("a writer");
    for &x in samples {
        for _ in 0..channels {
            writer
                .write_sample((x * 32768.0).round() as i16)
                .expect("writes");
        }
    }
    writer.finalize().expect("writes");
    bytes.into_inner()
}

/// Every sample of a stream, read to its end.
fn read_all(bytes: &[u8], format: PcmFormat, rate: u32) -> Result<(u32, Vec<f32>), FeatureError> {
    let mut reader = PcmReader::new(bytes, format, rate)?;
    let mut samples = Vec::new();
    while let Some(chunk) = reader.next_chunk()? {
        samples.extend(chunk);
    }
    Ok((reader.sample_rate(), samples))
}

#[test]
fn wav_streams_are_read_with_or_without_their_length() {
    let samples: Vec<f32> = tone(4_000)
        .iter()
        .map(|x| (x * 32768.0).round() / 32768.0)
        .collect();
    let wav = wav_bytes(&samples, 2, 11_025);
    assert_eq!(
        read_all(&wav, PcmFormat::Wav, 8_000).expect("reads"),
        (11_025, samples.clone())
    );
    // Lengths a writer could not fill in (a pipe): read to the end of the stream.
    let mut unknown = wav.clone();
    unknown[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, read) = read_all(&unknown, PcmFormat::Wav, 8_000).expect("reads");
    assert_eq!(read, samples);
    // A stream cut inside a sample instant: the whole instants before it.
    let (_, read) = read_all(&wav[..wav.len() - 3], PcmFormat::Wav, 8_000).expect("reads");
    assert_eq!(read, samples[..samples.len() - 1]);
}

#[test]
fn raw_streams_decode_and_broken_ones_are_refused() {
    let floats = [0.25f32, -0.5, 1.0];
    let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(
        read_all(&bytes, PcmFormat::F32le, 8_000).expect("reads").1,
        floats
    );
    let nan: Vec<u8> = f32::NAN.to_le_bytes().to_vec();
    assert!(matches!(
        read_all(&nan, PcmFormat::F32le, 8_000),
        Err(FeatureError::NonFiniteSample { .. })
    ));
    assert!(matches!(
        read_all(&[], PcmFormat::S16le, 0),
        Err(FeatureError::BadSampleRate(0))
    ));
    for broken in [
        &b"RIFF"[..],
        b"RIFX\x24\x00\x00\x00WAVE",
        b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00",
    ] {
        assert!(
            matches!(
                read_all(broken, PcmFormat::Wav, 8_000),
                Err(FeatureError::NotWav(_))
            ),
            "{broken:?}"
        );
    }
    let mut alaw = wav_bytes(&[0.0; 4], 1, 8_000);
    alaw[20..22].copy_from_slice(&6u16.to_le_bytes());
    assert!(matches!(
        read_all(&alaw, PcmFormat::Wav, 8_000),
        Err(FeatureError::UnsupportedEncoding(_))
    ));
}
