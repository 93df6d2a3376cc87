//! The `mfcc` binary: one file, a directory, errors and `--help`.

use std::path::Path;
use std::process::Command;

use features::{FeatureOptions, FilePipeline, Preset, read_npy};

fn mfcc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfcc"))
}

fn audio(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/audio")
        .join(name)
}

#[test]
fn one_file_gives_the_library_result_as_npy_and_a_png() {
    let out = tempfile::tempdir().expect("tempdir");
    let (npy, png) = (out.path().join("f.npy"), out.path().join("f.png"));
    let status = mfcc()
        .args(["--preset", "htk", "--deltas"])
        .arg(audio("goforward_16k.wav"))
        .arg("-o")
        .arg(&npy)
        .arg("--plot")
        .arg(&png)
        .status()
        .expect("runs");
    assert!(status.success());
    let written = read_npy(&npy).expect("npy");
    let mut options = FeatureOptions::preset(Preset::Htk);
    options.frame.sample_rate = 16000;
    let expected = FilePipeline::new(options)
        .with_deltas(2, 2)
        .run(audio("goforward_16k.wav"))
        .expect("runs");
    assert_eq!(written.shape, vec![expected.num_frames, 39]);
    assert_eq!(written.data, expected.data);
    assert_eq!(
        &std::fs::read(&png).expect("png")[..8],
        b"\x89PNG\r\n\x1a\n"
    );
}

#[test]
fn a_directory_is_mirrored_and_bad_files_are_counted() {
    let input = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(input.path().join("nested")).expect("mkdir");
    std::fs::copy(audio("digit7_8k.wav"), input.path().join("a.wav")).expect("copy");
    std::fs::copy(
        audio("digit7_stereo.wav"),
        input.path().join("nested/b.wav"),
    )
    .expect("copy");
    std::fs::write(
        input.path().join("nested/broken.wav"),
        b"RIFF but not really",
    )
    .expect("write");
    let out = tempfile::tempdir().expect("tempdir");
    let output = mfcc()
        .args(["--preset", "kaldi", "--sample-rate", "16000"])
        .arg(input.path())
        .arg("-o")
        .arg(out.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "one file failed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.wav") && stderr.contains("2 of 3 files"),
        "{stderr}"
    );
    for written in ["a.npy", "nested/b.npy"] {
        let array = read_npy(out.path().join(written)).expect(written);
        assert_eq!(array.shape[1], 13);
        assert!(
            array.shape[0] > 70,
            "0.82 s resampled to 16 kHz gives about 80 frames"
        );
    }
    assert!(
        !out.path().join("nested/broken.npy").exists(),
        "no partial output"
    );
}

#[test]
fn refusals_exit_nonzero_with_a_message() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = mfcc()
        .args(["--sample-rate", "16000", "--no-resample"])
        .arg(audio("digit7_8k.wav"))
        .arg("-o")
        .arg(out.path().join("x.npy"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("8000 Hz"), "{message}");
    assert!(
        message.contains("digit7_8k.wav"),
        "names the file: {message}"
    );
    assert!(!out.path().join("x.npy").exists());
    // A file that is not a WAV, read alone: the message names it too.
    let not_wav = out.path().join("notes.wav");
    std::fs::write(&not_wav, "not audio").expect("writes");
    let output = mfcc()
        .arg(&not_wav)
        .arg("-o")
        .arg(out.path().join("y.npy"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("notes.wav") && message.contains("not a readable WAV"),
        "{message}"
    );
    let help = mfcc().arg("--help").output().expect("runs");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--preset"));
}

#[test]
fn augmentation_flags_give_the_library_result() {
    let out = tempfile::tempdir().expect("tempdir");
    let npy = out.path().join("f.npy");
    let status = mfcc()
        .args(["--preset", "kaldi", "--vtln-warp", "1.1", "--speed", "1.25"])
        .args(["--noise-snr", "10"])
        .arg(audio("digit7_8k.wav"))
        .arg("-o")
        .arg(&npy)
        .status()
        .expect("runs");
    assert!(status.success());
    let mut options = FeatureOptions::preset(Preset::Kaldi);
    options.frame.sample_rate = 8000;
    options.mel.vtln = Some(features::Vtln {
        warp: 1.1,
        ..features::Vtln::default()
    });
    let mut pipeline = FilePipeline::new(options);
    pipeline.speed = 1.25;
    pipeline.noise_snr_db = Some(10.0);
    let expected = pipeline.run(audio("digit7_8k.wav")).expect("runs");
    let written = read_npy(&npy).expect("npy");
    assert_eq!(written.shape, vec![expected.num_frames, 13]);
    assert_eq!(written.data, expected.data);
    let bad = mfcc()
        .args(["--vtln-warp", "0"])
        .arg(audio("digit7_8k.wav"))
        .arg("-o")
        .arg(out.path().join("g.npy"))
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("vtln"));
}
