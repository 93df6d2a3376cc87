//! Data-parallel training over processes, on burn's collective operations (`burn-collective`).
//!
//! Every peer holds the whole model and draws the same epochs from the experiment's seed. Of
//! each batch it reads and computes only its own part (peer `i` of `n` takes rows
//! `len·i/n .. len·(i+1)/n`), weights its loss by its share of the batch, and before each
//! optimiser step the peers sum their gradients with burn's all-reduce. So all peers hold
//! the same parameters after every step: those of one process that trains on whole batches.
//!
//! A run has one coordinator ([`Coordinator`]), which every peer reaches at the same address:
//! - burn's global orchestrator, on its port (WebSocket), which pairs the peers' all-reduces;
//! - a liveness service on the next port, over plain TCP: each peer keeps a connection open
//!   for the whole run and says when it is done. When a peer's connection drops before
//!   that, the coordinator tells every other peer which one it was, and they stop with
//!   [`PeerError::PeerLost`] instead of waiting for it forever.
//!
//! Each peer also serves its tensors to the others on its own address
//! ([`PeerSetup::address`]). Every server listens on one interface only (the coordinator's
//! given address, each peer's [`PeerSetup::bind`]), and with a run token ([`access`]) admits
//! only connections that present it.

pub mod access;
mod coordinator;

pub use coordinator::Coordinator;

use std::io::{BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};
use burn_communication::websocket::security::{Security, set_security};

use access::{Token, greeting, read_line};

use crate::eval::score::Score;

/// Why data-parallel training stopped.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Another peer's connection to the coordinator dropped before it was done: it stopped
    /// or its machine went away.
    #[error(
        "peer {peer} stopped before the end of the run; stopping too (resume all peers from the last checkpoint with --resume)"
    )]
    PeerLost {
        /// Which peer.
        peer: usize,
    },
    /// The coordinator closed this peer's connection.
    #[error("the coordinator at {address} went away; stopping")]
    CoordinatorLost {
        /// Its liveness address.
        address: SocketAddr,
    },
    /// The coordinator could not be reached within the time allowed.
    #[error("cannot reach the coordinator at {address} within {seconds} s: {source}")]
    Unreachable {
        /// Its liveness address.
        address: SocketAddr,
        /// How long it was tried.
        seconds: u64,
        /// The last attempt's error.
        #[source]
        source: std::io::Error,
    },
    /// What answered at the coordinator's address did not greet this peer as a
    /// coordinator within the time allowed.
    #[error("{address} did not answer as a coordinator within {seconds} s")]
    NotACoordinator {
        /// Its liveness address.
        address: SocketAddr,
        /// How long it was given.
        seconds: u64,
    },
    /// The coordinator refused this peer (a wrong token, or its peer number taken).
    #[error("the coordinator at {address} refused this peer: {why}")]
    Refused {
        /// Its liveness address.
        address: SocketAddr,
        /// What it said.
        why: String,
    },
    /// A port could not be listened on (taken, or the address is not this machine's).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address and port.
        address: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A network socket of this peer or of the coordinator failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// burn's collective operations refused or failed.
    #[error("collective operation failed: {0}")]
    Collective(String),
    /// The peers resumed from checkpoints of different epochs.
    #[error(
        "this peer resumed after epoch {epoch}, the {peers} peers after {total} epochs in all: resume every peer from the same checkpoint (remove the newer ones)"
    )]
    ResumedApart {
        /// This peer's last epoch.
        epoch: usize,
        /// Peers in the run.
        peers: usize,
        /// The sum over the peers of their last epochs.
        total: usize,
    },
    /// The peer numbers do not make a run.
    #[error("peer {id} of {peers}: peers must be ≥ 1 and the id below them")]
    BadPeer {
        /// This peer's number.
        id: usize,
        /// Peers in the run.
        peers: usize,
    },
}

/// One peer's place in a data-parallel run.
#[derive(Debug, Clone)]
pub struct PeerSetup {
    /// Peers in the run.
    pub peers: usize,
    /// This peer, from 0.
    pub id: usize,
    /// The coordinator: burn's orchestrator at this address, the liveness service at the
    /// next port.
    pub coordinator: SocketAddr,
    /// Where the other peers fetch this peer's tensors (its port is opened here).
    pub address: SocketAddr,
    /// The interface this peer's tensor service listens on (by default `address`'s).
    pub bind: IpAddr,
    /// The run's shared secret, presented to the coordinator and the other peers, and
    /// demanded of them (none: no check).
    pub token: Option<Token>,
    /// How long to keep trying to reach the coordinator, and to wait for its greeting.
    pub connect_within: Duration,
}

