//! MSG_ZEROCOPY sends through real sockets: loopback (the kernel copies),
//! a veth sink in a private network namespace (it does not), pins held
//! until their completion, resets, and what happens when completions do
//! not come, shared sockets, datagrams, and sends that fail after taking
//! an id.

#[path = "support/netns.rs"]
mod netns;

#[path = "support/sockets.rs"]
mod sockets;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sockets::{pair, pattern, reset_on_close, setsockopt_int};
use zcbuf::io::{parked_pins, AutoDecision, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

/// Bytes whose owner logs its id when dropped — i.e. when the memory would
/// be freed.
struct Recorder {
    id: usize,
    bytes: Vec<u8>,
    log: Arc<Mutex<Vec<usize>>>,
}

impl AsRef<[u8]> for Recorder {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.id);
    }
}

fn recorded(id: usize, bytes: Vec<u8>, log: &Arc<Mutex<Vec<usize>>>) -> Buf {
    Buf::from_owner(Recorder {
        id,
        bytes,
        log: Arc::clone(log),
    })
}

fn config(mode: ZeroCopyMode) -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode,
        ..ZeroCopyConfig::default()
    }
}

fn drain(mut b: TcpStream) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    })
}

#[test]
fn loopback_completions_arrive_and_carry_copied() {
    let (a, b) = pair();
    let reader = drain(b);
    let mut tx = ZeroCopySender::with_config(&a, config(ZeroCopyMode::Always)).unwrap();
    let mut expect = Vec::new();
    for i in 0..40 {
        let head = Buf::from(format!("message {i}\n").into_bytes());
        let body = Buf::from(pattern(i, 64 * 1024));
        expect.extend_from_slice(&head);
        expect.extend_from_slice(&body);
        tx.send_all(
            [head, body.slice(..32 * 1024), body.slice(32 * 1024..)]
                .into_iter()
                .collect(),
        )
        .unwrap();
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert!(got == expect, "bytes differ");
    assert!(s.zerocopy_sends >= 40, "{s:?}");
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!(
        s.copied_completions, s.completions,
        "loopback must copy: {s:?}"
    );
    assert!(s.notifications >= 1 && s.notifications <= s.completions);
    assert_eq!((s.pinned_sends, s.pinned_bytes), (0, 0));
    assert!(s.peak_pinned_bytes >= 64 * 1024);
    assert_eq!(s.unknown_completions, 0);
    assert_eq!(s.auto, AutoDecision::NotAuto);
}

#[test]
fn small_sends_never_ask_for_zerocopy() {
    let (a, b) = pair();
    let reader = drain(b);
    let mut tx = ZeroCopySender::with_config(&a, config(ZeroCopyMode::Always)).unwrap();
    for i in 0..100 {
        tx.send_all(Composite::from(Buf::from(pattern(i, 1000))))
            .unwrap();
    }
    assert_eq!(tx.stats().zerocopy_sends, 0);
    assert_eq!(tx.stats().sends, 100);
    drop(tx);
    drop(a);
    assert_eq!(reader.join().unwrap().len(), 100_000);
}

/// A connection whose receiver does not read: after the send buffer fills,
/// the last sends sit in our write queue and cannot complete.
fn stuck_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 16 * 1024);
    a.set_nonblocking(true).unwrap();
    (a, b)
}

/// Sends one recorded 4 KiB buffer per call until the socket is full;
/// returns the bytes sent and the number of buffers (partly) sent, whose
/// ids are `0..owners`. The buffer refused with `EAGAIN` (id `owners`) was
/// never sent and is freed at once.
fn fill_until_full(
    tx: &mut ZeroCopySender<&TcpStream>,
    log: &Arc<Mutex<Vec<usize>>>,
) -> (Vec<u8>, usize) {
    let mut sent = Vec::new();
    let mut id = 0;
    loop {
        let bytes = pattern(id as u32, 4096);
        let mut msg = Composite::from(recorded(id, bytes, log));
        match tx.send(&mut msg) {
            Ok(n) => {
                sent.extend_from_slice(&pattern(id as u32, 4096)[..n]);
                id += 1;
                // The unsent rest (if any) is dropped here: only the sent
                // part is pinned, and it keeps the owner alive.
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (sent, id),
            Err(e) => panic!("{e}"),
        }
        drop(msg);
    }
}

#[test]
fn no_pinned_buffer_is_released_before_its_completion() {
    let (a, b) = stuck_pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
    let (sent, owners) = fill_until_full(&mut tx, &log);
    assert!(owners >= 2, "sent only {owners} buffers");
    // Whatever completed may be freed; what did not must stay alive.
    let err = tx.flush(Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let s = tx.stats();
    assert!(s.pinned_sends > 0, "{s:?}");
    let dropped: Vec<usize> = log
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|&id| id < owners)
        .collect();
    assert!(
        log.lock().unwrap().contains(&owners),
        "the unsent buffer is not pinned"
    );
    assert!(
        dropped.len() as u64 <= s.completions,
        "{} owners freed but only {} completions",
        dropped.len(),
        s.completions
    );
    assert!(
        !dropped.contains(&(owners - 1)),
        "the last buffer was freed while still queued in the kernel"
    );
    // Now the receiver reads: completions arrive, every owner goes exactly once.
    let reader = drain(b);
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!((s.pinned_sends, s.pinned_bytes), (0, 0));
    assert_eq!(s.completions, s.zerocopy_sends);
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        (0..=owners).collect::<Vec<_>>(),
        "each owner freed exactly once"
    );
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert!(got == sent, "bytes differ");
}

