//! A hostile user of the public I/O API: concurrent senders on one
//! socket, hostile frame prefixes, odd descriptors.

#[path = "support/sockets.rs"]
mod sockets;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sockets::pair;
use zcbuf::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

fn always() -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        ..ZeroCopyConfig::default()
    }
}

/// Runs `f` on a thread and gives its result if it finishes within `limit`.
/// How long a call may take before it counts as hung. Generous: these
/// checks tell "returns" from "blocks forever", and under valgrind (which
/// runs one thread at a time, tens of times slower) a 32 MiB send beside
/// another test's threads has taken more than 5 s.
const HANG: Duration = Duration::from_secs(60);

fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn a_sender_blocked_on_a_full_socket_does_not_block_the_other_senders() {
    let (a, mut b) = pair();
    let a2 = a.try_clone().unwrap();
    let body: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i * 7 + (i >> 12)) as u8)
        .collect();
    let expect = body.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        let mut tx = ZeroCopySender::with_config(&a, always()).unwrap();
        started_tx.send(()).unwrap();
        // The peer reads nothing yet: this blocks in the kernel.
        tx.send_all(Composite::from(Buf::from(body))).unwrap();
        tx.flush(Duration::from_secs(20)).unwrap();
        drop(tx);
        a
    });
    started_rx.recv().unwrap();
    thread::sleep(Duration::from_millis(300));
    // A second sender on the same socket: made, asked, flushed, dropped,
    // all while the first is blocked. None of it may wait for the peer.
    let t0 = Instant::now();
    let second = within(HANG, move || {
        let mut tx2 = ZeroCopySender::with_config(&a2, always()).unwrap();
        let _ = tx2.stats();
        let flushed = tx2.flush(Duration::from_millis(100));
        drop(tx2);
        flushed.map_err(|e| e.kind())
    });
    let waited = t0.elapsed();
    // An unrelated socket's sender is made and dropped meanwhile too.
    let (c, _d) = pair();
    let other = within(HANG, move || {
        drop(ZeroCopySender::with_config(&c, always()).unwrap());
    });
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    let a = sender.join().unwrap();
    drop(a);
    assert!(reader.join().unwrap() == expect, "bytes differ");
    assert!(
        second.is_some(),
        "a second sender on the socket hung behind the blocked one ({waited:?})"
    );
    assert!(other.is_some(), "an unrelated socket's sender hung");
    assert_eq!(
        second.unwrap(),
        Err(std::io::ErrorKind::TimedOut),
        "flush gives up at its timeout"
    );
}

#[test]
fn a_blocking_send_still_honours_the_sockets_send_timeout() {
    for mode in [
        ZeroCopyMode::Always,
        ZeroCopyMode::Never,
        ZeroCopyMode::Auto,
    ] {
        let (a, b) = pair();
        a.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let cfg = ZeroCopyConfig {
            mode,
            ..ZeroCopyConfig::default()
        };
        let mut tx = ZeroCopySender::with_config(a, cfg).unwrap();
        let t0 = Instant::now();
        let result = within(HANG, move || {
            let r = tx.send_all(Composite::from(Buf::from(vec![5u8; 32 << 20])));
            r.map_err(|e| (e.kind(), e.to_string()))
        });
        let took = t0.elapsed();
        let (kind, msg) = result
            .unwrap_or_else(|| panic!("{mode:?}: send_all ignored the send timeout"))
            .unwrap_err();
        assert_eq!(kind, std::io::ErrorKind::WouldBlock, "{mode:?}: {msg}");
        assert!(msg.contains("bytes not sent"), "{mode:?}: {msg}");
        assert!(took >= Duration::from_millis(150), "{mode:?}: {took:?}");
        drop(b);
    }
}

/// A safe `AsFd` that answers with another socket after a switch: the
/// sender must keep sending on the socket whose ids it tracks.
struct Switching {
    x: TcpStream,
    y: TcpStream,
    use_y: std::cell::Cell<bool>,
}

impl std::os::fd::AsFd for Switching {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        if self.use_y.get() {
            self.y.as_fd()
        } else {
            self.x.as_fd()
        }
    }
}