impl PeerSetup {
    /// Peer `id` of `peers`, reached by the others at `address`; by default 127.0.0.1 at the
    /// coordinator's port + 2 + `id` (every peer on one machine). It listens on `address`'s
    /// interface, has no token, and gives up on the coordinator after 60 s; the fields
    /// change that.
    pub fn new(
        peers: usize,
        id: usize,
        coordinator: SocketAddr,
        address: Option<SocketAddr>,
    ) -> Self {
        let address = address.unwrap_or_else(|| {
            let port = coordinator.port().wrapping_add(2 + id as u16);
            SocketAddr::from(([127, 0, 0, 1], port))
        });
        Self {
            peers,
            id,
            coordinator,
            address,
            bind: address.ip(),
            token: None,
            connect_within: CONNECT_WITHIN,
        }
    }

    /// Rows `start..end` of a batch of `rows` that this peer trains on.
    pub fn part(&self, rows: usize) -> std::ops::Range<usize> {
        rows * self.id / self.peers..rows * (self.id + 1) / self.peers
    }

    /// The rows this peer reads of a batch of `rows`: its part, or the first row when its
    /// part is empty (a batch with fewer rows than peers). Such a row is computed to take
    /// part in the all-reduce, and weighs nothing ([`PeerSetup::share`] is 0).
    pub fn rows_read(&self, rows: usize) -> std::ops::Range<usize> {
        match self.part(rows) {
            part if part.is_empty() => 0..rows.min(1),
            part => part,
        }
    }

    /// The weight of this peer's loss: its part's `normalizer` (what the loss is a mean
    /// over) against the whole batch's, 0 when its part is empty.
    pub fn share(&self, rows: usize, part_normalizer: usize, batch_normalizer: usize) -> f64 {
        if self.part(rows).is_empty() || batch_normalizer == 0 {
            0.0
        } else {
            part_normalizer as f64 / batch_normalizer as f64
        }
    }
}