/// Waits up to `within` for `done`, polling.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    done()
}

/// The bound for a call that must return at once (it used to wait up to
/// the 1 s drop timeout for completions). Under valgrind
/// (`scripts/valgrind.sh` sets `ZCBUF_VALGRIND`), which runs one thread at
/// a time and tens of times slower, a little more.
fn at_once() -> Duration {
    if std::env::var_os("ZCBUF_VALGRIND").is_some() {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(50)
    }
}

fn freed(log: &Arc<Mutex<Vec<usize>>>, ids: std::ops::Range<usize>) -> bool {
    let log = log.lock().unwrap();
    ids.clone().all(|id| log.contains(&id))
}

#[test]
fn drop_never_blocks_and_pins_come_back_when_the_peer_closes() {
    let (a, b) = stuck_pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
    let (_sent, owners) = fill_until_full(&mut tx, &log);
    let pinned = tx.stats().pinned_sends;
    assert!(pinned > 0);
    let started = Instant::now();
    drop(tx);
    let took = started.elapsed();
    assert!(took < at_once(), "drop blocked for {took:?}");
    assert!(parked_pins().0 >= pinned, "pins were not parked");
    assert!(
        !log.lock().unwrap().contains(&(owners - 1)),
        "a buffer the kernel still holds was freed on drop"
    );
    // The peer closes without reading: its unread data makes it reset the
    // connection, our send queue is purged, the completions come, and the
    // reaper releases every pin; our own descriptor is still open.
    drop(b);
    assert!(
        eventually(Duration::from_secs(5), || freed(&log, 0..owners)),
        "pins not released after the peer closed: freed {:?} of {owners}",
        log.lock().unwrap().len()
    );
    drop(a);
}

#[test]
fn abort_discards_the_send_queue_and_releases_the_pins() {
    let (a, mut b) = stuck_pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
    let (_sent, owners) = fill_until_full(&mut tx, &log);
    assert!(tx.stats().pinned_sends > 0);
    let started = Instant::now();
    tx.abort().unwrap();
    let took = started.elapsed();
    assert!(took < at_once(), "abort blocked for {took:?}");
    // The peer is still open and never read: only the abort frees them.
    assert!(
        eventually(Duration::from_secs(5), || freed(&log, 0..owners)),
        "pins not released after abort"
    );
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = vec![0u8; 1 << 20];
    let mut err = None;
    for _ in 0..64 {
        match b.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        err.map(|e| e.kind()),
        Some(ErrorKind::ConnectionReset),
        "the peer must see a reset"
    );
}

#[test]
fn two_senders_on_one_socket_share_one_completion_state() {
    let (a, b) = pair();
    let a2 = a.try_clone().unwrap(); // a duplicate descriptor, like the JNI bridge's
    let log = Arc::new(Mutex::new(Vec::new()));
    let reader = drain(b);
    let mut tx1 = ZeroCopySender::with_config(&a, config(ZeroCopyMode::Always)).unwrap();
    let mut tx2 = ZeroCopySender::with_config(&a2, config(ZeroCopyMode::Always)).unwrap();
    assert_eq!(tx1.stats().socket_users, 2);
    let mut expect = Vec::new();
    for id in 0..60 {
        let bytes = pattern(id as u32, 32 * 1024);
        expect.extend_from_slice(&bytes);
        let tx = if id % 3 == 0 { &mut tx2 } else { &mut tx1 };
        tx.send_all(Composite::from(recorded(id, bytes, &log)))
            .unwrap();
        tx.poll_completions().unwrap();
        // Whatever was freed has completed: completions are socket-wide.
        let s = tx.stats();
        assert!(log.lock().unwrap().len() as u64 <= s.completions);
    }
    tx1.flush(Duration::from_secs(10)).unwrap();
    let (s1, s2) = (tx1.stats(), tx2.stats());
    assert_eq!(s1.zerocopy_sends + s2.zerocopy_sends, s1.completions);
    assert_eq!(s1.completions, s2.completions, "one state");
    assert_eq!((s1.unknown_completions, s1.desynchronised), (0, false));
    drop(tx1);
    drop(tx2);
    drop(a2);
    drop(a);
    assert!(reader.join().unwrap() == expect, "bytes differ");
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(dropped, (0..60).collect::<Vec<_>>());
}

