//! Reads on a `Composite` next to the same reads on one contiguous
//! `Vec<u8>`, on Netty's composite workload shapes:
//!
//! - SMALL: components of 1–9 bytes, each followed by an empty component;
//! - LARGE: the repeating pattern 512-byte, empty, 1024-byte component;
//!
//! at total sizes 64, 10 240 and 1 024 000 bytes. Three reads each:
//! `u64_at` at pre-generated random offsets, a sequential scan (sum of all
//! bytes) over the components' slices, and a sequential `u8_at` per byte
//! (which leans on the last-hit cache). After criterion's own report, a
//! table gives each composite time as a ratio of the contiguous time.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use zcbuf::{Buf, Composite};

const SIZES: [usize; 3] = [64, 10_240, 1_024_000];
const RANDOM_READS: usize = 1024;

#[derive(Clone, Copy)]
enum Shape {
    Small,
    Large,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Small => "small",
            Shape::Large => "large",
        }
    }

    /// A composite of exactly `total` bytes in this shape, and the same
    /// bytes contiguous.
    fn build(self, total: usize) -> (Composite, Vec<u8>) {
        let bytes: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
        let backing = Buf::from(bytes.clone());
        let mut c = Composite::new();
        let mut at = 0;
        let mut step = 0usize;
        while at < total {
            let want = match self {
                Shape::Small => 1 + step % 9,
                Shape::Large => [512, 0, 1024][step % 3],
            };
            let n = want.min(total - at);
            c.push(backing.slice(at..at + n));
            if let Shape::Small = self {
                c.push(Buf::new());
            }
            at += n;
            step += 1;
        }
        (c, bytes)
    }
}

/// Deterministic offsets in `0..=len-8` (xorshift, fixed seed).
fn random_offsets(len: usize) -> Vec<usize> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..RANDOM_READS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % (len as u64 - 7)) as usize
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for shape in [Shape::Small, Shape::Large] {
        for size in SIZES {
            let (composite, contiguous) = shape.build(size);
            let offsets = random_offsets(size);
            let mut group = c.benchmark_group(format!("{}_{}", shape.name(), size));

            group.throughput(Throughput::Elements(RANDOM_READS as u64));
            group.bench_function("random_u64_composite", |b| {
                b.iter(|| {
                    let mut acc = 0u64;
                    for &o in &offsets {
                        acc = acc.wrapping_add(composite.u64_at(o));
                    }
                    black_box(acc)
                })
            });
            group.bench_function("random_u64_vec", |b| {
                b.iter(|| {
                    let mut acc = 0u64;
                    for &o in &offsets {
                        let word: [u8; 8] = contiguous[o..o + 8].try_into().unwrap();
                        acc = acc.wrapping_add(u64::from_be_bytes(word));
                    }
                    black_box(acc)
                })
            });

            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function("scan_composite", |b| {
                b.iter(|| {
                    let c = black_box(&composite);
                    let mut acc = 0u64;
                    for chunk in c.chunks() {
                        acc = acc.wrapping_add(sum(chunk));
                    }
                    black_box(acc)
                })
            });
            group.bench_function("scan_vec", |b| {
                b.iter(|| black_box(sum(black_box(&contiguous))))
            });

            group.bench_function("u8_at_composite", |b| {
                b.iter(|| {
                    let c = black_box(&composite);
                    let mut acc = 0u64;
                    for i in 0..c.len() {
                        acc = acc.wrapping_add(c.u8_at(i) as u64);
                    }
                    black_box(acc)
                })
            });
            group.bench_function("u8_at_vec", |b| {
                b.iter(|| {
                    let v = black_box(&contiguous);
                    let mut acc = 0u64;
                    // Indexed on purpose: the baseline of a per-offset read.
                    #[allow(clippy::needless_range_loop)]
                    for i in 0..v.len() {
                        acc = acc.wrapping_add(v[i] as u64);
                    }
                    black_box(acc)
                })
            });
            group.finish();
        }
    }
}

#[inline]
fn sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| b as u64).sum()
}

/// Criterion's mean estimate in nanoseconds for one benchmark, if it ran.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{target}/criterion/{group}/{function}/new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + 17..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

fn print_ratios() {
    println!("\ncomposite time / contiguous Vec<u8> time (lower is better; 1.00 = equal)");
    println!(
        "{:<8} {:>9} {:>12} {:>12} {:>12}",
        "shape", "bytes", "random u64", "scan", "u8_at seq"
    );
    for shape in [Shape::Small, Shape::Large] {
        for size in SIZES {
            let group = format!("{}_{}", shape.name(), size);
            let ratio = |op: &str| match (
                mean_ns(&group, &format!("{op}_composite")),
                mean_ns(&group, &format!("{op}_vec")),
            ) {
                (Some(c), Some(v)) if v > 0.0 => format!("{:.2}x", c / v),
                _ => "n/a".to_string(),
            };
            println!(
                "{:<8} {:>9} {:>12} {:>12} {:>12}",
                shape.name(),
                size,
                ratio("random_u64"),
                ratio("scan"),
                ratio("u8_at")
            );
        }
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20)
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    if std::env::args().any(|a| a == "--bench") {
        print_ratios();
    }
}
