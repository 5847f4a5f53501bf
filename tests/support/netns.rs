//! Shared by the io tests, benches and the demo: a private network
//! namespace with a veth pair and a neighbour nobody owns, where UDP
//! datagrams leave without the kernel copying them (DESIGN.md, "Facts for
//! testing on one machine").
//!
//! The process re-executes itself under `unshare -n` (needs root) with
//! [`INNER_ENV`] set; inside, [`setup_veth_sink`] builds the pair. Where
//! namespaces are unavailable, [`run_inside`] says so and the test is
//! skipped, except under `CI=true`, where it fails.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, ExitStatus, Stdio};

/// Set in the environment of the re-executed process inside the namespace.
pub const INNER_ENV: &str = "ZCBUF_NETNS_INNER";
/// Our address on `v0`.
pub const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The neighbour with a static ARP entry that no interface owns.
pub const SINK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Whether this process is the re-executed one inside the namespace.
pub fn inside() -> bool {
    std::env::var_os(INNER_ENV).is_some()
}

/// Runs this executable again under `unshare -n` with `args` and
/// [`INNER_ENV`] set, output passed through. `Err(reason)` when the
/// namespace cannot be made here (not root, no `unshare`, not permitted).
pub fn reexec_in_netns(args: &[&str]) -> Result<ExitStatus, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root, cannot make a network namespace".into());
    }
    let probe = Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(format!("`unshare -n true` failed ({s})")),
        Err(e) => return Err(format!("cannot run unshare: {e}")),
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new("unshare")
        .arg("-n")
        .arg(exe)
        .args(args)
        .env(INNER_ENV, "1")
        .status()
        .map_err(|e| format!("cannot run unshare: {e}"))
}

/// Whether the environment says this is CI (`CI=true`), where a test that
/// cannot run must fail rather than pass without checking anything.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test (or part of one) that cannot run here: under `CI=true` this
/// panics with `why`; elsewhere it prints why and the caller returns.
pub fn cannot_run(test: &str, why: &str) {
    assert!(!ci(), "{test} cannot run and CI=true: {why}");
    eprintln!("SKIPPED {test}: {why}");
}

/// Runs the calling test, named `test`, in a private network namespace.
/// Outside one, re-executes this test binary under `unshare -n` with only
/// that test selected, asserts that it passed, and returns `false` (the
/// caller returns); inside, returns `true` (the caller does the work).
/// When no namespace can be made: see [`cannot_run`].
pub fn run_inside(test: &str) -> bool {
    if inside() {
        return true;
    }
    match reexec_in_netns(&["--exact", test, "--nocapture", "--test-threads=1"]) {
        Ok(status) => {
            assert!(
                status.success(),
                "{test} failed inside the namespace: {status}"
            );
        }
        Err(why) => cannot_run(test, &why),
    }
    false
}

/// Runs `tc` with `args` inside the namespace.
pub fn tc(args: &str) {
    let status = Command::new("tc")
        .args(args.split_whitespace())
        .status()
        .unwrap_or_else(|e| panic!("cannot run `tc {args}`: {e}"));
    assert!(status.success(), "`tc {args}` failed: {status}");
}

/// A packet socket on `v1` that sees every IPv4 packet the sink gets:
/// what really left, byte for byte.
pub fn capture_on_sink() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    assert!(inside());
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let big: libc::c_int = 256 << 20;
    // SAFETY: a c_int option value living across the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&big as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: an all-zero sockaddr_ll is valid; the name is NUL-terminated.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    // SAFETY: a NUL-terminated interface name.
    sll.sll_ifindex = unsafe { libc::if_nametoindex(c"v1".as_ptr()) } as i32;
    assert!(sll.sll_ifindex > 0, "no v1");
    // SAFETY: `sll` is a valid sockaddr_ll for the call.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "bind packet socket: {}",
        std::io::Error::last_os_error()
    );
    owned
}

