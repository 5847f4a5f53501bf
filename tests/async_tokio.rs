//! The tokio front end (feature `tokio`): real bytes through real sockets,
//! checked byte for byte; futures dropped at random await points thousands
//! of times without a byte lost, repeated or released early.

#[path = "support/netns.rs"]
mod netns;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use zcbuf::io::recv::frame_header;
use zcbuf::io::tokio::{AsyncFrameReader, AsyncZeroCopySender};
use zcbuf::io::{Frame, FrameDecoder, HeapChunks, ZeroCopyConfig, ZeroCopyMode};
use zcbuf::{Buf, Composite};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn always() -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        threshold: 0,
        ..ZeroCopyConfig::default()
    }
}

/// xorshift64*: reproducible randomness without a crate; the seed is
/// printed so a failure can be replayed with `ZCBUF_SEED`.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Self {
        let seed = std::env::var("ZCBUF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{test}: ZCBUF_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The byte at stream position `pos`: any loss, repeat or reordering
/// shows at the first wrong position.
fn stream_byte(pos: u64) -> u8 {
    (pos % 251) as u8 ^ (pos >> 13) as u8
}

/// An owner that overwrites its bytes with 0xEE when dropped: a release
/// before the kernel is done shows up as 0xEE on the wire.
struct Scribbler(Vec<u8>);

impl AsRef<[u8]> for Scribbler {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Scribbler {
    fn drop(&mut self) {
        self.0.fill(0xEE);
    }
}

fn set_int(fd: &impl AsRawFd, level: i32, opt: i32, v: i32) {
    // SAFETY: a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&v as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// CPU time (user + system) this thread used so far (the test runs its
/// runtime on its own thread).
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A connected pair: the client (non-blocking, for tokio) with a send
/// buffer of `sndbuf`, and the accepted end as a std stream. The receive
/// buffer stays large: on loopback (MSS up to 64 KiB) a receive window
/// below one MSS makes TCP crawl on zero-window probes, which would test
/// TCP, not the sender.
fn tcp_pair(sndbuf: i32) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    set_int(&l, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20);
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    set_int(&c, libc::SOL_SOCKET, libc::SO_SNDBUF, sndbuf);
    (c, s)
}

/// A message of 1..=`max_pieces` pieces (some scribbling owners, some
/// slices of one shared buffer) carrying the stream bytes from `pos`.
fn message(rng: &mut Rng, pos: &mut u64, max_pieces: u64, max_piece: u64) -> Composite {
    let mut msg = Composite::new();
    for _ in 0..=rng.below(max_pieces) {
        let len = 1 + rng.below(max_piece) as usize;
        let bytes: Vec<u8> = (0..len as u64).map(|i| stream_byte(*pos + i)).collect();
        *pos += len as u64;
        if rng.below(2) == 0 {
            msg.push(Buf::from_owner(Scribbler(bytes)));
        } else {
            let mut padded = vec![0u8; 7];
            padded.extend_from_slice(&bytes);
            msg.push(Buf::from(padded).slice(7..7 + len));
        }
    }
    msg
}

/// A reader of the whole stream that checks every byte as it comes, in
/// random-sized reads with random pauses; returns the bytes read.
fn checking_reader(mut s: TcpStream, seed: u64) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut rng = Rng(seed | 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut pos = 0u64;
        loop {
            let want = 1 + rng.below(buf.len() as u64) as usize;
            let n = s.read(&mut buf[..want]).unwrap();
            if n == 0 {
                return pos;
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                let at = pos + i as u64;
                assert_eq!(
                    b,
                    stream_byte(at),
                    "wrong byte at stream position {at} (0xEE: released early)"
                );
            }
            pos += n as u64;
            if rng.below(16) == 0 {
                thread::sleep(Duration::from_micros(rng.below(500)));
            }
        }
    })
}

