//! A sharded feature store: the training split's features (every augmented version of every
//! utterance) in a few large files on disk, read back one matrix at a time during training.
//!
//! A store is a folder:
//! - `shard-00000.f32`, `shard-00001.f32`, …: feature matrices back to back, row-major
//!   little-endian `f32`, each shard at most `shard_mb` MiB (a matrix never straddles two);
//! - `index.json`: where each matrix starts and how many frames it has, the examples (label,
//!   speaker, file, and which matrices are their versions) and the files that were skipped.
//!
//! It is written into a temporary folder beside its final place and renamed there when
//! complete, so a folder under that name is always whole. Its name is a key over everything
//! that decides its contents (see [`crate::data::audio::AudioClassification::stream`]), so runs
//! with different data or features never share a store, and runs with the same reuse it.
//!
//! [`FeatureStore`] implements burn's [`Dataset`] of feature matrices.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use burn::data::dataset::Dataset;
use features::Features;
use serde::{Deserialize, Serialize};

use crate::data::example::{Example, Origin};

/// Why a store could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be created, written or read.
    #[error("feature store {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The store's files do not agree with its index (truncated, or written by another
    /// version).
    #[error("feature store {path} is damaged: {message}")]
    Damaged {
        /// The store's folder.
        path: PathBuf,
        /// What does not agree.
        message: String,
    },
    /// A worker thread to read batches could not be started.
    #[error("could not start a batch loader thread: {source}")]
    Spawn {
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A worker that reads batches stopped before handing over its batch.
    #[error("the batch loader's worker {worker} stopped unexpectedly")]
    WorkerStopped {
        /// Which worker.
        worker: usize,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The index's layout version; a store of another version is rebuilt.
const FORMAT: u32 = 1;
const INDEX: &str = "index.json";

/// Where one feature matrix lies: shard, byte offset, frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Which shard file.
    pub shard: u32,
    /// Byte offset in it.
    pub offset: u64,
    /// Rows of the matrix.
    pub frames: u32,
}

/// A training example whose features live in the store. In the index its origin's fields
/// sit beside `versions`, as one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredExample {
    /// Its label and where it came from.
    #[serde(flatten)]
    pub origin: Origin,
    /// Its versions' matrices: the original first, then the augmented ones.
    pub versions: Vec<usize>,
}

impl StoredExample {
    /// The example with `features` as its matrix.
    pub fn with_features(&self, features: Features) -> Example {
        Example {
            features,
            origin: self.origin.clone(),
            augmented: Vec::new(),
        }
    }
}

/// Everything but the matrices.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    format: u32,
    key: String,
    dim: usize,
    shards: usize,
    entries: Vec<Entry>,
    examples: Vec<StoredExample>,
    skipped: Vec<(PathBuf, String)>,
}

/// A complete store, open for reading. Reads take `&self` and may run on many threads.
#[derive(Debug)]
pub struct FeatureStore {
    dir: PathBuf,
    dim: usize,
    shards: Vec<File>,
    entries: Vec<Entry>,
    examples: Vec<StoredExample>,
    skipped: Vec<(PathBuf, String)>,
}

impl FeatureStore {
    /// Opens the store in `dir` when it is complete and was built under `key`: `Ok(None)`
    /// when there is none (or one of another key or format); an error when it is there but
    /// its shards are shorter than its index says.
    pub fn open(dir: &Path, key: &str) -> Result<Option<Self>, StoreError> {
        let index_path = dir.join(INDEX);
        let text = match std::fs::read_to_string(&index_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&index_path)(e)),
        };
        let Ok(index) = serde_json::from_str::<Index>(&text) else {
            return Ok(None);
        };
        if index.format != FORMAT || index.key != key {
            return Ok(None);
        }
        let damaged = |message: String| StoreError::Damaged {
            path: dir.to_path_buf(),
            message,
        };
        let shards = (0..index.shards)
            .map(|s| {
                let path = shard_path(dir, s);
                File::open(&path).map_err(io(&path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ends = vec![0u64; shards.len()];
        for entry in &index.entries {
            let end = entry.offset + matrix_bytes(entry.frames as usize, index.dim);
            let slot = ends
                .get_mut(entry.shard as usize)
                .ok_or_else(|| damaged(format!("an entry names shard {}", entry.shard)))?;
            *slot = (*slot).max(end);
        }
        for (s, (file, end)) in shards.iter().zip(&ends).enumerate() {
            let len = file.metadata().map_err(io(&shard_path(dir, s)))?.len();
            if len < *end {
                return Err(damaged(format!(
                    "shard {s} holds {len} bytes, its index needs {end}"
                )));
            }
        }
        if let Some(bad) = index
            .examples
            .iter()
            .flat_map(|e| &e.versions)
            .find(|&&v| v >= index.entries.len())
        {
            return Err(damaged(format!(
                "an example names matrix {bad} of {}",
                index.entries.len()
            )));
        }
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            dim: index.dim,
            shards,
            entries: index.entries,
            examples: index.examples,
            skipped: index.skipped,
        }))
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Features per frame.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The stored matrices.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The examples, in the order they were written.
    pub fn examples(&self) -> &[StoredExample] {
        &self.examples
    }

    /// Files left out when the store was built, with why.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Reads matrix `entry` (an index into [`FeatureStore::entries`]).
    pub fn read(&self, entry: usize) -> Result<Features, StoreError> {
        let &Entry {
            shard,
            offset,
            frames,
        } = self.entries.get(entry).ok_or_else(|| StoreError::Damaged {
            path: self.dir.clone(),
            message: format!("no matrix {entry} of {}", self.entries.len()),
        })?;
        let mut bytes = vec![0u8; matrix_bytes(frames as usize, self.dim) as usize];
        read_exact_at(&self.shards[shard as usize], &mut bytes, offset)
            .map_err(io(&shard_path(&self.dir, shard as usize)))?;
        Ok(Features {
            num_frames: frames as usize,
            dim: self.dim,
            data: bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        })
    }
}

