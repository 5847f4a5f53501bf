//! UDP through the veth sink (a private network namespace, DESIGN.md):
//! `MSG_ZEROCOPY` against a plain send, and `Auto`, at 4, 16 and 64 KiB;
//! then `Auto` against `Never` over loopback TCP for pieces of 1 B to
//! 1 MiB and receive buffers of 4 KiB to the default (the shapes where
//! `Auto` once crawled).
//! The bench re-executes itself under `unshare -n`; where it cannot, it
//! says so and measures nothing. Prints the ratios after criterion's
//! output.

#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "support/summary.rs"]
mod summary;
#[path = "support/uring_rows.rs"]
mod uring_rows;

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use zcbuf::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

/// Datagram sizes: 4 KiB, 16 KiB and "64 KiB" (the largest UDP payload
/// over IPv4 is 65507 bytes).
const SIZES: [(usize, &str); 3] = [(4096, "4KiB"), (16384, "16KiB"), (65000, "64KiB")];

struct Senders {
    plain: UdpSocket,
    zc: ZeroCopySender<UdpSocket>,
    auto: ZeroCopySender<UdpSocket>,
}

fn senders() -> Senders {
    let always = ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        threshold: 0,
        ..ZeroCopyConfig::default()
    };
    Senders {
        plain: netns::setup_veth_sink(),
        zc: ZeroCopySender::with_config(netns::setup_veth_sink(), always).unwrap(),
        auto: ZeroCopySender::new(netns::setup_veth_sink()).unwrap(),
    }
}