#[test]
fn an_as_fd_that_changes_its_answer_cannot_mix_two_sockets_ids() {
    let (x, x_peer) = pair();
    let (y, mut y_peer) = pair();
    // y's own sender sets SO_ZEROCOPY on y: its sends take y's ids.
    let y_tx = ZeroCopySender::with_config(y.try_clone().unwrap(), always()).unwrap();
    let reader = thread::spawn(move || {
        let mut x_peer = x_peer;
        let mut got = Vec::new();
        x_peer.read_to_end(&mut got).unwrap();
        got
    });
    let sock = Switching {
        x,
        y,
        use_y: std::cell::Cell::new(false),
    };
    let mut tx = ZeroCopySender::with_config(sock, always()).unwrap();
    let first: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 241) as u8).collect();
    tx.get_ref().use_y.set(true);
    tx.send_all(Composite::from(Buf::from(first.clone())))
        .unwrap();
    tx.get_ref().use_y.set(false);
    tx.send_all(Composite::from(Buf::from(second.clone())))
        .unwrap();
    tx.flush(Duration::from_secs(5)).unwrap();
    let s = tx.stats();
    assert_eq!(
        (s.unknown_completions, s.desynchronised),
        (0, false),
        "{s:?}"
    );
    drop(tx);
    drop(y_tx);
    y_peer
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut on_y = [0u8; 16];
    let stray = y_peer.read(&mut on_y).unwrap_or(0);
    let mut expect = first;
    expect.extend_from_slice(&second);
    assert!(reader.join().unwrap() == expect, "x's peer got other bytes");
    assert_eq!(stray, 0, "bytes went to a socket the sender does not track");
}

fn set_int(
    fd: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) {
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

#[test]
fn completions_arrive_on_a_socket_with_receive_timestamps_on() {
    // Timestamps add control messages to every error-queue read; the
    // completion must not be cut off behind them.
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let l = TcpListener::bind(addr).unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut b, _) = l.accept().unwrap();
        set_int(&a, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1);
        let flags = libc::SOF_TIMESTAMPING_SOFTWARE
            | libc::SOF_TIMESTAMPING_RX_SOFTWARE
            | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
        set_int(
            &a,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            flags as libc::c_int,
        );
        let mut tx = ZeroCopySender::with_config(&a, always()).unwrap();
        let body: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 253) as u8).collect();
        let reader = thread::spawn(move || {
            let mut got = vec![0u8; 256 * 1024];
            b.read_exact(&mut got).unwrap();
            got
        });
        tx.send_all(Composite::from(Buf::from(body.clone())))
            .unwrap();
        assert!(reader.join().unwrap() == body, "{addr}: bytes differ");
        tx.flush(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{addr}: {e}; {:?}", tx.stats()));
        let s = tx.stats();
        assert_eq!(s.completions, s.zerocopy_sends, "{addr}: {s:?}");
    }
}

/// Bytes whose owner overwrites them when dropped: a datagram that leaves
/// after its pin was released carries the scribble.
struct Scribbled(Vec<u8>);

/// Where dropped `Scribbled` bytes stay for the rest of the process.
static GRAVEYARD: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

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
        // Kept, so the scribble stays where the kernel would read; in a
        // graveyard the process can still reach (not leaked: memcheck
        // counts forgotten blocks as definitely lost).
        GRAVEYARD.lock().unwrap().push(std::mem::take(&mut self.0));
    }
}

fn datagram(thread: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0u8; len];
    d[0] = thread;
    d[1..5].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in d.iter_mut().enumerate().skip(5) {
        *b = (i as u32 ^ seq ^ u32::from(thread)) as u8 | 1;
    }
    d
}

#[test]
fn two_threads_sending_on_one_udp_socket_never_release_a_pin_early() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    set_int(&rx, libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20);
    // Long enough for valgrind's pace: the receiver stops when every
    // datagram came, and only waits this long for ones that never come.
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    const PER_THREAD: u32 = 600;
    const LEN: usize = 12_000;
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let (mut good, mut bad) = (0u32, 0u32);
        while good + bad < 2 * PER_THREAD {
            let Ok(n) = rx.recv(&mut buf) else { break };
            let seq = u32::from_be_bytes(buf[1..5].try_into().unwrap());
            if n == LEN && buf[..n] == datagram(buf[0], seq, LEN)[..] {
                good += 1;
            } else {
                bad += 1;
            }
        }
        (good, bad)
    });
    let senders: Vec<_> = (0..2u8)
        .map(|t| {
            let s = sock.try_clone().unwrap();
            thread::spawn(move || {
                let mut tx = ZeroCopySender::with_config(s, always()).unwrap();
                for seq in 0..PER_THREAD {
                    let d = Scribbled(datagram(t, seq, LEN));
                    tx.send_all(Composite::from(Buf::from_owner(d))).unwrap();
                    if seq % 97 == 0 {
                        let _ = tx.flush(Duration::from_millis(1));
                    }
                }
                tx.flush(Duration::from_secs(10)).unwrap();
                tx.stats()
            })
        })
        .collect();
    let stats: Vec<_> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let (good, bad) = receiver.join().unwrap();
    for s in &stats {
        assert_eq!(
            (s.unknown_completions, s.desynchronised),
            (0, false),
            "{s:?}"
        );
    }
    assert_eq!(
        bad, 0,
        "{bad} datagrams carried freed or foreign bytes ({good} good)"
    );
    assert!(good > 0);
    eprintln!("{good} of {} datagrams checked", 2 * PER_THREAD);
}

