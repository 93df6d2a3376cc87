//! The data-parallel side of `experiment`: the `coordinator` subcommand, and a `train`
//! process's place in a run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use train::engine::peers::access::run_token;
use train::engine::peers::{Coordinator, PeerError, PeerSetup, Peers};

use crate::args::Parallel;

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
