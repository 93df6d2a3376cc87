//! The coordinator of a data-parallel run: burn's global orchestrator, and the liveness
//! service that admits the run's peers and tells them when one goes away.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use burn_communication::websocket::security::{Security, set_security};

use super::access::{Token, greeted, read_line};
use super::{PeerError, liveness_address};

/// How long a connection to the liveness service has to greet it.
const GREETING_WITHIN: Duration = Duration::from_secs(10);

/// The coordinator of a data-parallel run: burn's global orchestrator at its address and
/// the liveness service at the next port, both listening on the address's interface only.
/// With a token, a connection that does not present it is refused before anything else is
/// read from it, and the refusal is printed with where it came from.
#[derive(Debug)]
pub struct Coordinator {
    finished: mpsc::Receiver<Result<(), PeerError>>,
}

impl Coordinator {
    /// Starts both services for `peers` peers, each on threads of its own. A port that
    /// cannot be listened on fails here, naming it.
    pub fn start(
        address: SocketAddr,
        peers: usize,
        token: Option<Token>,
    ) -> Result<Self, PeerError> {
        if peers == 0 {
            return Err(PeerError::BadPeer { id: 0, peers });
        }
        let bind = |address: SocketAddr| {
            TcpListener::bind(address).map_err(|source| PeerError::Bind { address, source })
        };
        let listener = bind(liveness_address(address))?;
        // burn's orchestrator binds on its own thread and only logs a failure there.
        drop(bind(address)?);
        set_security(Security {
            bind: address.ip(),
            token: token.clone(),
        });
        let io = |what: &str| {
            let what = what.to_string();
            move |source| PeerError::Io { what, source }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("the orchestrator's runtime"))?;
        let port = address.port();
        std::thread::Builder::new()
            .name("collective-orchestrator".into())
            .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
            .map_err(io("starting the orchestrator"))?;
        let (report, finished) = mpsc::channel();
        std::thread::Builder::new()
            .name("coordinator-liveness".into())
            .spawn(move || report.send(watch_peers(listener, peers, token)).ok())
            .map_err(io("starting the liveness service"))?;
        Ok(Self { finished })
    }

    /// Waits until every peer has said it is done (`Ok`) or one has gone away (the error
    /// names it).
    pub fn wait(self) -> Result<(), PeerError> {
        self.finished
            .recv()
            .unwrap_or_else(|_| Err(PeerError::Collective("the liveness service stopped".into())))
    }
}

/// A connection that greeted the liveness service with the run's token.
struct Greeted {
    id: usize,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// Admits the `peers` peers, and tells the others when one drops before it said it was
/// done. Returns when all are done, or when one is lost.
fn watch_peers(listener: TcpListener, peers: usize, token: Option<Token>) -> Result<(), PeerError> {
    let here = listener.local_addr().ok();
    let stop = Arc::new(AtomicBool::new(false));
    let (greeted, admitted) = mpsc::channel();
    let accepting = Arc::clone(&stop);
    std::thread::spawn(move || accept(listener, token, greeted, accepting));
    let verdict = admit_and_watch(peers, admitted);
    stop.store(true, Ordering::SeqCst);
    if let Some(here) = here {
        // Wakes the accepting thread, which then stops.
        let _ = TcpStream::connect_timeout(&here, Duration::from_secs(1));
    }
    verdict
}

/// Accepts connections until `stop`, each greeted on a thread of its own, so that a
/// stranger that says nothing holds up no one.
fn accept(
    listener: TcpListener,
    token: Option<Token>,
    greeted: mpsc::Sender<Greeted>,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (token, greeted) = (token.clone(), greeted.clone());
        std::thread::spawn(move || {
            if let Some(peer) = greet(stream, token.as_ref()) {
                let _ = greeted.send(peer);
            }
        });
    }
}

/// Reads a connection's greeting: the peer it names when it presents the token; otherwise
/// the connection is refused, with a line that says why, and printed.
fn greet(mut stream: TcpStream, token: Option<&Token>) -> Option<Greeted> {
    let from = stream.peer_addr().ok()?;
    stream.set_read_timeout(Some(GREETING_WITHIN)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let verdict = match read_line(&mut reader) {
        Ok(Some(line)) => greeted(&line, token),
        Ok(None) => Err("no greeting"),
        Err(_) => Err("not a peer's greeting"),
    };
    match verdict {
        Ok(id) => {
            stream.set_read_timeout(None).ok()?;
            Some(Greeted { id, stream, reader })
        }
        Err(why) => {
            eprintln!("refused a liveness connection from {from}: {why}");
            let _ = writeln!(stream, "refused {why}");
            None
        }
    }
}

/// Admits each peer once, then reports the first to drop before it is done.
fn admit_and_watch(peers: usize, admitted: mpsc::Receiver<Greeted>) -> Result<(), PeerError> {
    let mut connections: Vec<(usize, TcpStream)> = Vec::new();
    let (events, seen) = mpsc::channel::<(usize, bool)>();
    while connections.len() < peers {
        let Ok(Greeted {
            id,
            mut stream,
            mut reader,
        }) = admitted.recv()
        else {
            return Err(PeerError::Collective("the liveness service stopped".into()));
        };
        if id >= peers || connections.iter().any(|(other, _)| *other == id) {
            eprintln!("refused a second or unknown peer {id} (the run has {peers})");
            let _ = writeln!(stream, "refused peer {id} is taken or out of range");
            continue;
        }
        if writeln!(stream, "ok").is_err() {
            continue;
        }
        let events = events.clone();
        std::thread::spawn(move || {
            let done = loop {
                match read_line(&mut reader) {
                    Ok(Some(line)) if line == "done" => break true,
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break false,
                }
            };
            let _ = events.send((id, done));
        });
        connections.push((id, stream));
    }
    drop(events);
    let mut finished = 0;
    while let Ok((id, done)) = seen.recv() {
        if !done {
            for (other, stream) in connections.iter_mut() {
                if *other != id {
                    let _ = writeln!(stream, "lost {id}");
                }
            }
            return Err(PeerError::PeerLost { peer: id });
        }
        finished += 1;
        if finished == peers {
            break;
        }
    }
    Ok(())
}