#[test]
fn a_later_sender_adopts_parked_pins_and_continues_the_ids() {
    let (a, b) = stuck_pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&a, cfg.clone()).unwrap();
    let (mut sent, owners) = fill_until_full(&mut tx, &log);
    let pinned = tx.stats().pinned_sends;
    drop(tx);
    let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
    let s = tx.stats();
    assert_eq!(s.socket_users, 1);
    assert!(s.pinned_sends > 0 && s.pinned_sends <= pinned, "{s:?}");
    let reader = drain(b);
    a.set_nonblocking(false).unwrap();
    for id in owners + 1..owners + 20 {
        let bytes = pattern(id as u32, 4096);
        sent.extend_from_slice(&bytes);
        tx.send_all(Composite::from(recorded(id, bytes, &log)))
            .unwrap();
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!(
        (s.unknown_completions, s.desynchronised),
        (0, false),
        "{s:?}"
    );
    drop(tx);
    drop(a);
    assert!(reader.join().unwrap() == sent, "bytes differ");
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    let mut expect: Vec<usize> = (0..=owners).collect();
    expect.extend(owners + 1..owners + 20);
    assert_eq!(dropped, expect);
}

#[test]
fn a_sender_after_a_finished_one_continues_its_ids() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let body = Buf::from(pattern(5, 20_000));
    for round in 0..3 {
        let mut tx = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap();
        for _ in 0..5 {
            tx.send_buf(&body).unwrap();
        }
        tx.flush(Duration::from_secs(5)).unwrap();
        let s = tx.stats();
        // Restarting at id 0 would make id 5 (round 1) a completion
        // outside the window.
        assert_eq!(
            (s.completions, s.unknown_completions),
            (5, 0),
            "round {round}: {s:?}"
        );
        assert!(!s.desynchronised);
    }
}

#[test]
fn a_socket_with_zerocopy_set_outside_zcbuf_is_refused() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&sock, libc::SOL_SOCKET, libc::SO_ZEROCOPY, 1);
    let err = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    let auto = ZeroCopySender::new(&sock).unwrap();
    assert_eq!(
        auto.stats().auto,
        AutoDecision::Unsupported { errno: libc::EBUSY }
    );
    assert!(!auto.stats().zerocopy_active);
}

#[test]
fn auto_never_asks_for_zerocopy_to_a_local_peer() {
    let (a, b) = pair();
    let reader = drain(b);
    let mut tx = ZeroCopySender::new(&a).unwrap();
    assert_eq!(tx.stats().auto, AutoDecision::LocalPeer);
    assert!(tx.stats().auto.to_string().contains("peer is this host"));
    let body = Buf::from(pattern(7, 256 * 1024));
    for _ in 0..20 {
        tx.send_all(Composite::from(body.clone())).unwrap();
    }
    let s = tx.stats();
    assert_eq!((s.zerocopy_sends, s.sends > 0), (0, true), "{s:?}");
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 20 * body.len());
    assert!(got.chunks(body.len()).all(|c| c == &body[..]));
}

/// A TCP socket not yet connected: a sender made on it cannot know that
/// the peer will be local, and must learn it from the completions.
fn unconnected_tcp() -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor nothing else owns.
    unsafe { TcpStream::from_raw_fd(fd) }
}

fn connect_now(s: &TcpStream, to: std::net::SocketAddr) {
    let std::net::SocketAddr::V4(v4) = to else {
        panic!("v4 only")
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in for the call.
    let r = unsafe {
        libc::connect(
            s.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
}

#[test]
fn auto_with_100_byte_pieces_and_a_small_receive_buffer_does_not_crawl() {
    // The shape: 100-byte pieces, receiver SO_RCVBUF 16 KiB. The
    // sender is made before connecting, so `Auto` does not know the peer
    // is local: the per-page rule alone must keep these sends plain.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, 16 * 1024);
    let a = unconnected_tcp();
    let mut tx = ZeroCopySender::new(&a).unwrap();
    connect_now(&a, l.local_addr().unwrap());
    let (b, _) = l.accept().unwrap();
    let reader = drain(b);
    let piece = Buf::from(pattern(11, 100));
    let msg: Composite = (0..1000).map(|_| piece.clone()).collect();
    let started = Instant::now();
    for _ in 0..42 {
        tx.send_all(msg.clone()).unwrap();
    }
    let took = started.elapsed();
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 42 * 100_000);
    assert_eq!(s.zerocopy_sends, 0, "{s:?}");
    // The crawl this guards against moved 0.04 MB in 11 s. Under valgrind,
    // which runs one thread at a time, the sender waits on a drain thread
    // scheduled in turn with another test's: 32 s was seen once on a
    // loaded machine, so the bound there only tells a crawl from a pace.
    let bound = if std::env::var_os("ZCBUF_VALGRIND").is_some() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(3)
    };
    assert!(took < bound, "4.2 MB took {took:?}");
}

#[test]
fn udp_composite_of_more_than_iov_max_pieces_is_one_datagram() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let bytes = pattern(12, 3000);
    let msg: Composite = bytes.chunks(2).map(|c| Buf::from(c.to_vec())).collect();
    assert_eq!(msg.component_count(), 1500);
    for mode in [
        ZeroCopyMode::Always,
        ZeroCopyMode::Auto,
        ZeroCopyMode::Never,
    ] {
        let cfg = ZeroCopyConfig {
            threshold: 0,
            ..config(mode)
        };
        let mut tx = ZeroCopySender::with_config(&sock, cfg).unwrap();
        tx.send_all(msg.clone()).unwrap();
        tx.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(tx.stats().sends, 1, "{mode:?}");
        let mut got = vec![0u8; 4096];
        let n = rx.recv(&mut got).unwrap();
        assert_eq!(n, 3000, "{mode:?}: the datagram was split");
        assert!(got[..n] == bytes[..]);
    }
}

