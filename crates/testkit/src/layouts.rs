//! Corpus folders in the public corpora's layouts, built from copies of short recordings,
//! for the tests of the loaders and of the experiments that read them.

use std::path::Path;

use rand::{Rng, SeedableRng};

/// A Speech Commands folder in `root`: `files` as (word, file name, list it is named in:
/// `training`, `validation`, `testing` or `both`; the recording it is a copy of), and
/// `_background_noise_/noise.wav`, `noise_seconds` of 16 kHz white noise.
pub fn speech_commands_layout(
    root: &Path,
    files: &[(&str, &str, &str, &Path)],
    noise_seconds: usize,
) -> std::io::Result<()> {
    let (mut validation, mut testing) = (String::new(), String::new());
    for (word, file, list, wav) in files {
        std::fs::create_dir_all(root.join(word))?;
        std::fs::copy(wav, root.join(word).join(file))?;
        let line = format!("{word}/{file}\n");
        match *list {
            "validation" => validation += &line,
            "testing" => testing += &line,
            "both" => {
                validation += &line;
                testing += &line;
            }
            _ => {}
        }
    }
    std::fs::write(root.join("validation_list.txt"), validation)?;
    std::fs::write(root.join("testing_list.txt"), testing)?;
    let noise_dir = root.join("_background_noise_");
    std::fs::create_dir_all(&noise_dir)?;
    write_noise(&noise_dir.join("noise.wav"), noise_seconds * 16000)
}

/// `samples` of seeded 16 kHz 16-bit white noise at a quarter of full scale.
pub fn write_noise(path: &Path, samples: usize) -> std::io::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(std::io::Error::other)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..samples {
        writer
            .write_sample(rng.random_range(-8000i16..8000))
            .map_err(std::io::Error::other)?;
    }
    writer.finalize().map_err(std::io::Error::other)
}

/// A Free Spoken Digit Dataset clone in `root`: `recordings/{digit}_{speaker}_{index}.wav`,
/// copies of `wav`, for each digit and each index in `indices`.
pub fn free_spoken_digits_layout(
    root: &Path,
    wavs: &[std::path::PathBuf],
    indices: &[usize],
) -> std::io::Result<()> {
    let recordings = root.join("recordings");
    std::fs::create_dir_all(&recordings)?;
    for digit in 0..10 {
        for &index in indices {
            let wav = &wavs[(digit * indices.len() + index) % wavs.len()];
            std::fs::copy(wav, recordings.join(format!("{digit}_tester_{index}.wav")))?;
        }
    }
    Ok(())
}
