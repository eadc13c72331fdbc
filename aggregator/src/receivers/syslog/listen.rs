//! The syslog listeners: TCP (TLS when configured, RFC 5425) and UDP.
//!
//! TCP: each connection is read, framed ([`Framer`]) and parsed; what one
//! read brought is stored through the [`Intake`] before the next read, so
//! a sender is slowed down by the commit (its data waits in the kernel's
//! buffers and then its own) rather than the aggregator holding an unbounded
//! backlog, and a crash loses at most the messages of that one read. Group
//! commit in the log writer shares one commit among connections, and a busy
//! sender's next read brings everything that arrived meanwhile, so batches
//! grow with the load. A connection over `max_connections` is closed at
//! once, one silent for `idle_timeout` is closed, and one whose messages
//! cannot be stored is closed so that its sender notices and retries.
//!
//! UDP: a datagram is a message. Reading never waits for a commit (a
//! datagram not read in time is dropped by the kernel): batches of what
//! arrived go to a committing task over a bounded queue; while the queue is
//! full, what arrives gathers in one more batch, and only datagrams that
//! find that batch full too are dropped and counted. UDP syslog is best
//! effort.
//!
//! Messages that are not syslog (no `<PRI>`, a broken RFC 5424 header) are
//! counted as invalid and dropped.
//!
//! A reload replaces the TLS certificate ([`SyslogServer::replace_tls`]):
//! connections made from then on get the new one, open ones keep theirs.

use super::framing::Framer;
use super::parse;
use crate::config::SyslogConfig;
use crate::metrics::{Received, Receiver};
use crate::receivers::{Intake, IntakeError, Line};
use anyhow::Context as _;
use arc_swap::ArcSwap;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rustls::ServerConfig;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Bytes asked of the socket per read at least.
const READ_CHUNK: usize = 256 * 1024;
/// Messages stored in one commit at most: a TCP read of tiny messages, or
/// a batch of datagrams.
const MAX_LINES_PER_COMMIT: usize = 4096;
/// Bytes of datagrams gathered into one batch at most, so that the queue
/// holds at most `UDP_QUEUE` times this.
const UDP_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches of datagrams waiting for their commit at most.
const UDP_QUEUE: usize = 16;
/// The UDP socket's receive buffer asked for: a burst from many devices
/// arrives faster than one read loop drains it, and the kernel's default
/// (about 200 KiB) drops the rest. The kernel caps it at `net.core.rmem_max`.
const UDP_RECEIVE_BUFFER: usize = 8 * 1024 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for connections to finish their commit.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What every connection needs.
struct Shared {
    intake: Intake,
    max_message: usize,
    idle_timeout: Duration,
    zone: TimeZone,
}

