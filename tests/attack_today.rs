//! A hostile user of today's send paths (`send_each`, the GSO batch calls,
//! `DatagramBatchBuilder`, the io_uring backend, `set_wait_limit`), through
//! the public API only, over real loopback sockets checked byte for byte.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use zcbuf::io::zerocopy::{DatagramBatch, DatagramBatchBuilder};
use zcbuf::io::{SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

/// How long a call may take before it counts as hung (more under valgrind).
fn hang() -> Duration {
    if std::env::var_os("ZCBUF_VALGRIND").is_some() {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(20)
    }
}

fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

fn cfg(backend: SendBackend) -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        threshold: 0,
        backend,
        ..ZeroCopyConfig::default()
    }
}

const BACKENDS: [SendBackend; 2] = [SendBackend::Syscall, SendBackend::IoUring];

/// A sender of `backend` on a UDP socket connected to a fresh receiver
/// whose queue holds tens of MB (we run as root: `SO_RCVBUFFORCE`), so
/// loopback drops nothing; `None` when the backend cannot be had here.
fn udp(backend: SendBackend) -> Option<(ZeroCopySender<UdpSocket>, UdpSocket)> {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_rcvbuf(&rx);
    rx.set_read_timeout(Some(hang())).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    match ZeroCopySender::with_config(tx, cfg(backend)) {
        Ok(s) => Some((s, rx)),
        Err(e) => {
            skip(&format!("{backend:?} sender: {e}"));
            None
        }
    }
}

fn skip(why: &str) {
    eprintln!("cannot run: {why}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and the attack cannot run: {why}"
    );
}

fn big_rcvbuf(s: &impl AsRawFd) {
    let v: libc::c_int = 64 << 20;
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        skip("SO_RCVBUFFORCE refused (not root?): loopback may drop datagrams");
    }
}

/// Datagram `seq`: its number first, then a pattern of it, never 0xEE.
fn datagram(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i < 4 {
                seq.to_be_bytes()[i]
            } else {
                ((i as u32 ^ seq.wrapping_mul(31)) as u8) & 0x7F
            }
        })
        .collect()
}

fn recv_all(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    (0..n)
        .map(|i| {
            let len = rx
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of {n} never came: {e}"));
            buf[..len].to_vec()
        })
        .collect()
}

fn assert_nothing_more(rx: &UdpSocket) {
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 70_000];
    match rx.recv(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!(
            "an extra datagram arrived: {:?}",
            other.map(|n| buf[..n.min(16)].to_vec())
        ),
    }
    rx.set_nonblocking(false).unwrap();
}

/// Bytes whose owner overwrites them when dropped: a kernel that read them
/// after their release would put 0xEE on the wire.
struct Scribbler {
    bytes: Vec<u8>,
    drops: Arc<Mutex<usize>>,
}

