//! UDP GSO on the veth sink (run inside the bench's private namespace):
//! 44 datagrams of 1,472 bytes (one 64 KB batch, QUIC's shape) sent by
//! zcbuf and by raw libc loops on sockets of their own, same run.
//!
//! Shape (a), back to back in one buffer: zcbuf's `send_batch` with
//! `MSG_ZEROCOPY` against a raw loop of GSO + `MSG_ZEROCOPY` `sendmsg`s
//! with error-queue reaping, a raw `sendmmsg`, and raw per-datagram
//! `send`s; zcbuf's copying GSO (`Never`) against a raw copying GSO loop.
//! Shape (b), a 32-byte header `Buf` plus a 1,440-byte payload slice per
//! datagram: zcbuf's `send_datagrams` (`Always` and `Never`: both make
//! one copying GSO call of the 88 pieces, as the engine's rule says)
//! against the raw copying GSO call of the same pieces and a raw
//! `sendmmsg`; and against the two alternatives the rule turns down:
//! zero-copy calls within the 17-fragment budget (raw), and coalescing
//! into a pooled batch through zcbuf's builder, then one zero-copy call.
//!
//! `rows` returns `(name, value, aim)`, value = the first named side's
//! throughput over the second's, from interleaved bursts on the sending
//! thread's CPU time (see `summary::interleaved`); none under
//! `cargo test --benches`.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use zcbuf::io::zerocopy::{DatagramBatch, DatagramBatchBuilder};
use zcbuf::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
use zcbuf::{Buf, Composite};

use crate::{netns, summary};

const SEG: usize = 1472;
const N: usize = 44;
const HEAD: usize = 32;
const UDP_SEGMENT: libc::c_int = 103;

/// A raw socket to the sink, optionally with `SO_ZEROCOPY`, counting
/// its zero-copy sends not yet reaped.
struct Raw {
    sock: UdpSocket,
    pending: u64,
}

impl Raw {
    fn new(zerocopy: bool) -> Self {
        let sock = netns::setup_veth_sink();
        if zerocopy {
            let one: libc::c_int = 1;
            // SAFETY: a valid socket and a c_int option value for the call.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ZEROCOPY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0, "SO_ZEROCOPY");
        }
        Self { sock, pending: 0 }
    }

    /// Reads every completion waiting (as the C probe does).
    fn reap(&mut self) {
        loop {
            let mut control = [0u64; 16];
            // SAFETY: an all-zero msghdr is valid.
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_control = control.as_mut_ptr().cast();
            m.msg_controllen = std::mem::size_of_val(&control) as _;
            // SAFETY: `m` points at `control`, writable for the call.
            let r = unsafe {
                libc::recvmsg(
                    self.sock.as_raw_fd(),
                    &mut m,
                    libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                return;
            }
            // SAFETY: the kernel filled the control data with a cmsg of a
            // sock_extended_err.
            let ee: libc::sock_extended_err = unsafe {
                let c = libc::CMSG_FIRSTHDR(&m);
                if c.is_null() {
                    continue;
                }
                std::ptr::read_unaligned(libc::CMSG_DATA(c).cast())
            };
            let done = u64::from(ee.ee_data.wrapping_sub(ee.ee_info)) + 1;
            self.pending = self.pending.saturating_sub(done);
        }
    }

    /// One `sendmsg` of `iov` with a `UDP_SEGMENT` cmsg; with
    /// `MSG_ZEROCOPY` it reaps once 32 are pending, or on `ENOBUFS`.
    fn gso(&mut self, iov: &[libc::iovec], zerocopy: bool) {
        let mut control = [0u64; 4];
        // SAFETY: an all-zero msghdr is valid; it then points at `iov`
        // and `control`, both alive for the call.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = iov.as_ptr() as *mut libc::iovec;
        m.msg_iovlen = iov.len() as _;
        m.msg_control = control.as_mut_ptr().cast();
        // SAFETY: pure computations and writes within `control`.
        unsafe {
            m.msg_controllen = libc::CMSG_SPACE(2) as _;
            let c = libc::CMSG_FIRSTHDR(&m);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(2) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), SEG as u16);
        }
        let flags = if zerocopy { libc::MSG_ZEROCOPY } else { 0 };
        // SAFETY: `m` describes live iovecs and control data; the bench
        // keeps the buffers alive for the whole run.
        let r = unsafe { libc::sendmsg(self.sock.as_raw_fd(), &m, flags) };
        if zerocopy {
            if r >= 0 {
                self.pending += 1;
            }
            if self.pending > 32 || r < 0 {
                self.reap();
            }
        }
    }

    /// One `sendmmsg` of the datagrams `iov` describes, `per` iovecs each.
    fn sendmmsg(&self, iov: &[libc::iovec], per: usize) {
        // SAFETY: all-zero mmsghdrs are valid.
        let mut msgs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        for (m, chunk) in msgs.iter_mut().zip(iov.chunks(per)) {
            m.msg_hdr.msg_iov = chunk.as_ptr() as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = chunk.len() as _;
        }
        // SAFETY: every header points at live iovecs.
        unsafe { libc::sendmmsg(self.sock.as_raw_fd(), msgs.as_mut_ptr(), N as _, 0) };
    }

    fn per_datagram(&self, data: &[u8]) {
        for d in data.chunks(SEG) {
            // SAFETY: `d` is readable for its length.
            unsafe { libc::send(self.sock.as_raw_fd(), d.as_ptr().cast(), d.len(), 0) };
        }
    }
}