/// How a process takes part in a data-parallel run: its place, and what to do when another
/// peer goes away (see [`PeerGroup::join`]).
#[derive(Clone)]
pub struct Peers {
    /// This peer's place.
    pub setup: PeerSetup,
    /// Called from a watcher thread when another peer or the coordinator goes away.
    pub on_lost: Arc<dyn Fn(&PeerError) + Send + Sync>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

/// Connects to the coordinator's liveness service and greets it: the connection (to write
/// on) and its reader once the coordinator has answered `ok`.
fn admitted(setup: &PeerSetup) -> Result<(TcpStream, BufReader<TcpStream>), PeerError> {
    let address = liveness_address(setup.coordinator);
    let started = Instant::now();
    let left = || setup.connect_within.saturating_sub(started.elapsed());
    let seconds = setup.connect_within.as_secs();
    let mut stream = loop {
        match TcpStream::connect_timeout(&address, left().max(Duration::from_millis(1))) {
            Ok(stream) => break stream,
            Err(source) if left().is_zero() => {
                return Err(PeerError::Unreachable {
                    address,
                    seconds,
                    source,
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100).min(left())),
        }
    };
    let io = |source| PeerError::Io {
        what: format!("liveness connection to {address}"),
        source,
    };
    writeln!(stream, "{}", greeting(setup.id, setup.token.as_ref())).map_err(io)?;
    let wait = left().max(Duration::from_millis(1));
    stream.set_read_timeout(Some(wait)).map_err(io)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(io)?);
    match read_line(&mut reader) {
        Ok(Some(line)) if line == "ok" => {}
        Ok(Some(line)) if line.starts_with("refused ") => {
            let why = line["refused ".len()..].to_string();
            return Err(PeerError::Refused { address, why });
        }
        _ => return Err(PeerError::NotACoordinator { address, seconds }),
    }
    stream.set_read_timeout(None).map_err(io)?;
    Ok((stream, reader))
}

/// The liveness address of a coordinator at `coordinator`.
fn liveness_address(coordinator: SocketAddr) -> SocketAddr {
    SocketAddr::new(coordinator.ip(), coordinator.port().wrapping_add(1))
}

/// How long a peer keeps trying to reach the coordinator when it starts, by default.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(60);

/// A peer that has joined its run: registered with burn's collective and watched over by the
/// coordinator. [`PeerGroup::finish`] leaves the run.
#[derive(Debug)]
pub struct PeerGroup {
    setup: PeerSetup,
    liveness: Mutex<TcpStream>,
    done: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<PeerError>>>,
}

impl PeerGroup {
    /// Joins the run: connects to the coordinator's liveness service (retrying for up to
    /// [`PeerSetup::connect_within`] while it starts), is admitted with the run's token,
    /// and registers with burn's collective on backend `B`.
    ///
    /// `on_lost` is called from a watcher thread when another peer or the coordinator goes
    /// away. This peer may then be blocked in an all-reduce that will never complete, so
    /// the caller decides how to stop (the `experiment` binary prints the error and exits).
    pub fn join<B: Backend>(
        setup: PeerSetup,
        device: &B::Device,
        on_lost: impl Fn(&PeerError) + Send + 'static,
    ) -> Result<Self, PeerError> {
        if setup.peers == 0 || setup.id >= setup.peers {
            return Err(PeerError::BadPeer {
                id: setup.id,
                peers: setup.peers,
            });
        }
        let address = liveness_address(setup.coordinator);
        let (writer, mut reader) = admitted(&setup)?;
        let (done, lost) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
        let (watch_done, watch_lost) = (Arc::clone(&done), Arc::clone(&lost));
        std::thread::Builder::new()
            .name("peer-liveness".into())
            .spawn(move || {
                let error = loop {
                    match read_line(&mut reader) {
                        Ok(Some(line)) => {
                            if let Some(peer) = line
                                .strip_prefix("lost ")
                                .and_then(|p| p.trim().parse().ok())
                            {
                                break PeerError::PeerLost { peer };
                            }
                        }
                        _ => break PeerError::CoordinatorLost { address },
                    }
                };
                if !watch_done.load(Ordering::SeqCst) {
                    on_lost(&error);
                    *watch_lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                }
            })
            .map_err(|source| PeerError::Io {
                what: "starting the liveness watcher".into(),
                source,
            })?;
        set_security(Security {
            bind: setup.bind,
            token: setup.token.clone(),
        });
        let global = |address: SocketAddr| {
            burn_communication::Address::from_str(&format!("ws://{address}"))
                .map_err(PeerError::Collective)
        };
        let config = CollectiveConfig::default()
            .with_num_devices(1)
            .with_num_nodes(setup.peers as u32)
            .with_global_address(global(setup.coordinator)?)
            .with_node_address(global(setup.address)?)
            .with_data_service_port(setup.address.port())
            // burn's ring all-reduce refuses tensors with fewer rows than peers (a bias, a
            // loss); the binary tree takes any shape.
            .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2));
        burn_collective::register::<B>(PeerId::from(setup.id), device.clone(), config)
            .map_err(|e| PeerError::Collective(format!("{e:?}")))?;
        Ok(Self {
            setup,
            liveness: Mutex::new(writer),
            done,
            lost,
        })
    }

    /// This peer's place in the run.
    pub fn setup(&self) -> &PeerSetup {
        &self.setup
    }

    /// What the liveness watcher saw go away, waiting up to `within` for it: burn's own
    /// error for a lost peer can come first, and names its internal node number, not the
    /// peer's.
    fn watcher_verdict(&self, within: Duration) -> Option<PeerError> {
        let started = Instant::now();
        loop {
            if let Some(error) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Some(error);
            }
            if started.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The sum of `tensor` over the peers.
    pub fn sum<B: Backend, const D: usize>(
        &self,
        tensor: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, PeerError> {
        let TensorPrimitive::Float(primitive) = tensor.into_primitive() else {
            return Err(PeerError::Collective(
                "quantised tensors are not summed".into(),
            ));
        };
        burn_collective::all_reduce::<B>(
            PeerId::from(self.setup.id),
            primitive,
            ReduceOperation::Sum,
        )
        .map(|sum| Tensor::from_primitive(TensorPrimitive::Float(sum)))
        .map_err(|e| {
            self.watcher_verdict(Duration::from_secs(2))
                .unwrap_or_else(|| PeerError::Collective(format!("{e:?}")))
        })
    }

    /// Checks that every peer starts after the same epoch (`epoch`, 0 for a fresh start).
    pub fn check_same_start<B: Backend>(
        &self,
        epoch: usize,
        device: &B::Device,
    ) -> Result<(), PeerError> {
        let mine = Tensor::<B, 1>::from_data(TensorData::new(vec![epoch as f32], [1]), device);
        let total = self
            .sum(mine)?
            .into_data()
            .iter::<f32>()
            .next()
            .unwrap_or(0.0) as usize;
        match total == epoch * self.setup.peers {
            true => Ok(()),
            false => Err(PeerError::ResumedApart {
                epoch,
                peers: self.setup.peers,
                total,
            }),
        }
    }

    /// Sums one step over the peers in a single all-reduce: the gradients of `model`'s
    /// parameters, the loss value and the batch's counts. The gradients go in the order the
    /// model visits its parameters: the same in every process, unlike burn's parameter ids,
    /// which are random per process.
    pub fn sum_step<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        mut grads: GradientsParams,
        (loss, score): (f64, Score),
        device: &B::Device,
    ) -> Result<(GradientsParams, f64, Score), PeerError> {
        let mut flatten = Flatten::<B> {
            grads: &mut grads,
            pieces: Vec::new(),
            shapes: Vec::new(),
        };
        model.visit(&mut flatten);
        let Flatten {
            mut pieces, shapes, ..
        } = flatten;
        let mut packed = vec![
            loss,
            score.correct as f64,
            score.sequences as f64,
            score.label_errors as f64,
            score.reference_labels as f64,
        ];
        packed.extend(
            score
                .per_class
                .iter()
                .flat_map(|&(r, t)| [r as f64, t as f64]),
        );
        let counts = packed.len();
        pieces.push(Tensor::from_data(
            TensorData::new(packed.iter().map(|&v| v as f32).collect(), [counts]),
            device,
        ));
        let summed = self.sum(Tensor::cat(pieces, 0))?;
        let total = summed.dims()[0];
        let tail: Vec<f32> = summed
            .clone()
            .narrow(0, total - counts, counts)
            .into_data()
            .iter::<f32>()
            .collect();
        model.visit(&mut Unflatten::<B> {
            grads: &mut grads,
            summed,
            shapes: shapes.into_iter(),
            offset: 0,
        });
        let count = |i: usize| tail[i].round() as usize;
        let score = Score {
            correct: count(1),
            sequences: count(2),
            label_errors: count(3),
            reference_labels: count(4),
            per_class: (0..score.per_class.len())
                .map(|c| (count(5 + 2 * c), count(6 + 2 * c)))
                .collect(),
        };
        Ok((grads, tail[0] as f64, score))
    }

    /// Leaves the run: unregisters, then tells the coordinator this peer is done.
    pub fn finish<B: Backend>(self) -> Result<(), PeerError> {
        self.done.store(true, Ordering::SeqCst);
        // Unregister while the coordinator is sure to be up: it may stop once all are done.
        let finished = burn_collective::finish_collective::<B>(PeerId::from(self.setup.id))
            .map_err(|e| PeerError::Collective(format!("{e:?}")));
        let mut liveness = self.liveness.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(liveness, "done");
        finished
    }
}

