//! `Auto`'s cost check: zero-copy is not free (pinning pages, a completion
//! to allocate, queue and read), so below some size a copying send is
//! cheaper, and where that size lies depends on the machine. `Auto`
//! therefore measures both kinds of send per size class and uses the
//! cheaper one. What it learns belongs to the route, not the connection:
//! one [`Route`] per peer address is shared by every sender to that peer
//! in the process (a bounded table), so 10k connections to a few peers
//! keep a few cost tables, and a new connection starts from what the
//! earlier ones learnt.
//!
//! # Representation
//!
//! Sends at or above the threshold fall into power-of-two size classes
//! (by the bytes offered to one call). A class starts by probing:
//! alternating zero-copy and plain sends until each kind has
//! [`SAMPLES`] timings (after a couple of warm-up sends) (wall-clock time of the send call per byte sent,
//! plus, for zero-copy, the time spent reading completions amortised over
//! all zero-copy sends). The medians decide, zero-copy only if clearly
//! cheaper; the class re-probes after
//! [`REPROBE_AFTER`] sends, so a change in load or route is noticed.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use parking_lot::Mutex;

/// Timings per kind of send before a class decides.
pub(crate) const SAMPLES: usize = 16;
/// Leading timings per kind thrown away: the first sends of a class pay
/// for cold caches and allocator warm-up.
const DISCARD: usize = 2;
/// Zero-copy must be at least this much cheaper (percent) to be chosen:
/// in a near tie the plain send wins, as it pins nothing.
const MARGIN_PERCENT: u64 = 3;
/// Sends after which a decided class probes again.
pub(crate) const REPROBE_AFTER: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Probe,
    ZeroCopy,
    Plain,
}

#[derive(Debug, Clone, Copy)]
struct Samples {
    /// Picoseconds per byte sent.
    v: [u64; SAMPLES],
    n: usize,
    /// Timings seen, including the discarded ones.
    seen: usize,
}

impl Samples {
    const EMPTY: Samples = Samples {
        v: [0; SAMPLES],
        n: 0,
        seen: 0,
    };

    fn median(&self) -> u64 {
        let mut v = self.v;
        let s = &mut v[..self.n];
        s.sort_unstable();
        s.get(s.len() / 2).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Class {
    zc: Samples,
    plain: Samples,
    choice: Choice,
    since: u32,
    /// Medians behind the last decision, ps per byte.
    zc_ps: u64,
    plain_ps: u64,
}

const EMPTY_CLASS: Class = Class {
    zc: Samples::EMPTY,
    plain: Samples::EMPTY,
    choice: Choice::Probe,
    since: 0,
    zc_ps: 0,
    plain_ps: 0,
};

/// What `Auto` chose for one size class, and the costs behind it.
///
/// ```
/// let c = zcbuf_core::io::AutoSizeChoice { min_bytes: 16384, max_bytes: 32767, zerocopy: Some(false), zerocopy_ps_per_byte: 240, plain_ps_per_byte: 190 };
/// assert!(c.to_string().contains("plain"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoSizeChoice {
    /// Smallest send of the class, bytes.
    pub min_bytes: usize,
    /// Largest send of the class, bytes.
    pub max_bytes: usize,
    /// `Some(true)`: zero-copy; `Some(false)`: plain; `None`: still probing.
    pub zerocopy: Option<bool>,
    /// Measured cost of a zero-copy send, picoseconds per byte.
    pub zerocopy_ps_per_byte: u64,
    /// Measured cost of a plain send, picoseconds per byte.
    pub plain_ps_per_byte: u64,
}

impl fmt::Display for AutoSizeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.zerocopy {
            Some(true) => "zero-copy",
            Some(false) => "plain",
            None => "probing",
        };
        write!(
            f,
            "{}..{} B: {what} (zero-copy {:.1} ns/KiB vs plain {:.1} ns/KiB)",
            self.min_bytes,
            self.max_bytes,
            self.zerocopy_ps_per_byte as f64 * 1.024,
            self.plain_ps_per_byte as f64 * 1.024
        )
    }
}