#[test]
fn a_sender_after_use_stays_small() {
    let (a, b) = pair();
    let reader = drain(b);
    let mut tx = ZeroCopySender::with_config(&a, config(ZeroCopyMode::Always)).unwrap();
    for i in 0..64 {
        tx.send_all(Composite::from(Buf::from(pattern(i, 16 * 1024))))
            .unwrap();
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let always = tx.memory_footprint();
    drop(tx);
    let mut auto = ZeroCopySender::new(&a).unwrap();
    auto.send_all(Composite::from(Buf::from(pattern(1, 16 * 1024))))
        .unwrap();
    let auto_bytes = auto.memory_footprint();
    eprintln!("bytes per sender after use: Always {always}, Auto (local peer) {auto_bytes}");
    assert!(always <= 512, "{always} B");
    assert!(auto_bytes <= 512, "{auto_bytes} B");
    drop(auto);
    drop(a);
    reader.join().unwrap();
}

#[test]
fn peer_reset_mid_send_releases_each_pin_once_after_completion() {
    let (a, b) = pair();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 64 * 1024);
    reset_on_close(&b);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tx = ZeroCopySender::with_config(&a, config(ZeroCopyMode::Always)).unwrap();
    let resetter = thread::spawn(move || {
        let mut b = b;
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        while n < 1 << 20 {
            n += b.read(&mut buf).unwrap();
        }
        drop(b); // linger 0 and unread data: RST
    });
    let mut err = None;
    let mut handed = 0;
    for id in 0..4096 {
        match tx.send_all(Composite::from(recorded(
            id,
            pattern(id as u32, 64 * 1024),
            &log,
        ))) {
            Ok(()) => handed += 1,
            Err(e) => {
                handed += 1;
                err = Some(e);
                break;
            }
        }
    }
    resetter.join().unwrap();
    let err = err.expect("the reset never surfaced");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "unexpected error {err:?}"
    );
    let before = tx.stats();
    assert!(log.lock().unwrap().len() as u64 <= before.completions + 1);
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!((s.pinned_sends, s.pinned_bytes), (0, 0));
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        (0..handed).collect::<Vec<_>>(),
        "each owner freed exactly once"
    );
}