/// Takes each parameter's gradient out of `grads`, flattened, in visiting order.
struct Flatten<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    pieces: Vec<Tensor<B::InnerBackend, 1>>,
    /// Each visited parameter's gradient shape; `None` where it has no gradient.
    shapes: Vec<Option<Vec<usize>>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self.grads.remove::<B::InnerBackend, D>(param.id);
        self.shapes.push(grad.as_ref().map(|g| g.dims().to_vec()));
        if let Some(grad) = grad {
            let len = grad.shape().num_elements();
            self.pieces.push(grad.reshape([len]));
        }
    }
}

/// Puts the summed gradients back, in the order [`Flatten`] took them out.
struct Unflatten<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    summed: Tensor<B::InnerBackend, 1>,
    shapes: std::vec::IntoIter<Option<Vec<usize>>>,
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let Some(Some(shape)) = self.shapes.next() else {
            return;
        };
        let Ok(dims) = <[usize; D]>::try_from(shape.as_slice()) else {
            return;
        };
        let len: usize = dims.iter().product();
        let piece = self.summed.clone().narrow(0, self.offset, len);
        self.offset += len;
        self.grads.register(param.id, piece.reshape(dims));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_of_a_batch_cover_it_once() {
        for rows in [1, 7, 16, 33] {
            for peers in 1..5 {
                let mut covered = Vec::new();
                for id in 0..peers {
                    let setup = PeerSetup::new(
                        peers,
                        id,
                        "127.0.0.1:1".parse().unwrap(),
                        Some("127.0.0.1:2".parse().unwrap()),
                    );
                    covered.extend(setup.part(rows));
                }
                assert_eq!(covered, (0..rows).collect::<Vec<_>>());
            }
        }
    }
}