/// The UDP payloads captured so far (waits `quiet` after the last one).
pub fn captured_udp_payloads(
    cap: &std::os::fd::OwnedFd,
    quiet: std::time::Duration,
) -> Vec<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        let mut pfd = libc::pollfd {
            fd: cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, quiet.as_millis() as i32) } <= 0 {
            return out;
        }
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(cap.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert!(n >= 0, "capture: {}", std::io::Error::last_os_error());
        let pkt = &buf[..n as usize];
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        if pkt[9] != 17 || pkt.len() < ihl + 8 {
            continue;
        }
        out.push(pkt[ihl + 8..].to_vec());
    }
}

fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .unwrap_or_else(|e| panic!("cannot run `ip {args}`: {e}"));
    assert!(status.success(), "`ip {args}` failed: {status}");
}

/// Inside the namespace: veth pair v0/v1 (MTU 65535 so a 64 KB datagram
/// is one packet the device can take by reference), 198.18.0.1/24 on v0,
/// and a permanent neighbour entry for 198.18.0.2 that nobody answers to.
/// Returns a UDP socket bound on v0 and connected to the sink.
pub fn setup_veth_sink() -> UdpSocket {
    assert!(inside(), "setup_veth_sink outside the private namespace");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(make_veth_pair);
    let sock = UdpSocket::bind(SocketAddrV4::new(LOCAL, 0)).expect("bind on v0");
    sock.connect(SocketAddrV4::new(SINK, 9))
        .expect("connect to the sink");
    sock
}

fn make_veth_pair() {
    ip("link set lo up");
    ip("link add v0 type veth peer name v1");
    ip("link set v0 mtu 65535");
    ip("link set v1 mtu 65535");
    ip("addr add 198.18.0.1/24 dev v0");
    ip("link set v0 up");
    ip("link set v1 up");
    ip("neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent");
}

/// Inside the namespace: a second veth pair whose far end lives in a
/// further namespace of its own (a thread's), with a TCP listener there
/// on 198.19.0.2 whose accepted connection is read to the end by that
/// thread. From here the peer is not an address of this host, yet the
/// kernel delivers to a local socket and so copies every zero-copy send
/// (as for a container on the same machine). `rcvbuf` is set on the
/// listener. Each call makes a new pair and namespace (`tag` names it).
pub fn peer_in_other_namespace(
    tag: u8,
    rcvbuf: Option<i32>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Read;
    use std::sync::mpsc;
    assert!(inside());
    let (here, there) = (format!("pa{tag}"), format!("pb{tag}"));
    let net = format!("198.19.{tag}");
    ip(&format!("link add {here} type veth peer name {there}"));
    ip(&format!("addr add {net}.1/24 dev {here}"));
    ip(&format!("link set {here} up"));
    let (tid_tx, tid_rx) = mpsc::channel();
    let (moved_tx, moved_rx) = mpsc::channel::<()>();
    let (addr_tx, addr_rx) = mpsc::channel();
    let peer_net = net.clone();
    let reader = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread's network namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        moved_rx.recv().unwrap();
        ip("link set lo up");
        ip(&format!("addr add {peer_net}.2/24 dev {there}"));
        ip(&format!("link set {there} up"));
        let l = std::net::TcpListener::bind((format!("{peer_net}.2").as_str(), 0)).unwrap();
        if let Some(b) = rcvbuf {
            use std::os::fd::AsRawFd;
            // SAFETY: a c_int option value living across the call.
            unsafe {
                libc::setsockopt(
                    l.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&b as *const i32).cast(),
                    std::mem::size_of::<i32>() as libc::socklen_t,
                )
            };
        }
        addr_tx.send(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let tid = tid_rx.recv().unwrap();
    ip(&format!("link set pb{tag} netns {tid}"));
    moved_tx.send(()).unwrap();
    (addr_rx.recv().unwrap(), reader)
}
