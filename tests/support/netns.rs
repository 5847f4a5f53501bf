//! Shared by the io tests, benches and the demo: a private network
//! namespace with a veth pair and a neighbour nobody owns, where UDP
//! datagrams leave without the kernel copying them (DESIGN.md, "Facts for
//! testing on one machine").
//!
//! The process re-executes itself under `unshare -n` (needs root) with
//! [`INNER_ENV`] set; inside, [`setup_veth_sink`] builds the pair. Where
//! namespaces are unavailable, callers say so and skip.

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
    ip("link add v0 type veth peer name v1");
    ip("link set v0 mtu 65535");
    ip("link set v1 mtu 65535");
    ip("addr add 198.18.0.1/24 dev v0");
    ip("link set v0 up");
    ip("link set v1 up");
    ip("neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent");
}
