//! Gather writes through real sockets and files, checked byte for byte.

#[path = "support/sockets.rs"]
mod sockets;

use std::io::{ErrorKind, Read, Seek, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use sockets::{pair, reset_on_close};
use zcbuf::io::{write_all, write_bufs_all, GatherWriter, IOV_MAX};
use zcbuf::{Buf, Composite};

/// A deterministic byte pattern, different for every (seed, index).
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Components of many sizes, some empty, some slices of one shared buffer.
fn many_components(count: usize) -> (Composite, Vec<u8>) {
    let shared = Buf::from(pattern(999, 100_000));
    let mut c = Composite::new();
    let mut expect = Vec::new();
    for i in 0..count {
        let buf = match i % 4 {
            0 => Buf::from(pattern(i as u32, 1 + i % 97)),
            1 => Buf::new(),
            2 => shared.slice(i % 1000..i % 1000 + 1 + i % 300),
            _ => Buf::from_static(b"static-part"),
        };
        expect.extend_from_slice(&buf);
        c.push(buf);
    }
    (c, expect)
}

fn set_sndbuf(s: &TcpStream, bytes: libc::c_int) {
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &bytes as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

#[test]
fn tcp_composite_of_more_than_iov_max_components() {
    let (a, mut b) = pair();
    let (msg, expect) = many_components(3 * IOV_MAX + 17);
    assert!(msg.component_count() > IOV_MAX);
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    let mut w = GatherWriter::new(msg.clone());
    w.write_all(&a).unwrap();
    drop(a);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect, "bytes differ");
    assert_eq!(w.written(), expect.len() as u64);
    // 3/4 of the components are non-empty: at least that many / IOV_MAX calls.
    assert!(w.calls() >= 3, "calls {}", w.calls());
    assert!(w.iovecs() / w.calls() <= IOV_MAX as u64);
    // The writer holds only views: the caller's composite is untouched.
    assert_eq!(msg.to_vec(), expect);
}

#[test]
fn nonblocking_sender_against_slow_reader_loses_and_duplicates_nothing() {
    let (a, mut b) = pair();
    set_sndbuf(&a, 4096);
    a.set_nonblocking(true).unwrap();
    let mut msg = Composite::new();
    let mut expect = Vec::new();
    for i in 0..600 {
        let part = pattern(i, 1000 + (i as usize * 37) % 3000);
        expect.extend_from_slice(&part);
        msg.push(Buf::from(part));
    }
    let total = expect.len();
    let reader = thread::spawn(move || {
        let mut got = Vec::with_capacity(total);
        let mut buf = [0u8; 1500];
        loop {
            let n = b.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() % 7 == 0 || got.len() < 200_000 {
                thread::sleep(Duration::from_micros(200));
            }
        }
        got
    });
    let mut w = GatherWriter::new(msg);
    let (mut would_block, mut partial) = (0u64, 0u64);
    while !w.is_done() {
        let before = w.remaining();
        match w.write_once(&a) {
            Ok(n) => {
                assert!(n > 0);
                assert_eq!(w.remaining(), before - n);
                if n < before {
                    partial += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert_eq!(w.remaining(), before, "EAGAIN moved the position");
                would_block += 1;
                thread::sleep(Duration::from_micros(100));
            }
            Err(e) => panic!("{e}"),
        }
    }
    drop(a);
    let got = reader.join().unwrap();
    assert!(
        got == expect,
        "bytes differ (got {} of {})",
        got.len(),
        total
    );
    assert!(partial >= 10, "only {partial} partial writes");
    assert!(would_block >= 1, "never saw EAGAIN");
}

#[test]
fn peer_reset_mid_send_is_a_clear_error_and_position_is_kept() {
    let (a, b) = pair();
    set_sndbuf(&a, 4096);
    reset_on_close(&b);
    let big = Buf::from(vec![7u8; 8 << 20]);
    let msg: Composite = (0..8).map(|i| big.slice(i << 20..(i + 1) << 20)).collect();
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(b); // linger 0: RST
    });
    let mut w = GatherWriter::new(msg);
    let err = w.write_all(&a).unwrap_err();
    closer.join().unwrap();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "unexpected error {err:?}"
    );
    assert_eq!(w.written() as usize + w.remaining(), 8 << 20);
    assert!(w.remaining() > 0);
}

#[test]
fn bufs_to_a_file_use_writev() {
    let path = std::env::temp_dir().join(format!("zcbuf-io-gather-{}", std::process::id()));
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let bufs: Vec<Buf> = (0..2500)
        .map(|i| Buf::from(pattern(i, 5 + i as usize % 11)))
        .collect();
    let expect: Vec<u8> = bufs.iter().flat_map(|b| b.to_vec()).collect();
    let calls = write_bufs_all(&file, &bufs).unwrap();
    assert!(calls >= 3);
    file.rewind().unwrap();
    let mut got = Vec::new();
    file.read_to_end(&mut got).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(got == expect);
}