impl Dataset<Features> for FeatureStore {
    fn get(&self, index: usize) -> Option<Features> {
        self.read(index).ok()
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

fn shard_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join(format!("shard-{shard:05}.f32"))
}

fn matrix_bytes(frames: usize, dim: usize) -> u64 {
    (frames * dim * std::mem::size_of::<f32>()) as u64
}

/// Writes a store into a temporary folder; [`StoreWriter::finish`] moves it into place.
#[derive(Debug)]
pub struct StoreWriter {
    dir: PathBuf,
    key: String,
    building: tempfile::TempDir,
    shard_limit: u64,
    shard: BufWriter<File>,
    shards: usize,
    offset: u64,
    dim: Option<usize>,
    entries: Vec<Entry>,
}

impl StoreWriter {
    /// Starts a store that [`StoreWriter::finish`] will put at `dir`, under `key`, with
    /// shards of at most `shard_bytes` (a larger matrix gets a shard of its own).
    pub fn create(dir: &Path, key: &str, shard_bytes: u64) -> Result<Self, StoreError> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let building = tempfile::Builder::new()
            .prefix(".building-")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        let first = shard_path(building.path(), 0);
        let shard = BufWriter::new(File::create(&first).map_err(io(&first))?);
        Ok(Self {
            dir: dir.to_path_buf(),
            key: key.to_string(),
            building,
            shard_limit: shard_bytes.max(1),
            shard,
            shards: 1,
            offset: 0,
            dim: None,
            entries: Vec::new(),
        })
    }

    /// Appends one matrix; returns its entry number.
    pub fn append(&mut self, features: &Features) -> Result<usize, StoreError> {
        let dim = *self.dim.get_or_insert(features.dim);
        if features.dim != dim {
            return Err(StoreError::Damaged {
                path: self.dir.clone(),
                message: format!("a matrix of width {} among width {dim}", features.dim),
            });
        }
        let bytes = matrix_bytes(features.num_frames, dim);
        if self.offset > 0 && self.offset + bytes > self.shard_limit {
            self.next_shard()?;
        }
        let path = shard_path(self.building.path(), self.shards - 1);
        for value in &features.data {
            self.shard
                .write_all(&value.to_le_bytes())
                .map_err(io(&path))?;
        }
        self.entries.push(Entry {
            shard: (self.shards - 1) as u32,
            offset: self.offset,
            frames: features.num_frames as u32,
        });
        self.offset += bytes;
        Ok(self.entries.len() - 1)
    }

    fn next_shard(&mut self) -> Result<(), StoreError> {
        let done = shard_path(self.building.path(), self.shards - 1);
        self.shard.flush().map_err(io(&done))?;
        let path = shard_path(self.building.path(), self.shards);
        self.shard = BufWriter::new(File::create(&path).map_err(io(&path))?);
        self.shards += 1;
        self.offset = 0;
        Ok(())
    }