#[test]
fn tcp_sends_cancelled_at_random_points_lose_and_repeat_nothing() {
    let mut rng = Rng::new("tcp_sends_cancelled_at_random_points_lose_and_repeat_nothing");
    let (client, server) = tcp_pair(64 * 1024);
    let reader = checking_reader(server, rng.next());
    let rt = rt();
    let (sent, cancelled, zc) = rt.block_on(async {
        let mut tx = AsyncZeroCopySender::with_config(
            tokio::net::TcpStream::from_std(client).unwrap(),
            always(),
        )
        .unwrap();
        let mut pos = 0u64;
        let mut cancelled = 0u32;
        let mut attempts = 0u32;
        while cancelled < 3000 {
            attempts += 1;
            assert!(attempts < 200_000, "too few cancellations happened");
            // Up to IOV_MAX + 1 pieces now and then, to cross a batch.
            let max_pieces = if rng.below(64) == 0 { 1100 } else { 16 };
            let max_piece = if max_pieces > 16 { 20 } else { 3000 };
            let msg = message(&mut rng, &mut pos, max_pieces, max_piece);
            let dropped = match rng.below(4) {
                0 => {
                    let t = Duration::from_micros(rng.below(300));
                    tokio::time::timeout(t, tx.send(&msg)).await.is_err()
                }
                1 => {
                    tokio::select! {
                        r = tx.send(&msg) => { r.unwrap(); false }
                        _ = tokio::task::yield_now() => true,
                    }
                }
                2 => {
                    tx.queue(&msg);
                    let t = Duration::from_micros(rng.below(300));
                    tokio::time::timeout(t, tx.flush(Duration::from_secs(30)))
                        .await
                        .is_err()
                }
                _ => {
                    // A send future made and dropped before its first poll:
                    // the message was accepted all the same.
                    drop(tx.send(&msg));
                    tokio::select! {
                        biased;
                        r = tx.drain() => { r.unwrap(); false }
                        _ = tokio::task::yield_now() => true,
                    }
                }
            };
            cancelled += u32::from(dropped);
        }
        if let Err(e) = tx.flush(Duration::from_secs(30)).await {
            let port = tx.get_ref().local_addr().unwrap().port();
            let ss = std::process::Command::new("ss")
                .args(["-tnmie"])
                .output()
                .unwrap();
            let ss = String::from_utf8_lossy(&ss.stdout).to_string();
            let mine: Vec<&str> = ss
                .lines()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0].contains(&format!(":{port}")))
                .flat_map(|w| w.to_vec())
                .collect();
            panic!(
                "{e}: stats {:?}\nreader finished: {}\n{}",
                tx.stats(),
                reader.is_finished(),
                mine.join("\n")
            );
        }
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(tx.pending(), 0, "every pin released after flush");
        let zc = tx.stats().zerocopy_sends;
        tx.shutdown().await.unwrap();
        (pos, cancelled, zc)
    });
    let got = reader.join().unwrap();
    eprintln!("TCP: {cancelled} cancellations, {sent} bytes, {zc} zero-copy sends");
    assert_eq!(got, sent, "the receiver got exactly the bytes sent");
    assert!(zc > 0, "zero-copy sends were made (and pinned)");
}

#[test]
fn a_sender_waiting_for_room_after_completions_does_not_spin() {
    let (client, mut server) = tcp_pair(256 * 1024);
    let rt = rt();
    rt.block_on(async {
        let mut tx = AsyncZeroCopySender::with_config(
            tokio::net::TcpStream::from_std(client).unwrap(),
            always(),
        )
        .unwrap();
        let body = Buf::from(vec![5u8; 64 * 1024]);
        // Completions come (EPOLLERR on the socket) while the peer reads.
        let mut got = vec![0u8; 64 * 1024];
        let reader = thread::spawn(move || {
            server.read_exact(&mut got).unwrap();
            server
        });
        tx.send(&Composite::from(body.clone())).await.unwrap();
        tx.flush(Duration::from_secs(10)).await.unwrap();
        assert!(tx.stats().completions > 0);
        let mut server = reader.join().unwrap();
        // Now the peer stops reading: the sender waits for room.
        let big = Buf::from(vec![6u8; 32 << 20]);
        let cpu = cpu_time();
        let wall = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_millis(500),
            tx.send(&Composite::from(big.clone())),
        )
        .await;
        assert!(r.is_err(), "the peer does not read: the send must wait");
        let used = cpu_time() - cpu;
        assert!(wall.elapsed() >= Duration::from_millis(500));
        assert!(
            used < Duration::from_millis(150),
            "waited 500 ms using {used:?} of CPU: a busy loop"
        );
        // Pins are held while the kernel may read: flush times out.
        let e = tx.flush(Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(tx.pending() > 0);
        assert!(big.ref_count().unwrap() > 1, "the pinned bytes are held");
        let queued = tx.queued_bytes();
        assert!(queued > 0 && queued < 32 << 20);
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            server.read_to_end(&mut all).unwrap();
            all
        });
        tx.flush(Duration::from_secs(30)).await.unwrap();
        assert_eq!(tx.pending(), 0);
        assert_eq!(big.ref_count(), Some(1), "released once completed");
        tx.shutdown().await.unwrap();
        let all = reader.join().unwrap();
        assert_eq!(all.len(), 32 << 20);
        assert!(all.iter().all(|&b| b == 6));
    });
}

