//! UDP through the veth sink (a private network namespace, DESIGN.md):
//! `MSG_ZEROCOPY` against a plain send, and `Auto`, at 4, 16 and 64 KiB.
//! The bench re-executes itself under `unshare -n`; where it cannot, it
//! says so and measures nothing. Prints the ratios after criterion's
//! output.

#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "support/summary.rs"]
mod summary;

use std::net::UdpSocket;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use zcbuf::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::Buf;

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
}
