//! Pooled allocation next to the system allocator (`Vec<u8>`) and
//! `bytes::BytesMut`: allocate, fill to `n` bytes, drop, for n = 256 B,
//! 4 KiB and 64 KiB.
//!
//! What is measured:
//!
//! - `local_<size>`: one thread allocates a buffer of capacity `n`, fills
//!   all `n` bytes with `extend_from_slice` from a source slice the
//!   optimiser cannot see through (`black_box`), hands a reference to
//!   `black_box` (so neither the fill nor the allocation can be elided) and
//!   drops it. `pool` is `Pool::global().alloc(n)` (the thread-cache path
//!   once warm), `pool_freeze` the same buffer frozen into a `Buf` before
//!   the drop, `vec` is `Vec::<u8>::with_capacity(n)` (the system
//!   allocator, glibc malloc here), `bytes_mut` `BytesMut::with_capacity(n)`;
//!   `fill_only` fills a buffer allocated once, outside the loop: the part
//!   of every row that no allocator can remove.
//! - `xthread_<size>`: the same allocate + fill on the benchmark thread,
//!   [`BATCH`] buffers at a time, each batch (an array: no allocation of
//!   its own) sent through a bounded `std::sync::mpsc` channel
//!   (`sync_channel`, capacity [`QUEUE`] batches) to a consumer thread
//!   that drops the buffers. Every allocator uses the same channel, the
//!   same batch and the same consumer loop. Criterion times one batch on
//!   the producer; with the queue bounded, that is the steady-state
//!   throughput of the pair (a slower consumer blocks the producer), so
//!   it includes the frees on the other thread. Batching spreads the
//!   channel's own cost (a lock and a wake-up, ~300 ns) over [`BATCH`]
//!   buffers, so the allocators' cross-thread cost is what the rows
//!   compare. `channel_only` sends batches of `usize`s: the fixed cost of
//!   the channel in every row. The consumer also times its drops: the
//!   cost of a free on the other thread, printed per buffer.
//!
//! The producer is pinned to CPU 0 and the consumer to CPU 1 when there
//! are two CPUs (`ZCBUF_BENCH_NO_PIN=1` turns that off).
//!
//! After criterion's report, with `cargo bench`: the ratios pool time /
//! `Vec` time and pool time / `BytesMut` time from criterion's medians
//! (times per buffer),
//! the single-thread ratios once more measured in interleaved bursts (CPU
//! time, less disturbed by other load), the cross-thread ratios by the CPU
//! time of both threads (alternating rounds), and a mixed workload on a fresh
//! pool — log-uniform random sizes 64 B..256 KiB, about 4 000 live
//! buffers, random frees — that prints the pool's reserved bytes next to
//! the bytes in use and the bytes requested (the memory overhead); last,
//! `RATIO <name> <value> <aim>` lines for `scripts/plot-ratios.py`
//! (`scripts/bench-pool.sh` runs the bench and draws them). In test
//! mode (`cargo test --benches`) the mixed workload runs short and checks
//! the pool's accounting.

#[path = "support/summary.rs"]
mod summary;

use std::hint::black_box;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BufMut as _;
use criterion::{criterion_group, Criterion, Throughput};
use zcbuf::pool::{Pool, PoolConfig};

const SIZES: [(usize, &str); 3] = [(256, "256B"), (4096, "4KiB"), (65536, "64KiB")];
/// Buffers per message between producer and consumer.
const BATCH: usize = 32;
/// Capacity of the channel between producer and consumer, in batches.
const QUEUE: usize = 4;
/// Issue 15's aim, pool time / `Vec` time: at most 1.0 at 256 B and 0.9
/// at 4 KiB, on one thread and across threads.
const AIM: &str = "<= 1.0 (256 B), <= 0.9 (4 KiB)";

