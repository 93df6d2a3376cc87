//! A run's folder (`OUT_DIR/NAME/`), held by one process at a time.
//!
//! A new run refuses a folder that already holds one (`config.toml` is the first file a run
//! writes); `--resume` continues it and `--overwrite` replaces it. Whoever opens the folder
//! holds an exclusive OS file lock on `NAME/.lock` until it drops the [`RunDir`]: a second
//! process, training or resuming, stops at once and is told which process holds it. The
//! lock is `flock(2)` (`LockFileEx` on Windows), so it dies with its holder: a killed run
//! leaves the `.lock` file behind but never a stale lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// The resolved configuration a run saves first (`--set` applied, class names filled in).
pub const CONFIG_FILE: &str = "config.toml";

/// The checkpoint folder inside a run folder.
pub const CHECKPOINTS: &str = "checkpoints";

/// The weights of the epoch with the best validation accuracy (its weight average when the
/// run keeps one), inside the checkpoint folder.
pub const BEST_WEIGHTS: &str = "best.mpk";

/// Where a finished run keeps the weights that `eval` and `predict` load ([`BEST_WEIGHTS`]).
pub fn best_weights(run: &Path) -> PathBuf {
    run.join(CHECKPOINTS).join(BEST_WEIGHTS)
}

/// How a run treats a folder that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Start a new run; refuse a folder that holds one.
    New,
    /// Continue the run in the folder (from its latest checkpoint).
    Resume,
    /// Delete what the folder holds and start a new run.
    Overwrite,
}

/// Why a run folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// Another process holds the folder's lock.
    #[error(
        "{} is in use by {}; wait for it to finish, or choose another --out-dir or name",
        path.display(),
        holder.map_or("another process".to_string(), |pid| format!("process {pid}"))
    )]
    InUse {
        /// The run folder.
        path: PathBuf,
        /// The holder's process id, when it had written it.
        holder: Option<u32>,
    },
    /// A new run was asked for where a run exists.
    #[error(
        "{} already holds a run; pass --resume to continue it or --overwrite to replace it",
        path.display()
    )]
    Exists {
        /// The run folder.
        path: PathBuf,
    },
    /// The folder or its lock file could not be created, read or cleared.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A run folder, locked for this process while the value lives.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Holds the lock; closing it releases the lock.
    _lock: File,
}

impl RunDir {
    /// Creates or opens the run folder `path` and takes its lock, for a run of `mode`.
    ///
    /// ```
    /// use train::report::run_dir::{RunDir, RunDirError, RunMode};
    ///
    /// let out = tempfile::tempdir().unwrap();
    /// let run = RunDir::open(&out.path().join("demo"), RunMode::New).unwrap();
    /// std::fs::write(run.path().join("config.toml"), "").unwrap();
    /// // While `run` lives, nobody else can open the folder.
    /// let again = RunDir::open(run.path(), RunMode::Resume);
    /// assert!(matches!(again, Err(RunDirError::InUse { .. })));
    /// drop(run);
    /// // Afterwards a new run is refused: the folder holds one.
    /// let new = RunDir::open(&out.path().join("demo"), RunMode::New);
    /// assert!(matches!(new, Err(RunDirError::Exists { .. })));
    /// ```
    pub fn open(path: &Path, mode: RunMode) -> Result<Self, RunDirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunDirError::Io { path, source }
        };
        std::fs::create_dir_all(path).map_err(io(path))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                return Err(RunDirError::InUse {
                    path: path.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(RunDirError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        lock.set_len(0).map_err(io(&lock_path))?;
        lock.rewind().map_err(io(&lock_path))?;
        write!(lock, "{}", std::process::id()).map_err(io(&lock_path))?;
        lock.flush().map_err(io(&lock_path))?;
        let holds_run = path.join(CONFIG_FILE).exists();
        match mode {
            RunMode::New if holds_run => {
                return Err(RunDirError::Exists {
                    path: path.to_path_buf(),
                });
            }
            RunMode::Overwrite => clear_except_lock(path)?,
            _ => {}
        }
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes everything in `dir` but the lock file.
fn clear_except_lock(dir: &Path) -> Result<(), RunDirError> {
    let io = |path: PathBuf| move |source| RunDirError::Io { path, source };
    for entry in std::fs::read_dir(dir).map_err(io(dir.to_path_buf()))? {
        let entry = entry.map_err(io(dir.to_path_buf()))?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().map_err(io(path.clone()))?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(path))?;
    }
    Ok(())
}
