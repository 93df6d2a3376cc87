//! Speed of 13 MFCCs at 25 ms / 10 ms on 60 s of 16 kHz speech (the goforward clip
//! repeated), one thread: features only, and WAV decode + features. Criterion
//! reports time per 60 s of audio; real-time factor = 60 s / that time.
//!
//! `cargo bench -p features --bench peers` sets each preset beside its peers (librosa,
//! torchaudio, kaldi-native-fbank, python_speech_features) in one run.

use std::hint::black_box;

use common::{presets, speech, wav_bytes};
use criterion::{Criterion, criterion_group, criterion_main};
use features::{Channel, FeatureExtractor, decode_wav};

mod common;

fn bench(c: &mut Criterion) {
    let samples = speech(60);
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
