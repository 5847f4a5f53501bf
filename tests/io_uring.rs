//! The io_uring backend of `ZeroCopySender` (`SendBackend::IoUring`)
//! through real sockets: loopback TCP byte for byte (large messages, many
//! pieces, a peer that stops reading then resumes, a peer that resets),
//! UDP through the veth sink in a private namespace (no copied
//! completions, scribbling owners, pool blocks reused at once), `Drop`
//! with notifications outstanding, one owner per socket, and sends going
//! on without registered buffers when the kernel refuses them.
//!
//! Where no ring can be set up (`io_uring_disabled`, seccomp, an old
//! kernel) each test says why and passes, except under `CI=true`, where it
//! fails.

#[path = "support/netns.rs"]
mod netns;

#[path = "support/sockets.rs"]
mod sockets;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sockets::{pair, pattern, reset_on_close, setsockopt_int};
use zcbuf::io::zerocopy::{DatagramBatch, DatagramBatchBuilder};
use zcbuf::io::{parked_pins, SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::pool::Pool;
use zcbuf::{Buf, Composite};

fn uring(mode: ZeroCopyMode) -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode,
        threshold: 0,
        backend: SendBackend::IoUring,
        ..ZeroCopyConfig::default()
    }
}

/// Whether this process can set up a ring; prints why not (and fails
/// under `CI=true`) when it cannot.
fn have_uring(test: &str) -> bool {
    let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let made = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Never));
    match made {
        Ok(_) => true,
        Err(e) => {
            netns::cannot_run(test, &format!("no io_uring here: {e}"));
            false
        }
    }
}

fn pooled(bytes: &[u8]) -> Buf {
    let mut b = Pool::global().alloc(bytes.len());
    b.extend_from_slice(bytes);
    b.freeze()
}

/// Bytes whose owner logs its id when dropped — when the memory would be
/// freed.
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

/// Bytes whose owner overwrites them when dropped: bytes the kernel reads
/// after their pin was released carry the scribble.
struct Scribbled(Vec<u8>);

/// Where dropped `Scribbled` bytes stay for the rest of the process (not
/// leaked: memcheck counts forgotten blocks as definitely lost).
static GRAVEYARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

impl AsRef<[u8]> for Scribbled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Scribbled {
    fn drop(&mut self) {
        for b in &mut self.0 {
            // SAFETY: a valid, aligned, exclusive byte of our own vector;
            // volatile so the scribble is not optimised away.
            unsafe { std::ptr::write_volatile(b, 0xEE) };
        }
        GRAVEYARD.lock().unwrap().push(std::mem::take(&mut self.0));
    }
}

fn drain(mut b: TcpStream) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    })
}

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