fn iov(p: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: p.as_ptr() as *mut libc::c_void,
        iov_len: p.len(),
    }
}

/// A sender reading completions once `poll_every` sends are pending.
fn sender_polling(mode: ZeroCopyMode, poll_every: usize) -> ZeroCopySender<UdpSocket> {
    ZeroCopySender::with_config(
        netns::setup_veth_sink(),
        ZeroCopyConfig {
            mode,
            poll_every,
            ..ZeroCopyConfig::default()
        },
    )
    .unwrap()
}

/// A sender reading completions at the raw loop's pace (more than 32
/// pending), so both sides make the same system calls.
fn sender(mode: ZeroCopyMode) -> ZeroCopySender<UdpSocket> {
    sender_polling(mode, 33)
}

/// The criterion runs and the interleaved ratios; see the module docs.
pub fn rows(c: &mut Criterion) -> Vec<(String, f64, String)> {
    // Shape (a): one batch built in place in a pool chunk.
    let mut b = DatagramBatchBuilder::new(SEG, N).unwrap();
    for i in 0..N {
        b.push_with(SEG, |out| {
            out.fill(i as u8 | 1);
            SEG
        })
        .unwrap();
    }
    // The raw loops' zero-copy sends are not tracked by anything that
    // could keep their memory alive after a panic or an early return:
    // what they send is never freed (leaked for the process's life).
    let batch: &'static DatagramBatch = Box::leak(Box::new(b.finish()));
    let data: &[u8] = batch.as_buf();
    let whole = [iov(data)];
    let singles: Vec<libc::iovec> = data.chunks(SEG).map(iov).collect();
    // Shape (b): a header Buf and a payload slice per datagram.
    let payload = Buf::from(vec![0x5au8; N * 1500]);
    let stitched: &'static Vec<Composite> = Box::leak(Box::new(
        (0..N)
            .map(|i| {
                let mut d = Composite::from(Buf::from(vec![i as u8; HEAD]));
                d.push(payload.slice(i * 1500..i * 1500 + SEG - HEAD));
                d
            })
            .collect(),
    ));
    let pieces: Vec<libc::iovec> = stitched.iter().flat_map(|d| d.chunks().map(iov)).collect();

    let mut zc = sender(ZeroCopyMode::Always);
    let mut zc_default = sender_polling(ZeroCopyMode::Always, ZeroCopyConfig::default().poll_every);
    let mut never = sender(ZeroCopyMode::Never);
    let mut st = sender(ZeroCopyMode::Always);
    let mut st_never = sender(ZeroCopyMode::Never);
    let mut coalesce = sender(ZeroCopyMode::Always);
    let mut raw_zc = Raw::new(true);
    let mut raw_split = Raw::new(true);
    let mut raw = Raw::new(false);
    let mut raw_st = Raw::new(false);
    let raw_mm = Raw::new(false);
    let raw_one = Raw::new(false);

    let mut zcbuf_gso_zc = || assert_eq!(zc.send_batch(batch).unwrap(), N);
    let mut zcbuf_gso_zc_default = || assert_eq!(zc_default.send_batch(batch).unwrap(), N);
    let mut zcbuf_gso = || assert_eq!(never.send_batch(batch).unwrap(), N);
    let mut zcbuf_stitched = || assert_eq!(st.send_datagrams(stitched).unwrap(), N);
    let mut zcbuf_stitched_copy = || assert_eq!(st_never.send_datagrams(stitched).unwrap(), N);
    let mut zcbuf_coalesced = || {
        let mut b = DatagramBatchBuilder::new(SEG, N).unwrap();
        for d in stitched {
            b.push_with(SEG, |out| {
                let mut at = 0;
                for p in d.chunks() {
                    out[at..at + p.len()].copy_from_slice(p);
                    at += p.len();
                }
                at
            })
            .unwrap();
        }
        assert_eq!(coalesce.send_batch(&b.finish()).unwrap(), N);
    };
    let mut raw_gso_zc = || raw_zc.gso(&whole, true);
    let mut raw_gso = || raw.gso(&whole, false);
    let mut raw_sendmmsg = || raw_mm.sendmmsg(&singles, 1);
    let mut raw_per_datagram = || raw_one.per_datagram(data);
    let mut raw_stitched_gso = || raw_st.gso(&pieces, false);
    let mut raw_stitched_mmsg = || raw_mm.sendmmsg(&pieces, 2);
    // Five datagrams (ten pieces, at most 15 pages) per zero-copy call.
    let mut raw_stitched_zc_split = || {
        for unit in pieces.chunks(10) {
            raw_split.gso(unit, true);
        }
    };

    {
        let mut g = c.benchmark_group("udp_gso_veth_44x1472");
        g.throughput(Throughput::Bytes((SEG * N) as u64));
        let mut bench = |name: &str, f: &mut dyn FnMut()| {
            g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(&mut *f));
        };
        bench("zcbuf_gso_zc", &mut zcbuf_gso_zc);
        bench("raw_gso_zc", &mut raw_gso_zc);
        bench("zcbuf_gso_copy", &mut zcbuf_gso);
        bench("raw_gso_copy", &mut raw_gso);
        bench("raw_sendmmsg", &mut raw_sendmmsg);
        bench("raw_per_datagram", &mut raw_per_datagram);
        bench("zcbuf_stitched", &mut zcbuf_stitched);
        bench("zcbuf_stitched_copy", &mut zcbuf_stitched_copy);
        bench("raw_stitched_gso_copy", &mut raw_stitched_gso);
        bench("raw_stitched_sendmmsg", &mut raw_stitched_mmsg);
        bench("raw_stitched_zc_split", &mut raw_stitched_zc_split);
        bench("zcbuf_stitched_coalesced_zc", &mut zcbuf_coalesced);
        g.finish();
    }

    if !summary::measuring() {
        // `cargo test --benches`: criterion ran each function once.
        return Vec::new();
    }
    let (rounds, burst) = (10, Duration::from_millis(50));
    println!("\n== io_zerocopy: UDP GSO on the veth sink, 44 x 1472 B, interleaved (a's throughput / b's) ==");
    let mut rows = Vec::new();
    let mut row = |name: &str, aim: &str, a: &mut dyn FnMut(), b: &mut dyn FnMut()| {
        let v = summary::interleaved(name, aim, rounds, burst, a, b);
        rows.push((name.to_string(), v, aim.to_string()));
    };
    row(
        "gso_zc_vs_raw_gso_zc",
        ">=0.95",
        &mut zcbuf_gso_zc,
        &mut raw_gso_zc,
    );
    row(
        "gso_zc_poll16_vs_raw_gso_zc",
        ">=0.95",
        &mut zcbuf_gso_zc_default,
        &mut raw_gso_zc,
    );
    row(
        "gso_zc_vs_sendmmsg",
        ">=10",
        &mut zcbuf_gso_zc,
        &mut raw_sendmmsg,
    );
    row(
        "gso_zc_vs_per_datagram",
        ">=10",
        &mut zcbuf_gso_zc,
        &mut raw_per_datagram,
    );
    row(
        "gso_zc_vs_raw_gso_copy",
        ">=1",
        &mut zcbuf_gso_zc,
        &mut raw_gso,
    );
    row(
        "gso_copy_vs_raw_gso_copy",
        ">=0.95",
        &mut zcbuf_gso,
        &mut raw_gso,
    );
    row(
        "gso_stitched_vs_raw_gso_copy",
        ">=0.95",
        &mut zcbuf_stitched,
        &mut raw_stitched_gso,
    );
    row(
        "gso_stitched_vs_sendmmsg",
        ">=10",
        &mut zcbuf_stitched,
        &mut raw_stitched_mmsg,
    );
    row(
        "gso_stitched_copy_vs_raw_gso_copy",
        ">=0.95",
        &mut zcbuf_stitched_copy,
        &mut raw_stitched_gso,
    );
    row(
        "gso_stitched_vs_zc_split",
        ">=1",
        &mut zcbuf_stitched,
        &mut raw_stitched_zc_split,
    );
    row(
        "gso_stitched_vs_builder_coalesced_zc",
        ">=0.95",
        &mut zcbuf_stitched,
        &mut zcbuf_coalesced,
    );
    for (label, tx) in [
        ("gso zc", &mut zc),
        ("stitched", &mut st),
        ("coalesced", &mut coalesce),
    ] {
        tx.flush(Duration::from_secs(5)).unwrap();
        let s = tx.stats();
        println!(
            "  {label}: {} sends ({} zero-copy), {} completions, {} copied; {:?}",
            s.sends,
            s.zerocopy_sends,
            s.completions,
            s.copied_completions,
            tx.gso_stats()
        );
    }
    rows
}
