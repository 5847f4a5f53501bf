//! The tokio front end (feature `tokio`).
//!
//! - Loopback TCP, a reader thread draining: one message of 16 x 64 KiB
//!   pieces sent by the async sender, against tokio's `write_all` of one
//!   contiguous 1 MiB `Bytes` and against `write_vectored` of the same 16
//!   pieces.
//! - UDP through the veth sink (a private network namespace, where the
//!   kernel does not copy): the async zero-copy sender against the
//!   blocking one, 16 datagrams of 64 KB per iteration. The bench
//!   re-executes itself under `unshare -n` for this part; where it cannot,
//!   it says so and measures only the first part.
//!
//! Prints interleaved ratios after criterion's output.

#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "support/summary.rs"]
mod summary;

use std::io::{IoSlice, Read};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use zcbuf::io::tokio::AsyncZeroCopySender;
use zcbuf::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

const PIECE: usize = 64 * 1024;
const PIECES: usize = 16;

fn rt() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A loopback connection whose far end a thread reads and discards.
fn drained(rt: &Runtime) -> tokio::net::TcpStream {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    c.set_nonblocking(true).unwrap();
    c.set_nodelay(true).unwrap();
    let _guard = rt.enter();
    tokio::net::TcpStream::from_std(c).unwrap()
}

struct Tcp {
    rt: Runtime,
    zc: AsyncZeroCopySender<tokio::net::TcpStream>,
    contiguous: tokio::net::TcpStream,
    vectored: tokio::net::TcpStream,
    msg: Composite,
    bytes: bytes::Bytes,
    pieces: Vec<Buf>,
}

impl Tcp {
    fn new() -> Self {
        let rt = rt();
        let zc = {
            let s = drained(&rt);
            let _guard = rt.enter();
            AsyncZeroCopySender::new(s).unwrap()
        };
        let (contiguous, vectored) = (drained(&rt), drained(&rt));
        let pieces: Vec<Buf> = (0..PIECES)
            .map(|i| Buf::from(vec![i as u8; PIECE]))
            .collect();
        let msg: Composite = pieces.iter().cloned().collect();
        let bytes = bytes::Bytes::from(msg.to_vec());
        Self {
            rt,
            zc,
            contiguous,
            vectored,
            msg,
            bytes,
            pieces,
        }
    }

    fn send_zc(&mut self) {
        let (zc, msg) = (&mut self.zc, &self.msg);
        self.rt.block_on(zc.send(msg)).unwrap();
    }

    fn write_all(&mut self) {
        let (s, b) = (&mut self.contiguous, &self.bytes);
        self.rt.block_on(s.write_all(b)).unwrap();
    }

    fn write_vectored(&mut self) {
        let (s, pieces) = (&mut self.vectored, &self.pieces);
        self.rt.block_on(async {
            let mut at = 0usize;
            let total = PIECE * PIECES;
            while at < total {
                let first = at / PIECE;
                let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(PIECES);
                iov.push(IoSlice::new(&pieces[first][at % PIECE..]));
                iov.extend(pieces[first + 1..].iter().map(|p| IoSlice::new(p)));
                at += s.write_vectored(&iov).await.unwrap();
            }
        });
    }
}

fn tcp(c: &mut Criterion, t: &mut Tcp) {
    let mut g = c.benchmark_group("tokio_tcp_16x64KiB");
    g.throughput(Throughput::Bytes((PIECE * PIECES) as u64));
    g.bench_function(BenchmarkId::from_parameter("async_sender"), |b| {
        b.iter(|| t.send_zc())
    });
    g.bench_function(BenchmarkId::from_parameter("write_all_bytes"), |b| {
        b.iter(|| t.write_all())
    });
    g.bench_function(BenchmarkId::from_parameter("write_vectored"), |b| {
        b.iter(|| t.write_vectored())
    });
    g.finish();
}

fn tcp_summary(t: &mut Tcp) {
    println!("\n== async_zerocopy: tokio TCP loopback, 16 x 64 KiB, interleaved ratios (a's throughput / b's) ==");
    let burst = Duration::from_millis(100);
    let t = std::cell::RefCell::new(t);
    summary::interleaved(
        "async sender vs write_all(Bytes)",
        ">= 1.0x",
        10,
        burst,
        &mut || t.borrow_mut().send_zc(),
        &mut || t.borrow_mut().write_all(),
    );
    summary::interleaved(
        "async sender vs write_vectored",
        ">= 1.0x",
        10,
        burst,
        &mut || t.borrow_mut().send_zc(),
        &mut || t.borrow_mut().write_vectored(),
    );
}

/// Inside the namespace: async vs blocking zero-copy on the veth sink.
fn veth(c: &mut Criterion) {
    let always = ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        threshold: 0,
        ..ZeroCopyConfig::default()
    };
    let rt = rt();
    let mut blocking =
        ZeroCopySender::with_config(netns::setup_veth_sink(), always.clone()).unwrap();
    let sock = netns::setup_veth_sink();
    let mut async_tx = {
        let _guard = rt.enter();
        AsyncZeroCopySender::with_config(sock, always).unwrap()
    };
    let payload = Buf::from(vec![0x5a; 65000]);
    let mut run_async = || {
        rt.block_on(async {
            for _ in 0..PIECES {
                async_tx.send_buf(&payload).await.unwrap();
            }
        })
    };
    let mut run_blocking = || {
        for _ in 0..PIECES {
            blocking.send_all(Composite::from(payload.clone())).unwrap();
        }
    };
    let mut g = c.benchmark_group("veth_udp_16x64KB");
    g.throughput(Throughput::Bytes(65000 * PIECES as u64));
    g.bench_function(BenchmarkId::from_parameter("async"), |b| {
        b.iter(&mut run_async)
    });
    g.bench_function(BenchmarkId::from_parameter("blocking"), |b| {
        b.iter(&mut run_blocking)
    });
    g.finish();
    if summary::measuring() {
        println!("\n== async_zerocopy: UDP via the veth sink, interleaved ratios (a's throughput / b's) ==");
        summary::interleaved(
            "veth 16 x 64 KB: async zero-copy vs blocking",
            ">= 0.95x",
            10,
            Duration::from_millis(100),
            &mut run_async,
            &mut run_blocking,
        );
    }
}

fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(400))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(10)
        .configure_from_args()
}

fn main() {
    if netns::inside() {
        let mut c = criterion();
        veth(&mut c);
        c.final_summary();
        return;
    }
    let mut c = criterion();
    let mut t = Tcp::new();
    tcp(&mut c, &mut t);
    c.final_summary();
    if summary::measuring() {
        tcp_summary(&mut t);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match netns::reexec_in_netns(&args) {
        Ok(status) => assert!(status.success(), "the veth part failed: {status}"),
        Err(why) => {
            println!("async_zerocopy veth part: SKIPPED, no private network namespace here: {why}")
        }
    }
}