#[derive(Debug, Default)]
pub(crate) struct CostModel {
    classes: Vec<Class>,
    poll_ns: u64,
    zc_bytes: u64,
}

fn class_of(bytes: usize) -> usize {
    (usize::BITS - bytes.max(1).leading_zeros()) as usize
}

impl CostModel {
    fn class(&mut self, bytes: usize) -> &mut Class {
        let i = class_of(bytes);
        if self.classes.len() <= i {
            self.classes.resize(i + 1, EMPTY_CLASS);
        }
        &mut self.classes[i]
    }

    /// Whether a send offering `bytes` should ask for zero-copy, and
    /// whether it should be timed (only while its class probes, so decided
    /// classes pay nothing for the check).
    pub(crate) fn want_zerocopy(&mut self, bytes: usize) -> (bool, bool) {
        let c = self.class(bytes);
        let zerocopy = match c.choice {
            Choice::Probe => c.zc.seen <= c.plain.seen,
            Choice::ZeroCopy | Choice::Plain => {
                c.since += 1;
                if c.since >= REPROBE_AFTER {
                    c.choice = Choice::Probe;
                    c.zc = Samples::EMPTY;
                    c.plain = Samples::EMPTY;
                    c.since = 0;
                }
                c.choice == Choice::ZeroCopy
            }
        };
        (zerocopy, c.choice == Choice::Probe)
    }

    /// Records a send of `offered` bytes that sent `sent` in `ns`.
    pub(crate) fn record(&mut self, offered: usize, sent: usize, zerocopy: bool, ns: u64) {
        if sent == 0 {
            return;
        }
        let poll_ps_per_byte = (self.poll_ns * 1000)
            .checked_div(self.zc_bytes)
            .unwrap_or(0);
        let ps = ns.saturating_mul(1000) / sent as u64;
        let c = self.class(offered);
        if c.choice != Choice::Probe {
            return;
        }
        let s = if zerocopy { &mut c.zc } else { &mut c.plain };
        s.seen += 1;
        if s.seen > DISCARD && s.n < SAMPLES {
            s.v[s.n] = ps;
            s.n += 1;
        }
        if c.zc.n == SAMPLES && c.plain.n == SAMPLES {
            c.zc_ps = c.zc.median() + poll_ps_per_byte;
            c.plain_ps = c.plain.median();
            c.choice = if c.zc_ps * 100 < c.plain_ps * (100 - MARGIN_PERCENT) {
                Choice::ZeroCopy
            } else {
                Choice::Plain
            };
            c.since = 0;
        }
    }

    /// Counts every zero-copy send, timed or not, so the completion time
    /// is spread over all of them.
    pub(crate) fn note_zerocopy(&mut self, sent: usize) {
        self.zc_bytes += sent as u64;
    }

    /// Time spent reading completions, charged to zero-copy sends.
    pub(crate) fn add_poll_time(&mut self, ns: u64) {
        self.poll_ns += ns;
    }

    pub(crate) fn report(&self) -> Vec<AutoSizeChoice> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.zc.n + c.plain.n > 0 || c.choice != Choice::Probe || c.zc_ps + c.plain_ps > 0
            })
            .map(|(i, c)| AutoSizeChoice {
                min_bytes: 1usize << (i - 1),
                max_bytes: (1usize << i) - 1,
                zerocopy: match c.choice {
                    Choice::Probe => None,
                    Choice::ZeroCopy => Some(true),
                    Choice::Plain => Some(false),
                },
                zerocopy_ps_per_byte: c.zc_ps,
                plain_ps_per_byte: c.plain_ps,
            })
            .collect()
    }
}