#[test]
fn async_write_writes_and_shutdown_ends_the_stream() {
    let (client, server) = tcp_pair(64 * 1024);
    let rt = rt();
    let reader = thread::spawn(move || {
        let mut s = server;
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    rt.block_on(async {
        let mut tx =
            AsyncZeroCopySender::new(tokio::net::TcpStream::from_std(client).unwrap()).unwrap();
        tx.queue(&Composite::from(Buf::from_static(b"queued first, ")));
        tx.write_all(b"then written").await.unwrap();
        tx.flush_pins_and_shutdown().await;
        let e = tx.write_all(b"late").await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    });
    assert_eq!(reader.join().unwrap(), b"queued first, then written");
}

trait ShutdownExt {
    async fn flush_pins_and_shutdown(&mut self);
}

impl<S: std::os::fd::AsFd + Unpin> ShutdownExt for AsyncZeroCopySender<S> {
    async fn flush_pins_and_shutdown(&mut self) {
        AsyncWriteExt::flush(self).await.unwrap();
        self.shutdown().await.unwrap();
    }
}

#[test]
fn a_blocking_std_socket_is_made_non_blocking_and_works() {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(rx.local_addr().unwrap()).unwrap();
    rt().block_on(async {
        let mut tx = AsyncZeroCopySender::new(sock).unwrap();
        // More than IOV_MAX pieces: still one datagram.
        let msg: Composite = (0..1500).map(|_| Buf::from_static(b"ab")).collect();
        tx.send(&msg).await.unwrap();
    });
    let mut got = vec![0u8; 8192];
    let n = rx.recv(&mut got).unwrap();
    assert_eq!(n, 3000, "one whole datagram");
    assert!(got[..n].chunks(2).all(|c| c == b"ab"));
}

#[test]
fn a_sender_outside_a_runtime_is_an_error_not_a_panic() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = AsyncZeroCopySender::new(sock).unwrap_err();
    assert!(e.to_string().contains("tokio runtime"), "{e}");
}

#[test]
fn frames_from_a_tcp_stream_are_views_of_chunks() {
    let rt = rt();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = l.accept().await.unwrap();
        let sizes: Vec<usize> = (0..300).map(|i| (i * 7919) % 5000).collect();
        let expect: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let to_send = expect.clone();
        let writer = tokio::spawn(async move {
            for f in &to_send {
                c.write_all(&frame_header(f.len() as u32)).await.unwrap();
                // In two writes, so frames straddle reads and chunks.
                let half = f.len() / 2;
                c.write_all(&f[..half]).await.unwrap();
                tokio::task::yield_now().await;
                c.write_all(&f[half..]).await.unwrap();
            }
        });
        let dec = FrameDecoder::with_source(HeapChunks::new(4096));
        let mut frames = AsyncFrameReader::with_decoder(s, dec);
        let mut spanning = 0;
        for want in &expect {
            let f = frames.next_frame().await.unwrap().expect("a frame");
            spanning += usize::from(matches!(f, Frame::Spanning(_)));
            assert_eq!(&f.to_vec(), want);
        }
        writer.await.unwrap();
        assert!(frames.next_frame().await.unwrap().is_none());
        assert!(
            spanning > 0,
            "frames across 4 KiB chunks came as composites"
        );
        assert!(frames.decoder().chunks_used() > 1);
    });
}

