//! The io_uring backend on the veth sink (run inside the namespace child of
//! `io_zerocopy`): UDP datagrams from one pool buffer, sent by io_uring
//! `SEND_ZC` (registered buffer), by a plain `send`, and by the syscall
//! backend's `MSG_ZEROCOPY`, at 4, 16 and 64 KiB. Criterion measures each
//! (HTML report under `target/criterion/uring_veth_*`); the ratios come from
//! interleaved bursts in the same minutes, so load from other processes
//! hits both sides alike, by the sending thread's CPU time (the wall-clock
//! ratio is printed beside it).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use zcbuf::io::{SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::pool::Pool;
use zcbuf::Buf;

/// Datagram sizes (64 KiB: the largest IPv4 UDP payload is 65507 B).
const SIZES: [(usize, &str); 3] = [(4096, "4k"), (16384, "16k"), (65000, "64k")];

fn always(backend: SendBackend) -> ZeroCopyConfig {
    ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        threshold: 0,
        backend,
        ..ZeroCopyConfig::default()
    }
}

fn pooled(len: usize) -> Buf {
    let mut b = Pool::global().alloc(len);
    b.extend_from_slice(&vec![0x5a; len]);
    b.freeze()
}

/// CPU time consumed by the calling thread, in nanoseconds.
fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// One side's cost per send over alternating bursts.
struct Ratio {
    /// Median over rounds of b's CPU time per send over a's: a's
    /// throughput relative to b's by the sending thread's own time, which
    /// other processes on a shared machine disturb far less than the wall
    /// clock (the veth transmit runs on that thread, so it is counted).
    cpu: f64,
    /// The same by wall-clock time.
    wall: f64,
    /// Largest over smallest per-round CPU ratio: the noise.
    spread: f64,
}

/// Times `a` and `b` in `rounds` alternating bursts, order swapped every
/// round, so load from other processes hits both alike.
fn interleaved(rounds: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> Ratio {
    let burst = Duration::from_millis(40);
    let count = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < burst / 4 {
            f();
            n += 1;
        }
        (n * 4).max(1)
    };
    let (na, nb) = (count(a), count(b));
    let time = |f: &mut dyn FnMut(), n: u64| {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        for _ in 0..n {
            f();
        }
        let cpu = thread_cpu_ns() - c;
        (cpu / n as f64, t.elapsed().as_nanos() as f64 / n as f64)
    };
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let ((ca, wa), (cb, wb)) = if r % 2 == 0 {
            let ta = time(a, na);
            (ta, time(b, nb))
        } else {
            let tb = time(b, nb);
            (time(a, na), tb)
        };
        cpu.push(cb / ca);
        wall.push(wb / wa);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    Ratio {
        cpu: cpu[rounds / 2],
        wall: wall[rounds / 2],
        spread: cpu[rounds - 1] / cpu[0],
    }
}

/// Runs the io_uring rows; returns `(name, value, aim)` per ratio (value =
/// io_uring's throughput over the baseline's, same run).
pub fn rows(c: &mut Criterion) -> Vec<(String, f64, String)> {
    let plain = crate::netns::setup_veth_sink();
    let mut uring = match ZeroCopySender::with_config(
        crate::netns::setup_veth_sink(),
        always(SendBackend::IoUring),
    ) {
        Ok(tx) => tx,
        Err(e) => {
            println!("uring rows: SKIPPED, no io_uring sender here: {e}");
            return Vec::new();
        }
    };
    let mut syscall = ZeroCopySender::with_config(
        crate::netns::setup_veth_sink(),
        always(SendBackend::Syscall),
    )
    .unwrap();
    for (size, name) in SIZES {
        let payload = pooled(size);
        let mut g = c.benchmark_group(format!("uring_veth_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter("plain"), |b| {
            b.iter(|| plain.send(&payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("uring_zc"), |b| {
            b.iter(|| uring.send_buf(&payload).unwrap())
        });
        g.bench_function(BenchmarkId::from_parameter("msg_zerocopy"), |b| {
            b.iter(|| syscall.send_buf(&payload).unwrap())
        });
        g.finish();
    }
    let mut out = Vec::new();
    // Under `cargo test --benches` criterion runs each function once: no
    // ratios then.
    if !std::env::args().any(|a| a == "--bench") {
        return out;
    }
    println!("\n== io_zerocopy: io_uring SEND_ZC (registered pool buffer) on the veth sink, interleaved ==");
    for (size, name) in SIZES {
        let payload = pooled(size);
        let r = interleaved(
            11,
            &mut || {
                uring.send_buf(&payload).unwrap();
            },
            &mut || {
                plain.send(&payload).unwrap();
            },
        );
        // Break-even is expected below 16 KiB: no aim at 4 KiB.
        let aim = if size < 16384 { "" } else { ">1.0" };
        println!(
            "  uring zc vs plain {name}: cpu {:.3}x | wall {:.3}x (cpu rounds spread {:.2}x)",
            r.cpu, r.wall, r.spread
        );
        out.push((format!("uring_zc_vs_plain_{name}"), r.cpu, aim.to_string()));
    }
    let payload = pooled(65000);
    let r = interleaved(
        11,
        &mut || {
            uring.send_buf(&payload).unwrap();
        },
        &mut || {
            syscall.send_buf(&payload).unwrap();
        },
    );
    println!(
        "  uring zc vs MSG_ZEROCOPY 64k: cpu {:.3}x | wall {:.3}x (cpu rounds spread {:.2}x)",
        r.cpu, r.wall, r.spread
    );
    out.push(("uring_zc_vs_msg_zerocopy_64k".into(), r.cpu, ">1.0".into()));
    uring.flush(Duration::from_secs(5)).unwrap();
    syscall.flush(Duration::from_secs(5)).unwrap();
    let (u, s) = (uring.stats(), syscall.stats());
    println!(
        "  io_uring: {} zero-copy sends, {} through registered buffers, {} completions, {} copied; \
         MSG_ZEROCOPY: {} zero-copy sends, {} completions, {} copied",
        u.zerocopy_sends,
        u.registered_sends,
        u.completions,
        u.copied_completions,
        s.zerocopy_sends,
        s.completions,
        s.copied_completions
    );
    out
}