#[test]
fn veth_sink_completes_without_copy() {
    if !netns::run_inside("veth_sink_completes_without_copy") {
        return;
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let sock = netns::setup_veth_sink();
    let mut tx = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap();
    let n = 200;
    for id in 0..n {
        let head = Buf::from(format!("datagram {id:05}|").into_bytes());
        let body = recorded(id, pattern(id as u32, 60_000), &log);
        tx.send_all([head, body].into_iter().collect()).unwrap();
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    eprintln!("veth sink: {s:?}");
    assert_eq!(s.zerocopy_sends, n as u64);
    assert_eq!(s.completions, n as u64);
    assert_eq!(
        s.copied_completions, 0,
        "the veth sink must not copy: {s:?}"
    );
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(dropped, (0..n).collect::<Vec<_>>());

    // Auto keeps zero-copy on here: the first completion was not copied.
    let sock = netns::setup_veth_sink();
    let mut auto = ZeroCopySender::new(&sock).unwrap();
    let body = Buf::from(pattern(1, 60_000));
    for _ in 0..64 {
        auto.send_all(Composite::from(body.clone())).unwrap();
        auto.poll_completions().unwrap();
    }
    auto.flush(Duration::from_secs(10)).unwrap();
    let s = auto.stats();
    assert!(s.zerocopy_active, "{s:?}");
    assert!(
        matches!(s.auto, AutoDecision::KeptOn { copied: 0, .. }),
        "{:?}",
        s.auto
    );
    // Auto's cost check probed both kinds of send (16 of each) for this
    // size class before settling on the cheaper one.
    assert!(s.zerocopy_sends >= 16, "{s:?}");
    let sizes = auto.auto_sizes();
    assert_eq!(sizes.len(), 1, "{sizes:?}");
    assert!(sizes[0].min_bytes <= 60_000 && 60_000 <= sizes[0].max_bytes);
    assert!(sizes[0].zerocopy.is_some(), "{sizes:?}");
    eprintln!("Auto at 60 000 B: {}", sizes[0]);
    drop(auto);

    // A datagram of many small scattered pieces would need more fragments
    // than a packet holds: its small pieces are coalesced before the call
    // and it still goes by reference, without a refused call.
    let sock = netns::setup_veth_sink();
    let cap = netns::capture_on_sink();
    let mut tx = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap();
    let shared = Buf::from(pattern(3, 400_000));
    let large = Buf::from(pattern(4, 20_000));
    let mut scattered: Composite = (0..40)
        .map(|i| shared.slice(i * 4999..i * 4999 + 1000))
        .collect();
    scattered.push(large.clone());
    let expect_small = scattered.to_vec();
    tx.send_all(scattered).unwrap();
    let s = tx.stats();
    assert_eq!(
        (s.emsgsize_fallbacks, s.sends, s.zerocopy_sends),
        (0, 1, 1),
        "{s:?}"
    );
    // Large pieces spanning more pages than a packet holds: decided
    // before the call, sent by copy.
    let big: Composite = (0..7)
        .map(|i| shared.slice(i * 19_000 + 100..i * 19_000 + 100 + 9000))
        .collect();
    let expect_big = big.to_vec();
    tx.send_all(big).unwrap();
    let s = tx.stats();
    assert_eq!(
        (s.emsgsize_fallbacks, s.sends, s.zerocopy_sends),
        (1, 2, 1),
        "{s:?}"
    );
    tx.flush(Duration::from_secs(5)).unwrap();
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(200));
    assert_eq!(got.len(), 2);
    assert!(got[0] == expect_small, "coalesced datagram differs");
    assert!(got[1] == expect_big, "copied datagram differs");
}

#[test]
fn veth_enobufs_from_optmem_falls_back_to_copy() {
    if !netns::run_inside("veth_enobufs_from_optmem_falls_back_to_copy") {
        return;
    }
    // With no option memory (net.core.optmem_max is per network namespace
    // on current kernels) every zero-copy send is refused before it takes
    // an id, and redone as a plain send, counted.
    if let Err(e) = std::fs::write("/proc/sys/net/core/optmem_max", "0") {
        netns::cannot_run(
            "veth_enobufs_from_optmem_falls_back_to_copy",
            &format!("cannot set optmem_max in this namespace: {e}"),
        );
        return;
    }
    let sock = netns::setup_veth_sink();
    let mut tx = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap();
    let body = Buf::from(pattern(1, 60_000));
    for _ in 0..10 {
        tx.send_all(Composite::from(body.clone())).unwrap();
    }
    let s = tx.stats();
    assert_eq!(s.enobufs_fallbacks, 10, "{s:?}");
    assert_eq!((s.sends, s.zerocopy_sends, s.pinned_sends), (10, 0, 0));
    assert_eq!((s.failed_sends_taking_id, s.desynchronised), (0, false));
}

/// Bytes whose owner overwrites them when dropped: if the kernel still
/// read them afterwards, the capture shows the scribble.
struct Scribbler {
    id: usize,
    bytes: Vec<u8>,
    log: Arc<Mutex<Vec<usize>>>,
}

impl AsRef<[u8]> for Scribbler {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Scribbler {
    fn drop(&mut self) {
        self.bytes.fill(0xEE);
        self.log.lock().unwrap().push(self.id);
    }
}

#[test]
fn veth_failed_sends_that_took_an_id_release_nothing_early() {
    if !netns::run_inside("veth_failed_sends_that_took_an_id_release_nothing_early") {
        return;
    }
    let sock = netns::setup_veth_sink();
    // A token bucket of 1 Mbit/s with a 64 KB queue: datagrams wait there
    // for ~65 ms each, pinned, while the next ones overflow the queue and
    // fail with ENOBUFS (IP_RECVERR on) after the kernel gave them an id.
    // Slow enough that even a sender under valgrind overflows it.
    netns::tc("qdisc add dev v0 root tbf rate 1mbit burst 16k limit 64k");
    setsockopt_int(&sock, libc::SOL_IP, libc::IP_RECVERR, 1);
    let cap = netns::capture_on_sink();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&sock, cfg).unwrap();
    let mut delivered = Vec::new();
    let mut refused = 0;
    // Send until the queue has overflowed often enough, not a fixed count:
    // a sender slowed by valgrind on a loaded machine may fill the queue
    // only now and then. The deadline keeps a queue that never overflows
    // a failure, not a hang.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut total = 0;
    while (refused <= 10 || delivered.len() <= 50) && Instant::now() < deadline {
        let id = total;
        total += 1;
        let head = Buf::from(format!("{id:06}|").into_bytes());
        let body = Buf::from_owner(Scribbler {
            id,
            bytes: pattern(id as u32, 8192),
            log: Arc::clone(&log),
        });
        match tx.send_all([head, body].into_iter().collect()) {
            Ok(()) => delivered.push(id),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                refused += 1;
                // Let a queued datagram leave (still pinned meanwhile).
                thread::sleep(Duration::from_millis(70));
            }
            Err(e) => panic!("{e}"),
        }
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    eprintln!(
        "tbf queue: {} delivered, {refused} refused; {s:?}",
        delivered.len()
    );
    assert!(
        refused > 10 && delivered.len() > 50,
        "the queue never overflowed"
    );
    assert!(
        s.failed_sends_taking_id > 0,
        "no failed send took an id: the case under test never happened: {s:?}"
    );
    assert_eq!(
        (s.unknown_completions, s.desynchronised),
        (0, false),
        "{s:?}"
    );
    assert_eq!(s.pinned_sends, 0);
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300));
    let mut seen = Vec::new();
    for payload in &got {
        let id: usize = std::str::from_utf8(&payload[..6]).unwrap().parse().unwrap();
        assert!(
            payload[7..] == pattern(id as u32, 8192)[..],
            "datagram {id} left with {} bytes of freed memory",
            payload[7..].iter().filter(|&&b| b == 0xEE).count()
        );
        seen.push(id);
    }
    seen.sort_unstable();
    assert_eq!(seen, delivered, "every delivered datagram captured once");
    drop(tx);
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        (0..total).collect::<Vec<_>>(),
        "each owner freed once"
    );
}