fn udp(c: &mut Criterion, s: &mut Senders) {
    for (size, name) in SIZES {
        let payload = Buf::from(vec![0x5a; size]);
        let mut g = c.benchmark_group(format!("udp_veth_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter("plain"), |b| {
            b.iter(|| s.plain.send(&payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("zerocopy"), |b| {
            b.iter(|| s.zc.send_buf(&payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("auto"), |b| {
            b.iter(|| s.auto.send_buf(&payload).unwrap())
        });
        g.finish();
    }
}

fn interleaved_summary(s: &mut Senders) {
    println!("\n== io_zerocopy: UDP via the veth sink, interleaved side-by-side ratios (a's throughput / b's) ==");
    let burst = Duration::from_millis(50);
    for (size, name) in SIZES {
        let payload = Buf::from(vec![0x5a; size]);
        let plain = &s.plain;
        let zc = &mut s.zc;
        summary::interleaved(
            &format!("udp {name}: MSG_ZEROCOPY vs plain"),
            if size == 65000 { ">= 1.7x" } else { "(none)" },
            10,
            burst,
            &mut || {
                zc.send_buf(&payload).unwrap();
            },
            &mut || {
                plain.send(&payload).unwrap();
            },
        );
        let auto = &mut s.auto;
        summary::interleaved(
            &format!("udp {name}: Auto vs plain"),
            ">= 0.95x",
            10,
            burst,
            &mut || {
                auto.send_buf(&payload).unwrap();
            },
            &mut || {
                plain.send(&payload).unwrap();
            },
        );
    }
    // The same at 64 KiB with cold payloads: a ring of distinct buffers
    // four times the size of the last-level cache, as a server sending
    // different data each time sees it.
    let ring: Vec<Buf> = (0..2048).map(|i| Buf::from(vec![i as u8; 65000])).collect();
    let (mut i, mut j) = (0, 0);
    let plain = &s.plain;
    let zc = &mut s.zc;
    summary::interleaved(
        "udp 64KiB cold payloads: MSG_ZEROCOPY vs plain",
        ">= 1.7x",
        10,
        burst,
        &mut || {
            i = (i + 1) % ring.len();
            zc.send_buf(&ring[i]).unwrap();
        },
        &mut || {
            j = (j + 1) % ring.len();
            plain.send(&ring[j]).unwrap();
        },
    );
    for (label, tx) in [("Always", &mut s.zc), ("Auto", &mut s.auto)] {
        tx.flush(Duration::from_secs(5)).unwrap();
        let st = tx.stats();
        println!(
            "  {label}: {} zero-copy sends of {}, {} completions, {} copied ({:.1}%), {} ENOBUFS fallbacks, peak pinned {} KiB; Auto: {}",
            st.zerocopy_sends,
            st.sends,
            st.completions,
            st.copied_completions,
            st.copied_share() * 100.0,
            st.enobufs_fallbacks,
            st.peak_pinned_bytes / 1024,
            st.auto
        );
    }
    for choice in s.auto.auto_sizes() {
        println!("  Auto by size: {choice}");
    }
}

fn set_rcvbuf(l: &TcpListener, bytes: i32) {
    // SAFETY: a valid socket and a c_int option value living across the call.
    let r = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

/// A loopback connection whose receiver reads everything. With `late`,
/// the sender's socket is made (and its sender built) before it connects,
/// so `Auto` cannot know the peer is local: the worst case for it.
fn loopback(
    rcvbuf: Option<i32>,
    mode: ZeroCopyMode,
    late: bool,
) -> (ZeroCopySender<TcpStream>, std::thread::JoinHandle<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    if let Some(b) = rcvbuf {
        set_rcvbuf(&l, b);
    }
    let cfg = ZeroCopyConfig {
        mode,
        ..ZeroCopyConfig::default()
    };
    let tx = if late {
        // SAFETY: plain socket(2); the descriptor is then owned by the stream.
        let s =
            unsafe { TcpStream::from_raw_fd(libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0)) };
        let tx = ZeroCopySender::with_config(s, cfg).unwrap();
        let std::net::SocketAddr::V4(a) = l.local_addr().unwrap() else {
            unreachable!()
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: a valid sockaddr_in for the call.
        let r = unsafe {
            libc::connect(
                tx.get_ref().as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        tx
    } else {
        ZeroCopySender::with_config(TcpStream::connect(l.local_addr().unwrap()).unwrap(), cfg)
            .unwrap()
    };
    let (mut b, _) = l.accept().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0u64;
        loop {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k as u64,
            }
        }
    });
    (tx, reader)
}

/// Sender CPU seconds and wall seconds to move `total` bytes as messages
/// of pieces of `piece` bytes (a fresh connection each time, as a server
/// sees).
fn move_bytes(
    piece: usize,
    rcvbuf: Option<i32>,
    mode: ZeroCopyMode,
    late: bool,
    total: usize,
) -> (f64, f64) {
    let per_msg = (piece * 64).clamp(64 * 1024, 4 << 20).max(piece);
    let pieces = per_msg / piece;
    let body = Buf::from(vec![0x33u8; piece * pieces.min(64)]);
    let msg: Composite = (0..pieces)
        .map(|i| body.slice((i % 64) * piece..(i % 64 + 1) * piece))
        .collect();
    let (mut tx, reader) = loopback(rcvbuf, mode, late);
    let cpu = summary::thread_cpu_ns();
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        tx.send_all(msg.clone()).unwrap();
        sent += msg.len();
    }
    let cpu = (summary::thread_cpu_ns() - cpu) / 1e9;
    drop(tx);
    let got = reader.join().unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(got as usize, sent);
    (cpu, wall)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `Auto` against `Never` on every shape: pieces of 1 B to 1 MiB,
/// receive buffers 4 KiB, 16 KiB and the default, the sender made on a
/// connected socket (Auto knows the peer is local) or before connecting
/// (it must learn it from the first completion). Median of 5 interleaved
/// rounds of the per-round ratios, by the sender's CPU time and by wall
/// time.
fn auto_vs_never() {
    println!("\n== io_zerocopy: Auto vs Never over loopback TCP (Never's cost / Auto's: > 1 = Auto cheaper; aim >= 0.95x) ==");
    let mut worst = (f64::MAX, String::new());
    let only_late = std::env::var_os("ZCBUF_BENCH_LATE_ONLY").is_some();
    for late in [false, true] {
        if only_late && !late {
            continue;
        }
        for rcvbuf in [Some(4096), Some(16 * 1024), None] {
            for piece in [1usize, 100, 4096, 64 * 1024, 1 << 20] {
                let total = if piece == 1 { 256 << 10 } else { 8 << 20 };
                let (mut cpu, mut wall) = (Vec::new(), Vec::new());
                for round in 0..5 {
                    let (a, n) = if round % 2 == 0 {
                        let a = move_bytes(piece, rcvbuf, ZeroCopyMode::Auto, late, total);
                        (
                            a,
                            move_bytes(piece, rcvbuf, ZeroCopyMode::Never, late, total),
                        )
                    } else {
                        let n = move_bytes(piece, rcvbuf, ZeroCopyMode::Never, late, total);
                        (
                            move_bytes(piece, rcvbuf, ZeroCopyMode::Auto, late, total),
                            n,
                        )
                    };
                    cpu.push(n.0 / a.0);
                    wall.push(n.1 / a.1);
                }
                let (cpu, wall) = (median(cpu), median(wall));
                let label = format!(
                    "pieces {piece} B, rcvbuf {}, {}",
                    rcvbuf.map_or("default".to_string(), |b| format!("{} KiB", b / 1024)),
                    if late {
                        "sender made before connect"
                    } else {
                        "connected"
                    }
                );
                println!("  {label:<58} cpu {cpu:.3}x | wall {wall:.3}x");
                if cpu < worst.0 {
                    worst = (cpu, label);
                }
            }
        }
    }
    println!("  worst shape by CPU: {} at {:.3}x", worst.1, worst.0);
}

fn main() {
    if !netns::inside() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match netns::reexec_in_netns(&args) {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(why) => {
                println!("io_zerocopy: SKIPPED, no private network namespace here: {why}");
                return;
            }
        }
    }
    if std::env::var_os("ZCBUF_BENCH_AUTO_ONLY").is_some() {
        drop(netns::setup_veth_sink()); // brings lo up too
        auto_vs_never();
        return;
    }
    let mut s = senders();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(10)
        .configure_from_args();
    udp(&mut c, &mut s);
    c.final_summary();
    if !summary::measuring() {
        return;
    }
    interleaved_summary(&mut s);
    let uring_rows = uring_rows::rows(&mut c);
    if std::env::var_os("ZCBUF_BENCH_NO_AUTO").is_none() {
        auto_vs_never();
    }
    println!("\n== io_zerocopy: ratios from criterion's medians above ==");
    for (_, name) in SIZES {
        let g = format!("udp_veth_{name}");
        summary::ratio(
            &format!("udp {name}: MSG_ZEROCOPY vs plain"),
            &g,
            "zerocopy",
            "plain",
            "64KiB: >= 1.7x",
        );
        summary::ratio(
            &format!("udp {name}: Auto vs plain"),
            &g,
            "auto",
            "plain",
            ">= 0.95x",
        );
    }
    for (name, value, aim) in uring_rows {
        println!("RATIO {name} {value:.3} {aim}");
    }
}