/// The running listeners.
pub struct SyslogServer {
    tcp_addr: Option<SocketAddr>,
    udp_addr: Option<SocketAddr>,
    /// The TCP listener's TLS configuration, when it serves TLS.
    tls: Option<Arc<ArcSwap<ServerConfig>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyslogServer {
    /// Binds the configured listeners and serves them until [`SyslogServer::stop`].
    /// Logs `syslog receiver listening on tcp://ADDR` (`tls://`, `udp://`)
    /// with each bound address.
    pub async fn start(config: &SyslogConfig, intake: Intake) -> anyhow::Result<SyslogServer> {
        let zone = match &config.timezone {
            Some(name) => TimeZone::get(name).with_context(|| format!("syslog.timezone `{name}`"))?,
            None => TimeZone::system(),
        };
        let shared = Arc::new(Shared {
            intake,
            max_message: usize::try_from(config.max_message_bytes.bytes()).unwrap_or(usize::MAX),
            idle_timeout: config.idle_timeout.get(),
            zone,
        });
        let (stop, stopping) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut tcp_addr = None;
        let mut tls = None;
        if let Some(addr) = config.tcp {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for syslog on tcp {addr}"))?;
            let bound = listener.local_addr()?;
            tls = match &config.tls {
                Some(settings) => Some(Arc::new(ArcSwap::new(crate::tls::syslog_server_config(settings)?))),
                None => None,
            };
            let scheme = if tls.is_some() { "tls" } else { "tcp" };
            tracing::info!("syslog receiver listening on {scheme}://{bound}");
            let limit = Arc::new(Semaphore::new(config.max_connections));
            tasks.push(tokio::spawn(accept(
                listener,
                tls.clone(),
                limit,
                shared.clone(),
                stopping.clone(),
            )));
            tcp_addr = Some(bound);
        }
        let mut udp_addr = None;
        if let Some(addr) = config.udp {
            let socket = bind_udp(addr).with_context(|| format!("cannot listen for syslog on udp {addr}"))?;
            let bound = socket.local_addr()?;
            tracing::info!("syslog receiver listening on udp://{bound}");
            tasks.push(tokio::spawn(receive_datagrams(socket, shared, stopping)));
            udp_addr = Some(bound);
        }
        Ok(SyslogServer {
            tcp_addr,
            udp_addr,
            tls,
            stop,
            tasks,
        })
    }

    /// The TCP (or TLS) listener's address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The UDP socket's address.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// Whether the TCP listener serves TLS.
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `config` to TLS connections made from now on (a renewed
    /// certificate); does nothing when the listener serves plain TCP.
    pub fn replace_tls(&self, config: Arc<ServerConfig>) {
        if let Some(tls) = &self.tls {
            tls.store(config);
        }
    }

    /// Stops accepting and reading; waits (a bounded time) for what was read
    /// to be stored. Call before stopping the log writer.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(err) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::warn!(error = %err, "cannot enlarge the syslog UDP receive buffer; bursts may be dropped");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn accept(
    listener: TcpListener,
    tls: Option<Arc<ArcSwap<ServerConfig>>>,
    limit: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        // Reap finished connections so the set stays as small as what is open.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %err, "cannot accept a syslog connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            shared.intake.metrics().connection_refused(Receiver::Syslog);
            tracing::debug!(%peer, "syslog connection closed: too many open");
            continue;
        };
        let shared = shared.clone();
        let stopping = stopping.clone();
        // The configuration in force when the connection came.
        let tls = tls.as_ref().map(|tls| tokio_rustls::TlsAcceptor::from(tls.load_full()));
        connections.spawn(async move {
            let _permit = permit;
            serve(stream, peer, tls, &shared, stopping).await;
        });
    }
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, finished).await.is_err() {
        tracing::warn!("syslog connections did not finish in time; closing them");
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: &Shared,
    stopping: watch::Receiver<bool>,
) {
    // Small messages should not wait for more to fill a segment.
    let _ = stream.set_nodelay(true);
    match tls {
        None => read_messages(stream, peer.ip(), shared, stopping).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => read_messages(stream, peer.ip(), shared, stopping).await,
            Ok(Err(err)) => tracing::info!(%peer, error = %err, "syslog TLS handshake failed"),
            Err(_) => tracing::info!(%peer, "syslog TLS handshake timed out"),
        },
    }
}

/// Reads, frames, parses and stores one connection's messages until it
/// ends, idles out, or the server stops.
async fn read_messages<S: AsyncRead + Unpin>(
    mut stream: S,
    peer: IpAddr,
    shared: &Shared,
    mut stopping: watch::Receiver<bool>,
) {
    let mut framer = Framer::new(shared.max_message);
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = tokio::time::timeout(shared.idle_timeout, stream.read_buf(&mut buf)) => read,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let ended = match read {
            Ok(Ok(0)) => true,
            Ok(Ok(_)) => false,
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "syslog connection failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "syslog connection idle; closing it");
                return;
            }
        };
        let received = Timestamp::now();
        // What one read brought, stored in rounds of at most
        // MAX_LINES_PER_COMMIT messages (a read of tiny messages is many).
        loop {
            let mut lines = Vec::new();
            let mut invalid = 0;
            let mut used = 0;
            while lines.len() + invalid < MAX_LINES_PER_COMMIT {
                let (more, frame) = framer.next(&buf[used..]);
                used += more;
                let Some(frame) = frame else { break };
                match parse(frame.bytes, received, &shared.zone) {
                    Ok(message) => lines.push(message.into_line(peer, frame.truncated)),
                    Err(_) => invalid += 1,
                }
            }
            let full = lines.len() + invalid >= MAX_LINES_PER_COMMIT;
            buf.drain(..used);
            if ended
                && !full
                && let Some(frame) = framer.finish(&buf)
            {
                match parse(frame.bytes, received, &shared.zone) {
                    Ok(message) => lines.push(message.into_line(peer, frame.truncated)),
                    Err(_) => invalid += 1,
                }
            }
            count_invalid(shared, peer, invalid as u64);
            if let Err(err) = store(shared, lines).await {
                // Closing tells the sender, which reconnects and sends on;
                // what it had already handed to the kernel is lost.
                tracing::warn!(%peer, error = %err, "cannot store syslog messages; closing the connection");
                return;
            }
            if !full {
                break;
            }
        }
        if ended {
            return;
        }
    }
}

