//! Speed of 13 MFCCs at 25 ms / 10 ms on 60 s of 16 kHz speech (the goforward clip
//! repeated), one thread: features only, and WAV decode + features. Criterion
//! reports time per 60 s of audio; real-time factor = 60 s / that time.
//!
//! `cargo bench -p features --bench peers` sets each preset beside its peers (librosa,
//! torchaudio, kaldi-native-fbank, python_speech_features) in one run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use features::{Channel, FeatureExtractor, FeatureOptions, Preset, Span, decode_wav, read_wav};

fn sixty_seconds() -> Vec<f32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/audio/goforward_16k.wav");
    let clip = read_wav(path, Channel::Mean).expect("test clip").samples;
    clip.iter().copied().cycle().take(60 * 16000).collect()
}

fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::new();
    let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).expect("writer");
    for s in samples {
        writer
            .write_sample((s * 32768.0).round() as i16)
            .expect("sample");
    }
    writer.finalize().expect("finalize");
    bytes
}

fn presets() -> Vec<(&'static str, FeatureOptions)> {
    let mut librosa = FeatureOptions::preset(Preset::Librosa);
    librosa.frame.sample_rate = 16000;
    librosa.frame.n_fft = Some(512);
    librosa.frame.win_length = Some(Span::Samples(400));
    librosa.frame.hop_length = Some(Span::Samples(160));
    librosa.mel.n_mels = 40;
    librosa.cepstral.n_mfcc = 13;
    vec![
        ("kaldi", FeatureOptions::preset(Preset::Kaldi)),
        ("librosa_512_400_160_40mels", librosa),
        ("htk", FeatureOptions::preset(Preset::Htk)),
    ]
}

fn bench(c: &mut Criterion) {
    let samples = sixty_seconds();
    let bytes = wav_bytes(&samples);
    let mut group = c.benchmark_group("mfcc_60s_16k");
    group.sample_size(20);
    for (name, options) in presets() {
        let extractor = FeatureExtractor::new(options).expect("valid");
        group.bench_function(format!("{name}/features"), |b| {
            b.iter(|| extractor.mfcc(black_box(&samples)).expect("mfcc"))
        });
        group.bench_function(format!("{name}/decode+features"), |b| {
            b.iter(|| {
                let audio = decode_wav(black_box(&bytes[..]), Channel::Mean).expect("decodes");
                extractor.mfcc(&audio.samples).expect("mfcc")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
