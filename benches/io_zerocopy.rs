//! UDP through the veth sink (a private network namespace, DESIGN.md):
//! `MSG_ZEROCOPY` against a plain send, and `Auto`, at 4, 16 and 64 KiB;
//! then `Auto` against `Never` over loopback TCP for pieces of 1 B to
//! 1 MiB and receive buffers of 4 KiB to the default (the shapes where
//! `Auto` once crawled).
//! The veth part also runs a raw C-like loop of `send(.., MSG_ZEROCOPY)`
//! with error-queue reaping (support/raw.rs), the bar for zcbuf's
//! per-send cost.
//! The bench re-executes itself under `unshare -n`; where it cannot, it
//! says so and measures nothing. Prints the ratios after criterion's
//! output, and last one `RATIO <name> <value> [<aim>]` line per ratio
//! (`scripts/bench-io.sh` plots them).

#[path = "support/gso_rows.rs"]
mod gso_rows;
#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "support/raw.rs"]
mod raw;
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
/// over IPv4 is 65507 bytes), with the short names of the ratio rows.
const SIZES: [(usize, &str, &str); 3] = [
    (4096, "4KiB", "4k"),
    (16384, "16KiB", "16k"),
    (65000, "64KiB", "64k"),
];

/// One ratio for the last lines: name, value (a's throughput over b's,
/// this run), aim (may be empty).
type Row = (String, f64, String);

struct Senders {
    plain: UdpSocket,
    raw: raw::RawZeroCopy,
    zc: ZeroCopySender<UdpSocket>,
    zc64: ZeroCopySender<UdpSocket>,
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
        raw: raw::RawZeroCopy::new(netns::setup_veth_sink()).unwrap(),
        zc: ZeroCopySender::with_config(netns::setup_veth_sink(), always.clone()).unwrap(),
        zc64: ZeroCopySender::with_config(
            netns::setup_veth_sink(),
            ZeroCopyConfig {
                poll_every: raw::REAP_AFTER as usize,
                ..always
            },
        )
        .unwrap(),
        auto: ZeroCopySender::new(netns::setup_veth_sink()).unwrap(),
    }
}

/// The payloads, one per size, never freed (even if a benchmark
/// panics): the raw loop keeps no pins, so the kernel may read them after
/// its sends returned.
fn payloads() -> &'static [Buf] {
    Vec::leak(
        SIZES
            .iter()
            .map(|&(size, _, _)| Buf::from(vec![0x5a; size]))
            .collect(),
    )
}