/// Stores `lines`; counts them as dropped when they cannot be.
async fn store(shared: &Shared, lines: Vec<Line>) -> Result<(), IntakeError> {
    let count = lines.len() as u64;
    let stored = shared.intake.store(Receiver::Syslog, lines).await;
    if stored.is_err() {
        shared
            .intake
            .metrics()
            .received(Receiver::Syslog, Received::Dropped, count);
    }
    stored.map(drop)
}

fn count_invalid(shared: &Shared, peer: IpAddr, invalid: u64) {
    if invalid > 0 {
        shared
            .intake
            .metrics()
            .received(Receiver::Syslog, Received::Invalid, invalid);
        tracing::debug!(%peer, invalid, "dropped what is not a syslog message");
    }
}

async fn receive_datagrams(socket: UdpSocket, shared: Arc<Shared>, mut stopping: watch::Receiver<bool>) {
    let (queue, mut batches) = mpsc::channel::<Vec<Line>>(UDP_QUEUE);
    let committer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(lines) = batches.recv().await {
                if let Err(err) = store(&shared, lines).await {
                    tracing::warn!(error = %err, "cannot store syslog datagrams; they are lost");
                }
            }
        })
    };
    // One byte more than the longest message kept tells a longer one apart.
    let mut buf = vec![0u8; shared.max_message.saturating_add(1).min(65_536)];
    // What was read and not yet queued: while the committer is behind, it
    // grows (to a bound) instead of being dropped, so a burst that finds the
    // queue full waits in one batch.
    let mut pending: Vec<Line> = Vec::new();
    let mut pending_bytes = 0;
    loop {
        let first = tokio::select! {
            first = socket.recv_from(&mut buf) => first,
            permit = queue.reserve(), if !pending.is_empty() => {
                let Ok(permit) = permit else { break };
                permit.send(std::mem::take(&mut pending));
                pending_bytes = 0;
                continue;
            }
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let received = Timestamp::now();
        let (mut invalid, mut dropped) = (0, 0);
        let mut next = first;
        // Whatever is ready, but a bounded number at a time, so that a
        // flood that is being dropped does not keep the batch from the queue.
        for _ in 0..MAX_LINES_PER_COMMIT {
            match next {
                Ok(_) if pending.len() >= MAX_LINES_PER_COMMIT || pending_bytes >= UDP_BATCH_BYTES => dropped += 1,
                Ok((len, peer)) => {
                    pending_bytes += len;
                    let truncated = len > shared.max_message;
                    match parse(&buf[..len.min(shared.max_message)], received, &shared.zone) {
                        Ok(message) => pending.push(message.into_line(peer.ip(), truncated)),
                        Err(_) => invalid += 1,
                    }
                }
                Err(err) => tracing::debug!(error = %err, "syslog datagram not read"),
            }
            next = match socket.try_recv_from(&mut buf) {
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                other => other,
            };
        }
        let metrics = shared.intake.metrics();
        metrics.received(Receiver::Syslog, Received::Invalid, invalid);
        metrics.received(Receiver::Syslog, Received::Dropped, dropped);
        if !pending.is_empty() {
            match queue.try_reserve() {
                Ok(permit) => {
                    permit.send(std::mem::take(&mut pending));
                    pending_bytes = 0;
                }
                Err(mpsc::error::TrySendError::Full(())) => {}
                Err(mpsc::error::TrySendError::Closed(())) => break,
            }
        }
    }
    if !pending.is_empty() {
        let _ = tokio::time::timeout(STOP_GRACE, queue.send(pending)).await;
    }
    drop(queue);
    let abort = committer.abort_handle();
    if tokio::time::timeout(STOP_GRACE, committer).await.is_err() {
        abort.abort();
    }
}
