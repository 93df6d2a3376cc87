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

/// Every file under `root`, by path relative to it, with its bytes.
fn tree(root: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("inside").to_path_buf();
                files.insert(relative, std::fs::read(&path).expect("reads"));
            }
        }
    }
    files
}

#[test]
fn shards_of_a_manifest_together_equal_one_run_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = [
        "goforward_16k.wav",
        "digit7_8k.wav",
        "digit7_stereo.wav",
        "odd_16k.wav",
        "short_16k.wav",
        "silence_16k.wav",
        "clipped_16k.wav",
    ];
    let mut csv = String::from("path,label\n");
    for (i, name) in names.iter().enumerate() {
        let relative = format!("part{}/{name}", i % 2);
        std::fs::create_dir_all(dir.path().join(format!("part{}", i % 2))).expect("mkdir");
        std::fs::copy(audio(name), dir.path().join(&relative)).expect("copies");
        csv.push_str(&format!("{relative},x\n"));
    }
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, csv).expect("writes");
    let extract = |shard: Option<&str>, out: &std::path::Path| {
        let mut command = mfcc();
        command.args(["--sample-rate", "16000", "--deltas"]);
        command.arg("--manifest").arg(&manifest);
        if let Some(shard) = shard {
            command.args(["--shard", shard]);
        }
        let output = command.arg("-o").arg(out).output().expect("runs");
        assert!(output.status.success(), "{output:?}");
    };
    let whole = dir.path().join("whole");
    extract(None, &whole);
    let whole = tree(&whole);
    assert_eq!(whole.len(), names.len());
    assert!(whole.contains_key(std::path::Path::new("part1/digit7_8k.npy")));

    // Three jobs writing into one folder, as an array job does, and into their own folders.
    let together = dir.path().join("together");
    let mut parts = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        extract(Some(&shard), &together);
        let own = dir.path().join(format!("shard{k}"));
        extract(Some(&shard), &own);
        parts.push(tree(&own));
    }
    assert_eq!(tree(&together), whole);
    let sizes: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        names.len(),
        "each file in one shard: {sizes:?}"
    );
    assert!(sizes.iter().all(|&s| s == 2 || s == 3), "{sizes:?}");

    let refused = mfcc()
        .arg("--manifest")
        .arg(&manifest)
        .args(["--shard", "4/3", "-o"])
        .arg(dir.path().join("x"))
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("between 1 and N"));
}

#[test]
fn a_kaldi_wav_scp_names_the_outputs_by_utterance_and_stays_inside_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scp = dir.path().join("wav.scp");
    let list = format!(
        "utt-b {}\nutt-a {}\n",
        audio("digit7_8k.wav").display(),
        audio("goforward_16k.wav").display()
    );
    std::fs::write(&scp, list).expect("writes");
    let out = dir.path().join("feats");
    let extract = || {
        mfcc()
            .arg("--manifest")
            .arg(&scp)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("runs")
    };
    let output = extract();
    assert!(output.status.success(), "{output:?}");
    let written: Vec<_> = tree(&out).into_keys().collect();
    assert_eq!(
        written,
        [std::path::PathBuf::from("utt-a.npy"), "utt-b.npy".into()]
    );
    for (line, complaint) in [
        ("../escape /dev/null\n", "without `..`"),
        ("utt sox in.wav -t wav - |\n", "a command"),
    ] {
        std::fs::write(&scp, line).expect("writes");
        let refused = extract();
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains(complaint));
    }
}