#[test]
fn a_completion_outside_the_window_stops_zerocopy_and_frees_nothing_after() {
    // Someone bypasses zcbuf and sends with MSG_ZEROCOPY on the socket:
    // the kernel's ids move past the sender's. The sender notices the
    // first completion it cannot match, stops zero-copy and never
    // releases another pin (they are kept, never freed early).
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let mut tx = ZeroCopySender::with_config(&sock, config(ZeroCopyMode::Always)).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    tx.send_all(Composite::from(recorded(0, pattern(0, 20_000), &log)))
        .unwrap();
    static FOREIGN: [u8; 20_000] = [7; 20_000];
    // SAFETY: static memory the kernel may read at any time.
    let r = unsafe {
        libc::send(
            sock.as_raw_fd(),
            FOREIGN.as_ptr().cast(),
            FOREIGN.len(),
            libc::MSG_ZEROCOPY,
        )
    };
    assert_eq!(r, 20_000);
    for id in 1..4 {
        tx.send_all(Composite::from(recorded(
            id,
            pattern(id as u32, 20_000),
            &log,
        )))
        .unwrap();
    }
    let _ = tx.flush(Duration::from_millis(200));
    let s = tx.stats();
    assert!(s.desynchronised, "{s:?}");
    assert!(s.unknown_completions >= 1, "{s:?}");
    assert!(!s.zerocopy_active);
    let before = tx.stats().zerocopy_sends;
    tx.send_all(Composite::from(Buf::from(pattern(9, 20_000))))
        .unwrap();
    assert_eq!(tx.stats().zerocopy_sends, before, "no zero-copy after");
    let freed_at_stop = log.lock().unwrap().len();
    drop(tx);
    thread::sleep(Duration::from_millis(50));
    assert_eq!(
        log.lock().unwrap().len(),
        freed_at_stop,
        "no pin released after the ids were lost"
    );
    let mut got = vec![0u8; 32 * 1024];
    for _ in 0..6 {
        assert_eq!(rx.recv(&mut got).unwrap(), 20_000);
    }
}

/// Seconds to send 8 MiB as 64 KiB pieces to a reader whose receive buffer
/// is 4 KiB, the sender made before the socket connects.
fn late_local_transfer(mode: ZeroCopyMode) -> (Duration, zcbuf::io::ZeroCopyStats) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    let a = unconnected_tcp();
    let mut tx = ZeroCopySender::with_config(&a, config(mode)).unwrap();
    connect_now(&a, l.local_addr().unwrap());
    let (b, _) = l.accept().unwrap();
    let reader = drain(b);
    let piece = Buf::from(pattern(13, 64 * 1024));
    let msg: Composite = (0..64).map(|_| piece.clone()).collect();
    let started = Instant::now();
    tx.send_all(msg.clone()).unwrap();
    tx.send_all(msg).unwrap();
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), 8 << 20);
    assert!(got.chunks(piece.len()).all(|c| c == &piece[..]));
    (took, s)
}