fn udp(c: &mut Criterion, s: &mut Senders, payloads: &[Buf]) {
    for ((size, name, _), payload) in SIZES.into_iter().zip(payloads) {
        let mut g = c.benchmark_group(format!("udp_veth_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter("plain"), |b| {
            b.iter(|| s.plain.send(payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("raw_zerocopy"), |b| {
            b.iter(|| s.raw.send(payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("zerocopy"), |b| {
            b.iter(|| s.zc.send_buf(payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("auto"), |b| {
            b.iter(|| s.auto.send_buf(payload).unwrap())
        });
        g.finish();
    }
}

fn interleaved_summary(s: &mut Senders, payloads: &[Buf]) -> Vec<Row> {
    println!("\n== io_zerocopy: UDP via the veth sink, interleaved side-by-side ratios (a's throughput / b's) ==");
    let burst = Duration::from_millis(50);
    let mut rows = Vec::new();
    let mut row = |name: String, value: f64, aim: &str| rows.push((name, value, aim.to_string()));
    for ((size, name, short), payload) in SIZES.into_iter().zip(payloads) {
        let plain = &s.plain;
        let zc = &mut s.zc;
        let rawzc = &mut s.raw;
        let aim = if size >= 16384 { ">=0.95" } else { "" };
        let r = summary::interleaved(
            &format!("udp {name}: zcbuf MSG_ZEROCOPY vs raw loop"),
            aim,
            10,
            burst,
            &mut || {
                zc.send_buf(payload).unwrap();
            },
            &mut || {
                rawzc.send(payload).unwrap();
            },
        );
        row(format!("zc_vs_raw_{short}"), r, aim);
        let zc64 = &mut s.zc64;
        let r = summary::interleaved(
            &format!("udp {name}: zcbuf reaping every 64 vs raw loop"),
            "",
            10,
            burst,
            &mut || {
                zc64.send_buf(payload).unwrap();
            },
            &mut || {
                rawzc.send(payload).unwrap();
            },
        );
        row(format!("zc_poll64_vs_raw_{short}"), r, "");
        let r = summary::interleaved(
            &format!("udp {name}: raw MSG_ZEROCOPY loop vs plain"),
            "",
            10,
            burst,
            &mut || {
                rawzc.send(payload).unwrap();
            },
            &mut || {
                plain.send(payload).unwrap();
            },
        );
        row(format!("raw_vs_plain_{short}"), r, "");
        let aim = if size == 65000 { ">=1.7" } else { "" };
        let r = summary::interleaved(
            &format!("udp {name}: MSG_ZEROCOPY vs plain"),
            aim,
            10,
            burst,
            &mut || {
                zc.send_buf(payload).unwrap();
            },
            &mut || {
                plain.send(payload).unwrap();
            },
        );
        row(format!("zc_vs_plain_{short}"), r, aim);
        let auto = &mut s.auto;
        let r = summary::interleaved(
            &format!("udp {name}: Auto vs plain"),
            ">=0.95",
            10,
            burst,
            &mut || {
                auto.send_buf(payload).unwrap();
            },
            &mut || {
                plain.send(payload).unwrap();
            },
        );
        row(format!("auto_vs_plain_{short}"), r, ">=0.95");
    }
    // The same at 64 KiB with cold payloads: a ring of distinct buffers
    // four times the size of the last-level cache, as a server sending
    // different data each time sees it.
    let ring: Vec<Buf> = (0..2048).map(|i| Buf::from(vec![i as u8; 65000])).collect();
    let (mut i, mut j) = (0, 0);
    let plain = &s.plain;
    let zc = &mut s.zc;
    let r = summary::interleaved(
        "udp 64KiB cold payloads: MSG_ZEROCOPY vs plain",
        ">=1.7",
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
    row("zc_vs_plain_64k_cold".to_string(), r, ">=1.7");
    for (label, tx) in [("Always", &mut s.zc), ("Auto", &mut s.auto)] {
        tx.flush(Duration::from_secs(5)).unwrap();
        let st = tx.stats();
        println!(
            "  {label}: {} zero-copy sends of {}, {} completions in {} notifications, {} copied ({:.1}%), {} ENOBUFS fallbacks, peak pinned {} KiB; Auto: {}",
            st.zerocopy_sends,
            st.sends,
            st.completions,
            st.notifications,
            st.copied_completions,
            st.copied_share() * 100.0,
            st.enobufs_fallbacks,
            st.peak_pinned_bytes / 1024,
            st.auto
        );
    }
    let r = &s.raw;
    println!(
        "  raw loop: {} sends, {} refused (ENOBUFS), {} completions in {} notifications ({} error-queue reads), {} copied",
        r.sends, r.failed, r.completed, r.notes, r.reads, r.copied
    );
    for choice in s.auto.auto_sizes() {
        println!("  Auto by size: {choice}");
    }
    rows
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

/// `ZCBUF_BENCH_PROFILE=<what>:<bytes>:<sends>` (what: `zc`, `raw`,
/// `plain`, `auto`): only that many sends of one kind, for a profiler
/// (`valgrind --tool=callgrind`), then the sender's counters.
fn profile(spec: &str) {
    let mut it = spec.split(':');
    let what = it.next().unwrap_or("zc");
    let size: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or(65000);
    let n: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    // Never freed: the raw loop keeps no pins.
    let payload: &'static Buf = Box::leak(Box::new(Buf::from(vec![0x5a; size])));
    let mut s = senders();
    for _ in 0..n {
        match what {
            "raw" => s.raw.send(payload).unwrap(),
            "plain" => raw::plain_send(&s.plain, payload).unwrap(),
            "auto" => {
                s.auto.send_buf(payload).unwrap();
            }
            _ => {
                s.zc.send_buf(payload).unwrap();
            }
        }
    }
    s.zc.flush(Duration::from_secs(5)).unwrap();
    if !s.raw.drain(Duration::from_secs(5)) {
        println!("profile: the raw loop's sends did not complete in 5 s");
        std::process::exit(1);
    }
    let st = s.zc.stats();
    println!(
        "profile {what} {size} B x {n}: zcbuf {} notifications; raw {} notifications, {} error-queue reads",
        st.notifications, s.raw.notes, s.raw.reads
    );
}

/// The criterion medians' ratios of the veth groups.
fn criterion_ratios() {
    println!("\n== io_zerocopy: ratios from criterion's medians above ==");
    for (_, name, _) in SIZES {
        let g = format!("udp_veth_{name}");
        summary::ratio(
            &format!("udp {name}: zcbuf MSG_ZEROCOPY vs raw loop"),
            &g,
            "zerocopy",
            "raw_zerocopy",
            ">= 0.95x",
        );
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
    if let Some(spec) = std::env::var_os("ZCBUF_BENCH_PROFILE") {
        profile(&spec.to_string_lossy());
        return;
    }
    let payloads = payloads();
    let mut s = senders();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(10)
        .configure_from_args();
    let measuring = summary::measuring();
    let mut rows: Vec<Row> = Vec::new();
    udp(&mut c, &mut s, payloads);
    if measuring {
        rows.extend(interleaved_summary(&mut s, payloads));
    }
    rows.extend(gso_rows::rows(&mut c));
    rows.extend(uring_rows::rows(&mut c));
    // Other paths add their rows here, one line each, e.g.
    // `rows.extend(uring_rows::rows(&mut c));` with its
    // `#[path = "support/uring_rows.rs"] mod uring_rows;` above. Each runs
    // its own criterion groups and interleaved comparisons, and under
    // `cargo test --benches` (criterion runs each function once) returns
    // no rows.
    c.final_summary();
    if !s.raw.drain(Duration::from_secs(5)) {
        println!("io_zerocopy: the raw loop's sends did not complete in 5 s");
        std::process::exit(1);
    }
    if !measuring {
        return;
    }
    criterion_ratios();
    if std::env::var_os("ZCBUF_BENCH_NO_AUTO").is_none() {
        auto_vs_never();
    }
    summary::print_rows(&rows);
}
