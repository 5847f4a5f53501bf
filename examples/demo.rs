//! The zcbuf demo: one message stitched from a header, a memory-mapped file
//! and slices of a shared buffer — never copied in user space — sent over
//! loopback TCP and, where a private network namespace can be made, by UDP
//! through a veth sink where the kernel does not copy either.
//!
//! Run: `cargo run --release --example demo`. Exits non-zero if the
//! receiver's digest differs from the sender's.

#[path = "../tests/support/netns.rs"]
mod netns;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::Duration;

use zcbuf::io::recv::frame_header;
use zcbuf::io::{
    map_file, FrameDecoder, GatherWriter, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender,
};
use zcbuf::{Buf, Composite};

/// FNV-1a, 64 bit: a simple digest both ends compute.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn digest_of(msg: &Composite) -> u64 {
    let mut h = Fnv::new();
    for chunk in msg.chunks() {
        h.update(chunk);
    }
    h.0
}

/// The payload: a header, the mapped file, and slices of one shared buffer.
fn build_payload(file: &std::fs::File, file_len: usize) -> Composite {
    // SAFETY: the demo's temporary file is neither written nor truncated
    // while it is mapped.
    let mapped = unsafe { map_file(file, ..) }.expect("map the file");
    let shared = Buf::from(
        (0..1 << 20)
            .map(|i| (i * 7 % 256) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut body = Composite::new();
    body.push(Buf::from(format!(
        "zcbuf demo message\r\nfile: {file_len} bytes, then 48 slices\r\n\r\n"
    )));
    body.push(mapped);
    for i in 0..48 {
        let start = (i * 20_011) % (shared.len() - 9_000);
        body.push(shared.slice(start..start + 1_000 + i * 150));
    }
    body
}

fn tcp(payload: &Composite, rounds: usize) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(listener.local_addr().unwrap()).map_err(|e| e.to_string())?;
    let (mut peer, _) = listener.accept().map_err(|e| e.to_string())?;
    let receiver = std::thread::spawn(move || -> std::io::Result<(usize, u64, Vec<u64>)> {
        let mut dec = FrameDecoder::new().max_frame(64 << 20);
        let (mut bytes, mut spanning, mut digests) = (0usize, 0u64, Vec::new());
        while let Some(frame) = dec.read_frame(&mut peer)? {
            bytes += frame.len();
            let frame = frame.into_composite();
            if frame.component_count() > 1 {
                spanning += 1;
            }
            digests.push(digest_of(&frame));
        }
        Ok((bytes, spanning, digests))
    });

    let framed = |p: &Composite| {
        let mut m = Composite::new();
        m.push(Buf::copy_from_slice(&frame_header(p.len() as u32)));
        m.append(p.clone());
        m
    };

    // One message by a plain gather write.
    let mut w = GatherWriter::new(framed(payload));
    w.write_all(&sock).map_err(|e| e.to_string())?;
    println!(
        "[tcp loopback] gather write: {} bytes in {} writev/sendmsg calls, {:.1} iovecs per call",
        w.written(),
        w.calls(),
        w.iovecs() as f64 / w.calls() as f64
    );

    // The rest through a zero-copy sender in Auto mode.
    let mut tx = ZeroCopySender::new(&sock).map_err(|e| e.to_string())?;
    for _ in 1..rounds {
        tx.send_all(framed(payload)).map_err(|e| e.to_string())?;
    }
    tx.flush(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let s = tx.stats();
    drop(tx);
    sock.shutdown(std::net::Shutdown::Write).ok();
    let (bytes, spanning, digests) = receiver.join().unwrap().map_err(|e| e.to_string())?;
    println!(
        "[tcp loopback] ZeroCopySender (Auto): {} messages, {} bytes in {} sendmsg calls, {:.1} iovecs per call",
        rounds - 1,
        s.bytes,
        s.sends,
        s.iovecs as f64 / s.sends.max(1) as f64
    );
    println!(
        "[tcp loopback]   zero-copy sends {}, completions {}, COPIED {} ({:.0}% of completions), peak pinned {} KiB",
        s.zerocopy_sends,
        s.completions,
        s.copied_completions,
        s.copied_share() * 100.0,
        s.peak_pinned_bytes / 1024
    );
    println!("[tcp loopback]   Auto decided: {}", s.auto);
    println!(
        "[tcp loopback]     (loopback delivers into a local socket, so the kernel copies anyway: zero-copy buys nothing here)"
    );
    let want = digest_of(payload);
    println!(
        "[tcp loopback] receiver: {} frames ({} spanning several 64 KiB chunks, decoded without copying), {} bytes",
        digests.len(),
        spanning,
        bytes
    );
    let ok = digests.len() == rounds && digests.iter().all(|&d| d == want);
    println!(
        "[tcp loopback] digest: sender {want:#018x}, receiver {} -> {}",
        digests
            .first()
            .map(|d| format!("{d:#018x}"))
            .unwrap_or_else(|| "none".into()),
        if ok { "MATCH" } else { "MISMATCH" }
    );
    if ok {
        Ok(())
    } else {
        Err("tcp digest mismatch".into())
    }
}

/// A packet socket on v1 that sees the datagrams the sink drops (used
/// only to check the bytes; a tap makes the kernel copy, so the zero-copy
/// pass runs before it is opened).
fn tap_on_v1() -> std::io::Result<OwnedFd> {
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let big: libc::c_int = 256 << 20;
    // SAFETY: valid socket, c_int option living across the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &big as *const _ as *const libc::c_void,
            4,
        )
    };
    // SAFETY: a zeroed sockaddr_ll is valid; we fill family, protocol, ifindex.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    // SAFETY: a NUL-terminated interface name.
    sll.sll_ifindex = unsafe { libc::if_nametoindex(c"v1".as_ptr()) } as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Reads UDP payloads to the sink from the tap until it is empty.
fn drain_tap(fd: &OwnedFd, digest: &mut Fnv) -> (usize, usize) {
    let mut buf = vec![0u8; 70_000];
    let (mut datagrams, mut bytes) = (0, 0);
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return (datagrams, bytes);
        }
        let p = &buf[..n as usize];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() < ihl + 8 || p[9] != 17 || p[16..20] != netns::SINK.octets() {
            continue;
        }
        let payload = &p[ihl + 8..];
        digest.update(payload);
        datagrams += 1;
        bytes += payload.len();
    }
}