#[test]
fn connected_udp_gets_one_datagram_from_a_composite() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let msg: Composite = [
        Buf::from_static(b"hdr|"),
        Buf::from(pattern(1, 3000)),
        Buf::from_static(b"|end"),
    ]
    .into_iter()
    .collect();
    assert_eq!(write_all(&tx, &msg).unwrap(), 1);
    let mut got = vec![0u8; 8192];
    let n = rx.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &msg.to_vec()[..]);
}

#[test]
fn empty_writer_makes_no_call() {
    let (a, _b) = pair();
    let mut w = GatherWriter::new(Composite::new());
    assert_eq!(w.write_once(&a).unwrap(), 0);
    w.write_all(&a).unwrap();
    assert_eq!(w.calls(), 0);
    let _ = (&a).flush();
}

#[test]
fn borrowed_write_all_resumes_exactly_across_partial_writes() {
    // A small receive window too, so the kernel cannot absorb it all.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &4096 as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    set_sndbuf(&a, 4096);
    a.set_nonblocking(true).unwrap();
    let (msg, expect) = many_components(5 * IOV_MAX);
    let total = expect.len();
    let reader = thread::spawn(move || {
        let mut got = Vec::with_capacity(total);
        let mut buf = [0u8; 777];
        loop {
            let n = b.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            thread::sleep(Duration::from_micros(50));
        }
    });
    let calls = write_all(&a, &msg).unwrap();
    drop(a);
    let got = reader.join().unwrap();
    assert!(got == expect, "bytes differ (got {} of {total})", got.len());
    // Small buffers on both ends cannot take ~270 KB in a handful of calls.
    assert!(calls > 10, "only {calls} calls");
    let bufs: Vec<Buf> = msg.components().cloned().collect();
    let (a, b) = pair();
    let reader = thread::spawn(move || {
        let mut b = b;
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    write_bufs_all(&a, &bufs).unwrap();
    drop(a);
    assert!(reader.join().unwrap() == expect);
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

#[test]
fn signals_interrupting_a_blocked_write_lose_nothing() {
    // A handler without SA_RESTART: a blocked sendmsg returns EINTR (or a
    // short count), which the writer must retry or resume exactly.
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask is
    // valid; the handler does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let (a, mut b) = pair();
    set_sndbuf(&a, 4096);
    let mut msg = Composite::new();
    let mut expect = Vec::new();
    for i in 0..300 {
        let part = pattern(1000 + i, 2000 + i as usize);
        expect.extend_from_slice(&part);
        msg.push(Buf::from(part));
    }
    let total = expect.len();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_done = std::sync::Arc::clone(&done);
    let writer = thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
        let mut w = GatherWriter::new(msg);
        w.write_all(&a).unwrap();
        writer_done.store(true, std::sync::atomic::Ordering::SeqCst);
        w.calls()
    });
    let tid = tid_rx.recv().unwrap();
    let mut got = Vec::with_capacity(total);
    let mut buf = [0u8; 512];
    let mut signals = 0;
    while got.len() < total {
        if !done.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: the writer thread is alive until `done` is set, and
            // SIGUSR1 has a handler.
            unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
            signals += 1;
        }
        let n = b.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        thread::sleep(Duration::from_micros(100));
    }
    let calls = writer.join().unwrap();
    assert!(got == expect, "bytes differ");
    assert!(signals > 10, "only {signals} signals sent");
    assert!(calls > 1);
}

/// 3,000 bytes in 1,500 two-byte components: more than IOV_MAX pieces.
fn many_small_pieces() -> (Composite, Vec<u8>) {
    let bytes = pattern(21, 3000);
    let msg: Composite = bytes.chunks(2).map(|c| Buf::from(c.to_vec())).collect();
    assert!(msg.component_count() > IOV_MAX);
    (msg, bytes)
}

fn recv_one(rx: &UdpSocket) -> Vec<u8> {
    let mut got = vec![0u8; 8192];
    let n = rx.recv(&mut got).unwrap();
    got.truncate(n);
    got
}

#[test]
fn a_datagram_of_more_than_iov_max_pieces_is_never_split() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let (msg, bytes) = many_small_pieces();

    assert_eq!(write_all(&tx, &msg).unwrap(), 1);
    assert!(recv_one(&rx) == bytes, "io::write_all split the datagram");

    let mut w = GatherWriter::new(msg.clone());
    w.write_all(&tx).unwrap();
    assert_eq!(w.calls(), 1);
    assert!(
        recv_one(&rx) == bytes,
        "GatherWriter::write_all split the datagram"
    );

    let parts: Vec<Buf> = msg.components().cloned().collect();
    assert_eq!(write_bufs_all(&tx, &parts).unwrap(), 1);
    assert!(recv_one(&rx) == bytes, "write_bufs_all split the datagram");

    // Too large for one datagram even whole: EMSGSIZE, nothing sent.
    let big: Composite = (0..1500).map(|_| Buf::from(vec![1u8; 50])).collect();
    let err = write_all(&tx, &big).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE));
    let err = GatherWriter::new(big).write_all(&tx).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE));
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert!(rx.recv(&mut buf).is_err(), "no fragment of it arrived");
}