#[test]
fn auto_knows_a_late_connected_local_peer_before_any_zerocopy_send() {
    let (never, _) = late_local_transfer(ZeroCopyMode::Never);
    let (auto, s) = late_local_transfer(ZeroCopyMode::Auto);
    eprintln!("late-known local peer, rcvbuf 4 KiB: Auto {auto:?}, Never {never:?}; {s:?}");
    assert_eq!(s.auto, AutoDecision::LocalPeer);
    assert_eq!(s.zerocopy_bytes, 0);
    assert!(
        auto < never * 3 + Duration::from_millis(100),
        "Auto crawled: {auto:?} vs Never {never:?}"
    );
}

/// Seconds and stats to send `total` bytes as 64 KiB pieces to a peer in
/// another namespace on this host (copied, yet not local from here).
fn to_copying_peer(
    tag: u8,
    rcvbuf: Option<i32>,
    mode: ZeroCopyMode,
    total: usize,
) -> (Duration, zcbuf::io::ZeroCopyStats) {
    let (addr, reader) = netns::peer_in_other_namespace(tag, rcvbuf);
    let a = TcpStream::connect(addr).unwrap();
    let mut tx = ZeroCopySender::with_config(&a, config(mode)).unwrap();
    let piece = Buf::from(pattern(u32::from(tag), 64 * 1024));
    let started = Instant::now();
    let mut sent = 0;
    let mut switched_off_with_pins = None;
    while sent < total {
        tx.send_all((0..16).map(|_| piece.clone()).collect())
            .unwrap();
        sent += 16 * piece.len();
        let s = tx.stats();
        if !s.zerocopy_active && switched_off_with_pins.is_none() {
            switched_off_with_pins = Some(s.pinned_sends);
        }
    }
    // No flush: after Auto switched off, the next sends read what is left.
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    let took = started.elapsed();
    assert_eq!(got.len(), sent);
    assert!(
        got.chunks(piece.len()).all(|c| c == &piece[..]),
        "bytes differ"
    );
    (took, s)
}

#[test]
fn veth_auto_to_a_copying_peer_decides_from_its_first_completion() {
    if !netns::run_inside("veth_auto_to_a_copying_peer_decides_from_its_first_completion") {
        return;
    }
    drop(netns::setup_veth_sink());
    for (i, rcvbuf) in [Some(4096), Some(16 * 1024), None].into_iter().enumerate() {
        let tag = 10 * i as u8;
        let (never, _) = to_copying_peer(tag + 1, rcvbuf, ZeroCopyMode::Never, 8 << 20);
        let (auto, s) = to_copying_peer(tag + 2, rcvbuf, ZeroCopyMode::Auto, 8 << 20);
        eprintln!("copying peer, rcvbuf {rcvbuf:?}: Auto {auto:?} Never {never:?}; {s:?}");
        // One probe at most (none while the peer's window is too small
        // to take one), and the first completion decides.
        match s.zerocopy_sends {
            0 => assert!(rcvbuf.is_some(), "no probe with a default buffer: {s:?}"),
            1 => assert_eq!(
                s.auto,
                AutoDecision::SwitchedOff {
                    completions: 1,
                    copied: 1
                }
            ),
            _ => panic!("more than one probe: {s:?}"),
        }
        assert_eq!(s.pinned_sends, 0, "pins left after the switch: {s:?}");
        assert!(
            auto < never * 3 + Duration::from_millis(200),
            "Auto crawled with rcvbuf {rcvbuf:?}: {auto:?} vs Never {never:?}"
        );
    }
}