#[test]
fn abort_from_another_sender_wakes_a_blocked_send_and_frees_its_pins() {
    let (a, b) = pair();
    let a2 = a.try_clone().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let blocked = thread::spawn(move || {
        let mut tx = ZeroCopySender::with_config(a, always()).unwrap();
        started_tx.send(()).unwrap();
        let r = tx.send_all(Composite::from(Buf::from(vec![9u8; 32 << 20])));
        let flushed = tx.flush(Duration::from_secs(5));
        (
            r.map_err(|e| e.kind()),
            flushed.map_err(|e| e.to_string()),
            tx.stats(),
        )
    });
    started_rx.recv().unwrap();
    thread::sleep(Duration::from_millis(300));
    let tx2 = ZeroCopySender::with_config(a2, always()).unwrap();
    let t0 = Instant::now();
    let aborted = within(HANG, move || tx2.abort().map_err(|e| e.kind()));
    assert_eq!(aborted, Some(Ok(())), "abort hung or failed");
    let (sent, flushed, stats) = within(HANG, move || blocked.join().unwrap())
        .expect("the blocked send never woke after the abort");
    assert!(sent.is_err(), "the send went on after the reset");
    assert_eq!(flushed, Ok(()), "the purged sends' completions came back");
    assert_eq!(
        (stats.pinned_sends, stats.unknown_completions),
        (0, 0),
        "{stats:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(8));
    drop(b);
}

#[test]
fn eagain_at_every_point_loses_and_repeats_no_byte() {
    for mode in [
        ZeroCopyMode::Always,
        ZeroCopyMode::Auto,
        ZeroCopyMode::Never,
    ] {
        let (a, mut b) = pair();
        set_int(&a, libc::SOL_SOCKET, libc::SO_SNDBUF, 8 * 1024);
        set_int(&b, libc::SOL_SOCKET, libc::SO_RCVBUF, 32 * 1024);
        a.set_nonblocking(true).unwrap();
        // Pieces of 1 B to 40 KiB, some views of one shared buffer, some
        // empty, each owner scribbling when dropped.
        let shared: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let shared = Buf::from_owner(Scribbled(shared));
        let mut expect = Vec::new();
        let mut msgs = Vec::new();
        let mut x = 12345u32;
        for m in 0..40 {
            let mut msg = Composite::new();
            for _ in 0..(m % 7 + 1) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let len = [0, 1, 100, 4095, 4097, 40_000][x as usize % 6];
                let piece = if x % 3 == 0 {
                    let at = x as usize % (200_000 - len);
                    shared.slice(at..at + len)
                } else {
                    let v: Vec<u8> = (0..len).map(|i| (i as u32 ^ x) as u8).collect();
                    Buf::from_owner(Scribbled(v))
                };
                expect.extend_from_slice(&piece);
                msg.push(piece);
            }
            msgs.push(msg);
        }
        drop(shared);
        let total = expect.len();
        let reader = thread::spawn(move || {
            let mut got = Vec::with_capacity(total);
            let mut chunk = [0u8; 777];
            while got.len() < total {
                let n = b.read(&mut chunk).unwrap();
                assert!(n > 0, "early end");
                got.extend_from_slice(&chunk[..n]);
                if got.len() % 7 == 0 {
                    thread::sleep(Duration::from_micros(50));
                }
            }
            got
        });
        let cfg = ZeroCopyConfig {
            mode,
            threshold: 4096,
            ..ZeroCopyConfig::default()
        };
        let mut tx = ZeroCopySender::with_config(&a, cfg).unwrap();
        let mut eagains = 0;
        for mut msg in msgs {
            while !msg.is_empty() {
                match tx.send(&mut msg) {
                    Ok(n) => assert!(n > 0),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        eagains += 1;
                        tx.poll_completions().unwrap();
                        thread::sleep(Duration::from_micros(100));
                    }
                    Err(e) => panic!("{mode:?}: {e}"),
                }
            }
        }
        let got = reader.join().unwrap();
        assert!(got == expect, "{mode:?}: bytes differ");
        tx.flush(Duration::from_secs(5)).unwrap();
        let s = tx.stats();
        assert!(eagains > 0, "{mode:?}: never saw EAGAIN");
        assert_eq!(
            (s.unknown_completions, s.desynchronised, s.pinned_sends),
            (0, false, 0)
        );
        eprintln!(
            "{mode:?}: {eagains} EAGAINs, {} zero-copy sends",
            s.zerocopy_sends
        );
    }
}