/// What the process knows about one peer address.
#[derive(Debug)]
pub(crate) struct Route {
    /// The peer is this host: the kernel copies every zero-copy send.
    pub(crate) local: bool,
    /// `Auto`'s cost table for sends to this peer.
    pub(crate) costs: Mutex<CostModel>,
}

/// Peers remembered at most; past it an arbitrary one is forgotten.
const MAX_ROUTES: usize = 1024;

static ROUTES: Mutex<Option<HashMap<IpAddr, Arc<Route>>>> = Mutex::new(None);

/// The peer address of a connected IP socket.
fn peer_ip(fd: BorrowedFd<'_>) -> Option<IpAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are writable for the call; `len` says how
    // much room `ss` has.
    let r = unsafe {
        libc::getpeername(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET).
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6).
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&ss as *const libc::sockaddr_storage).cast()) };
            Some(IpAddr::from(sin6.sin6_addr.s6_addr).to_canonical())
        }
        _ => None,
    }
}

/// Whether `ip` is this host: loopback, or an address a socket can bind
/// to (the kernel accepts a bind only to one of its own addresses).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The shared knowledge about `fd`'s peer; `None` when it has no IP peer
/// (unconnected, or not an IP socket).
pub(crate) fn route_of(fd: BorrowedFd<'_>) -> Option<Arc<Route>> {
    let ip = peer_ip(fd)?;
    if let Some(route) = ROUTES.lock().as_ref().and_then(|m| m.get(&ip)) {
        return Some(Arc::clone(route));
    }
    // Outside the lock: the bind test is a few system calls.
    let route = Arc::new(Route {
        local: is_local(ip),
        costs: Mutex::new(CostModel::default()),
    });
    let mut routes = ROUTES.lock();
    let map = routes.get_or_insert_with(HashMap::new);
    if map.len() >= MAX_ROUTES && !map.contains_key(&ip) {
        let victim = *map.keys().next().expect("the table is full");
        map.remove(&victim);
    }
    Some(Arc::clone(map.entry(ip).or_insert(route)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "opens sockets, which Miri cannot")]
    fn local_peers_are_known_from_the_start() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        use std::os::fd::AsFd;
        let r = route_of(a.as_fd()).unwrap();
        assert!(r.local);
        assert!(
            Arc::ptr_eq(&r, &route_of(a.as_fd()).unwrap()),
            "shared per peer"
        );
        let unconnected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(route_of(unconnected.as_fd()).is_none());
        assert!(!is_local("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn probes_alternately_then_picks_the_cheaper_and_reprobes() {
        let mut m = CostModel::default();
        let mut kinds = Vec::new();
        for _ in 0..2 * (SAMPLES + DISCARD) {
            let (zc, timed) = m.want_zerocopy(20_000);
            assert!(timed);
            kinds.push(zc);
            if zc {
                m.note_zerocopy(20_000);
            }
            // zero-copy 2 us, plain 1 us for 20 000 bytes: plain wins.
            m.record(20_000, 20_000, zc, if zc { 2000 } else { 1000 });
        }
        assert_eq!(kinds.iter().filter(|&&z| z).count(), SAMPLES + DISCARD);
        let r = m.report();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].min_bytes, r[0].max_bytes), (16384, 32767));
        assert_eq!(r[0].zerocopy, Some(false));
        assert_eq!(
            (r[0].zerocopy_ps_per_byte, r[0].plain_ps_per_byte),
            (100, 50)
        );
        assert_eq!(m.want_zerocopy(30_000), (false, false));
        // Another class decides on its own.
        for _ in 0..2 * (SAMPLES + DISCARD) {
            let (zc, _) = m.want_zerocopy(65_000);
            m.record(65_000, 65_000, zc, if zc { 3000 } else { 5000 });
        }
        assert_eq!(m.want_zerocopy(65_000), (true, false));
        for _ in 0..REPROBE_AFTER {
            m.want_zerocopy(20_000);
        }
        assert_eq!(m.report()[0].zerocopy, None, "reprobing");
    }
}
