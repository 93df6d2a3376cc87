//! Which files `mfcc` reads: inputs and folders walked, a manifest's rows, and the shard of
//! them one job of an array job takes.

use std::path::{Path, PathBuf};

use features::FeatureError;

/// `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not K/N (e.g. 3/8)"))?;
    let parse = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v:?}: {e}"));
    let (k, n) = (parse(k)?, parse(n)?);
    if n == 0 || k == 0 || k > n {
        return Err(format!("shard {k}/{n}: K must be between 1 and N"));
    }
    Ok((k, n))
}

/// The `k`-th (from 1) of `n` contiguous parts of `files`, whose sizes differ by at most one.
pub fn shard<T>(files: Vec<T>, (k, n): (usize, usize)) -> Vec<T> {
    let len = files.len();
    let (start, end) = ((k - 1) * len / n, k * len / n);
    files.into_iter().skip(start).take(end - start).collect()
}

/// The files a manifest lists, as (path to read, path relative to the output directory).
pub fn read_manifest(manifest: &Path) -> Result<Vec<(PathBuf, PathBuf)>, FeatureError> {
    let bad = |line: usize, why: String| {
        FeatureError::InvalidOptions(format!("{}:{line}: {why}", manifest.display()))
    };
    let is_scp = manifest.extension().is_some_and(|e| e == "scp");
    let mut files = Vec::new();
    if is_scp {
        let text = std::fs::read_to_string(manifest).map_err(|e| FeatureError::io(manifest, e))?;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (id, path) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(index + 1, "expected `utterance-id path`".into()))?;
            let path = path.trim();
            if path.ends_with('|') {
                return Err(bad(
                    index + 1,
                    "a command (`… |`) instead of a file; write the WAV files out first".into(),
                ));
            }
            files.push((PathBuf::from(path), PathBuf::from(format!("{id}.wav"))));
        }
    } else {
        let root = manifest.parent().unwrap_or(Path::new("."));
        let mut reader = csv::Reader::from_path(manifest).map_err(|e| bad(0, e.to_string()))?;
        let column = reader
            .headers()
            .map_err(|e| bad(1, e.to_string()))?
            .iter()
            .position(|h| h == "path")
            .ok_or_else(|| bad(1, "no `path` column in the header".into()))?;
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(index + 2, e.to_string()))?;
            let path = record
                .get(column)
                .ok_or_else(|| bad(index + 2, "no `path` field".into()))?;
            files.push((root.join(path), PathBuf::from(path)));
        }
    }
    // Each output stays inside OUT.
    if let Some((_, outside)) = files.iter().find(|(_, relative)| {
        relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
    }) {
        return Err(bad(
            0,
            format!(
                "{}: a listed path (or utterance id) must be relative and without `..`",
                outside.display()
            ),
        ));
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    if let Some(pair) = files.windows(2).find(|pair| pair[0].1 == pair[1].1) {
        return Err(bad(0, format!("{} is listed twice", pair[0].1.display())));
    }
    Ok(files)
}

/// Every input as (path to read, path relative to the output directory).
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, FeatureError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, input, &mut files)?;
        } else {
            let name = input
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| input.clone());
            files.push((input.clone(), name));
        }
    }
    files.sort();
    Ok(files)
}

fn walk(
    root: &Path,
    directory: &Path,
    files: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), FeatureError> {
    let entries = std::fs::read_dir(directory).map_err(|e| FeatureError::io(directory, e))?;
    for entry in entries {
        let path = entry.map_err(|e| FeatureError::io(directory, e))?.path();
        if path.is_dir() {
            walk(root, &path, files)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        {
            let relative = path
                .strip_prefix(root)
                .expect("walked from root")
                .to_path_buf();
            files.push((path, relative));
        }
    }
    Ok(())
}