/// `send_buf` pins the buffer it was given (or, on a stream, the part of
/// it that was sent) without building a composite: the same rules as
/// `send`. A socket that fills up leaves the last buffer partly sent;
/// only what completed may be freed, and every owner goes exactly once
/// when the receiver reads.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_buf_pins_exactly_what_was_sent_until_its_completion() {
    let (a, b) = stuck_pair();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cfg = ZeroCopyConfig {
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
    let mut sent = Vec::new();
    let mut owners = 0;
    let mut partial = false;
    loop {
        let bytes = pattern(owners as u32, 4096);
        let buf = recorded(owners, bytes.clone(), &log);
        match tx.send_buf(&buf) {
            Ok(n) => {
                sent.extend_from_slice(&bytes[..n]);
                partial |= n < bytes.len();
                owners += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        // Our handle goes: only a pin can keep the owner alive now.
        drop(buf);
    }
    assert!(owners >= 2, "sent only {owners} buffers");
    let err = tx.flush(Duration::from_millis(200)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let s = tx.stats();
    assert_eq!(s.zerocopy_sends, owners as u64, "{s:?}");
    assert!(s.pinned_sends > 0, "{s:?}");
    assert!(
        log.lock().unwrap().contains(&owners),
        "the refused buffer is not pinned"
    );
    let freed: Vec<usize> = log
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|&id| id < owners)
        .collect();
    assert!(
        freed.len() as u64 <= s.completions,
        "{} owners freed but only {} completions",
        freed.len(),
        s.completions
    );
    assert!(
        !freed.contains(&(owners - 1)),
        "the last buffer was freed while still queued in the kernel"
    );
    let reader = drain(b);
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!((s.pinned_sends, s.pinned_bytes), (0, 0));
    assert_eq!(s.completions, s.zerocopy_sends);
    let mut freed = log.lock().unwrap().clone();
    freed.sort_unstable();
    assert_eq!(
        freed,
        (0..=owners).collect::<Vec<_>>(),
        "each owner freed exactly once"
    );
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert!(got == sent, "bytes differ (a partial send: {partial})");
}

/// Completions read in batches (one `recvmmsg` per drain, a drain once 64
/// sends are outstanding) release the sends in order and never more of
/// them than the kernel reported done: after every send, the owners freed
/// are exactly the first `completions` ones. Every datagram leaves byte
/// for byte.
#[test]
#[cfg_attr(miri, ignore = "sockets and a network namespace")]
fn veth_batched_reaping_releases_in_order_and_never_early() {
    if !netns::run_inside("veth_batched_reaping_releases_in_order_and_never_early") {
        return;
    }
    let sock = netns::setup_veth_sink();
    let cap = netns::capture_on_sink();
    let cfg = ZeroCopyConfig {
        poll_every: 64,
        threshold: 0,
        ..config(ZeroCopyMode::Always)
    };
    let mut tx = ZeroCopySender::with_config(&sock, cfg).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let n = 400;
    let mut most_pinned = 0;
    for id in 0..n {
        let buf = recorded(id, pattern(id as u32, 16_384), &log);
        assert_eq!(tx.send_buf(&buf).unwrap(), 16_384);
        drop(buf);
        let s = tx.stats();
        let freed = log.lock().unwrap().clone();
        assert_eq!(
            freed.len() as u64,
            s.completions,
            "after send {id}: owners freed vs completions read ({s:?})"
        );
        assert_eq!(
            freed,
            (0..freed.len()).collect::<Vec<_>>(),
            "released out of order"
        );
        assert_eq!(s.pinned_sends as u64, id as u64 + 1 - s.completions);
        most_pinned = most_pinned.max(s.pinned_sends);
    }
    let s = tx.stats();
    assert!(
        most_pinned >= 64,
        "the drain should wait for 64 outstanding sends: {most_pinned}"
    );
    assert!(
        s.notifications > 0 && s.notifications < s.completions,
        "{s:?}"
    );
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!(s.completions, n as u64, "{s:?}");
    assert_eq!((s.unknown_completions, s.desynchronised), (0, false));
    // (The packet socket watching the sink makes the kernel copy, so the
    // completions carry COPIED here; the pins are held all the same.)
    assert_eq!(*log.lock().unwrap(), (0..n).collect::<Vec<_>>());
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300));
    assert_eq!(got.len(), n);
    for (id, d) in got.iter().enumerate() {
        assert!(*d == pattern(id as u32, 16_384), "datagram {id} differs");
    }
}

#[test]
#[cfg_attr(miri, ignore = "sockets")]
fn a_wait_limit_bounds_a_blocking_send_to_a_peer_that_stops_reading() {
    // A blocking socket whose peer reads nothing: without a limit the send
    // would block for ever. With one, each call returns what went, or
    // WouldBlock once the buffer is full, after about the limit; the
    // socket's own SO_SNDTIMEO is left untouched; and the bytes that did
    // go arrive in order once the peer reads.
    for mode in [ZeroCopyMode::Never, ZeroCopyMode::Always] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        let mut tx = ZeroCopySender::with_config(&sock, config(mode)).unwrap();
        let limit = Duration::from_millis(100);
        tx.set_wait_limit(Some(limit));
        let body = pattern(9, 64 << 20);
        let mut msg = Composite::from(Buf::from(body.clone()));
        let mut sent = 0;
        let started = Instant::now();
        let err = loop {
            match tx.send(&mut msg) {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{mode:?}: never filled"
            );
        };
        let waited = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{mode:?}: {err}");
        assert!(sent > 0 && sent < body.len(), "{mode:?}: {sent}");
        assert!(waited >= limit, "{mode:?}: returned after {waited:?}");
        assert_eq!(
            sock.write_timeout().unwrap(),
            None,
            "the socket's own timeout is untouched"
        );
        drop(tx);
        drop(msg);
        drop(sock);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert!(
            got[..] == body[..sent],
            "{mode:?}: the bytes that went arrive in order"
        );
    }
}