impl AsRef<[u8]> for Scribbler {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Scribbler {
    fn drop(&mut self) {
        self.bytes.fill(0xEE);
        *self.drops.lock().unwrap() += 1;
    }
}

// ---------------------------------------------------------------- send_each

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_more_than_1024_datagrams_arrive_whole_in_order_on_both_backends() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let n = 1500u32;
        let msgs: Vec<Buf> = (0..n)
            .map(|i| Buf::from(datagram(i, 1 + (i as usize * 37) % 1400)))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            let k = tx.send_each(&msgs[sent..]).unwrap();
            assert!(k > 0, "{backend:?}: send_each made no progress");
            sent += k;
        }
        let got = recv_all(&rx, n as usize);
        for (i, g) in got.iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 1 + (i * 37) % 1400),
                "{backend:?}: datagram {i} differs"
            );
        }
        assert_nothing_more(&rx);
        tx.flush(hang()).unwrap();
        assert!(!tx.stats().desynchronised, "{backend:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_bad_input_is_a_clear_error_and_nothing_goes() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        assert_eq!(tx.send_each(&[]).unwrap(), 0, "{backend:?}: empty slice");
        // An empty Buf anywhere: nothing at all is sent, even the ones before.
        let msgs = [
            Buf::from(datagram(0, 10)),
            Buf::new(),
            Buf::from(datagram(2, 10)),
        ];
        assert_eq!(
            tx.send_each(&msgs).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        // A zero-length slice of a real buffer is empty too.
        let real = Buf::from(datagram(9, 100));
        let msgs = [real.slice(5..5)];
        assert_eq!(
            tx.send_each(&msgs).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_nothing_more(&rx);
    }
    // A stream socket would lose the boundaries.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let _b = l.accept().unwrap();
    for backend in BACKENDS {
        let Ok(mut tx) = ZeroCopySender::with_config(&a, cfg(backend)) else {
            continue;
        };
        let err = tx.send_each(&[Buf::from_static(b"x")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{backend:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_emsgsize_stops_at_a_prefix_and_reports_it() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let huge = Buf::from(vec![1u8; 70_000]); // above IPv4's 65507
                                                 // First one too big: the error, nothing sent.
        let err = tx
            .send_each(&[huge.clone(), Buf::from(datagram(1, 10))])
            .unwrap_err();
        assert!(
            err.raw_os_error() == Some(libc::EMSGSIZE),
            "{backend:?}: want EMSGSIZE, got {err:?}"
        );
        assert_nothing_more(&rx);
        // Two good ones, then too big, then good: exactly 2 went, in order.
        let msgs = [
            Buf::from(datagram(10, 100)),
            Buf::from(datagram(11, 200)),
            huge.clone(),
            Buf::from(datagram(13, 300)),
        ];
        assert_eq!(
            tx.send_each(&msgs).unwrap(),
            2,
            "{backend:?}: the count is a prefix"
        );
        let got = recv_all(&rx, 2);
        assert_eq!(got[0], datagram(10, 100), "{backend:?}");
        assert_eq!(got[1], datagram(11, 200), "{backend:?}");
        assert_nothing_more(&rx);
        tx.flush(hang()).unwrap();
        assert!(!tx.stats().desynchronised, "{backend:?}: {:?}", tx.stats());
        // The next call reports the error that stopped the batch, and
        // sends nothing; the sender works again after that.
        let e = tx.send_each(&msgs[3..]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{backend:?}: {e}");
        assert_nothing_more(&rx);
        assert_eq!(tx.send_each(&msgs[3..]).unwrap(), 1);
        assert_eq!(recv_all(&rx, 1)[0], datagram(13, 300));
    }
}

/// Per `send_each` call its outcome, then the flush's, then the stats.
type ClosedPortRun = (
    Vec<Result<usize, ErrorKind>>,
    Result<(), ErrorKind>,
    zcbuf::io::ZeroCopyStats,
);

/// `send_each` on a connected UDP socket (IP_RECVERR on) whose peer port
/// is closed, 20 times: per call the outcomes, the flush, the stats.
fn closed_port_run(backend: SendBackend) -> Option<ClosedPortRun> {
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = closed.local_addr().unwrap();
    drop(closed);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(to).unwrap();
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_RECVERR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "IP_RECVERR");
    let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
        skip(&format!("{backend:?} sender"));
        return None;
    };
    let r = within(hang(), move || {
        let msgs: Vec<Buf> = (0..8).map(|i| Buf::from(datagram(i, 500))).collect();
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            outcomes.push(tx.send_each(&msgs).map_err(|e| e.kind()));
            let _ = tx.poll_completions();
            thread::sleep(Duration::from_millis(2));
        }
        let flushed = tx.flush(Duration::from_secs(5)).map_err(|e| e.kind());
        (outcomes, flushed, tx.stats())
    });
    Some(r.unwrap_or_else(|| panic!("{backend:?}: send_each hung on a refused port")))
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_to_a_closed_port_neither_panics_hangs_nor_leaks_pins() {
    for backend in BACKENDS {
        let Some((outcomes, flushed, stats)) = closed_port_run(backend) else {
            continue;
        };
        for o in &outcomes {
            match o {
                Ok(n) => assert!(*n <= 8),
                Err(k) => assert_eq!(
                    *k,
                    ErrorKind::ConnectionRefused,
                    "{backend:?}: {outcomes:?}"
                ),
            }
        }
        assert_eq!(
            flushed,
            Ok(()),
            "{backend:?}: every pin released: {stats:?}"
        );
        assert_eq!(stats.pinned_sends, 0, "{backend:?}: {stats:?}");
        assert!(!stats.desynchronised, "{backend:?}: {stats:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_to_a_closed_port_reports_connection_refused() {
    for backend in BACKENDS {
        let Some((outcomes, _, _)) = closed_port_run(backend) else {
            continue;
        };
        assert!(
            outcomes.contains(&Err(ErrorKind::ConnectionRefused)),
            "{backend:?}: ECONNREFUSED never reported in 20 calls: {outcomes:?}"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_partial_count_then_the_rest_reports_the_error() {
    // The doc: "when an error stops the batch after some datagrams went,
    // it returns their number and the rest were not sent (sending them
    // again reports the error)".
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = closed.local_addr().unwrap();
    drop(closed);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(to).unwrap();
    let mut tx = ZeroCopySender::with_config(sock, cfg(SendBackend::Syscall)).unwrap();
    let msgs: Vec<Buf> = (0..8).map(|i| Buf::from(datagram(i, 500))).collect();
    let n = tx.send_each(&msgs).unwrap();
    assert!(n < 8, "nothing stopped the batch: {n}");
    let again = tx.send_each(&msgs[n..]).map_err(|e| e.kind());
    assert_eq!(
        again,
        Err(ErrorKind::ConnectionRefused),
        "the stopping error was lost"
    );
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_scribbling_owners_dropped_at_once_and_sender_dropped_send_the_real_bytes() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let drops = Arc::new(Mutex::new(0usize));
        let n = 64u32;
        {
            let msgs: Vec<Buf> = (0..n)
                .map(|i| {
                    Buf::from_owner(Scribbler {
                        bytes: datagram(i, 8000 + i as usize),
                        drops: drops.clone(),
                    })
                })
                .collect();
            let mut sent = 0;
            while sent < msgs.len() {
                sent += tx.send_each(&msgs[sent..]).unwrap();
            }
        } // our references go; only the sender's pins keep the owners.
        drop(tx); // with notifications perhaps outstanding
        let got = recv_all(&rx, n as usize);
        for (i, g) in got.iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 8000 + i),
                "{backend:?}: datagram {i} differs (scribbled: {})",
                g.contains(&0xEE)
            );
        }
        assert_eq!(
            *drops.lock().unwrap(),
            n as usize,
            "{backend:?}: an owner leaked"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn four_threads_four_senders_mixed_backends_one_socket_same_batch() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_rcvbuf(&rx);
    rx.set_read_timeout(Some(hang())).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let sock = Arc::new(sock);
    let n = 300u32;
    let batch: Arc<Vec<Buf>> = Arc::new(
        (0..n)
            .map(|i| Buf::from(datagram(i, 200 + i as usize)))
            .collect(),
    );
    let mut threads = Vec::new();
    // Two of each backend, all on one socket at once.
    for backend in [
        SendBackend::IoUring,
        SendBackend::Syscall,
        SendBackend::IoUring,
        SendBackend::Syscall,
    ] {
        let (sock, batch) = (sock.clone(), batch.clone());
        threads.push(thread::spawn(move || {
            let mut tx = match ZeroCopySender::with_config(&*sock, cfg(backend)) {
                Ok(t) => t,
                // One owner per socket (documented): the others get EBUSY.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(None),
                Err(e) => return Err(Some(e.to_string())),
            };
            let mut sent = 0;
            while sent < batch.len() {
                sent += tx
                    .send_each(&batch[sent..])
                    .map_err(|e| Some(e.to_string()))?;
            }
            tx.flush(Duration::from_secs(10))
                .map_err(|e| Some(e.to_string()))?;
            Ok(tx.stats())
        }));
    }
    let mut senders = 0;
    for t in threads {
        match t.join().unwrap() {
            Ok(s) => {
                senders += 1;
                assert!(!s.desynchronised, "{s:?}");
            }
            Err(None) => {}
            Err(Some(e)) => panic!("{e}"),
        }
    }
    let got = recv_all(&rx, senders * n as usize);
    let mut seen = vec![0usize; n as usize];
    for g in &got {
        let seq = u32::from_be_bytes(g[..4].try_into().unwrap());
        assert!(seq < n, "garbage datagram");
        assert!(
            g == &datagram(seq, 200 + seq as usize),
            "datagram {seq} differs"
        );
        seen[seq as usize] += 1;
    }
    assert!(
        seen.iter().all(|&c| c == senders),
        "lost or duplicated: {seen:?}"
    );
    assert_nothing_more(&rx);
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn io_uring_abort_with_sends_outstanding_releases_nothing_early() {
    let Some((mut tx, rx)) = udp(SendBackend::IoUring) else {
        return;
    };
    let drops = Arc::new(Mutex::new(0usize));
    let msgs: Vec<Buf> = (0..32u32)
        .map(|i| {
            Buf::from_owner(Scribbler {
                bytes: datagram(i, 30_000),
                drops: drops.clone(),
            })
        })
        .collect();
    let mut sent = 0;
    while sent < msgs.len() {
        sent += tx.send_each(&msgs[sent..]).unwrap();
    }
    drop(msgs);
    let _ = tx.abort();
    let got = recv_all(&rx, 32);
    for (i, g) in got.iter().enumerate() {
        assert!(g == &datagram(i as u32, 30_000), "datagram {i} differs");
    }
    // Dropping the sender in another thread that then exits.
    let Some((tx, rx)) = udp(SendBackend::IoUring) else {
        return;
    };
    let msgs: Vec<Buf> = (0..16u32).map(|i| Buf::from(datagram(i, 20_000))).collect();
    thread::spawn(move || {
        let mut tx = tx;
        assert_eq!(tx.send_each(&msgs).unwrap(), 16);
    })
    .join()
    .unwrap();
    let got = recv_all(&rx, 16);
    for (i, g) in got.iter().enumerate() {
        assert!(g == &datagram(i as u32, 20_000), "datagram {i} differs");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_on_a_non_blocking_socket_never_blocks() {
    for backend in BACKENDS {
        let Some((tx, rx)) = udp(backend) else {
            continue;
        };
        tx.get_ref().set_nonblocking(true).unwrap();
        let mut tx = tx;
        let msgs: Vec<Buf> = (0..200u32).map(|i| Buf::from(datagram(i, 1000))).collect();
        let r = within(hang(), move || {
            let n = tx.send_each(&msgs).map_err(|e| e.kind());
            (n, tx)
        });
        let (n, _tx) = r.unwrap_or_else(|| panic!("{backend:?}: a non-blocking send_each blocked"));
        let n = n.unwrap_or_else(|k| panic!("{backend:?}: {k:?}"));
        let got = recv_all(&rx, n);
        for (i, g) in got.iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 1000),
                "{backend:?}: datagram {i} differs"
            );
        }
    }
}

// ------------------------------------------------------- DatagramBatchBuilder

#[test]
fn push_with_that_panics_leaves_the_builder_as_it_was() {
    let mut b = DatagramBatchBuilder::new(4, 3).unwrap();
    b.push(b"abcd").unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.push_with(4, |out| {
            out.copy_from_slice(b"XXXX");
            panic!("the writer fails")
        })
    }));
    assert!(r.is_err());
    assert_eq!(b.len(), 1);
    b.push(b"efgh").unwrap();
    let batch = b.finish();
    // On the wire: the two datagrams pushed, nothing of the failed one.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(hang())).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let mut tx = ZeroCopySender::new(sock).unwrap();
    let sent = tx.send_batch(&batch).unwrap();
    let got = recv_all(&rx, sent);
    assert_eq!(
        got,
        vec![b"abcd".to_vec(), b"efgh".to_vec()],
        "the panicked writer's bytes went on the wire as a datagram"
    );
    assert_nothing_more(&rx);
}

#[test]
fn push_with_that_panics_when_the_builder_is_full_does_not_panic_in_the_library() {
    // After a caught panic, pushing up to the documented capacity must
    // give Ok or a clear error, never a panic from inside the library.
    // Sizes whose chunk is likely exactly full (pool size classes).
    for (seg, count) in [
        (4usize, 2usize),
        (4096, 16),
        (1024, 64),
        (65_536, 1),
        (1472, 44),
    ] {
        let mut b = DatagramBatchBuilder::new(seg, count).unwrap();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            b.push_with(seg, |_| panic!("writer fails"))
        }));
        let d = vec![7u8; seg];
        let r = catch_unwind(AssertUnwindSafe(|| {
            (0..count)
                .map(|_| b.push(&d).map_err(|e| e.kind()))
                .collect::<Vec<_>>()
        }));
        assert!(
            r.is_ok(),
            "{seg} x {count}: the library panicked on a push after a writer's panic"
        );
    }
}

