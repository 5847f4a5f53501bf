//! Loopback TCP: a gather write of a composite against copying it into one
//! buffer first and against one write of an already contiguous buffer;
//! and `ZeroCopySender` in `Auto` against a plain gather write.
//! Prints the throughput ratios after criterion's output.

#[path = "support/summary.rs"]
mod summary;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use zcbuf::io::{write_all, GatherWriter, ZeroCopySender};
use zcbuf::{Buf, Composite};

/// Pins the calling thread to `cpu` (best effort): the writer and the
/// reader each keep one core, so runs vary less on a 2-core machine.
fn pin_to(cpu: usize) {
    if std::env::var_os("ZCBUF_BENCH_NO_PIN").is_some() {
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

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// A connected pair whose far end is drained by a thread until closed.
fn sink() -> (TcpStream, thread::JoinHandle<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    let reader = thread::spawn(move || {
        if cpus() >= 2 {
            pin_to(1);
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    (a, reader)
}

fn composite(parts: usize, size: usize) -> Composite {
    (0..parts)
        .map(|i| Buf::from(vec![(i % 251) as u8; size]))
        .collect()
}

fn group_name(parts: usize, size: usize) -> String {
    format!("tcp_gather_{parts}x{}KiB", size / 1024)
}

fn shapes(c: &mut Criterion) {
    for (parts, size) in [(16, 64 * 1024), (1024, 1024)] {
        let msg = composite(parts, size);
        let contiguous = msg.to_vec();
        let mut scratch = Vec::with_capacity(msg.len());
        let mut g = c.benchmark_group(group_name(parts, size));
        g.throughput(Throughput::Bytes(msg.len() as u64));

        let (sock, reader) = sink();
        warm(&sock, &msg);
        g.bench_function("composite", |b| b.iter(|| write_all(&sock, &msg).unwrap()));
        g.bench_function("copy_then_write", |b| {
            b.iter(|| {
                scratch.clear();
                for chunk in msg.chunks() {
                    scratch.extend_from_slice(chunk);
                }
                (&sock).write_all(&scratch).unwrap();
            })
        });
        g.bench_function("contiguous", |b| {
            b.iter(|| (&sock).write_all(&contiguous).unwrap())
        });
        drop(sock);
        reader.join().unwrap();
        g.finish();
    }
}

fn auto_vs_plain(c: &mut Criterion) {
    let msg = composite(16, 64 * 1024);
    let mut g = c.benchmark_group("tcp_auto_vs_plain");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    let (sock, reader) = sink();
    warm(&sock, &msg);
    let mut tx = ZeroCopySender::new(&sock).unwrap();
    g.bench_function("auto", |b| b.iter(|| tx.send_all(msg.clone()).unwrap()));
    g.bench_function("plain_writev", |b| {
        b.iter(|| write_all(&sock, &msg).unwrap())
    });
    tx.flush(Duration::from_secs(5)).unwrap();
    let s = tx.stats();
    println!(
        "tcp Auto: {} zero-copy sends of {}, copied {} of {} completions; {}",
        s.zerocopy_sends, s.sends, s.copied_completions, s.completions, s.auto
    );
    drop(tx);
    drop(sock);
    reader.join().unwrap();
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(10);
    targets = shapes, auto_vs_plain
}

fn warm(sock: &TcpStream, msg: &Composite) {
    // Let TCP autotuning settle before anything is timed.
    for _ in 0..64 {
        GatherWriter::new(msg.clone()).write_all(sock).unwrap();
    }
}

/// The ratios, measured side by side in interleaved rounds.
fn interleaved_summary() {
    let burst = Duration::from_millis(60);
    println!("\n== io_gather: interleaved side-by-side ratios (a's throughput / b's) ==");
    for (parts, size) in [(16, 64 * 1024), (1024, 1024)] {
        let msg = composite(parts, size);
        let contiguous = msg.to_vec();
        let mut scratch = Vec::with_capacity(msg.len());
        let (sock, reader) = sink();
        warm(&sock, &msg);
        let g = group_name(parts, size);
        let mut gather = || {
            write_all(&sock, &msg).unwrap();
        };
        let mut contig = || (&sock).write_all(&contiguous).unwrap();
        summary::interleaved(
            &format!("{g}: composite vs contiguous"),
            ">= 0.95x",
            10,
            burst,
            &mut gather,
            &mut contig,
        );
        let mut gather = || {
            write_all(&sock, &msg).unwrap();
        };
        let mut copy = || {
            scratch.clear();
            for chunk in msg.chunks() {
                scratch.extend_from_slice(chunk);
            }
            (&sock).write_all(&scratch).unwrap();
        };
        summary::interleaved(
            &format!("{g}: composite vs copy-then-write"),
            "> 1.0x",
            10,
            burst,
            &mut gather,
            &mut copy,
        );
        drop(sock);
        reader.join().unwrap();
    }
    let msg = composite(16, 64 * 1024);
    let (sock, reader) = sink();
    warm(&sock, &msg);
    let mut tx = ZeroCopySender::new(&sock).unwrap();
    let mut auto = || tx.send_all(msg.clone()).unwrap();
    let mut plain = || {
        write_all(&sock, &msg).unwrap();
    };
    summary::interleaved(
        "tcp 16x64KiB: Auto vs plain writev",
        "0.95x..1.05x",
        10,
        burst,
        &mut auto,
        &mut plain,
    );
    println!("  Auto decided: {}", tx.stats().auto);
    drop(tx);
    drop(sock);
    reader.join().unwrap();
}

fn main() {
    pin_to(0);
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !summary::measuring() {
        return;
    }
    interleaved_summary();
    println!("\n== io_gather: ratios from criterion's medians above ==");
    for (parts, size) in [(16, 64 * 1024), (1024, 1024)] {
        let g = group_name(parts, size);
        summary::ratio(
            &format!("{g}: composite vs contiguous"),
            &g,
            "composite",
            "contiguous",
            ">= 0.95x",
        );
        summary::ratio(
            &format!("{g}: composite vs copy-then-write"),
            &g,
            "composite",
            "copy_then_write",
            "> 1.0x",
        );
        summary::ratio(
            &format!("{g}: copy-then-write vs contiguous"),
            &g,
            "copy_then_write",
            "contiguous",
            "reference",
        );
    }
    summary::ratio(
        "tcp: Auto vs plain writev",
        "tcp_auto_vs_plain",
        "auto",
        "plain_writev",
        "0.95x..1.05x",
    );
}
