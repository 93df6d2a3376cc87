//! The data-parallel side of `experiment`: the `coordinator` subcommand, and a `train`
//! process's place in a run.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use train::engine::peers::access::run_token;
use train::engine::peers::{Coordinator, PeerError, PeerSetup, Peers};

/// How this process takes part in a data-parallel run.
#[derive(Args)]
pub struct Parallel {
    /// Data-parallel training: this process is one of N peers, each computing part of
    /// every batch; they sum their gradients (burn's collective all-reduce) and hold the
    /// same weights after every step. Needs --coordinator. `launch` starts all the peers
    /// of one machine.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "coordinator")]
    pub peers: usize,
    /// This peer's number, 0 to N−1. Peer 0 writes OUT_DIR/NAME/, peer I
    /// OUT_DIR/NAME.peer-I/ (the same weights: every peer can resume on its own).
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub peer_id: usize,
    /// The run's coordinator (`experiment coordinator`): burn's orchestrator at
    /// HOST:PORT, its liveness service at HOST:PORT+1.
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: Option<SocketAddr>,
    /// Where the other peers reach this one; its tensor service listens on PORT.
    /// Default: 127.0.0.1, port = the coordinator's + 2 + I (one machine).
    #[arg(long, value_name = "HOST:PORT", requires = "coordinator")]
    pub peer_address: Option<SocketAddr>,
    /// The interface this peer's tensor service listens on. Default: --peer-address's
    /// host (never every interface unless asked, with --bind 0.0.0.0).
    #[arg(long, value_name = "IP", requires = "coordinator")]
    pub bind: Option<IpAddr>,
    /// A file whose first line is the run's shared secret (the coordinator's
    /// --token-file). Default: the SPEECHRNN_RUN_TOKEN environment variable, which
    /// `launch` sets; with neither, no token.
    #[arg(long, value_name = "FILE", requires = "coordinator")]
    pub token_file: Option<PathBuf>,
    /// Give up on the coordinator after this many seconds without an answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
}

/// `experiment coordinator`: serves a run of `peers` peers at `address` until all are done.
pub fn coordinate(
    peers: usize,
    address: SocketAddr,
    token_file: Option<&Path>,
) -> anyhow::Result<()> {
    let token = run_token(token_file)?;
    let bind = address.ip();
    if token.is_none() && !bind.is_loopback() {
        eprintln!(
            "warning: listening on {bind} with no token: anyone who can reach it can join the run (--token-file)"
        );
    }
    let coordinator = Coordinator::start(address, peers, token)?;
    println!(
        "coordinating {peers} peers: orchestrator on {address}, liveness on port {}",
        address.port().wrapping_add(1)
    );
    coordinator.wait()?;
    println!("all {peers} peers are done");
    Ok(())
}

/// This process's place in a data-parallel run, when `--coordinator` names one.
pub fn peers(parallel: &Parallel) -> anyhow::Result<Option<Peers>> {
    let Some(coordinator) = parallel.coordinator else {
        return Ok(None);
    };
    let (peers, id, address) = (parallel.peers, parallel.peer_id, parallel.peer_address);
    let mut setup = PeerSetup::new(peers, id, coordinator, address);
    setup.bind = parallel.bind.unwrap_or(setup.bind);
    setup.token = run_token(parallel.token_file.as_deref())?;
    setup.connect_within = std::time::Duration::from_secs(parallel.connect_timeout);
    Ok(Some(Peers {
        setup,
        // The training thread may be waiting in an all-reduce that can no longer
        // complete: stop the process (checkpoints are written whole or not at all).
        on_lost: Arc::new(|error: &PeerError| {
            eprintln!("error: {error}");
            std::process::exit(3);
        }),
    }))
}