#[test]
fn push_with_lying_writers_get_invalid_input_and_change_nothing() {
    let mut b = DatagramBatchBuilder::new(8, 3).unwrap();
    for lie in [0usize, 9, usize::MAX] {
        let e = b.push_with(8, |out| {
            out.fill(0x55);
            lie
        });
        assert_eq!(
            e.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "writer said {lie}"
        );
    }
    assert_eq!(
        b.push_with(9, |_| 1).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        b.push_with(usize::MAX, |_| 1).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(b.is_empty());
    b.push(b"12345678").unwrap();
    assert_eq!(
        b.push_with(8, |o| {
            o[..3].copy_from_slice(b"abc");
            3
        })
        .unwrap(),
        3
    );
    // After a short datagram nothing more fits.
    assert_eq!(
        b.push(b"zzzzzzzz").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let batch = b.finish();
    assert_eq!(&batch.as_buf()[..], b"12345678abc");
    assert_eq!(batch.datagram_count(), 2);
    // Sizes that overflow.
    for (s, n) in [(0, 1), (1, 0), (usize::MAX, 2), (2, usize::MAX)] {
        let e = DatagramBatchBuilder::new(s, n).map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s} x {n}");
    }
}

// ---------------------------------------------------------- GSO batch calls

/// Segment sizes around u16's edge: what goes must be exactly the batch
/// cut at `seg`, or a clear error with nothing sent; never 1-byte (or
/// otherwise wrongly cut) datagrams from a truncated segment size.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_batch_segment_sizes_at_u16_edges_send_right_or_fail_clearly() {
    for backend in BACKENDS {
        for (seg, total) in [
            (1usize, 64usize),
            (1, 65),
            (1, 200),
            (65_507, 65_507 * 2),
            (65_535, 65_535 * 2),
            (65_536, 65_536 + 10),
            (65_537, 65_537 * 2),
            (131_073, 131_073 + 1),
            (usize::MAX, 10),
        ] {
            let Some((mut tx, rx)) = udp(backend) else {
                continue;
            };
            let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            let batch = DatagramBatch::new(Buf::from(data.clone()), seg).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| tx.send_batch(&batch)));
            let r =
                r.unwrap_or_else(|_| panic!("{backend:?}: send_batch panicked for segment {seg}"));
            match r {
                Ok(n) => {
                    let got = recv_all(&rx, n);
                    for (i, g) in got.iter().enumerate() {
                        let lo = i * seg;
                        let hi = (lo + seg).min(total);
                        assert!(
                            g[..] == data[lo..hi],
                            "{backend:?} seg {seg}: datagram {i} wrongly cut ({} bytes)",
                            g.len()
                        );
                    }
                }
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::InvalidInput)
                        || e.raw_os_error() == Some(libc::EMSGSIZE),
                    "{backend:?} seg {seg}: unclear error {e:?}"
                ),
            }
            assert_nothing_more(&rx);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_batch_many_small_datagrams_all_arrive() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let mut b = DatagramBatchBuilder::new(100, 2000).unwrap();
        for i in 0..2000u32 {
            b.push(&datagram(i, 100)).unwrap();
        }
        let batch = b.finish();
        let mut sent = 0;
        while sent < 2000 {
            let rest = DatagramBatch::new(batch.as_buf().slice(sent * 100..), 100).unwrap();
            let k = tx.send_batch(&rest).unwrap();
            assert!(k > 0);
            sent += k;
        }
        for (i, g) in recv_all(&rx, 2000).iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 100),
                "{backend:?}: datagram {i} differs"
            );
        }
        assert_nothing_more(&rx);
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_datagrams_with_empty_pieces_and_bad_shapes() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let to: SocketAddr = rx.local_addr().unwrap();
        // Empty Bufs inside a datagram are harmless padding.
        let d: Vec<Composite> = (0..3u32)
            .map(|i| {
                let v = datagram(i, 300);
                let mut c = Composite::new();
                c.push(Buf::new());
                c.push(Buf::from(v[..100].to_vec()));
                c.push(Buf::new());
                c.push(Buf::from(v[100..].to_vec()));
                c
            })
            .collect();
        assert_eq!(tx.send_datagrams(&d).unwrap(), 3, "{backend:?}");
        for (i, g) in recv_all(&rx, 3).iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 300),
                "{backend:?}: datagram {i} differs"
            );
        }
        // An empty datagram, a longer last one, a datagram of only empty pieces.
        let empty_only = {
            let mut c = Composite::new();
            c.push(Buf::new());
            c
        };
        for bad in [
            vec![Composite::from(Buf::from(vec![1u8; 10])), Composite::new()],
            vec![
                Composite::from(Buf::from(vec![1u8; 10])),
                Composite::from(Buf::from(vec![1u8; 11])),
            ],
            vec![empty_only.clone()],
            vec![Composite::from(Buf::from(vec![1u8; 70_000]))],
        ] {
            let e = tx.send_datagrams(&bad).unwrap_err();
            assert!(
                e.kind() == ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::EMSGSIZE),
                "{backend:?}: {e:?}"
            );
            let e = tx.send_datagrams_to(&bad, to).unwrap_err();
            assert!(
                e.kind() == ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::EMSGSIZE),
                "{backend:?}: {e:?}"
            );
        }
        assert_eq!(tx.send_datagrams(&[]).unwrap(), 0);
        assert_nothing_more(&rx);
    }
}

// ------------------------------------------------------------ set_wait_limit

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn wait_limit_zero_does_not_mean_wait_forever() {
    // Zero, and limits that round to zero in milliseconds or a timeval.
    for limit in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(500),
    ] {
        wait_limit_run(limit);
    }
}

fn wait_limit_run(limit: Duration) {
    let (a, mut b) = tcp_pair();
    let mut tx = ZeroCopySender::with_config(a, cfg(SendBackend::Syscall)).unwrap();
    tx.set_wait_limit(Some(limit));
    let body: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i * 13 + (i >> 10)) as u8)
        .collect();
    let expect = body.clone();
    let t0 = Instant::now();
    let r = within(hang(), move || {
        let mut msg = Composite::from(Buf::from(body));
        let mut went = 0usize;
        let mut last = None;
        // The peer reads nothing: each call returns at once with what went.
        for _ in 0..50 {
            match tx.send(&mut msg) {
                Ok(n) => went += n,
                Err(e) => {
                    last = Some(e.kind());
                    break;
                }
            }
        }
        (went, last, msg, tx)
    });
    let (went, last, mut msg, mut tx) = r.unwrap_or_else(|| {
        panic!(
            "a wait limit of {limit:?} blocked on a full socket ({:?})",
            t0.elapsed()
        )
    });
    assert!(
        went < 32 << 20,
        "everything went into a peer that reads nothing?"
    );
    assert!(
        matches!(
            last,
            None | Some(ErrorKind::WouldBlock) | Some(ErrorKind::TimedOut)
        ),
        "{last:?}"
    );
    // Now read, and finish without a limit: the stream is intact.
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    tx.set_wait_limit(None);
    while !msg.is_empty() {
        tx.send(&mut msg).unwrap();
    }
    tx.flush(hang()).unwrap();
    drop(tx);
    assert!(
        reader.join().unwrap() == expect,
        "bytes lost or duplicated around WouldBlock"
    );
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn wait_limit_duration_max_when_nothing_blocks_and_a_short_limit_on_non_blocking_tcp() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        tx.set_wait_limit(Some(Duration::MAX));
        let r = catch_unwind(AssertUnwindSafe(|| {
            (
                tx.send_buf(&Buf::from(datagram(0, 100)))
                    .map_err(|e| e.kind()),
                tx.send_each(&[Buf::from(datagram(1, 100))])
                    .map_err(|e| e.kind()),
            )
        }));
        let (a, b) = r.unwrap_or_else(|_| panic!("{backend:?}: Duration::MAX panicked"));
        assert_eq!(a, Ok(100), "{backend:?}");
        assert_eq!(b, Ok(1), "{backend:?}");
        let got = recv_all(&rx, 2);
        assert_eq!(got[0], datagram(0, 100));
        assert_eq!(got[1], datagram(1, 100));
    }
    // On a TCP socket whose peer stops reading, Duration::MAX waits (as
    // asked); a tiny limit returns what went and the rest is intact.
    let (a, mut b) = tcp_pair();
    a.set_nonblocking(true).unwrap();
    let mut tx = ZeroCopySender::with_config(a, cfg(SendBackend::Syscall)).unwrap();
    tx.set_wait_limit(Some(Duration::from_millis(50)));
    let body = Buf::from(datagram(7, 16 << 20));
    let mut msg = Composite::from(body.clone());
    let t0 = Instant::now();
    let mut stalls = 0;
    while !msg.is_empty() && stalls < 3 {
        match tx.send(&mut msg) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => stalls += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        t0.elapsed() < hang(),
        "a non-blocking socket with a limit blocked"
    );
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    while !msg.is_empty() {
        match tx.send(&mut msg) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("{e:?}"),
        }
    }
    tx.flush(hang()).unwrap();
    drop(tx);
    assert!(reader.join().unwrap()[..] == body[..], "bytes differ");
}

