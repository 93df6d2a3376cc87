//! Any bytes as a WAV file, read block by block into the extractor, and its samples fed
//! to a stream in chunk sizes drawn from the input: both must give exactly the frames of
//! the whole-signal computation (or the same error), and nothing may panic.
//!
//! `cd crates/features/fuzz && cargo +nightly fuzz run stream_chunks corpus seeds`

#![no_main]

use features::{
    decode_wav, Channel, FeatureExtractor, FeatureOptions, Features, Output, Preset, WavBlocks,
};
use libfuzzer_sys::fuzz_target;

fn bits(features: &Features) -> Vec<u32> {
    features.data.iter().map(|v| v.to_bits()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let Some((sizes, wav)) = rest.split_at_checked(8) else {
        return;
    };
    let Ok(audio) = decode_wav(wav, Channel::Mean) else {
        return;
    };
    let mut options = FeatureOptions::preset(match control % 3 {
        0 => Preset::Kaldi,
        1 => Preset::Htk,
        _ => Preset::Librosa,
    });
    options.frame.sample_rate = audio.sample_rate;
    if control & 4 != 0 {
        options.frame.dither = 1.0;
    }
    if let features::LogScale::Decibel { amin, .. } = options.mel.log {
        // top_db needs the whole input; the stream refuses it.
        options.mel.log = features::LogScale::Decibel { amin, top_db: None };
    }
    let output = if control & 8 != 0 { Output::LogMel } else { Output::Mfcc };
    let Ok(extractor) = FeatureExtractor::new(options) else {
        return;
    };
    let whole = extractor.compute(&audio.samples, output);

    let mut blocks = WavBlocks::new(wav, Channel::Mean).expect("the header decoded once");
    let from_blocks = extractor.compute_wav(&mut blocks, output);
    match (&whole, &from_blocks) {
        (Ok(a), Ok(b)) => assert_eq!(bits(a), bits(b), "blocks differ from the whole file"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("one of whole and blocks failed: {whole:?} / {from_blocks:?}"),
    }

    let Ok(whole) = whole else {
        return;
    };
    let mut stream = extractor.stream(output).expect("streamable");
    let mut streamed = Features::empty(extractor.dim(output));
    let (mut at, mut i) = (0, 0);
    while at < audio.samples.len() {
        let size = (sizes[i % sizes.len()] as usize + 1).min(audio.samples.len() - at);
        streamed.append(&stream.push(&audio.samples[at..at + size]));
        at += size;
        i += 1;
    }
    streamed.append(&stream.finish());
    assert_eq!(streamed.num_frames, whole.num_frames);
    assert_eq!(bits(&streamed), bits(&whole), "chunks differ from the whole signal");
});