fn veth(payload: &Composite) -> Result<(), String> {
    const DATAGRAM: usize = 60_000;
    let datagrams = || {
        let mut rest = payload.clone();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let n = rest.len().min(DATAGRAM);
            out.push(rest.split_to(n)); // zero-copy: views of the same memory
        }
        out
    };
    // Zero-copy pass: Auto decides for itself.
    let sock = netns::setup_veth_sink();
    let mut tx = ZeroCopySender::new(&sock).map_err(|e| e.to_string())?;
    let mut count = 0;
    for _ in 0..20 {
        for d in datagrams() {
            tx.send_all(d).map_err(|e| e.to_string())?;
            count += 1;
        }
    }
    tx.flush(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let s = tx.stats();
    println!(
        "[udp veth sink] ZeroCopySender (Auto): {count} datagrams of up to {DATAGRAM} bytes, {} bytes, {:.1} iovecs per call",
        s.bytes,
        s.iovecs as f64 / s.sends.max(1) as f64
    );
    println!(
        "[udp veth sink]   zero-copy sends {}, completions {}, COPIED {} ({:.0}% of completions), peak pinned {} KiB",
        s.zerocopy_sends,
        s.completions,
        s.copied_completions,
        s.copied_share() * 100.0,
        s.peak_pinned_bytes / 1024
    );
    println!(
        "[udp veth sink]   datagrams with too many pieces for one packet, sent by copy (EMSGSIZE): {}",
        s.emsgsize_fallbacks
    );
    println!("[udp veth sink]   Auto decided: {}", s.auto);
    for choice in tx.auto_sizes() {
        println!("[udp veth sink]   Auto by size: {choice}");
    }
    drop(tx);

    // Check pass: the same datagrams (Always zero-copy), seen by a tap on
    // the peer end; the tap makes the kernel copy, which the stats show.
    let tap = tap_on_v1().map_err(|e| format!("packet tap: {e}"))?;
    let sock = netns::setup_veth_sink();
    let cfg = ZeroCopyConfig {
        mode: ZeroCopyMode::Always,
        ..ZeroCopyConfig::default()
    };
    let mut tx = ZeroCopySender::with_config(&sock, cfg).map_err(|e| e.to_string())?;
    let mut seen = Fnv::new();
    let (mut got, mut got_bytes) = (0, 0);
    for d in datagrams() {
        tx.send_all(d).map_err(|e| e.to_string())?;
        let (n, b) = drain_tap(&tap, &mut seen);
        got += n;
        got_bytes += b;
    }
    tx.flush(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(20));
    let (n, b) = drain_tap(&tap, &mut seen);
    got += n;
    got_bytes += b;
    let s = tx.stats();
    let want = digest_of(payload);
    let ok = seen.0 == want && got_bytes == payload.len();
    println!(
        "[udp veth sink] check pass with a tap on v1: {got} datagrams, {got_bytes} bytes seen; COPIED {} of {} completions (a tap copies)",
        s.copied_completions, s.completions
    );
    println!(
        "[udp veth sink] digest: sender {want:#018x}, tap {:#018x} -> {}",
        seen.0,
        if ok { "MATCH" } else { "MISMATCH" }
    );
    if ok {
        Ok(())
    } else {
        Err("udp digest mismatch".into())
    }
}

fn main() -> ExitCode {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("zcbuf-demo-{}.bin", std::process::id()));
    let file_len = 3 << 20;
    let content: Vec<u8> = (0..file_len).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&content))
        .expect("write the demo file");
    let file = std::fs::File::open(&path).expect("open the demo file");
    let payload = build_payload(&file, file_len);

    let result = if netns::inside() {
        veth(&payload)
    } else {
        println!(
            "zcbuf demo: message of {} components ({} bytes): a header, a {} MiB memory-mapped file, 48 slices of one shared buffer; digest {:#018x}",
            payload.component_count(),
            payload.len(),
            file_len >> 20,
            digest_of(&payload)
        );
        let mut result = tcp(&payload, 16);
        if result.is_ok() {
            match netns::reexec_in_netns(&[]) {
                Ok(status) if status.success() => {}
                Ok(status) => result = Err(format!("veth part failed: {status}")),
                Err(why) => println!("[udp veth sink] SKIPPED: {why}"),
            }
        }
        result
    };
    drop(file);
    let _ = std::fs::remove_file(&path);
    match result {
        Ok(()) => {
            if !netns::inside() {
                println!("demo OK");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