// ------------------------------------------- real zero-copy over a veth pair

#[path = "support/netns.rs"]
mod netns;

/// Over veth (no local delivery, so no copy on the way), with tbf
/// queueing the packets (50 Mbit/s): datagrams whose owners scribble when
/// dropped, our references and then the sender dropped at once. What left
/// (captured on the far end) must be the real bytes, each once, in order.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_send_each_and_send_batch_never_release_a_scribbling_owner_early() {
    veth_scribble(
        "veth_send_each_and_send_batch_never_release_a_scribbling_owner_early",
        "50mbit",
        500,
        false,
        false,
    );
}

/// As above, ended by `abort()` (on UDP: the peer dissociated) while the
/// slow link still holds the datagrams.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_abort_with_datagrams_queued_releases_nothing_early() {
    veth_scribble(
        "veth_abort_with_datagrams_queued_releases_nothing_early",
        "5mbit",
        3000,
        false,
        true,
    );
}

/// As above on a 5 Mbit/s link (the packets stay queued for about two
/// seconds after the sender is gone), the sender made, used and dropped
/// on a thread that then exits.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_slow_link_sender_dropped_on_an_exiting_thread_releases_nothing_early() {
    veth_scribble(
        "veth_slow_link_sender_dropped_on_an_exiting_thread_releases_nothing_early",
        "5mbit",
        3000,
        true,
        false,
    );
}

fn veth_scribble(test: &str, rate: &str, quiet_ms: u64, on_thread: bool, abort: bool) {
    if !netns::run_inside(test) {
        return;
    }
    let first = netns::setup_veth_sink();
    drop(first);
    netns::tc(&format!(
        "qdisc add dev v0 root tbf rate {rate} burst 128kb limit 8mb"
    ));
    let cap = netns::capture_on_sink();
    let quiet = Duration::from_millis(if std::env::var_os("ZCBUF_VALGRIND").is_some() {
        10 * quiet_ms
    } else {
        quiet_ms
    });
    for backend in BACKENDS {
        let sock = netns::setup_veth_sink();
        let Ok(tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            netns::cannot_run(test, &format!("no {backend:?} sender"));
            continue;
        };
        let drops = Arc::new(Mutex::new(0usize));
        let n = 32usize;
        let seg = 1472;
        let whole: Vec<u8> = (0..44u32).flat_map(|i| datagram(1000 + i, seg)).collect();
        let send = {
            let (drops, whole) = (drops.clone(), whole.clone());
            move || {
                let mut tx = tx;
                let msgs: Vec<Buf> = (0..n)
                    .map(|i| {
                        Buf::from_owner(Scribbler {
                            bytes: datagram(i as u32, 30_000 + i),
                            drops: drops.clone(),
                        })
                    })
                    .collect();
                let mut sent = 0;
                while sent < n {
                    sent += tx.send_each(&msgs[sent..]).unwrap();
                }
                drop(msgs);
                // A GSO batch too, from one scribbling owner.
                let batch = DatagramBatch::new(
                    Buf::from_owner(Scribbler {
                        bytes: whole.clone(),
                        drops: drops.clone(),
                    }),
                    seg,
                )
                .unwrap();
                assert_eq!(tx.send_batch(&batch).unwrap(), 44, "{backend:?}");
                drop(batch);
                let stats = tx.stats();
                if abort {
                    tx.abort().unwrap();
                } else {
                    drop(tx);
                }
                stats
            }
        };
        let stats = if on_thread {
            thread::spawn(send).join().unwrap()
        } else {
            send()
        };
        let got = netns::captured_udp_payloads(&cap, quiet);
        // The GSO batch may cross veth as one super-packet: compare the
        // bytes after the send_each datagrams as one stream.
        assert!(
            got.len() > n,
            "{backend:?}: datagrams on the wire ({stats:?})"
        );
        for (i, g) in got[..n].iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 30_000 + i),
                "{backend:?}: send_each datagram {i} differs (scribbled: {})",
                g.contains(&0xEE)
            );
        }
        let rest: Vec<u8> = got[n..].concat();
        assert_eq!(
            rest.len(),
            whole.len(),
            "{backend:?}: batch bytes on the wire"
        );
        assert!(
            rest == whole,
            "{backend:?}: the batch differs on the wire (scribbled: {})",
            rest.contains(&0xEE)
        );
        assert_eq!(
            *drops.lock().unwrap(),
            n + 1,
            "{backend:?}: an owner leaked"
        );
        eprintln!("{backend:?}: {stats:?}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn the_same_gso_batch_from_two_threads_two_senders_mixed_backends() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_rcvbuf(&rx);
    rx.set_read_timeout(Some(hang())).unwrap();
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let seg = 1200;
    let n = 150u32;
    let whole: Vec<u8> = (0..n).flat_map(|i| datagram(i, seg)).collect();
    let batch = Arc::new(DatagramBatch::new(Buf::from(whole), seg).unwrap());
    let rounds = 5;
    let threads: Vec<_> = BACKENDS
        .into_iter()
        .map(|backend| {
            let (sock, batch) = (sock.clone(), batch.clone());
            thread::spawn(move || {
                let mut tx = ZeroCopySender::with_config(&*sock, cfg(backend)).map_err(|e| {
                    // One owner per socket (documented): EBUSY.
                    (e.raw_os_error() != Some(libc::EBUSY)).then(|| e.to_string())
                })?;
                for _ in 0..rounds {
                    let mut sent = 0;
                    while sent < n as usize {
                        let rest =
                            DatagramBatch::new(batch.as_buf().slice(sent * seg..), seg).unwrap();
                        sent += tx.send_batch(&rest).map_err(|e| Some(e.to_string()))?;
                    }
                }
                tx.flush(hang()).map_err(|e| Some(e.to_string()))?;
                Ok::<_, Option<String>>(tx.stats())
            })
        })
        .collect();
    let mut senders = 0;
    for t in threads {
        match t.join().unwrap() {
            Ok(s) => {
                senders += 1;
                assert!(!s.desynchronised, "{s:?}");
            }
            Err(None) => {}
            Err(Some(e)) => panic!("{e}"),
        }
    }
    let got = recv_all(&rx, senders * rounds * n as usize);
    let mut seen = vec![0usize; n as usize];
    for g in &got {
        let seq = u32::from_be_bytes(g[..4].try_into().unwrap());
        assert!(seq < n, "garbage datagram");
        assert!(g == &datagram(seq, seg), "datagram {seq} differs");
        seen[seq as usize] += 1;
    }
    assert!(
        seen.iter().all(|&c| c == senders * rounds),
        "lost or duplicated: {seen:?}"
    );
    assert_nothing_more(&rx);
    assert_eq!(
        batch.as_buf().ref_count(),
        Some(1),
        "a pin was never released"
    );
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn empty_gso_batches_send_nothing() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let empty = DatagramBatch::new(Buf::new(), 1200).unwrap();
        assert_eq!(tx.send_batch(&empty).unwrap(), 0, "{backend:?}");
        assert_eq!(
            tx.send_batch(&DatagramBatch::default())
                .map_err(|e| e.kind())
                .unwrap_or(0),
            0
        );
        let to = rx.local_addr().unwrap();
        assert_eq!(tx.send_batch_to(&empty, to).unwrap(), 0, "{backend:?}");
        assert_eq!(tx.send_datagrams_to(&[], to).unwrap(), 0, "{backend:?}");
        assert_eq!(
            DatagramBatchBuilder::new(10, 4)
                .unwrap()
                .finish()
                .datagram_count(),
            0
        );
        let b = DatagramBatchBuilder::new(10, 4).unwrap().finish();
        assert_eq!(tx.send_batch(&b).unwrap(), 0, "{backend:?}");
        assert_nothing_more(&rx);
    }
}