/// The bound for a call that must return at once; more under valgrind.
fn at_once() -> Duration {
    if std::env::var_os("ZCBUF_VALGRIND").is_some() {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(50)
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn tcp_loopback_large_messages_and_many_pieces_arrive_byte_for_byte() {
    if !have_uring("tcp_loopback_large_messages_and_many_pieces_arrive_byte_for_byte") {
        return;
    }
    let (a, b) = pair();
    let reader = drain(b);
    let mut tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
    let mut expect = Vec::new();
    // One large pool buffer (a registered chunk), one large Vec buffer.
    let big = pattern(1, 900_000);
    tx.send_all(Composite::from(pooled(&big))).unwrap();
    expect.extend_from_slice(&big);
    let vec_backed = pattern(2, 3 << 20);
    tx.send_all(Composite::from(Buf::from(vec_backed.clone())))
        .unwrap();
    expect.extend_from_slice(&vec_backed);
    // More pieces than one call takes (IOV_MAX), of odd sizes, some
    // slices of one shared buffer, some pooled.
    let shared = Buf::from(pattern(3, 1 << 20));
    let mut many = Composite::new();
    for i in 0..3000usize {
        let piece = match i % 3 {
            0 => shared.slice(i * 97 % 900_000..i * 97 % 900_000 + 1 + i % 700),
            1 => pooled(&pattern(i as u32, 1 + i % 5000)),
            _ => Buf::from(pattern(i as u32 + 7, 1 + i % 300)),
        };
        many.push(piece);
    }
    expect.extend(many.to_vec());
    tx.send_all(many).unwrap();
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "bytes differ");
    assert_eq!(s.backend, SendBackend::IoUring);
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!((s.pinned_sends, s.pinned_bytes), (0, 0), "{s:?}");
    assert!(s.zerocopy_sends >= 3, "{s:?}");
    assert!(
        s.registered_sends >= 1,
        "the pool buffer went unregistered: {s:?}"
    );
    // Loopback copies into the receiving socket: the notifications say so.
    assert!(s.copied_completions > 0, "{s:?}");
    assert_eq!(s.bytes, expect.len() as u64);
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_peer_that_stops_reading_then_resumes_gets_every_byte_once() {
    if !have_uring("a_peer_that_stops_reading_then_resumes_gets_every_byte_once") {
        return;
    }
    let (a, b) = pair();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 32 * 1024);
    setsockopt_int(&b, libc::SOL_SOCKET, libc::SO_RCVBUF, 16 * 1024);
    let total = 8 << 20;
    let data = pattern(9, total);
    let reader = thread::spawn(move || {
        let mut b = b;
        // Stop: the sender's short sends and waits must lose nothing.
        thread::sleep(Duration::from_millis(300));
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    let mut tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
    let chunks: Composite = data.chunks(100_000).map(pooled).collect();
    tx.send_all(chunks).unwrap();
    tx.flush(Duration::from_secs(20)).unwrap();
    let s = tx.stats();
    drop(tx);
    drop(a);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), total);
    assert!(got == data, "bytes differ");
    // The stop made the kernel take less than asked at least once.
    assert!(s.sends > 84, "no short send seen: {s:?}");
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_peer_that_resets_gives_an_error_and_releases_each_pin_once_after_completion() {
    if !have_uring("a_peer_that_resets_gives_an_error_and_releases_each_pin_once_after_completion")
    {
        return;
    }
    let (a, b) = pair();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 64 * 1024);
    reset_on_close(&b);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
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
        handed += 1;
        if let Err(e) = tx.send_all(Composite::from(recorded(
            id,
            pattern(id as u32, 64 * 1024),
            &log,
        ))) {
            err = Some(e);
            break;
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
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn drop_with_notifications_outstanding_does_not_block_and_frees_nothing_early() {
    if !have_uring("drop_with_notifications_outstanding_does_not_block_and_frees_nothing_early") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 64 * 1024);
    a.set_nonblocking(true).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
    // Until the socket is full: the peer reads nothing, so every sent
    // byte stays queued and referenced.
    let mut sent = Vec::new();
    let mut owners = 0;
    loop {
        let bytes = pattern(owners as u32, 8192);
        let mut msg = Composite::from(recorded(owners, bytes.clone(), &log));
        match tx.send(&mut msg) {
            Ok(n) => {
                sent.extend_from_slice(&bytes[..n]);
                owners += 1;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(owners > 0);
    let s = tx.stats();
    assert!(s.pinned_sends > 0, "{s:?}");
    let started = Instant::now();
    drop(tx);
    assert!(
        started.elapsed() < at_once(),
        "drop waited {:?}",
        started.elapsed()
    );
    // The sent owners are still held (the one refused with EAGAIN, id
    // `owners`, was never sent and went at once).
    let freed = log.lock().unwrap().clone();
    assert!(
        freed.iter().all(|&id| id == owners),
        "freed while the kernel still had them: {freed:?}"
    );
    assert!(parked_pins().0 > 0);
    // The peer reads everything: the notifications come, the reaper
    // releases each owner once.
    let mut b = b;
    let mut got = vec![0u8; sent.len()];
    b.read_exact(&mut got).unwrap();
    assert!(got == sent, "bytes differ");
    assert!(
        eventually(Duration::from_secs(10), || log.lock().unwrap().len()
            == owners + 1),
        "owners not released after the peer read: {:?}",
        log.lock().unwrap().len()
    );
    let mut freed = log.lock().unwrap().clone();
    freed.sort_unstable();
    assert_eq!(freed, (0..=owners).collect::<Vec<_>>());
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn one_owner_per_socket_whatever_the_backend() {
    if !have_uring("one_owner_per_socket_whatever_the_backend") {
        return;
    }
    let (a, _b) = pair();
    let tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
    assert_eq!(tx.stats().backend, SendBackend::IoUring);
    // A second io_uring sender, a syscall one asking for zero-copy, and
    // `Auto` (which would pick either) are all refused while it lives.
    for cfg in [
        uring(ZeroCopyMode::Always),
        ZeroCopyConfig {
            mode: ZeroCopyMode::Always,
            ..ZeroCopyConfig::default()
        },
        ZeroCopyConfig {
            backend: SendBackend::Auto,
            mode: ZeroCopyMode::Always,
            ..ZeroCopyConfig::default()
        },
    ] {
        let err = ZeroCopySender::with_config(&a, cfg.clone()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{cfg:?}: {err}");
    }
    // A sender that never asks for zero-copy sends plain bytes: allowed.
    let plain = ZeroCopySender::with_config(
        &a,
        ZeroCopyConfig {
            mode: ZeroCopyMode::Never,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap();
    drop(plain);
    drop(tx);
    // Gone: the socket can have a new owner.
    drop(ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap());

    // The other way round: a MSG_ZEROCOPY sender's socket refuses io_uring.
    let (c, _d) = pair();
    let sys = ZeroCopySender::with_config(
        &c,
        ZeroCopyConfig {
            mode: ZeroCopyMode::Always,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap();
    let err = ZeroCopySender::with_config(&c, uring(ZeroCopyMode::Always)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    // `Auto` shares the syscall backend's state instead.
    let auto = ZeroCopySender::with_config(
        &c,
        ZeroCopyConfig {
            backend: SendBackend::Auto,
            mode: ZeroCopyMode::Always,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap();
    let s = auto.stats();
    assert_eq!((s.backend, s.socket_users), (SendBackend::Syscall, 2));
    drop(sys);
}

#[test]
fn a_sender_can_move_between_threads_whatever_the_backend() {
    fn is_send<T: Send>() {}
    is_send::<ZeroCopySender<TcpStream>>();
    is_send::<ZeroCopySender<std::net::UdpSocket>>();
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn auto_backend_picks_syscall_for_a_local_peer() {
    let (a, _b) = pair();
    let tx = ZeroCopySender::with_config(
        &a,
        ZeroCopyConfig {
            backend: SendBackend::Auto,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap();
    // The kernel copies to a local peer anyway: no ring for that.
    assert_eq!(tx.stats().backend, SendBackend::Syscall);
}

/// The environment variable that makes the re-executed test binary the
/// child of [`without_registered_buffers_sends_go_on_unregistered`].
const NO_MEMLOCK_CHILD: &str = "ZCBUF_URING_NO_MEMLOCK_CHILD";

/// Drops `CAP_IPC_LOCK` from this process's effective set and sets
/// `RLIMIT_MEMLOCK` to `soft` bytes (at most `hard`).
fn limit_locked_memory(soft: u64, hard: u64) {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut hdr = CapHeader {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid header and room for two data structs (version 3).
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    // SAFETY: as above; clearing an effective bit is always allowed.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) };
    assert_eq!(r, 0, "capset: {}", std::io::Error::last_os_error());
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid rlimit value.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) },
        0,
        "setrlimit: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
#[cfg_attr(miri, ignore = "io_uring, sockets and a child process")]
fn without_registered_buffers_sends_go_on_unregistered() {
    let name = "without_registered_buffers_sends_go_on_unregistered";
    if std::env::var_os(NO_MEMLOCK_CHILD).is_none() {
        if !have_uring(name) {
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(NO_MEMLOCK_CHILD, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the child failed: {status}");
        return;
    }
    // No locked memory at all: the kernel accounts a ring's own memory
    // there too, so no ring. `IoUring` says so; `Auto` uses the syscall
    // backend.
    limit_locked_memory(0, 2 << 20);
    let (a, b) = pair();
    let err = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap_err();
    eprintln!("no locked memory: {err}");
    let auto = ZeroCopySender::with_config(
        &a,
        ZeroCopyConfig {
            backend: SendBackend::Auto,
            mode: ZeroCopyMode::Always,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap();
    assert_eq!(auto.stats().backend, SendBackend::Syscall);
    drop(auto);
    let (a, b) = {
        drop((a, b));
        pair()
    };
    // Room for a ring, not for the pool's chunks (a 200 000 B block's
    // chunk alone is several MiB): sends go on without registered
    // buffers. The limit is checked against all of the user's locked
    // memory (other processes' rings too), so the smallest that fits a
    // ring is taken, at most 1 MiB.
    let mut tx = None;
    for soft in [64u64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20] {
        limit_locked_memory(soft, 2 << 20);
        if let Ok(made) = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)) {
            eprintln!("a ring fits in {} KiB of locked memory", soft >> 10);
            tx = Some(made);
            // Then 64 KiB more: room for a few small unregistered sends'
            // pages at a time, never for the chunks.
            limit_locked_memory(soft + (64 << 10), 2 << 20);
            break;
        }
    }
    let Some(mut tx) = tx else {
        netns::cannot_run(
            name,
            "the user's locked memory is used up by others: no ring within 1 MiB",
        );
        return;
    };
    let reader = drain(b);
    let mut expect = Vec::new();
    for i in 0..20 {
        let bytes = pattern(i, 200_000);
        tx.send_all(Composite::from(pooled(&bytes))).unwrap();
        expect.extend_from_slice(&bytes);
        let small = pattern(i + 100, 8192);
        tx.send_all(Composite::from(pooled(&small))).unwrap();
        // Its pages are uncharged at its notification: the next small
        // send fits again. (Long enough for valgrind's pace.)
        tx.flush(Duration::from_secs(30)).unwrap();
        expect.extend_from_slice(&small);
    }
    tx.flush(Duration::from_secs(30)).unwrap();
    let s = tx.stats();
    drop(tx);
    a.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert!(got == expect, "bytes differ");
    eprintln!("without registered buffers: {s:?}");
    assert_eq!(s.registered_sends, 0, "{s:?}");
    // Unregistered zero-copy sends have their pages charged to the same
    // small limit: those that do not fit go by copy, none is lost.
    assert!(s.zerocopy_sends + s.enobufs_fallbacks >= 40, "{s:?}");
    assert!(
        s.zerocopy_sends > 0,
        "no unregistered zero-copy send fitted: {s:?}"
    );
    assert!(
        s.enobufs_fallbacks > 0,
        "the large sends fitted after all: {s:?}"
    );
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
}

#[test]
#[cfg_attr(miri, ignore = "io_uring, sockets and namespaces")]
fn veth_sink_uring_sends_without_copy_and_nothing_is_freed_early() {
    let name = "veth_sink_uring_sends_without_copy_and_nothing_is_freed_early";
    if !netns::inside() && !have_uring(name) {
        return;
    }
    if !netns::run_inside(name) {
        return;
    }
    // Without a capture: nothing on the way copies.
    let sock = netns::setup_veth_sink();
    let mut tx = ZeroCopySender::with_config(&sock, uring(ZeroCopyMode::Always)).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let n = 200;
    for id in 0..n {
        let body = recorded(id, pattern(id as u32, 60_000), &log);
        if id % 2 == 0 {
            tx.send_buf(&body).unwrap();
        } else {
            let head = Buf::from(format!("datagram {id:05}|").into_bytes());
            tx.send_all([head, body].into_iter().collect()).unwrap();
        }
    }
    let big = pooled(&pattern(7, 65_000));
    for _ in 0..100 {
        tx.send_buf(&big).unwrap();
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    eprintln!("veth sink, io_uring: {s:?}");
    assert_eq!(s.backend, SendBackend::IoUring);
    assert_eq!(s.zerocopy_sends, n as u64 + 100, "{s:?}");
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!(
        s.copied_completions, 0,
        "the veth sink must not copy: {s:?}"
    );
    assert!(s.registered_sends >= 100, "{s:?}");
    let mut dropped = log.lock().unwrap().clone();
    dropped.sort_unstable();
    assert_eq!(dropped, (0..n).collect::<Vec<_>>());
    drop(tx);

    // With a capture on the far end (its packet socket copies, so
    // completions say COPIED there): what left is intact byte for byte.
    let sock = netns::setup_veth_sink();
    let cap = netns::capture_on_sink();
    let mut tx = ZeroCopySender::with_config(&sock, uring(ZeroCopyMode::Always)).unwrap();
    let n = 150u32;
    let mut expect = Vec::new();
    for id in 0..n {
        let body = pattern(id, 60_000);
        if id % 2 == 0 {
            // A pool block (registered), dropped at once; then the same
            // size is taken from the pool and poisoned: were the block
            // released before its notification, the pool would hand it
            // straight back and the capture would show the poison.
            let buf = pooled(&body);
            tx.send_buf(&buf).unwrap();
            drop(buf);
            let mut again = Pool::global().alloc(60_000);
            again.extend_from_slice(&[0xEE; 60_000]);
            drop(again);
            expect.push(body);
        } else {
            // A header and a scribbling owner (SENDMSG_ZC, not registered).
            let head = format!("datagram {id:05}|").into_bytes();
            let owner = Buf::from_owner(Scribbled(body.clone()));
            tx.send_all([Buf::from(head.clone()), owner].into_iter().collect())
                .unwrap();
            let mut whole = head;
            whole.extend_from_slice(&body);
            expect.push(whole);
        }
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let s = tx.stats();
    assert_eq!(s.zerocopy_sends, u64::from(n), "{s:?}");
    assert_eq!(s.completions, u64::from(n), "{s:?}");
    assert!(s.registered_sends >= u64::from(n) / 2, "{s:?}");
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300));
    assert_eq!(got.len(), expect.len());
    for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
        assert!(g == e, "datagram {i} differs (poisoned or scribbled?)");
    }
    assert!(GRAVEYARD.lock().unwrap().len() >= n as usize / 2);
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_thread_that_dropped_a_sender_with_notifications_outstanding_can_exit() {
    if !have_uring("a_thread_that_dropped_a_sender_with_notifications_outstanding_can_exit") {
        return;
    }
    let (a, b) = pair();
    setsockopt_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 64 * 1024);
    setsockopt_int(&b, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 * 1024);
    a.set_nonblocking(true).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    let worker = thread::spawn(move || {
        let mut tx = ZeroCopySender::with_config(&a, uring(ZeroCopyMode::Always)).unwrap();
        let (mut owners, mut bytes) = (0, 0);
        loop {
            let mut msg = Composite::from(recorded(owners, pattern(1, 8192), &log2));
            match tx.send(&mut msg) {
                Ok(n) => {
                    owners += 1;
                    bytes += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(tx.pending() > 0);
        drop(tx);
        (owners, bytes)
    });
    // The worker exits while the kernel still holds its sends: the exit
    // must not wait for the peer.
    let started = Instant::now();
    while !worker.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the thread's exit waits for the notifications"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let (owners, bytes) = worker.join().unwrap();
    let mut b = b;
    let mut sink = vec![0u8; 1 << 20];
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut read = 0;
    let reading = Instant::now();
    while read < bytes {
        assert!(
            reading.elapsed() < Duration::from_secs(10),
            "only {read} of {bytes} bytes arrived"
        );
        match b.read(&mut sink) {
            Ok(0) => panic!("EOF after {read} of {bytes} bytes"),
            Ok(n) => read += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(read, bytes);
    // The notifications still come (the kernel runs an exited thread's
    // completion work elsewhere) and the reaper releases every owner once.
    let done = eventually(Duration::from_secs(10), || {
        log.lock().unwrap().len() == owners + 1
    });
    assert!(
        done,
        "{} of {} owners released",
        log.lock().unwrap().len(),
        owners + 1
    );
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_datagram_too_large_is_an_emsgsize_error_and_nothing_is_kept() {
    if !have_uring("a_datagram_too_large_is_an_emsgsize_error_and_nothing_is_kept") {
        return;
    }
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let mut tx = ZeroCopySender::with_config(&tx, uring(ZeroCopyMode::Always)).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut msg = Composite::from(recorded(0, pattern(1, 70_000), &log));
    let err = tx.send(&mut msg).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
    assert_eq!(msg.len(), 70_000, "a failed datagram is left whole");
    tx.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(tx.pending(), 0);
    assert!(
        log.lock().unwrap().is_empty(),
        "freed while the caller holds it"
    );
    drop(msg);
    assert_eq!(*log.lock().unwrap(), vec![0]);
    // The sender goes on: a datagram that fits arrives whole.
    let body = pattern(2, 30_000);
    tx.send_buf(&pooled(&body)).unwrap();
    let mut got = vec![0u8; 70_000];
    let n = rx.recv(&mut got).unwrap();
    assert!(got[..n] == body[..]);
}

fn backend_config(backend: SendBackend, mode: ZeroCopyMode) -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode,
        threshold: 0,
        backend,
        ..ZeroCopyConfig::default()
    }
}

/// Reads `expect.len()` datagrams from `rx` and checks each byte for byte,
/// in order.
fn receive_in_order(rx: &std::net::UdpSocket, expect: &[Vec<u8>], what: &str) {
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = vec![0u8; 70_000];
    for (i, e) in expect.iter().enumerate() {
        let n = rx
            .recv(&mut got)
            .unwrap_or_else(|err| panic!("{what}: datagram {i} of {}: {err}", expect.len()));
        assert_eq!(n, e.len(), "{what}: datagram {i} length");
        assert!(got[..n] == e[..], "{what}: datagram {i} differs");
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_batch_on_loopback_udp_arrives_byte_for_byte_in_order_on_both_backends() {
    if !have_uring("a_batch_on_loopback_udp_arrives_byte_for_byte_in_order_on_both_backends") {
        return;
    }
    for backend in [SendBackend::IoUring, SendBackend::Syscall] {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        setsockopt_int(&rx, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let cfg = backend_config(backend, ZeroCopyMode::Always);
        let mut tx = ZeroCopySender::with_config(tx, cfg).unwrap();
        let what = format!("{backend:?}");
        // More than one submission queue's worth (64) of small datagrams,
        // from every kind of memory.
        let expect: Vec<Vec<u8>> = (0..70u32)
            .map(|i| pattern(i, 500 + i as usize * 7))
            .collect();
        let msgs: Vec<Buf> = expect
            .iter()
            .enumerate()
            .map(|(i, e)| match i % 3 {
                0 => pooled(e),
                1 => Buf::from(e.clone()),
                _ => Buf::from_owner(Scribbled(e.clone())),
            })
            .collect();
        assert_eq!(tx.send_each(&msgs).unwrap(), msgs.len(), "{what}");
        drop(msgs); // the scribbling owners go with the notifications
        receive_in_order(&rx, &expect, &what);
        // Large ones, the owners dropped at once.
        let expect: Vec<Vec<u8>> = (0..12u32).map(|i| pattern(100 + i, 60_000)).collect();
        let msgs: Vec<Buf> = expect
            .iter()
            .map(|e| Buf::from_owner(Scribbled(e.clone())))
            .collect();
        assert_eq!(tx.send_each(&msgs).unwrap(), msgs.len(), "{what}");
        drop(msgs);
        receive_in_order(&rx, &expect, &what);
        tx.flush(Duration::from_secs(5)).unwrap();
        let s = tx.stats();
        assert_eq!(s.sends, 82, "{what}: {s:?}");
        assert_eq!(s.backend, backend, "{what}: {s:?}");
        assert_eq!(s.pinned_bytes, 0, "{what}: {s:?}");
        assert_eq!(tx.send_each(&[]).unwrap(), 0);
        let err = tx
            .send_each(&[Buf::from_static(b"x"), Buf::new()])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_batch_on_a_stream_is_invalid_input_and_sends_nothing() {
    if !have_uring("a_batch_on_a_stream_is_invalid_input_and_sends_nothing") {
        return;
    }
    for backend in [SendBackend::IoUring, SendBackend::Syscall] {
        let (a, mut b) = pair();
        let mut tx =
            ZeroCopySender::with_config(&a, backend_config(backend, ZeroCopyMode::Always)).unwrap();
        let err = tx.send_each(&[Buf::from_static(b"abc")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{backend:?}");
        drop(tx);
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert!(got.is_empty(), "{backend:?}: {got:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_partial_batch_returns_the_count_and_the_rest_sent_later_arrives_once() {
    if !have_uring("a_partial_batch_returns_the_count_and_the_rest_sent_later_arrives_once") {
        return;
    }
    for backend in [SendBackend::IoUring, SendBackend::Syscall] {
        // A Unix datagram pair: the receiver's queue takes only a few
        // datagrams (net.unix.max_dgram_qlen) and a tiny send buffer,
        // then a non-blocking sender gets EAGAIN.
        let (tx, rx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        setsockopt_int(&tx, libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        tx.set_nonblocking(true).unwrap();
        let mut tx =
            ZeroCopySender::with_config(tx, backend_config(backend, ZeroCopyMode::Never)).unwrap();
        let what = format!("{backend:?}");
        let expect: Vec<Vec<u8>> = (0..40u32).map(|i| pattern(i, 1500)).collect();
        let msgs: Vec<Buf> = expect.iter().map(|e| pooled(e)).collect();
        let first = tx.send_each(&msgs).unwrap();
        assert!(
            first > 0 && first < msgs.len(),
            "{what}: {first} of {} went",
            msgs.len()
        );
        // Full now: the next datagram is refused as a whole call.
        let err = tx.send_each(&msgs[first..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{what}: {err}");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4000];
        let mut sent = first;
        let start = Instant::now();
        while got.len() < expect.len() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}: stuck");
            match rx.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(e) => panic!("{what}: {e}"),
            }
            if sent < msgs.len() {
                match tx.send_each(&msgs[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{what}: {e}"),
                }
            }
        }
        assert_eq!(sent, msgs.len(), "{what}");
        assert_eq!(got.len(), expect.len(), "{what}");
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            assert!(g == e, "{what}: datagram {i} differs, lost or duplicated");
        }
        rx.set_nonblocking(true).unwrap();
        assert!(rx.recv(&mut buf).is_err(), "{what}: a datagram too many");
        assert_eq!(tx.stats().sends, expect.len() as u64, "{what}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring, sockets and namespaces")]
fn veth_sink_batches_go_without_copy_byte_for_byte_and_nothing_is_freed_early() {
    let name = "veth_sink_batches_go_without_copy_byte_for_byte_and_nothing_is_freed_early";
    if !netns::inside() && !have_uring(name) {
        return;
    }
    if !netns::run_inside(name) {
        return;
    }
    for backend in [SendBackend::IoUring, SendBackend::Syscall] {
        let what = format!("{backend:?}");
        // Without a capture: nothing on the way copies.
        let sock = netns::setup_veth_sink();
        let cfg = backend_config(backend, ZeroCopyMode::Always);
        let mut tx = ZeroCopySender::with_config(&sock, cfg.clone()).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let big = pooled(&pattern(7, 16_384));
        let mut owners = 0;
        for round in 0..10 {
            let msgs: Vec<Buf> = (0..16)
                .map(|i| {
                    if i % 2 == 0 {
                        owners += 1;
                        recorded(round * 16 + i, pattern(i as u32, 16_384), &log)
                    } else {
                        big.clone()
                    }
                })
                .collect();
            assert_eq!(tx.send_each(&msgs).unwrap(), 16, "{what}");
        }
        tx.flush(Duration::from_secs(10)).unwrap();
        let s = tx.stats();
        eprintln!("veth sink, send_each, {what}: {s:?}");
        assert_eq!(s.zerocopy_sends, 160, "{what}: {s:?}");
        assert_eq!(s.completions, s.zerocopy_sends, "{what}: {s:?}");
        assert_eq!(
            s.copied_completions, 0,
            "{what}: the sink must not copy: {s:?}"
        );
        if backend == SendBackend::IoUring {
            assert!(s.registered_sends >= 80, "{what}: {s:?}");
        }
        assert_eq!(log.lock().unwrap().len(), owners, "{what}");
        drop(tx);

        // With a capture on the far end: what left is intact byte for
        // byte, though pool blocks went back (and were poisoned) and
        // scribbling owners were dropped right after the call.
        let sock = netns::setup_veth_sink();
        let cap = netns::capture_on_sink();
        let mut tx = ZeroCopySender::with_config(&sock, cfg).unwrap();
        let mut expect = Vec::new();
        for round in 0..6u32 {
            let bodies: Vec<Vec<u8>> = (0..16).map(|i| pattern(round * 16 + i, 16_000)).collect();
            let msgs: Vec<Buf> = bodies
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if i % 2 == 0 {
                        pooled(b)
                    } else {
                        Buf::from_owner(Scribbled(b.clone()))
                    }
                })
                .collect();
            assert_eq!(tx.send_each(&msgs).unwrap(), 16, "{what}");
            drop(msgs);
            for _ in 0..8 {
                let mut again = Pool::global().alloc(16_000);
                again.extend_from_slice(&[0xEE; 16_000]);
                drop(again);
            }
            expect.extend(bodies);
        }
        tx.flush(Duration::from_secs(10)).unwrap();
        let s = tx.stats();
        assert_eq!(s.zerocopy_sends, 96, "{what}: {s:?}");
        assert_eq!(s.completions, 96, "{what}: {s:?}");
        let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300));
        assert_eq!(got.len(), expect.len(), "{what}");
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            assert!(
                g == e,
                "{what}: datagram {i} differs (poisoned or scribbled?)"
            );
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn a_batch_stopped_by_a_datagram_too_large_returns_the_prefix_and_keeps_nothing() {
    if !have_uring("a_batch_stopped_by_a_datagram_too_large_returns_the_prefix_and_keeps_nothing") {
        return;
    }
    for backend in [SendBackend::IoUring, SendBackend::Syscall] {
        let what = format!("{backend:?}");
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let cfg = backend_config(backend, ZeroCopyMode::Always);
        let mut tx = ZeroCopySender::with_config(tx, cfg).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Zero-copy sends linked behind the one that fails: those behind
        // it are cancelled unsent, and none may stay pinned.
        let sizes = [20_000, 30_000, 70_000, 20_000, 10_000];
        let msgs: Vec<Buf> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| recorded(i, pattern(i as u32, n), &log))
            .collect();
        assert_eq!(tx.send_each(&msgs).unwrap(), 2, "{what}");
        let err = tx.send_each(&msgs[2..]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{what}: {err}");
        assert_eq!(tx.send_each(&msgs[3..]).unwrap(), 2, "{what}");
        tx.flush(Duration::from_secs(5)).unwrap();
        assert_eq!(tx.pending(), 0, "{what}");
        assert_eq!(tx.stats().pinned_bytes, 0, "{what}");
        assert!(log.lock().unwrap().is_empty(), "{what}: freed while held");
        let expect: Vec<Vec<u8>> = [0usize, 1, 3, 4]
            .iter()
            .map(|&i| pattern(i as u32, sizes[i]))
            .collect();
        receive_in_order(&rx, &expect, &what);
        rx.set_nonblocking(true).unwrap();
        assert!(
            rx.recv(&mut [0u8; 16]).is_err(),
            "{what}: a datagram too many"
        );
        drop(msgs);
        let mut dropped = log.lock().unwrap().clone();
        dropped.sort_unstable();
        assert_eq!(dropped, vec![0, 1, 2, 3, 4], "{what}");
        // Nothing parked with the sender either.
        drop(tx);
    }
}

/// `n` datagrams of `seg` bytes (the last `last`) built in place in one
/// pooled batch.
fn gso_batch(seed: u32, n: usize, seg: usize, last: usize) -> (DatagramBatch, Vec<Vec<u8>>) {
    let expect: Vec<Vec<u8>> = (0..n)
        .map(|i| pattern(seed + i as u32, if i + 1 == n { last } else { seg }))
        .collect();
    let mut b = DatagramBatchBuilder::new(seg, n).unwrap();
    for d in &expect {
        b.push_with(seg, |out| {
            out[..d.len()].copy_from_slice(d);
            d.len()
        })
        .unwrap();
    }
    (b.finish(), expect)
}

#[test]
#[cfg_attr(miri, ignore = "io_uring and sockets")]
fn gso_batches_on_an_io_uring_sender_go_by_reference_and_arrive_byte_for_byte() {
    if !have_uring("gso_batches_on_an_io_uring_sender_go_by_reference_and_arrive_byte_for_byte") {
        return;
    }
    // Unconnected: the destination travels with each SENDMSG_ZC.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    setsockopt_int(&rx, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut tx = ZeroCopySender::with_config(&tx, uring(ZeroCopyMode::Always)).unwrap();
    let to = rx.local_addr().unwrap();
    let mut got = vec![0u8; 2000];
    for round in 0..4u32 {
        let (batch, expect) = gso_batch(round * 100, 40, 1472, 900);
        assert_eq!(tx.send_batch_to(&batch, to).unwrap(), 40);
        drop(batch); // the ring holds the views until the notification
        for (i, e) in expect.iter().enumerate() {
            let n = rx.recv(&mut got).unwrap();
            assert!(got[..n] == e[..], "round {round}: datagram {i} differs");
        }
    }
    tx.flush(Duration::from_secs(5)).unwrap();
    let (s, g) = (tx.stats(), tx.gso_stats());
    eprintln!("loopback GSO on io_uring: {s:?}\n{g:?}");
    assert!(g.gso_zerocopy_sends >= 4, "{g:?}");
    assert_eq!(s.zerocopy_sends, g.gso_zerocopy_sends, "{s:?}");
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!(s.pinned_bytes, 0, "{s:?}");
    assert_eq!(
        s.sends,
        g.gso_sends + g.single_sends + g.fallback_datagrams,
        "{s:?} {g:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "io_uring, sockets and namespaces")]
fn veth_sink_gso_on_io_uring_goes_without_copy_and_nothing_is_freed_early() {
    let name = "veth_sink_gso_on_io_uring_goes_without_copy_and_nothing_is_freed_early";
    if !netns::inside() && !have_uring(name) {
        return;
    }
    if !netns::run_inside(name) {
        return;
    }
    let sock = netns::setup_veth_sink();
    let mut tx = ZeroCopySender::with_config(&sock, uring(ZeroCopyMode::Always)).unwrap();
    let (batch, expect) = gso_batch(1, 44, 1472, 1472);
    let rounds = 20u64;
    for _ in 0..rounds {
        assert_eq!(tx.send_batch(&batch).unwrap(), 44);
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let (s, g) = (tx.stats(), tx.gso_stats());
    eprintln!("veth sink, GSO on io_uring: {s:?}\n{g:?}");
    // From the pool's registered chunk on Linux 6.15+ (every call), not
    // at all before (the kernel refuses vectored fixed sends).
    assert!(
        s.registered_sends == 0 || s.registered_sends == s.zerocopy_sends,
        "{s:?}"
    );
    assert!(g.gso_zerocopy_sends >= rounds, "{g:?}");
    assert_eq!(s.completions, s.zerocopy_sends, "{s:?}");
    assert_eq!(s.copied_completions, 0, "the sink must not copy: {s:?}");
    assert_eq!(
        batch.as_buf().ref_count(),
        Some(1),
        "every view went back after its notification"
    );
    // Byte for byte under a capture, the batches dropped right after the
    // call and their pool blocks poisoned by the next owner.
    let cap = netns::capture_on_sink();
    let mut want = Vec::new();
    for round in 0..6u32 {
        let (batch, expect) = gso_batch(round * 50, 44, 1472, 1000);
        assert_eq!(tx.send_batch(&batch).unwrap(), 44);
        drop(batch);
        let mut again = Pool::global().alloc(44 * 1472);
        again.extend_from_slice(&vec![0xEE; 44 * 1472]);
        drop(again);
        want.extend(expect.concat());
    }
    tx.flush(Duration::from_secs(10)).unwrap();
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300)).concat();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "captured bytes differ (poisoned early?)");
    drop(expect);
}