#[test]
fn frame_reads_cancelled_at_random_points_lose_nothing() {
    let mut rng = Rng::new("frame_reads_cancelled_at_random_points_lose_nothing");
    let rt = rt();
    rt.block_on(async {
        let (mut a, b) = tokio::io::duplex(1024);
        let count = 2000u32;
        let writer = tokio::spawn(async move {
            for i in 0..count {
                let len = (i * 37 % 3000) as usize;
                a.write_all(&frame_header(len as u32)).await.unwrap();
                let body: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
                a.write_all(&body).await.unwrap();
            }
        });
        let mut frames = AsyncFrameReader::new(b);
        let mut i = 0u32;
        let mut cancelled = 0u32;
        while i < count {
            let got = if rng.below(2) == 0 {
                tokio::select! {
                    f = frames.next_frame() => Some(f),
                    _ = tokio::task::yield_now() => None,
                }
            } else {
                Some(frames.next_frame().await)
            };
            let Some(f) = got else {
                cancelled += 1;
                continue;
            };
            let f = f.unwrap().expect("a frame");
            let len = (i * 37 % 3000) as usize;
            let want: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
            assert_eq!(f.to_vec(), want, "frame {i}");
            i += 1;
        }
        writer.await.unwrap();
        assert!(frames.next_frame().await.unwrap().is_none());
        assert!(cancelled > 100, "only {cancelled} cancellations");
        eprintln!("frames: {cancelled} cancelled reads");
    });
}

/// The bytes of datagram `seq`: an 8-byte sequence number, then a
/// pattern of the sequence number.
fn datagram(seq: u64, len: usize) -> Vec<u8> {
    let mut d = seq.to_be_bytes().to_vec();
    d.extend((0..len as u64).map(|i| stream_byte(seq * 65_537 + i)));
    d
}

#[test]
fn udp_sends_cancelled_at_random_points_in_the_namespace() {
    if !netns::run_inside("udp_sends_cancelled_at_random_points_in_the_namespace") {
        return;
    }
    let mut rng = Rng::new("udp_sends_cancelled_at_random_points_in_the_namespace");
    let sock = netns::setup_veth_sink();
    // A rate-limited queue keeps datagrams (and so their pins) in the
    // kernel for a while and fills the send buffer: the sender waits for
    // room, and releases by completion only. Its limit is far above the
    // send buffer, so nothing is dropped.
    netns::tc("qdisc add dev v0 root tbf rate 200mbit burst 64k limit 16m");
    set_int(&sock, libc::SOL_SOCKET, libc::SO_SNDBUF, 64 * 1024);
    let cap = netns::capture_on_sink();
    let mut expect = Vec::new();
    let rt = rt();
    let (cancelled, stats) = rt.block_on(async {
        let mut tx = AsyncZeroCopySender::with_config(sock, always()).unwrap();
        let mut cancelled = 0u32;
        let mut seq = 0u64;
        while cancelled < 2000 {
            assert!(seq < 100_000, "too few cancellations happened");
            let len = 1 + rng.below(16_000) as usize;
            let bytes = datagram(seq, len);
            // Pieces: scribbling owners, some page-sized and larger.
            let mut msg = Composite::new();
            let mut at = 0;
            while at < bytes.len() {
                let n = (1 + rng.below(8_000) as usize).min(bytes.len() - at);
                msg.push(Buf::from_owner(Scribbler(bytes[at..at + n].to_vec())));
                at += n;
            }
            expect.push(bytes);
            seq += 1;
            let dropped = match rng.below(3) {
                0 => {
                    let t = Duration::from_micros(rng.below(200));
                    tokio::time::timeout(t, tx.send(&msg)).await.is_err()
                }
                1 => {
                    tokio::select! {
                        r = tx.send(&msg) => { r.unwrap(); false }
                        _ = tokio::task::yield_now() => true,
                    }
                }
                _ => {
                    tx.queue(&msg);
                    tokio::select! {
                        r = tx.flush(Duration::from_secs(30)) => { r.unwrap(); false }
                        _ = tokio::task::yield_now() => true,
                    }
                }
            };
            cancelled += u32::from(dropped);
        }
        tx.flush(Duration::from_secs(30)).await.unwrap();
        assert_eq!(tx.pending(), 0);
        (cancelled, tx.stats())
    });
    let got = netns::captured_udp_payloads(&cap, Duration::from_millis(300));
    eprintln!(
        "UDP: {cancelled} cancellations, {} datagrams, {} zero-copy sends, {} copied completions",
        expect.len(),
        stats.zerocopy_sends,
        stats.copied_completions
    );
    assert_eq!(got.len(), expect.len(), "every datagram exactly once");
    for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
        assert!(
            g == e,
            "datagram {i} differs on the wire (0xEE: released early)"
        );
    }
    // (The capture on the sink makes the kernel copy there, after the
    // queue: completions say COPIED, but only once the datagram left the
    // queue, so every pin was held while the kernel could still read it.)
    assert!(stats.zerocopy_sends > 0);
    assert_eq!(stats.completions, stats.zerocopy_sends);
}