/// With `RLIMIT_MEMLOCK` at 0 (in a re-executed child, so no other test
/// feels it), the io_uring backend either refuses clearly at creation or
/// sends every byte right.
#[test]
#[cfg_attr(miri, ignore = "real sockets, re-exec")]
fn io_uring_under_a_zero_memlock_limit_sends_right_or_refuses_clearly() {
    const TEST: &str = "io_uring_under_a_zero_memlock_limit_sends_right_or_refuses_clearly";
    const CHILD: &str = "ZCBUF_ATTACK_MEMLOCK_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("re-exec the test binary");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed:\n{stdout}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran nothing:\n{stdout}"
        );
        return;
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit living across the call; this child process only.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero) }, 0);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    big_rcvbuf(&rx);
    rx.set_read_timeout(Some(hang())).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    let mut tx = match ZeroCopySender::with_config(sock, cfg(SendBackend::IoUring)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("refused under memlock 0: {e} ({:?})", e.kind());
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let msgs: Vec<Buf> = (0..100u32)
        .map(|i| Buf::from(datagram(i, 20_000)))
        .collect();
    let mut sent = 0;
    while sent < msgs.len() {
        sent += tx.send_each(&msgs[sent..]).unwrap();
    }
    for (i, g) in recv_all(&rx, 100).iter().enumerate() {
        assert!(g == &datagram(i as u32, 20_000), "datagram {i} differs");
    }
    tx.flush(hang()).unwrap();
    eprintln!("memlock 0: {:?}", tx.stats());
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_overlapping_slices_of_one_buffer_and_max_size_datagrams() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let base: Vec<u8> = (0..200_000u32).map(|i| (i * 31 + (i >> 9)) as u8).collect();
        let buf = Buf::from(base.clone());
        // Overlapping, nested, repeated and page-straddling views of one
        // allocation (the io_uring backend's registered-buffer table sees
        // the same pages again and again), the largest IPv4 datagram too.
        let ranges: Vec<(usize, usize)> = (0..300usize)
            .map(|i| {
                let start = (i * 4093) % 130_000;
                let len = match i % 5 {
                    0 => 1,
                    1 => 65_507,
                    2 => 4096,
                    3 => 1 + (i * 977) % 60_000,
                    _ => 8192,
                };
                (start, len)
            })
            .collect();
        let msgs: Vec<Buf> = ranges.iter().map(|&(s, l)| buf.slice(s..s + l)).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            let k = tx.send_each(&msgs[sent..]).unwrap();
            assert!(k > 0, "{backend:?}: no progress");
            sent += k;
            // Read as we go: 300 datagrams up to 64 KB overflow even a big queue.
            for (j, g) in recv_all(&rx, k).iter().enumerate() {
                let (s, l) = ranges[sent - k + j];
                assert!(
                    g[..] == base[s..s + l],
                    "{backend:?}: datagram {} differs",
                    sent - k + j
                );
            }
        }
        assert_nothing_more(&rx);
        tx.flush(hang()).unwrap();
        drop(msgs);
        assert_eq!(buf.ref_count(), Some(1), "{backend:?}: a pin was kept");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn a_tcp_peer_that_resets_mid_send_gives_an_error_on_both_backends() {
    for backend in BACKENDS {
        let (a, b) = tcp_pair();
        let Ok(mut tx) = ZeroCopySender::with_config(a, cfg(backend)) else {
            skip(&format!("{backend:?} sender"));
            continue;
        };
        let body = Buf::from(vec![3u8; 64 << 20]);
        let killer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            // Unread data in the receive queue: close sends a RST.
            drop(b);
        });
        let r = within(hang(), move || {
            let r = tx
                .send_all(Composite::from(body.clone()))
                .map_err(|e| e.kind());
            let _ = tx.flush(Duration::from_secs(5));
            let s = tx.stats();
            drop(tx);
            (r, s, body.ref_count())
        });
        killer.join().unwrap();
        let (r, s, refs) =
            r.unwrap_or_else(|| panic!("{backend:?}: send_all hung on a reset peer"));
        assert!(
            matches!(
                r,
                Err(ErrorKind::ConnectionReset) | Err(ErrorKind::BrokenPipe)
            ),
            "{backend:?}: {r:?}"
        );
        assert!(!s.desynchronised, "{backend:?}: {s:?}");
        assert_eq!(refs, Some(1), "{backend:?}: a pin outlived the sender");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn io_uring_backend_honours_so_sndtimeo_with_a_peer_that_stops_reading() {
    let (a, mut b) = tcp_pair();
    a.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let Ok(mut tx) = ZeroCopySender::with_config(a, cfg(SendBackend::IoUring)) else {
        skip("io_uring sender");
        return;
    };
    // Also a wait limit, which the docs say io_uring ignores: it must not
    // turn the socket's timeout into a hang either.
    tx.set_wait_limit(Some(Duration::ZERO));
    let body: Vec<u8> = (0..32u32 << 20).map(|i| (i ^ (i >> 11)) as u8).collect();
    let expect = body.clone();
    let r = within(hang(), move || {
        let mut msg = Composite::from(Buf::from(body));
        let mut err = None;
        while !msg.is_empty() {
            if let Err(e) = tx.send(&mut msg) {
                err = Some(e.kind());
                break;
            }
        }
        (err, msg, tx)
    });
    let (err, mut msg, mut tx) = r.expect("io_uring send ignored SO_SNDTIMEO and hung");
    assert!(
        matches!(err, Some(ErrorKind::WouldBlock) | Some(ErrorKind::TimedOut)),
        "{err:?}"
    );
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    while !msg.is_empty() {
        match tx.send(&mut msg) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    tx.flush(hang()).unwrap();
    drop(tx);
    assert!(
        reader.join().unwrap() == expect,
        "bytes lost or duplicated around the timeout"
    );
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_failure_deep_in_a_long_batch_is_an_exact_prefix() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        for bad_at in [1usize, 63, 64, 65, 150, 199] {
            let msgs: Vec<Buf> = (0..200u32)
                .map(|i| {
                    if i as usize == bad_at {
                        Buf::from(vec![0xAB; 70_000])
                    } else {
                        Buf::from(datagram(i, 300))
                    }
                })
                .collect();
            let n = tx.send_each(&msgs).unwrap();
            assert_eq!(
                n, bad_at,
                "{backend:?}: the count must stop at the oversized datagram"
            );
            for (i, g) in recv_all(&rx, n).iter().enumerate() {
                assert!(
                    g == &datagram(i as u32, 300),
                    "{backend:?}: datagram {i} differs"
                );
            }
            assert_nothing_more(&rx);
            // The error that stopped the batch comes with the next call.
            let e = tx.send_each(&msgs[n..]).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{backend:?}: {e}");
            tx.flush(hang()).unwrap();
            drop(msgs);
        }
        assert!(!tx.stats().desynchronised, "{backend:?}: {:?}", tx.stats());
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn unconnected_and_wrong_family_destinations_are_errors_not_panics() {
    for backend in BACKENDS {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            skip(&format!("{backend:?} sender"));
            continue;
        };
        let msgs = [Buf::from(datagram(0, 100))];
        let r = catch_unwind(AssertUnwindSafe(|| {
            tx.send_each(&msgs).map_err(|e| e.kind())
        }));
        let r = r.unwrap_or_else(|_| panic!("{backend:?}: send_each panicked unconnected"));
        assert!(r.is_err(), "{backend:?}: sent with no destination: {r:?}");
        let batch = DatagramBatch::new(Buf::from(vec![1u8; 3000]), 1000).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            tx.send_batch(&batch).map_err(|e| e.kind())
        }));
        assert!(r.expect("send_batch panicked").is_err(), "{backend:?}");
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| {
            tx.send_batch_to(&batch, v6).map_err(|e| e.kind())
        }));
        assert!(
            r.expect("send_batch_to panicked").is_err(),
            "{backend:?}: IPv6 to an IPv4 socket"
        );
        let d = [Composite::from(Buf::from(vec![1u8; 10]))];
        let r = catch_unwind(AssertUnwindSafe(|| {
            tx.send_datagrams_to(&d, v6).map_err(|e| e.kind())
        }));
        assert!(
            r.expect("send_datagrams_to panicked").is_err(),
            "{backend:?}"
        );
        tx.flush(hang()).unwrap();
        assert_eq!(
            batch.as_buf().ref_count(),
            Some(1),
            "{backend:?}: a failed send kept a pin"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_datagrams_many_scattered_headers_and_payload_slices_arrive_exactly() {
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let payload_bytes: Vec<u8> = (0..2_000_000u32)
            .map(|i| (i * 3 + (i >> 8)) as u8)
            .collect();
        let payload = Buf::from(payload_bytes);
        for (seg, count, last) in [
            (1200usize, 1000usize, 17usize),
            (1472, 100, 1472),
            (60_000, 30, 5),
            (9, 300, 1),
        ] {
            let mut expect = Vec::new();
            let datagrams: Vec<Composite> = (0..count)
                .map(|i| {
                    let len = if i + 1 == count { last } else { seg };
                    let head_len = len.min(8);
                    let mut head = datagram(i as u32, head_len);
                    head.truncate(head_len);
                    let body_len = len - head_len;
                    let off = (i * 7919) % (payload.len() - body_len.max(1));
                    let mut c = Composite::from(Buf::from(head.clone()));
                    if body_len > 0 {
                        c.push(payload.slice(off..off + body_len));
                    }
                    head.extend_from_slice(&payload[off..off + body_len]);
                    expect.push(head);
                    c
                })
                .collect();
            let mut sent = 0;
            while sent < count {
                let k = tx.send_datagrams(&datagrams[sent..]).unwrap();
                assert!(k > 0, "{backend:?} seg {seg}: no progress");
                for (j, g) in recv_all(&rx, k).iter().enumerate() {
                    assert!(
                        g == &expect[sent + j],
                        "{backend:?} seg {seg}: datagram {} differs",
                        sent + j
                    );
                }
                sent += k;
            }
            assert_nothing_more(&rx);
        }
        tx.flush(hang()).unwrap();
        assert_eq!(payload.ref_count(), Some(1), "{backend:?}: a pin was kept");
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn send_each_in_every_mode_with_default_thresholds_arrives_exactly() {
    for backend in BACKENDS {
        for mode in [
            ZeroCopyMode::Auto,
            ZeroCopyMode::Never,
            ZeroCopyMode::Always,
        ] {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            big_rcvbuf(&rx);
            rx.set_read_timeout(Some(hang())).unwrap();
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.connect(rx.local_addr().unwrap()).unwrap();
            let config = ZeroCopyConfig {
                mode,
                backend,
                ..ZeroCopyConfig::default()
            };
            let Ok(mut tx) = ZeroCopySender::with_config(sock, config) else {
                skip(&format!("{backend:?} sender"));
                continue;
            };
            let sizes = [1usize, 100, 4096, 16_384, 65_507, 3, 40_000];
            let msgs: Vec<Buf> = (0..140u32)
                .map(|i| Buf::from(datagram(i, sizes[i as usize % sizes.len()])))
                .collect();
            let mut sent = 0;
            while sent < msgs.len() {
                let k = tx.send_each(&msgs[sent..]).unwrap();
                for (j, g) in recv_all(&rx, k).iter().enumerate() {
                    let i = sent + j;
                    assert!(
                        g == &datagram(i as u32, sizes[i % sizes.len()]),
                        "{backend:?} {mode:?}: datagram {i} differs"
                    );
                }
                sent += k;
            }
            assert_nothing_more(&rx);
            tx.flush(hang()).unwrap();
        }
    }
}

#[test]
fn datagram_batch_views_out_of_range_are_none() {
    let batch = DatagramBatch::new(Buf::from(vec![1u8; 2500]), 1000).unwrap();
    assert_eq!(batch.datagram_count(), 3);
    assert_eq!(batch.datagram(2).map(|d| d.len()), Some(500));
    assert!(batch.datagram(3).is_none());
    assert!(batch.datagram(usize::MAX).is_none());
    let huge = DatagramBatch::new(Buf::from(vec![1u8; 10]), usize::MAX).unwrap();
    assert_eq!(huge.datagram_count(), 1);
    assert_eq!(huge.datagram(0).map(|d| d.len()), Some(10));
    assert!(huge.datagram(1).is_none());
}

/// A non-blocking socket with a small send buffer in front of a slow
/// link: `send_each` meets `EAGAIN` part way. It must not block, each
/// count must be an exact prefix, and what left (captured) must be every
/// datagram once, in order, real bytes.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_non_blocking_send_each_meeting_eagain_keeps_an_exact_prefix() {
    const TEST: &str = "veth_non_blocking_send_each_meeting_eagain_keeps_an_exact_prefix";
    if !netns::run_inside(TEST) {
        return;
    }
    drop(netns::setup_veth_sink());
    netns::tc("qdisc add dev v0 root tbf rate 20mbit burst 32kb limit 8mb");
    let cap = netns::capture_on_sink();
    for backend in BACKENDS {
        let sock = netns::setup_veth_sink();
        let small: libc::c_int = 16 << 10;
        // SAFETY: a valid socket and a c_int option value living across the call.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        sock.set_nonblocking(true).unwrap();
        let Ok(tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            netns::cannot_run(TEST, &format!("no {backend:?} sender"));
            continue;
        };
        let drops = Arc::new(Mutex::new(0usize));
        let n = 300usize;
        let msgs: Vec<Buf> = (0..n)
            .map(|i| {
                Buf::from_owner(Scribbler {
                    bytes: datagram(i as u32, 1000 + i),
                    drops: drops.clone(),
                })
            })
            .collect();
        let r = within(hang(), move || {
            let mut tx = tx;
            let (mut sent, mut would_block, mut calls) = (0usize, 0u32, 0u32);
            while sent < n && calls < 100_000 {
                calls += 1;
                match tx.send_each(&msgs[sent..]) {
                    Ok(k) => sent += k,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        would_block += 1;
                        thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => panic!("{backend:?}: {e:?}"),
                }
            }
            drop(msgs);
            let stats = tx.stats();
            drop(tx);
            (sent, would_block, stats)
        });
        let (sent, would_block, stats) =
            r.unwrap_or_else(|| panic!("{backend:?}: a non-blocking send_each blocked"));
        assert_eq!(sent, n, "{backend:?}: gave up ({stats:?})");
        eprintln!("{backend:?}: {would_block} WouldBlock; {stats:?}");
        let got = netns::captured_udp_payloads(&cap, Duration::from_millis(1000));
        assert_eq!(got.len(), n, "{backend:?}: datagrams on the wire");
        for (i, g) in got.iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 1000 + i),
                "{backend:?}: datagram {i} on the wire differs (seq {:?}, scribbled {})",
                g.get(..4),
                g.contains(&0xEE)
            );
        }
        assert_eq!(*drops.lock().unwrap(), n, "{backend:?}: an owner leaked");
    }
}

