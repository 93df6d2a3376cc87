//! Any bytes through WAV decoding and, when they decode, the Kaldi MFCC pipeline at the
//! file's own rate: errors are fine, panics and aborts are not.
//!
//! `cd crates/features/fuzz && cargo +nightly fuzz run decode_and_mfcc corpus seeds`

#![no_main]

use features::{decode_wav, Channel, FeatureExtractor, FeatureOptions, Preset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(audio) = decode_wav(data, Channel::Mean) {
        let mut options = FeatureOptions::preset(Preset::Kaldi);
        options.frame.sample_rate = audio.sample_rate;
        if let Ok(extractor) = FeatureExtractor::new(options) {
            let _ = extractor.mfcc(&audio.samples);
        }
    }
});
