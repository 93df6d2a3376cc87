//! `experiment launch`: a data-parallel run on this machine, as `torchrun --nproc-per-node`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use crate::engine::peers::access::{TOKEN_VARIABLE, new_token};
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
    /// No free run of ports for the coordinator and the peers was found.
    #[error("found no {ports} free consecutive ports on 127.0.0.1: give one with --port")]
    NoFreePorts {
        /// How many the run needs.
        ports: usize,
    },
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

/// Runs a coordinator on `port` (by default the first of a free run of ports) and `peers`
/// processes of `program train TRAIN_ARGS`, one thread each (`RAYON_NUM_THREADS=1`), until
/// all have ended; fails naming the first peer that failed. Every socket of the run listens
/// on 127.0.0.1 only, and the run has a fresh token, handed to the peers in the
/// environment ([`TOKEN_VARIABLE`]).
pub fn launch_local(
    program: &Path,
    peers: usize,
    port: Option<u16>,
    train_args: &[String],
) -> Result<(), LaunchError> {
    if peers == 0 {
        return Err(LaunchError::NoPeers);
    }
    let port = match port {
        Some(port) => port,
        None => free_ports(2 + peers)?,
    };
    let token = new_token();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let coordinator = Coordinator::start(address, peers, Some(token.clone()))?;
    let mut children = Vec::new();
    for id in 0..peers {
        let child = std::process::Command::new(program)
            .arg("train")
            .args(train_args)
            .args(["--peers", &peers.to_string(), "--peer-id", &id.to_string()])
            .args(["--coordinator", &address.to_string()])
            .env("RAYON_NUM_THREADS", "1")
            .env(TOKEN_VARIABLE, token.expose())
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

/// The first of `ports` consecutive ports that nothing listens on at 127.0.0.1, starting
/// from one the system hands out (as `torchrun --standalone` finds its port).
fn free_ports(ports: usize) -> Result<u16, LaunchError> {
    let bindable = |port: usize| {
        u16::try_from(port).is_ok_and(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
    };
    for _ in 0..100 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port() as usize);
        if let Ok(first) = first
            && (first + 1..first + ports).all(bindable)
        {
            return Ok(first as u16);
        }
    }
    Err(LaunchError::NoFreePorts { ports })
}