/// Builders too big to allocate: a clear error, not an abort of the
/// process (checked in a re-executed child, so an abort fails only it).
#[test]
#[cfg_attr(miri, ignore = "re-exec")]
fn builders_too_big_to_allocate_are_errors_not_aborts() {
    const TEST: &str = "builders_too_big_to_allocate_are_errors_not_aborts";
    const CHILD: &str = "ZCBUF_ATTACK_BIG_BUILDER_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("re-exec the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the child died ({}):\n{stdout}\n{stderr}",
            out.status
        );
        return;
    }
    for (seg, count) in [
        (65_507usize, 1usize << 20),
        (usize::MAX / 2, 2),
        (1 << 40, 1 << 20),
        (isize::MAX as usize, 1),
    ] {
        match DatagramBatchBuilder::new(seg, count) {
            Ok(b) => assert_eq!(b.capacity(), count, "{seg} x {count}"),
            Err(e) => eprintln!("{seg} x {count}: {e} ({:?})", e.kind()),
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn hostile_config_values_are_refused_or_work_on_both_backends() {
    for backend in BACKENDS {
        let configs = [
            ZeroCopyConfig {
                poll_every: 0,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                auto_window: 0,
                mode: ZeroCopyMode::Auto,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                auto_window: u32::MAX,
                mode: ZeroCopyMode::Auto,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                auto_copied_percent: 255,
                mode: ZeroCopyMode::Auto,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                threshold: usize::MAX,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                drop_timeout: Duration::MAX,
                ..cfg(backend)
            },
            ZeroCopyConfig {
                poll_every: usize::MAX,
                ..cfg(backend)
            },
        ];
        for (k, config) in configs.into_iter().enumerate() {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            big_rcvbuf(&rx);
            rx.set_read_timeout(Some(hang())).unwrap();
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.connect(rx.local_addr().unwrap()).unwrap();
            let r = catch_unwind(AssertUnwindSafe(|| {
                let mut tx = match ZeroCopySender::with_config(sock, config) {
                    Ok(t) => t,
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::InvalidInput, "config {k}: {e}");
                        return 0;
                    }
                };
                let msgs: Vec<Buf> = (0..100u32).map(|i| Buf::from(datagram(i, 5000))).collect();
                let mut sent = 0;
                while sent < msgs.len() {
                    sent += tx.send_each(&msgs[sent..]).unwrap();
                }
                let batch = DatagramBatch::new(Buf::from(datagram(500, 12_000)), 1200).unwrap();
                assert_eq!(tx.send_batch(&batch).unwrap(), 10);
                tx.flush(hang()).unwrap();
                drop(tx);
                110
            }));
            let n = r.unwrap_or_else(|_| panic!("{backend:?}: config {k} panicked"));
            let got = recv_all(&rx, n);
            for (i, g) in got.iter().take(100).enumerate() {
                assert!(
                    g == &datagram(i as u32, 5000),
                    "{backend:?} config {k}: datagram {i}"
                );
            }
            if n > 0 {
                assert_eq!(
                    got[100..].concat(),
                    datagram(500, 12_000),
                    "{backend:?} config {k}: batch"
                );
            }
            assert_nothing_more(&rx);
        }
    }
}