    /// Writes the index and moves the store to its folder. When another process finished
    /// the same store first, that one is kept and opened.
    pub fn finish(
        mut self,
        examples: Vec<StoredExample>,
        skipped: Vec<(PathBuf, String)>,
    ) -> Result<FeatureStore, StoreError> {
        let last = shard_path(self.building.path(), self.shards - 1);
        self.shard.flush().map_err(io(&last))?;
        self.shard.get_ref().sync_all().map_err(io(&last))?;
        let index = Index {
            format: FORMAT,
            key: self.key.clone(),
            dim: self.dim.unwrap_or(0),
            shards: self.shards,
            entries: self.entries,
            examples,
            skipped,
        };
        let index_path = self.building.path().join(INDEX);
        let text = serde_json::to_string(&index).map_err(|e| io(&index_path)(e.into()))?;
        std::fs::write(&index_path, text).map_err(io(&index_path))?;
        if self.dir.exists() {
            // A damaged or outdated store under the same name: replace it.
            if let Some(store) = FeatureStore::open(&self.dir, &self.key).ok().flatten() {
                return Ok(store);
            }
            std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))?;
        }
        if let Err(error) = std::fs::rename(self.building.path(), &self.dir) {
            // Another process may have moved its copy into place meanwhile.
            return match FeatureStore::open(&self.dir, &self.key)? {
                Some(store) => Ok(store),
                None => Err(io(&self.dir)(error)),
            };
        }
        FeatureStore::open(&self.dir, &self.key)?.ok_or_else(|| StoreError::Damaged {
            path: self.dir.clone(),
            message: "the index just written does not read back".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(frames: usize, dim: usize, seed: f32) -> Features {
        Features {
            num_frames: frames,
            dim,
            data: (0..frames * dim).map(|i| seed + i as f32 * 0.5).collect(),
        }
    }

    fn example(versions: Vec<usize>) -> StoredExample {
        StoredExample {
            origin: Origin {
                label: 3,
                sequence: Some(vec![1, 2]),
                path: "a.wav".into(),
                speaker: "s".into(),
                clip: None,
            },
            versions,
        }
    }

    #[test]
    fn matrices_read_back_across_shards() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        // 100 bytes a shard: every 3 × 4 matrix (48 bytes) but pairs gets a new one.
        let mut writer = StoreWriter::create(&dir, "k", 100).unwrap();
        let written: Vec<Features> = (0..5).map(|i| matrix(3, 4, i as f32)).collect();
        for (i, m) in written.iter().enumerate() {
            assert_eq!(writer.append(m).unwrap(), i);
        }
        let big = matrix(40, 4, -1.0);
        writer.append(&big).unwrap();
        let store = writer
            .finish(
                vec![example(vec![0, 5])],
                vec![("b.wav".into(), "why".into())],
            )
            .unwrap();
        assert!(store.entries().iter().map(|e| e.shard).max().unwrap() >= 3);
        for (i, m) in written.iter().enumerate() {
            assert_eq!(&store.read(i).unwrap(), m);
            assert_eq!(store.get(i).as_ref(), Some(m));
        }
        assert_eq!(store.read(5).unwrap(), big);
        assert_eq!(Dataset::len(&store), 6);
        assert!(store.get(6).is_none());
        let reopened = FeatureStore::open(&dir, "k").unwrap().unwrap();
        assert_eq!(reopened.examples(), &[example(vec![0, 5])]);
        assert_eq!(reopened.skipped().len(), 1);
        assert_eq!(reopened.read(2).unwrap(), written[2]);
        // No temporary folder is left beside it.
        let names: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn another_key_or_no_store_is_none_and_truncation_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        assert!(FeatureStore::open(&dir, "k").unwrap().is_none());
        let mut writer = StoreWriter::create(&dir, "k", 1 << 20).unwrap();
        writer.append(&matrix(10, 2, 0.0)).unwrap();
        writer.finish(vec![example(vec![0])], Vec::new()).unwrap();
        assert!(FeatureStore::open(&dir, "other").unwrap().is_none());
        let shard = shard_path(&dir, 0);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&shard)
            .unwrap();
        file.set_len(40).unwrap();
        let error = FeatureStore::open(&dir, "k").unwrap_err();
        assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
        assert!(
            error.to_string().contains("shard 0 holds 40 bytes"),
            "{error}"
        );
        // Building again replaces the damaged store.
        let mut writer = StoreWriter::create(&dir, "k", 1 << 20).unwrap();
        writer.append(&matrix(10, 2, 1.0)).unwrap();
        let store = writer.finish(vec![example(vec![0])], Vec::new()).unwrap();
        assert_eq!(store.read(0).unwrap(), matrix(10, 2, 1.0));
    }

    #[test]
    fn a_matrix_of_another_width_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let mut writer = StoreWriter::create(&root.path().join("s"), "k", 1 << 20).unwrap();
        writer.append(&matrix(2, 3, 0.0)).unwrap();
        assert!(matches!(
            writer.append(&matrix(2, 4, 0.0)),
            Err(StoreError::Damaged { .. })
        ));
    }
}
