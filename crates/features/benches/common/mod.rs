//! What the `mfcc` and `peers` benches share: the presets at the settings the peers are
//! timed with, and speech of any length.

use features::{Channel, FeatureOptions, Preset, Span, read_wav};

/// 13 MFCCs at 25 ms / 10 ms, 16 kHz; librosa at n_fft 512, window 400, hop 160, 40 mels.
pub fn presets() -> Vec<(&'static str, FeatureOptions)> {
    let mut librosa = FeatureOptions::preset(Preset::Librosa);
    librosa.frame.sample_rate = 16000;
    librosa.frame.n_fft = Some(512);
    librosa.frame.win_length = Some(Span::Samples(400));
    librosa.frame.hop_length = Some(Span::Samples(160));
    librosa.mel.n_mels = 40;
    librosa.cepstral.n_mfcc = 13;
    vec![
        ("kaldi", FeatureOptions::preset(Preset::Kaldi)),
        ("librosa", librosa),
        ("htk", FeatureOptions::preset(Preset::Htk)),
    ]
}

/// `seconds` of 16 kHz speech: the goforward clip repeated.
pub fn speech(seconds: usize) -> Vec<f32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/audio/goforward_16k.wav");
    let clip = read_wav(path, Channel::Mean).expect("test clip").samples;
    clip.iter().copied().cycle().take(seconds * 16000).collect()
}

/// `samples` as a 16-bit mono 16 kHz WAV file's bytes.
pub fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::new();
    let mut writer = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).expect("writer");
    for s in samples {
        let value = (s * 32768.0).round().clamp(-32768.0, 32767.0);
        writer.write_sample(value as i16).expect("sample");
    }
    writer.finalize().expect("finalize");
    bytes
}