/// Huge wait limits must wait (not wrap to "no wait", an error or a
/// panic): the peer reads only after 500 ms, and no call may give up
/// before.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn huge_wait_limits_wait_for_a_slow_peer_instead_of_giving_up() {
    for limit in [
        Duration::from_millis(i32::MAX as u64 + 1),
        Duration::from_secs(86_400),
        Duration::from_secs(100 * 365 * 86_400),
    ] {
        huge_wait_run(limit);
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn wait_limit_duration_max_waits_for_a_slow_peer_without_panicking() {
    for limit in [Duration::MAX, Duration::from_secs(u64::MAX / 1000 + 1)] {
        huge_wait_run(limit);
    }
}

fn huge_wait_run(limit: Duration) {
    let (a, mut b) = tcp_pair();
    let mut tx = ZeroCopySender::with_config(a, cfg(SendBackend::Syscall)).unwrap();
    tx.set_wait_limit(Some(limit));
    let body: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i * 5 + (i >> 13)) as u8)
        .collect();
    let expect = body.clone();
    let sender = thread::spawn(move || {
        let mut msg = Composite::from(Buf::from(body));
        let mut gave_up = Vec::new();
        let t0 = Instant::now();
        while !msg.is_empty() && t0.elapsed() < Duration::from_secs(60) {
            if let Err(e) = tx.send(&mut msg) {
                gave_up.push(e.kind());
            }
        }
        tx.flush(Duration::from_secs(20)).unwrap();
        (gave_up, msg.is_empty())
    });
    thread::sleep(Duration::from_millis(500));
    let mut got = Vec::new();
    b.read_to_end(&mut got).unwrap();
    let (gave_up, done) = sender
        .join()
        .unwrap_or_else(|_| panic!("{limit:?}: the sending thread panicked (inside the library)"));
    assert!(done, "{limit:?}: never finished");
    assert!(
        gave_up.is_empty(),
        "{limit:?}: gave up instead of waiting: {:?}",
        &gave_up[..gave_up.len().min(5)]
    );
    assert!(got == expect, "{limit:?}: bytes differ");
}

/// `flush(Duration::MAX)` ("wait as long as it takes") after `send_each`
/// on both backends: returns once the pins are back, never panics.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn flush_with_duration_max_after_send_each_does_not_panic() {
    let mut panicked = Vec::new();
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let msgs: Vec<Buf> = (0..10u32).map(|i| Buf::from(datagram(i, 20_000))).collect();
        assert_eq!(tx.send_each(&msgs).unwrap(), 10);
        for (i, g) in recv_all(&rx, 10).iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 20_000),
                "{backend:?}: datagram {i}"
            );
        }
        match catch_unwind(AssertUnwindSafe(|| {
            tx.flush(Duration::MAX).map_err(|e| e.kind())
        })) {
            Ok(r) => assert_eq!(r, Ok(()), "{backend:?}"),
            Err(_) => panicked.push(backend),
        }
    }
    assert!(
        panicked.is_empty(),
        "flush(Duration::MAX) panicked on {panicked:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn gso_batches_to_a_closed_port_neither_panic_hang_nor_leak_pins() {
    for backend in BACKENDS {
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value living across the call.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVERR,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            skip(&format!("{backend:?} sender"));
            continue;
        };
        let batch = DatagramBatch::new(Buf::from(vec![9u8; 1200 * 100]), 1200).unwrap();
        let held = batch.as_buf().clone();
        let r = within(hang(), move || {
            let mut outcomes = Vec::new();
            for _ in 0..20 {
                outcomes.push(tx.send_batch_to(&batch, to).map_err(|e| e.kind()));
                let d = [Composite::from(Buf::from(vec![1u8; 100]))];
                outcomes.push(tx.send_datagrams_to(&d, to).map_err(|e| e.kind()));
                thread::sleep(Duration::from_millis(1));
            }
            let flushed = tx.flush(Duration::from_secs(5)).map_err(|e| e.kind());
            let stats = tx.stats();
            drop(tx);
            (outcomes, flushed, stats)
        });
        let (outcomes, flushed, stats) =
            r.unwrap_or_else(|| panic!("{backend:?}: hung on a refused port"));
        for o in &outcomes {
            if let Err(k) = o {
                assert_eq!(
                    *k,
                    ErrorKind::ConnectionRefused,
                    "{backend:?}: {outcomes:?}"
                );
            }
        }
        assert_eq!(flushed, Ok(()), "{backend:?}: {stats:?}");
        assert!(!stats.desynchronised, "{backend:?}: {stats:?}");
        assert_eq!(
            held.ref_count(),
            Some(1),
            "{backend:?}: a pin outlived the sender"
        );
    }
}

#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn ipv6_send_each_and_gso_batches_arrive_exactly() {
    let Ok(rx) = UdpSocket::bind("[::1]:0") else {
        skip("no IPv6 loopback");
        return;
    };
    big_rcvbuf(&rx);
    rx.set_read_timeout(Some(hang())).unwrap();
    for backend in BACKENDS {
        let sock = UdpSocket::bind("[::1]:0").unwrap();
        sock.connect(rx.local_addr().unwrap()).unwrap();
        let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            skip(&format!("{backend:?} sender"));
            continue;
        };
        let msgs: Vec<Buf> = (0..70u32)
            .map(|i| Buf::from(datagram(i, 1 + i as usize * 900)))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += tx.send_each(&msgs[sent..]).unwrap();
        }
        for (i, g) in recv_all(&rx, 70).iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 1 + i * 900),
                "{backend:?}: datagram {i}"
            );
        }
        let seg = 1452;
        let whole: Vec<u8> = (0..150u32).flat_map(|i| datagram(i, seg)).collect();
        let mut done = 0;
        while done < 150 {
            let b = DatagramBatch::new(Buf::from(whole[done * seg..].to_vec()), seg).unwrap();
            done += tx.send_batch(&b).unwrap();
        }
        for (i, g) in recv_all(&rx, 150).iter().enumerate() {
            assert!(
                g == &datagram(i as u32, seg),
                "{backend:?}: batch datagram {i}"
            );
        }
        // Too big for IPv6 (65527 payload bytes at most): a clear error.
        let e = tx.send_each(&[Buf::from(vec![0u8; 65_528])]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{backend:?}: {e:?}");
        assert_nothing_more(&rx);
    }
}