/// Pins the calling thread to `cpu` (best effort).
fn pin_to(cpu: usize) {
    if std::env::var_os("ZCBUF_BENCH_NO_PIN").is_some()
        || thread::available_parallelism().map_or(1, |n| n.get()) < 2
    {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays inside it
    // for any cpu below CPU_SETSIZE, and the call only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The bytes every buffer is filled from.
fn source() -> Vec<u8> {
    (0..65536).map(|i| (i * 31 % 251) as u8).collect()
}

// The three allocate + fill steps, written the same way for all.

#[inline(always)]
fn pool_filled(pool: &Pool, src: &[u8]) -> zcbuf::BufMut {
    let mut buf = pool.alloc(src.len());
    buf.extend_from_slice(black_box(src));
    buf
}

#[inline(always)]
fn vec_filled(src: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(src.len());
    buf.extend_from_slice(black_box(src));
    buf
}

#[inline(always)]
fn bytes_filled(src: &[u8]) -> bytes::BytesMut {
    let mut buf = bytes::BytesMut::with_capacity(src.len());
    buf.extend_from_slice(black_box(src));
    buf
}

fn local(c: &mut Criterion) {
    let pool = Pool::global();
    let src = source();
    for (n, name) in SIZES {
        let src = &src[..n];
        let mut g = c.benchmark_group(format!("local_{name}"));
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function("pool", |b| {
            b.iter(|| {
                let buf = pool_filled(pool, src);
                black_box(&buf);
            })
        });
        g.bench_function("pool_freeze", |b| {
            b.iter(|| {
                let buf = pool_filled(pool, src).freeze();
                black_box(&buf);
            })
        });
        g.bench_function("vec", |b| {
            b.iter(|| {
                let buf = vec_filled(src);
                black_box(&buf);
            })
        });
        g.bench_function("bytes_mut", |b| {
            b.iter(|| {
                let buf = bytes_filled(src);
                black_box(&buf);
            })
        });
        // The fill alone, into a buffer allocated once: the floor of every
        // row above (no allocator can be faster than this).
        let mut kept = Vec::with_capacity(n);
        g.bench_function("fill_only", |b| {
            b.iter(|| {
                kept.clear();
                kept.extend_from_slice(black_box(src));
                black_box(&kept);
            })
        });
        g.finish();
    }
}

/// What the consumer threads measured: (group, allocator, ns per drop).
static DROPS: Mutex<Vec<(String, &'static str, f64)>> = Mutex::new(Vec::new());

/// A consumer thread that drops whatever arrives, timing its drops, and
/// the sender to it.
fn consumer<T: Send + 'static>() -> (SyncSender<[T; BATCH]>, thread::JoinHandle<(u64, Duration)>) {
    let (tx, rx) = sync_channel::<[T; BATCH]>(QUEUE);
    let handle = thread::spawn(move || {
        pin_to(1);
        let (mut received, mut dropping) = (0u64, Duration::ZERO);
        for batch in rx {
            let start = Instant::now();
            drop(black_box(batch));
            dropping += start.elapsed();
            received += BATCH as u64;
        }
        (received, dropping)
    });
    (tx, handle)
}

/// Runs one cross-thread row: `make` builds a buffer on this thread, the
/// consumer drops it on the other.
fn xthread_row<T: Send + 'static>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    group: &str,
    name: &'static str,
    mut make: impl FnMut() -> T,
) {
    let (tx, consumer_thread) = consumer();
    g.bench_function(name, |b| {
        b.iter(|| tx.send(std::array::from_fn(|_| make())).unwrap())
    });
    drop(tx);
    let (received, dropping) = consumer_thread.join().unwrap();
    if received > 0 {
        let per_drop = dropping.as_nanos() as f64 / received as f64;
        DROPS
            .lock()
            .unwrap()
            .push((group.to_string(), name, per_drop));
    }
}

fn xthread(c: &mut Criterion) {
    let pool = Pool::global();
    let src = source();
    for (n, name) in SIZES {
        let src = &src[..n];
        let group = format!("xthread_{name}");
        let mut g = c.benchmark_group(&group);
        g.throughput(Throughput::Bytes((n * BATCH) as u64));
        xthread_row(&mut g, &group, "pool", || pool_filled(pool, src));
        xthread_row(&mut g, &group, "vec", || vec_filled(src));
        xthread_row(&mut g, &group, "bytes_mut", || bytes_filled(src));
        xthread_row(&mut g, &group, "channel_only", || black_box(n));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(20);
    targets = local, xthread
}

/// `a`'s median time over `b`'s, formatted.
fn time_ratio(group: &str, a: &str, b: &str) -> String {
    match (summary::median_ns(group, a), summary::median_ns(group, b)) {
        (Some(ta), Some(tb)) if tb > 0.0 => format!("{:.2}", ta / tb),
        _ => "n/a".into(),
    }
}

/// Median ns per buffer (criterion times a batch in the `xthread` groups).
fn per_buffer_ns(group: &str, function: &str) -> Option<f64> {
    let per_iter = if group.starts_with("xthread") {
        BATCH as f64
    } else {
        1.0
    };
    summary::median_ns(group, function).map(|t| t / per_iter)
}

fn ns(group: &str, function: &str) -> String {
    per_buffer_ns(group, function).map_or("n/a".into(), |t| format!("{t:.1}"))
}

/// The ratio lines `scripts/plot-ratios.py` reads, printed last.
static RATIOS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn ratio_line(name: &str, value: f64, aim: &str) {
    RATIOS.lock().unwrap().push(
        format!("RATIO {name} {value:.3} {aim}")
            .trim_end()
            .to_string(),
    );
}

/// The aim of issue 15 for pool / `Vec` at a size, for a `RATIO` line.
fn aim_of(size: &str) -> &'static str {
    match size {
        "256B" => "<=1.0",
        "4KiB" => "<=0.9",
        _ => "",
    }
}

fn print_ratios() {
    println!("\n== pool_alloc: median ns per allocate + fill + drop (criterion) ==");
    println!(
        "{:<16} {:>9} {:>11} {:>9} {:>10} {:>9} {:>9} {:>12} {:>14}",
        "group",
        "pool",
        "pool_freeze",
        "vec",
        "bytes_mut",
        "fill",
        "channel",
        "pool/vec",
        "pool/bytes_mut"
    );
    for prefix in ["local", "xthread"] {
        for (_, name) in SIZES {
            let g = format!("{prefix}_{name}");
            println!(
                "{:<16} {:>9} {:>11} {:>9} {:>10} {:>9} {:>9} {:>12} {:>14}",
                g,
                ns(&g, "pool"),
                ns(&g, "pool_freeze"),
                ns(&g, "vec"),
                ns(&g, "bytes_mut"),
                ns(&g, "fill_only"),
                ns(&g, "channel_only"),
                time_ratio(&g, "pool", "vec"),
                time_ratio(&g, "pool", "bytes_mut"),
            );
        }
    }
    println!("(ns per buffer; ratios are pool time / baseline time: lower is better; aim for pool/vec {AIM})");
    for prefix in ["local", "xthread"] {
        for (_, name) in SIZES {
            let g = format!("{prefix}_{name}");
            if let (Some(p), Some(v)) = (per_buffer_ns(&g, "pool"), per_buffer_ns(&g, "vec")) {
                ratio_line(&format!("pool_vs_vec_{g}"), p / v, aim_of(name));
            }
        }
    }
    let drops = DROPS.lock().unwrap();
    if !drops.is_empty() {
        println!("\n== pool_alloc: the consumer's drop, ns per buffer (wall clock, freed on the other thread) ==");
        for (_, name) in SIZES {
            let g = format!("xthread_{name}");
            let row: Vec<String> = drops
                .iter()
                .filter(|(group, _, _)| *group == g)
                .map(|(_, f, t)| format!("{f} {t:.1}"))
                .collect();
            println!("{g:<16} {}", row.join("   "));
        }
    }
}

/// The single-thread ratios again, in alternating bursts, by CPU time.
fn interleaved_summary() {
    println!("\n== pool_alloc: interleaved single-thread ratios (pool time / baseline time) ==");
    let pool = Pool::global();
    let src = source();
    let burst = Duration::from_millis(50);
    for (n, name) in SIZES {
        let src = &src[..n];
        let mut pooled = || {
            black_box(&pool_filled(pool, src));
        };
        let mut vec = || {
            black_box(&vec_filled(src));
        };
        let r = summary::interleaved(
            &format!("local_{name}: Vec -> pool time / Vec time"),
            AIM,
            10,
            burst,
            &mut vec,
            &mut pooled,
        );
        ratio_line(
            &format!("pool_vs_vec_local_{name}_interleaved"),
            r,
            aim_of(name),
        );
        let mut bytes = || {
            black_box(&bytes_filled(src));
        };
        summary::interleaved(
            &format!("local_{name}: BytesMut -> pool / BytesMut"),
            "-",
            10,
            burst,
            &mut bytes,
            &mut pooled,
        );
    }
}

/// CPU time of both threads per buffer when `make`'s buffers are made on
/// this thread and dropped on a consumer thread: `batches` batches through
/// the same channel as the criterion rows. Blocking in the channel costs
/// no CPU, so other processes' load (which delays the wake-ups the wall
/// clock waits for) disturbs this much less than the criterion rows.
fn xthread_cpu_per_buffer<T: Send + 'static>(batches: usize, make: &mut dyn FnMut() -> T) -> f64 {
    let (tx, rx) = sync_channel::<[T; BATCH]>(QUEUE);
    let consumer_thread = thread::spawn(move || {
        pin_to(1);
        let start = summary::thread_cpu_ns();
        for batch in rx {
            drop(black_box(batch));
        }
        summary::thread_cpu_ns() - start
    });
    let start = summary::thread_cpu_ns();
    for _ in 0..batches {
        tx.send(std::array::from_fn(|_| make())).unwrap();
    }
    drop(tx);
    let producer = summary::thread_cpu_ns() - start;
    let consumer = consumer_thread.join().unwrap();
    (producer + consumer) / (batches * BATCH) as f64
}