#[test]
fn flush_after_the_peer_resets_resolves_without_spinning() {
    let (client, server) = tcp_pair(8 << 20);
    rt().block_on(async {
        let mut tx = AsyncZeroCopySender::with_config(
            tokio::net::TcpStream::from_std(client).unwrap(),
            always(),
        )
        .unwrap();
        let body = Buf::from(vec![9u8; 4 << 20]);
        // All of it fits in the kernel's buffers; the peer reads nothing,
        // so what it could not take stays pinned in our send queue.
        tokio::time::timeout(
            Duration::from_secs(10),
            tx.send(&Composite::from(body.clone())),
        )
        .await
        .expect("4 MiB fit in the socket buffers")
        .unwrap();
        tx.poll_completions().unwrap();
        assert!(tx.pending() > 0, "the peer read nothing: pins are held");
        // The peer goes away with unread data: a reset, the send queue is
        // purged and the kernel reports the purged sends complete.
        set_linger_zero(&server);
        drop(server);
        let cpu = cpu_time();
        tx.flush(Duration::from_secs(10)).await.unwrap();
        assert_eq!(tx.pending(), 0);
        assert_eq!(
            body.ref_count(),
            Some(1),
            "every pin released by completion"
        );
        assert!(
            cpu_time() - cpu < Duration::from_millis(200),
            "a flush on a reset socket spun"
        );
    });
}

fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a linger value living across the call.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

#[test]
fn an_async_and_a_blocking_sender_on_one_socket_share_one_engine() {
    let (client, mut server) = tcp_pair(1 << 20);
    let dup = client.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        server.read_to_end(&mut all).unwrap();
        all
    });
    rt().block_on(async {
        let mut blocking = zcbuf::io::ZeroCopySender::with_config(&dup, always()).unwrap();
        let mut tx = AsyncZeroCopySender::with_config(
            tokio::net::TcpStream::from_std(client).unwrap(),
            always(),
        )
        .unwrap();
        assert_eq!(tx.stats().socket_users, 2, "one engine, two users");
        let a = Buf::from(vec![1u8; 100_000]);
        let b = Buf::from(vec![2u8; 100_000]);
        tx.send(&Composite::from(a.clone())).await.unwrap();
        blocking.send_all(Composite::from(b.clone())).unwrap();
        tx.send(&Composite::from(a.clone())).await.unwrap();
        // The async sender's flush waits for the blocking one's pins too:
        // one window of ids for the socket.
        tx.flush(Duration::from_secs(10)).await.unwrap();
        assert_eq!(blocking.pending(), 0);
        assert_eq!(a.ref_count(), Some(1));
        assert_eq!(b.ref_count(), Some(1));
        assert!(tx.stats().unknown_completions == 0 && !tx.stats().desynchronised);
        drop(blocking);
        tx.shutdown().await.unwrap();
    });
    drop(dup);
    let all = reader.join().unwrap();
    assert_eq!(all.len(), 300_000);
    assert!(all[..100_000].iter().all(|&x| x == 1));
    assert!(all[100_000..200_000].iter().all(|&x| x == 2));
    assert!(all[200_000..].iter().all(|&x| x == 1));
}
