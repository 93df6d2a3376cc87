//! `experiment launch`: a data-parallel run on this machine, as `torchrun --nproc-per-node`.

use std::path::Path;

use crate::engine::peers::{Coordinator, PeerError};

/// Why a local data-parallel run failed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `--peers` was 0.
    #[error("--peers must be at least 1")]
    NoPeers,
    /// The coordinator could not start, or a peer went away.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// A peer process could not be started or waited for.
    #[error("peer {id}: {source}")]
    Process {
        /// The peer.
        id: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A peer exited with an error.
    #[error("peer {id} failed ({status}); the run stopped")]
    Failed {
        /// The first peer that failed.
        id: usize,
        /// How it exited.
        status: std::process::ExitStatus,
    },
}

/// Runs a coordinator on `port` and `peers` processes of `program train TRAIN_ARGS`, one
/// thread each (`RAYON_NUM_THREADS=1`) on 127.0.0.1, until all have ended; fails naming
/// the first peer that failed.
pub fn launch_local(
    program: &Path,
    peers: usize,
    port: u16,
    train_args: &[String],
) -> Result<(), LaunchError> {
    if peers == 0 {
        return Err(LaunchError::NoPeers);
    }
    let coordinator = Coordinator::start(port, peers)?;
    let mut children = Vec::new();
    for id in 0..peers {
        let child = std::process::Command::new(program)
            .arg("train")
            .args(train_args)
            .args(["--peers", &peers.to_string(), "--peer-id", &id.to_string()])
            .args(["--coordinator", &format!("127.0.0.1:{port}")])
            .env("RAYON_NUM_THREADS", "1")
            .spawn()
            .map_err(|source| LaunchError::Process { id, source })?;
        children.push(child);
    }
    let mut failed = None;
    for (id, mut child) in children.into_iter().enumerate() {
        let status = child
            .wait()
            .map_err(|source| LaunchError::Process { id, source })?;
        if !status.success() && failed.is_none() {
            failed = Some(LaunchError::Failed { id, status });
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    coordinator.wait()?;
    Ok(())
}