/// The cross-thread ratios again by CPU time of both threads, pool and
/// `Vec` in alternating rounds.
fn xthread_cpu_summary() {
    println!("\n== pool_alloc: cross-thread by CPU time of both threads (alternating rounds) ==");
    let pool = Pool::global();
    let src = source();
    for (n, name) in SIZES {
        let src = &src[..n];
        // About 20 ms of work per round and allocator.
        let batches = (20_000_000 / (BATCH * (100 + n / 8))).max(4);
        let (mut ratios, mut pools, mut vecs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..10 {
            let p = || xthread_cpu_per_buffer(batches, &mut || pool_filled(pool, src));
            let v = || xthread_cpu_per_buffer(batches, &mut || vec_filled(src));
            let (tp, tv) = if round % 2 == 0 {
                let tp = p();
                (tp, v())
            } else {
                let tv = v();
                (p(), tv)
            };
            ratios.push(tp / tv);
            pools.push(tp);
            vecs.push(tv);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let r = median(&mut ratios);
        println!(
            "xthread_{name:<6} pool {:>8.1} ns   vec {:>8.1} ns per buffer (both threads' CPU) -> pool / vec {r:.3}x   (aim: {AIM})",
            median(&mut pools),
            median(&mut vecs)
        );
        ratio_line(&format!("pool_vs_vec_xthread_{name}_cpu"), r, aim_of(name));
    }
}

/// A mixed workload on a fresh pool: sizes log-uniform in 64 B..256 KiB,
/// about `target_live` live buffers, each step allocating or freeing a
/// random one; prints reserved vs in-use bytes at the end and checks the
/// pool's accounting against what is live.
fn mixed_workload(steps: usize, target_live: usize) {
    let pool = Pool::new(PoolConfig::default());
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut live: Vec<(zcbuf::BufMut, usize)> = Vec::with_capacity(target_live * 2);
    let (mut peak_reserved, mut peak_in_use) = (0usize, 0usize);
    for _ in 0..steps {
        // Alloc with probability ~target/(target+live): hovers around target.
        let alloc = live.len() < target_live / 2
            || (next() % (2 * target_live as u64)) >= live.len() as u64;
        if alloc {
            // log2 uniform in [6, 18): 64 B up to just under 256 KiB.
            let exp = 6.0 + (next() % 12_000) as f64 / 1000.0;
            let len = (2f64.powf(exp) as usize).clamp(64, 256 << 10);
            let mut buf = pool.alloc(len);
            buf.put_bytes(0xa5, len);
            live.push((buf, len));
        } else {
            let at = (next() % live.len() as u64) as usize;
            drop(live.swap_remove(at));
        }
        let s = pool.stats();
        peak_reserved = peak_reserved.max(s.reserved_bytes);
        peak_in_use = peak_in_use.max(s.in_use_bytes);
    }
    let stats = pool.stats();
    let requested: usize = live.iter().map(|(_, len)| len).sum();
    let blocks: usize = live.iter().map(|(b, _)| b.capacity()).sum();
    assert_eq!(stats.live_buffers, live.len());
    assert_eq!(stats.in_use_bytes, blocks);
    assert!(stats.reserved_bytes >= stats.in_use_bytes);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "\n== pool_alloc: mixed workload ({steps} steps, sizes 64 B..256 KiB log-uniform, ~{target_live} live) =="
    );
    println!(
        "live buffers {:>6}   requested {:>8.1} MiB   in use (blocks) {:>8.1} MiB   reserved {:>8.1} MiB",
        live.len(),
        mib(requested),
        mib(stats.in_use_bytes),
        mib(stats.reserved_bytes)
    );
    println!(
        "reserved / in use {:.2}x   reserved / requested {:.2}x   in use / requested {:.2}x (size-class rounding)",
        stats.reserved_bytes as f64 / stats.in_use_bytes.max(1) as f64,
        stats.reserved_bytes as f64 / requested.max(1) as f64,
        stats.in_use_bytes as f64 / requested.max(1) as f64,
    );
    ratio_line(
        "reserved_vs_requested_mixed",
        stats.reserved_bytes as f64 / requested.max(1) as f64,
        "<=1.25",
    );
    println!(
        "peak reserved {:.1} MiB, peak in use {:.1} MiB ({:.2}x)",
        mib(peak_reserved),
        mib(peak_in_use),
        peak_reserved as f64 / peak_in_use.max(1) as f64
    );
    let classes: Vec<String> = stats
        .classes
        .iter()
        .filter(|c| c.hits + c.misses > 0)
        .map(|c| {
            format!(
                "{}: {} free ({} cached)",
                c.block_size,
                c.cached_blocks + c.arena_free_blocks,
                c.cached_blocks
            )
        })
        .collect();
    println!("free blocks by class: {}", classes.join(", "));
    live.clear();
    let idle = pool.stats();
    assert_eq!((idle.in_use_bytes, idle.live_buffers), (0, 0));
    let released = pool.trim();
    println!(
        "all freed: reserved {:.1} MiB; trim() unmapped {:.1} MiB, {:.1} MiB still reserved",
        mib(idle.reserved_bytes),
        mib(released),
        mib(pool.stats().reserved_bytes)
    );
}

/// `ZCBUF_POOL_LOOP=<pool|vec|pool_xthread|vec_xthread>:<size>[:<iterations>]`:
/// run only that loop (no criterion) and exit (`mixed`: only the mixed
/// workload; `xthread_cpu`: only the cross-thread CPU-time ratios), for instruction counts under
/// `valgrind --tool=callgrind`, which are repeatable where times on a shared
/// machine are not (`scripts/bench-pool.sh --callgrind` runs them).
fn counted_loop(spec: &str) {
    let mut parts = spec.split(':');
    let kind = parts.next().unwrap_or("");
    let n: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(256);
    let iters: usize = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let src = source();
    let src = &src[..n.min(65536)];
    let pool = Pool::global();
    match kind {
        "pool" => (0..iters).for_each(|_| {
            black_box(&pool_filled(pool, src));
        }),
        "vec" => (0..iters).for_each(|_| {
            black_box(&vec_filled(src));
        }),
        "pool_xthread" => {
            let (tx, consumer_thread) = consumer();
            (0..iters / BATCH).for_each(|_| {
                tx.send(std::array::from_fn(|_| pool_filled(pool, src)))
                    .unwrap()
            });
            drop(tx);
            consumer_thread.join().unwrap();
        }
        "vec_xthread" => {
            let (tx, consumer_thread) = consumer();
            (0..iters / BATCH)
                .for_each(|_| tx.send(std::array::from_fn(|_| vec_filled(src))).unwrap());
            drop(tx);
            consumer_thread.join().unwrap();
        }
        // The memory figure alone (the size and count are ignored).
        "mixed" => mixed_workload(200_000, 4_000),
        // The cross-thread ratios by CPU time alone.
        "xthread_cpu" => xthread_cpu_summary(),
        other => panic!(
            "ZCBUF_POOL_LOOP: unknown loop {other:?} (pool, vec, pool_xthread, vec_xthread, mixed, xthread_cpu)"
        ),
    }
}

fn main() {
    if let Ok(spec) = std::env::var("ZCBUF_POOL_LOOP") {
        counted_loop(&spec);
        return;
    }
    pin_to(0);
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !summary::measuring() {
        mixed_workload(5_000, 500);
        return;
    }
    print_ratios();
    interleaved_summary();
    xthread_cpu_summary();
    mixed_workload(200_000, 4_000);
    println!();
    for line in RATIOS.lock().unwrap().iter() {
        println!("{line}");
    }
}