/// Read-only memory (a `static` in .rodata) as the datagrams: io_uring
/// cannot register it as a fixed buffer for writing; zero-copy reads it
/// fine. Either way every byte must arrive.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn static_read_only_datagrams_arrive_exactly_on_both_backends() {
    static RODATA: [u8; 200_000] = {
        let mut a = [0u8; 200_000];
        let mut i = 0;
        while i < a.len() {
            a[i] = (i * 13 % 251) as u8;
            i += 1;
        }
        a
    };
    for backend in BACKENDS {
        let Some((mut tx, rx)) = udp(backend) else {
            continue;
        };
        let whole = Buf::from_static(&RODATA);
        let ranges: Vec<(usize, usize)> = (0..120)
            .map(|i| ((i * 1531) % 130_000, 1000 + (i * 523) % 60_000))
            .collect();
        let msgs: Vec<Buf> = ranges.iter().map(|&(s, l)| whole.slice(s..s + l)).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            let k = tx.send_each(&msgs[sent..]).unwrap();
            for (j, g) in recv_all(&rx, k).iter().enumerate() {
                let (s, l) = ranges[sent + j];
                assert!(
                    g[..] == RODATA[s..s + l],
                    "{backend:?}: datagram {} differs",
                    sent + j
                );
            }
            sent += k;
        }
        let batch = DatagramBatch::new(whole.slice(..1200 * 100), 1200).unwrap();
        let mut done = 0;
        while done < 100 {
            let b = DatagramBatch::new(batch.as_buf().slice(done * 1200..), 1200).unwrap();
            let k = tx.send_batch(&b).unwrap();
            for (j, g) in recv_all(&rx, k).iter().enumerate() {
                let s = (done + j) * 1200;
                assert!(
                    g[..] == RODATA[s..s + 1200],
                    "{backend:?}: batch datagram {}",
                    done + j
                );
            }
            done += k;
        }
        assert_nothing_more(&rx);
        tx.flush(hang()).unwrap();
        eprintln!("{backend:?}: {:?}", tx.stats());
    }
}

/// Pooled memory is the dangerous owner: released early, a chunk would go
/// straight to the next allocation, which writes over it. Batches built
/// in place in a private pool's chunks go out over a slow veth link; each
/// is dropped at once and the pool's next chunks are filled with 0xEE
/// while the kernel may still be reading the first ones.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_pooled_batches_are_not_recycled_before_their_completion() {
    const TEST: &str = "veth_pooled_batches_are_not_recycled_before_their_completion";
    if !netns::run_inside(TEST) {
        return;
    }
    drop(netns::setup_veth_sink());
    netns::tc("qdisc add dev v0 root tbf rate 10mbit burst 128kb limit 8mb");
    let cap = netns::capture_on_sink();
    let pool = zcbuf::pool::Pool::new(Default::default());
    let seg = 1472;
    for backend in BACKENDS {
        let sock = netns::setup_veth_sink();
        let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            netns::cannot_run(TEST, &format!("no {backend:?} sender"));
            continue;
        };
        let rounds = 20u32;
        let mut expect = Vec::new();
        for r in 0..rounds {
            let mut b = DatagramBatchBuilder::with_pool(&pool, seg, 44).unwrap();
            for i in 0..44u32 {
                let d = datagram(r * 100 + i, seg);
                b.push(&d).unwrap();
                expect.extend_from_slice(&d);
            }
            let batch = b.finish();
            assert_eq!(tx.send_batch(&batch).unwrap(), 44, "{backend:?}");
            drop(batch);
            // The pool's next chunks, scribbled at once.
            let mut s = DatagramBatchBuilder::with_pool(&pool, seg, 44).unwrap();
            for _ in 0..44 {
                s.push_with(seg, |out| {
                    out.fill(0xEE);
                    seg
                })
                .unwrap();
            }
            drop(s.finish());
        }
        let stats = tx.stats();
        drop(tx);
        let got: Vec<u8> = netns::captured_udp_payloads(&cap, Duration::from_millis(2000)).concat();
        assert_eq!(
            got.len(),
            expect.len(),
            "{backend:?}: bytes on the wire ({stats:?})"
        );
        assert!(
            got == expect,
            "{backend:?}: the wire differs (scribbled: {}) {stats:?}",
            got.contains(&0xEE)
        );
    }
}

/// Thousands of sends still pinned at once (a queued link), far more than
/// an io_uring completion queue holds: the notifications overflow it.
/// Every datagram must still leave exactly once, the flush must see every
/// completion, and no owner may go early.
#[test]
#[cfg_attr(miri, ignore = "real sockets and namespaces")]
fn veth_thousands_of_outstanding_notifications_overflow_nothing() {
    const TEST: &str = "veth_thousands_of_outstanding_notifications_overflow_nothing";
    if !netns::run_inside(TEST) {
        return;
    }
    drop(netns::setup_veth_sink());
    netns::tc("qdisc add dev v0 root tbf rate 100mbit burst 128kb limit 64mb");
    let cap = netns::capture_on_sink();
    for backend in BACKENDS {
        let sock = netns::setup_veth_sink();
        let big: libc::c_int = 64 << 20;
        // SAFETY: a valid socket and a c_int option value living across the call.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUFFORCE,
                (&big as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let Ok(mut tx) = ZeroCopySender::with_config(sock, cfg(backend)) else {
            netns::cannot_run(TEST, &format!("no {backend:?} sender"));
            continue;
        };
        let drops = Arc::new(Mutex::new(0usize));
        let n = 4000usize;
        let msgs: Vec<Buf> = (0..n)
            .map(|i| {
                Buf::from_owner(Scribbler {
                    bytes: datagram(i as u32, 600 + i % 700),
                    drops: drops.clone(),
                })
            })
            .collect();
        let mut sent = 0;
        while sent < n {
            sent += tx.send_each(&msgs[sent..]).unwrap();
        }
        drop(msgs);
        let peak = tx.stats().pinned_sends;
        let flushed = tx.flush(hang()).map_err(|e| e.kind());
        let stats = tx.stats();
        drop(tx);
        eprintln!("{backend:?}: pinned at most {peak} at once; {stats:?}");
        assert_eq!(flushed, Ok(()), "{backend:?}: {stats:?}");
        assert!(!stats.desynchronised, "{backend:?}: {stats:?}");
        let got = netns::captured_udp_payloads(&cap, Duration::from_millis(1000));
        assert_eq!(got.len(), n, "{backend:?}: datagrams on the wire");
        for (i, g) in got.iter().enumerate() {
            assert!(
                g == &datagram(i as u32, 600 + i % 700),
                "{backend:?}: datagram {i} differs (scribbled {})",
                g.contains(&0xEE)
            );
        }
        assert_eq!(*drops.lock().unwrap(), n, "{backend:?}: an owner leaked");
    }
}

/// One owner per socket: with an io_uring sender on it, another
/// zero-copy sender of either backend is refused with `EBUSY`, and a
/// `Never` (plain) sender beside it does not disturb its bytes.
#[test]
#[cfg_attr(miri, ignore = "real sockets")]
fn a_second_zero_copy_sender_beside_io_uring_is_ebusy_and_a_plain_one_coexists() {
    let Some((mut ur, rx)) = udp(SendBackend::IoUring) else {
        return;
    };
    for backend in BACKENDS {
        let e = ZeroCopySender::with_config(ur.get_ref(), cfg(backend))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY), "{backend:?}: {e:?}");
    }
    let plain_cfg = ZeroCopyConfig {
        mode: ZeroCopyMode::Never,
        backend: SendBackend::Syscall,
        ..ZeroCopyConfig::default()
    };
    let sock2 = ur.get_ref().try_clone().unwrap();
    let plain = thread::spawn(move || {
        let mut plain = ZeroCopySender::with_config(sock2, plain_cfg).unwrap();
        let msgs: Vec<Buf> = (1000..1200u32)
            .map(|i| Buf::from(datagram(i, 3000)))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += plain.send_each(&msgs[sent..]).unwrap();
        }
    });
    let msgs: Vec<Buf> = (0..200u32).map(|i| Buf::from(datagram(i, 3000))).collect();
    let mut sent = 0;
    while sent < msgs.len() {
        sent += ur.send_each(&msgs[sent..]).unwrap();
    }
    plain.join().unwrap();
    ur.flush(hang()).unwrap();
    let got = recv_all(&rx, 400);
    let mut seen = std::collections::BTreeMap::new();
    let (mut last_ur, mut last_plain) = (None, None);
    for g in &got {
        let seq = u32::from_be_bytes(g[..4].try_into().unwrap());
        assert!(g == &datagram(seq, 3000), "datagram {seq} differs");
        *seen.entry(seq).or_insert(0) += 1;
        let last = if seq < 1000 {
            &mut last_ur
        } else {
            &mut last_plain
        };
        assert!(
            last.is_none_or(|l| l < seq),
            "datagram {seq} out of its sender's order"
        );
        *last = Some(seq);
    }
    assert_eq!(seen.len(), 400, "lost datagrams");
    assert!(seen.values().all(|&c| c == 1), "duplicated datagrams");
    assert_nothing_more(&rx);
}
