//! The blocking driver of the send engine: system calls, error-queue
//! parsing, and the public [`ZeroCopySender`].

use std::fmt;
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::config::{AutoDecision, SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopyStats};
use super::cost::{route_of, AutoSizeChoice, CostModel, Route};
use super::engine::{
    coalesce_small_pieces, pages_spanned, worth_pinning, Engine, MAX_FRAGS, PROBE_BYTES,
};
use super::gso::{self, DatagramBatch, Destination, GsoState, GsoStats, Source, Tally};
use super::uring::{self, UringSender};
use super::window::{attach, detach, Attached, SocketEntry};
use crate::io::gather::{iov_array, send_iov, send_iov_once};
use crate::io::{coalesce_tail, fill_iovecs, is_message_socket, poll_fd, IOV_MAX};
use crate::{Buf, Composite};

/// `SO_EE_ORIGIN_ZEROCOPY` from include/uapi/linux/errqueue.h (the libc
/// crate does not export it).
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` from include/uapi/linux/errqueue.h.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Notifications read per system call: the kernel merges consecutive
/// completions, so a drain normally finds one or two.
const NOTES_PER_CALL: usize = 8;

/// Reads every notification waiting on `fd`'s error queue without
/// blocking and hands it to the engine; returns the sends released.
///
/// One `recvmmsg(MSG_ERRQUEUE)` reads up to [`NOTES_PER_CALL`]
/// notifications and stops by itself at the empty queue, so a drain costs
/// one system call where `recvmsg` needs two (the last one only to learn
/// that the queue is empty). Fewer notifications than asked for means the
/// kernel found the queue empty: for the error queue its per-message read
/// fails with nothing but `EAGAIN` once messages were read (a notification
/// carries no payload; a short control buffer truncates, it does not
/// fail), and `recvmmsg` keeps that `EAGAIN` to itself.
pub(crate) fn read_error_queue(fd: RawFd, eng: &mut Engine) -> io::Result<u64> {
    let mut released = 0;
    loop {
        // Room per notification for one cmsg of sock_extended_err plus the
        // offender address the kernel appends; u64 for cmsghdr alignment.
        let mut control = [[MaybeUninit::<u64>::uninit(); 16]; NOTES_PER_CALL];
        // SAFETY: all-zero mmsghdrs are valid (no name, no iovecs).
        let mut msgs: [libc::mmsghdr; NOTES_PER_CALL] = unsafe { std::mem::zeroed() };
        for (m, c) in msgs.iter_mut().zip(control.iter_mut()) {
            m.msg_hdr.msg_control = c.as_mut_ptr().cast();
            m.msg_hdr.msg_controllen = std::mem::size_of_val(c) as _;
        }
        // SAFETY: each header points at its own control buffer, writable
        // and living across the call; `msgs` holds NOTES_PER_CALL headers.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                NOTES_PER_CALL as _,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                ErrorKind::Interrupted => continue,
                ErrorKind::WouldBlock => return Ok(released),
                _ => return Err(err),
            }
        }
        let read = r as usize;
        for m in &msgs[..read] {
            released += take_notification(&m.msg_hdr, eng);
        }
        if read < NOTES_PER_CALL {
            return Ok(released);
        }
    }
}

/// Hands the zero-copy completion in `hdr`'s control data (filled by the
/// kernel) to the engine; returns the sends released.
fn take_notification(hdr: &libc::msghdr, eng: &mut Engine) -> u64 {
    let mut released = 0;
    // SAFETY: the kernel filled `hdr.msg_controllen` bytes of the control
    // buffer with well-formed cmsgs; CMSG_* walk only those.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: non-null cmsg inside the control data (see above).
        let c = unsafe { &*cmsg };
        let is_recverr = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
            || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
        // SAFETY: CMSG_LEN is a pure computation.
        let header = unsafe { libc::CMSG_LEN(0) } as usize;
        let data_len = (c.cmsg_len as usize).saturating_sub(header);
        if is_recverr && data_len >= std::mem::size_of::<libc::sock_extended_err>() {
            // SAFETY: the cmsg carries at least one sock_extended_err;
            // read_unaligned copes with any alignment.
            let ee: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_errno == 0 {
                released += eng.on_completion(
                    ee.ee_info,
                    ee.ee_data,
                    ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                );
            }
        }
        // SAFETY: as above, within the kernel-filled control data.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    released
}

/// Bytes and pages of the first `n` iovecs.
fn measure(iov: &[MaybeUninit<libc::iovec>], n: usize) -> (usize, usize) {
    let pieces = iov[..n].iter().map(|v| {
        // SAFETY: the caller filled iov[..n]; each describes live memory.
        let v = unsafe { v.assume_init_ref() };
        // SAFETY: as above: `v` describes `iov_len` readable bytes.
        unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) }
    });
    let bytes = iov[..n]
        .iter()
        // SAFETY: the caller filled iov[..n].
        .map(|v| unsafe { v.assume_init_ref() }.iov_len)
        .sum();
    (bytes, pages_spanned(pieces))
}

/// Shortens `iov[..n]` to its first `max` bytes (cutting the last iovec
/// kept); returns the new count and bytes.
fn truncate_iovecs(iov: &mut [MaybeUninit<libc::iovec>], n: usize, max: usize) -> (usize, usize) {
    let mut bytes = 0;
    for (i, slot) in iov[..n].iter_mut().enumerate() {
        // SAFETY: the caller filled iov[..n].
        let v = unsafe { slot.assume_init_mut() };
        if bytes + v.iov_len >= max {
            v.iov_len = max - bytes;
            return (i + 1, max);
        }
        bytes += v.iov_len;
    }
    (n, bytes)
}

/// Bytes `Auto` may send by reference in its probe on stream socket `fd`:
/// [`PROBE_BYTES`], or half the send window the peer offers now when the
/// kernel reports it (`tcpi_snd_wnd`, Linux 6.2+) and it is smaller.
fn probe_budget(fd: RawFd) -> usize {
    // SAFETY: an all-zero tcp_info is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are writable for the call; `len` says how
    // much room `info` has.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    let filled = std::mem::offset_of!(libc::tcp_info, tcpi_snd_wnd) + 4;
    if r != 0 || (len as usize) < filled || info.tcpi_snd_wnd == 0 {
        return PROBE_BYTES;
    }
    PROBE_BYTES.min(info.tcpi_snd_wnd as usize / 2)
}

/// Sends a TCP socket's queued partial segment now. After `Auto`'s probe
/// the next sends may go by copy, which TCP cannot append to the probe's
/// pinned last segment; with Nagle on, that short segment (and all behind
/// it) would wait for the peer's delayed ACK, ~40 ms. Turning
/// `TCP_NODELAY` on pushes it out; the user's setting is then restored.
/// Not TCP: the calls fail and change nothing.
fn push_tail(fd: RawFd) {
    let mut nodelay: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `nodelay` and `len` are writable for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut nodelay as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 || nodelay != 0 {
        return;
    }
    for value in [1 as libc::c_int, 0] {
        // SAFETY: a c_int option value living across the call.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

/// Whether `fd` has `O_NONBLOCK` set.
fn is_nonblocking(fd: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFL only reads the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// After a failed zero-copy call on `fd`: the call may have taken an id
/// anyway, so the error queue is read before anything else is sent, and
/// the engine learns whether it did. A failed read leaves the engine
/// desynchronised (no pin is released again) and is returned.
pub(super) fn settle_failed_send(fd: RawFd, eng: &mut Engine) -> io::Result<()> {
    eng.begin_failed_send();
    if let Err(read) = read_error_queue(fd, eng) {
        eng.desync();
        return Err(read);
    }
    eng.end_failed_send();
    Ok(())
}

/// `timeout` from now, or `None` (never) when that is past what an
/// `Instant` can hold: `Duration::MAX` means "wait for ever", not a panic.
pub(super) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The socket's `SO_SNDTIMEO`, if set.
pub(super) fn send_timeout(fd: RawFd) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are writable for the call; `len` says how
    // much room `tv` has.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    let t = Duration::from_secs(tv.tv_sec.max(0) as u64)
        + Duration::from_micros(tv.tv_usec.max(0) as u64);
    (r == 0 && !t.is_zero()).then_some(t)
}

/// After a `MSG_DONTWAIT` call on `fd` found no room: on a non-blocking
/// descriptor returns `false` at once (the caller's `EAGAIN` stands); on
/// a blocking one waits, without any lock, until it is writable or has a
/// notification queued and returns `true` (retry), or `false` once
/// `limit` (the sender's wait limit) or else the socket's own
/// `SO_SNDTIMEO` has passed since the first wait (`deadline` keeps it
/// across calls), as a blocking `sendmsg` would.
pub(super) fn blocking_wait(
    fd: RawFd,
    limit: Option<Duration>,
    deadline: &mut Option<Option<Instant>>,
) -> io::Result<bool> {
    if is_nonblocking(fd)? {
        return Ok(false);
    }
    let deadline = *deadline
        .get_or_insert_with(|| limit.or_else(|| send_timeout(fd)).and_then(deadline_after));
    let wait = match deadline {
        None => None,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            Some(left)
        }
    };
    // SAFETY: the caller's descriptor is open for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    poll_fd(fd, libc::POLLOUT, wait)?;
    Ok(true)
}

/// The route of sockets without an IP peer (unconnected, or not IP).
fn unknown_route() -> Arc<Route> {
    static ROUTE: OnceLock<Arc<Route>> = OnceLock::new();
    Arc::clone(ROUTE.get_or_init(|| {
        Arc::new(Route {
            local: false,
            costs: parking_lot::Mutex::new(CostModel::default()),
        })
    }))
}

/// What one call sends.
enum Message<'a> {
    /// A composite, advanced past the bytes each call sent.
    Many(&'a mut Composite),
    /// One buffer ([`ZeroCopySender::send_buf`]), left as it is: the
    /// caller learns from the count what was sent. No composite is built
    /// for it, so its zero-copy send pins the buffer itself.
    One(&'a Buf),
}

impl Message<'_> {
    fn reborrow(&mut self) -> Message<'_> {
        match self {
            Message::Many(m) => Message::Many(m),
            Message::One(b) => Message::One(b),
        }
    }

    /// Fills `iov` with the message's pieces; returns how many.
    fn fill(&self, iov: &mut [MaybeUninit<libc::iovec>]) -> usize {
        match self {
            Message::Many(m) => fill_iovecs(iov, m.chunks()),
            Message::One(b) => fill_iovecs(iov, [b.as_slice()]),
        }
    }

    /// After a send that keeps nothing.
    fn advance(&mut self, sent: usize) {
        if let Message::Many(m) = self {
            m.advance(sent);
        }
    }
}

/// This sender's own counters (the socket's are in its engine).
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    sends: u64,
    zerocopy_sends: u64,
    bytes: u64,
    zerocopy_bytes: u64,
    iovecs: u64,
    enobufs_fallbacks: u64,
    emsgsize_fallbacks: u64,
}

/// Sends [`Composite`]s on a TCP or UDP socket with `MSG_ZEROCOPY` where
/// it pays, pinning what it sent until the kernel's completion.
///
/// Every sender on one socket in the process (Rust, or Java through the
/// JNI bridge) shares one completion state: see the module docs.
///
/// ```no_run
/// use std::net::TcpStream;
/// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
///
/// let sock = TcpStream::connect("192.0.2.10:8080").unwrap();
/// let mut tx = ZeroCopySender::new(sock).unwrap(); // Auto, 10 KiB threshold
/// let body = Buf::from(vec![0u8; 1 << 20]);
/// let mut msg = Composite::new();
/// msg.push(Buf::from_static(b"header"));
/// msg.push(body.clone());
/// tx.send_all(msg).unwrap();
/// tx.flush(std::time::Duration::from_secs(1)).unwrap();
/// println!("{}", tx.stats().auto);
/// ```
pub struct ZeroCopySender<S: AsFd> {
    sock: S,
    config: ZeroCopyConfig,
    /// The socket's shared engine; `None`: plain sends only.
    entry: Option<Arc<SocketEntry>>,
    /// `Auto`'s shared knowledge of the peer.
    route: Option<Arc<Route>>,
    counters: Counters,
    /// `Auto`'s decision when the socket has no engine.
    base_auto: AutoDecision,
    /// Whether `route` is the peer's (not the placeholder of a socket that
    /// was not connected when the sender was made).
    route_known: bool,
    message_socket: bool,
    not_socket: bool,
    /// How long a send on a blocking socket waits for room, instead of
    /// the socket's `SO_SNDTIMEO` (`None`: that).
    wait_limit: Option<Duration>,
    /// The error that stopped a `send_each` after some datagrams went,
    /// for its next call.
    deferred: Option<io::Error>,
    /// The io_uring backend, when chosen: every method goes there first.
    uring: Option<Box<UringSender>>,
    /// UDP GSO: what was learnt and done (gso.rs).
    gso: GsoState,
}

impl<S: AsFd> fmt::Debug for ZeroCopySender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroCopySender")
            .field("fd", &self.sock.as_fd().as_raw_fd())
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<S: AsFd> ZeroCopySender<S> {
    /// A sender in [`ZeroCopyMode::Auto`] with the default threshold.
    /// Fails only if `sock` is not a socket.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert!(tx.stats().zerocopy_active); // not connected: no peer known yet
    /// ```
    pub fn new(sock: S) -> io::Result<Self> {
        Self::with_config(sock, ZeroCopyConfig::default())
    }

    /// A sender with `config`. Unless the mode is `Never`, it joins the
    /// socket's shared zero-copy state (setting `SO_ZEROCOPY` the first
    /// time). `Auto` keeps zero-copy off from the start when the peer is
    /// this host. If the socket refuses `SO_ZEROCOPY` (or it was set by a
    /// user outside zcbuf: an `EBUSY` error, [`io::Error::raw_os_error`]
    /// `Some(libc::EBUSY)`), `Always`
    /// fails with that error and `Auto` falls back to plain sends
    /// (recorded in the stats). Not a socket: `ENOTSOCK`, whatever the mode
    /// but `Never`.
    ///
    /// ```
    /// use zcbuf_core::io::{AutoDecision, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let cfg = ZeroCopyConfig { mode: ZeroCopyMode::Always, ..Default::default() };
    /// assert!(ZeroCopySender::with_config(&a, cfg).is_err()); // no MSG_ZEROCOPY on AF_UNIX
    /// let tx = ZeroCopySender::new(&a).unwrap();
    /// assert!(!tx.stats().zerocopy_active);
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(ZeroCopySender::new(&c).unwrap().stats().auto, AutoDecision::LocalPeer);
    /// ```
    pub fn with_config(sock: S, config: ZeroCopyConfig) -> io::Result<Self> {
        let fd = sock.as_fd();
        let message_socket = is_message_socket(fd);
        if config.backend != SendBackend::Syscall {
            let local = route_of(fd).is_some_and(|r| r.local);
            let want = config.backend == SendBackend::IoUring
                || (config.mode != ZeroCopyMode::Never && !local);
            if want {
                match UringSender::new(fd, &config, message_socket, local) {
                    Ok(u) => {
                        return Ok(Self {
                            sock,
                            config,
                            entry: None,
                            route: None,
                            counters: Counters::default(),
                            base_auto: AutoDecision::NotAuto,
                            route_known: false,
                            message_socket,
                            not_socket: false,
                            wait_limit: None,
                            deferred: None,
                            gso: GsoState::default(),
                            uring: Some(Box::new(u)),
                        })
                    }
                    Err(e) if config.backend == SendBackend::IoUring => return Err(e),
                    Err(_) => {}
                }
            }
        }
        if config.mode != ZeroCopyMode::Never && uring::owned(fd) {
            // An io_uring sender owns the socket: one owner per socket.
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let mut base_auto = AutoDecision::NotAuto;
        let mut route = None;
        let mut route_known = false;
        let mut entry = None;
        if config.mode != ZeroCopyMode::Never {
            let mut local = false;
            if config.mode == ZeroCopyMode::Auto {
                let known = route_of(fd);
                route_known = known.is_some();
                let r = known.unwrap_or_else(unknown_route);
                local = r.local;
                base_auto = if local {
                    AutoDecision::LocalPeer
                } else {
                    AutoDecision::Probing {
                        completions: 0,
                        copied: 0,
                    }
                };
                route = Some(r);
            }
            if !local {
                match attach(fd, &config)? {
                    Attached::Shared(e) => entry = Some(e),
                    Attached::Refused(err) => {
                        if config.mode == ZeroCopyMode::Always {
                            return Err(err);
                        }
                        base_auto = AutoDecision::Unsupported {
                            errno: err.raw_os_error().unwrap_or(libc::EBUSY),
                        };
                    }
                }
            }
        }
        Ok(Self {
            sock,
            config,
            entry,
            route,
            counters: Counters::default(),
            base_auto,
            route_known,
            message_socket,
            not_socket: false,
            wait_limit: None,
            deferred: None,
            uring: None,
            gso: GsoState::default(),
        })
    }

    /// The socket.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert!(tx.get_ref().local_addr().is_ok());
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// Bounds how long a send on a blocking socket waits for room in the
    /// socket's buffer, in place of the socket's `SO_SNDTIMEO`: after
    /// `limit` the call returns what went (or a
    /// [`WouldBlock`](ErrorKind::WouldBlock) error when nothing did), as a
    /// send timeout would, without changing the socket for anyone else.
    /// A server that must notice a close by another thread sets this once
    /// instead of setting and clearing `SO_SNDTIMEO` around every write
    /// (two system calls per write). `None` (the default): the socket's
    /// own timeout, if any. Applies to the `sendmsg` backend (`send`,
    /// `send_buf`, `send_all`, datagram batches); the io_uring backend
    /// keeps `SO_SNDTIMEO`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = zcbuf_core::io::ZeroCopySender::new(tx).unwrap();
    /// tx.set_wait_limit(Some(Duration::from_millis(100)));
    /// assert_eq!(tx.send_buf(&zcbuf_core::Buf::from_static(b"hi")).unwrap(), 2);
    /// ```
    pub fn set_wait_limit(&mut self, limit: Option<Duration>) {
        self.wait_limit = limit;
    }

    /// The counters: this sender's sends, and the socket's completions
    /// and pins (shared with any other sender on the same socket).
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.stats().sends, 0);
    /// assert_eq!(tx.stats().socket_users, 1);
    /// ```
    pub fn stats(&self) -> ZeroCopyStats {
        if let Some(u) = &self.uring {
            let mut s = ZeroCopyStats::default();
            u.fill_stats(&mut s);
            return s;
        }
        let c = &self.counters;
        let mut s = ZeroCopyStats {
            sends: c.sends,
            zerocopy_sends: c.zerocopy_sends,
            bytes: c.bytes,
            zerocopy_bytes: c.zerocopy_bytes,
            iovecs: c.iovecs,
            enobufs_fallbacks: c.enobufs_fallbacks,
            emsgsize_fallbacks: c.emsgsize_fallbacks,
            auto: self.base_auto,
            ..ZeroCopyStats::default()
        };
        if let Some(entry) = &self.entry {
            let eng = entry.engine.lock();
            eng.fill_stats(&mut s);
            s.zerocopy_active = eng.zerocopy_allowed(self.config.mode);
            if self.config.mode == ZeroCopyMode::Auto {
                s.auto = eng.auto.decision;
            }
        }
        s
    }

    /// What `Auto`'s cost check chose per size class for this sender's
    /// peer, and why (shared by every sender to the same peer; empty
    /// unless the mode is `Auto` and something was measured).
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(zcbuf_core::io::ZeroCopySender::new(sock).unwrap().auto_sizes().len() < 64);
    /// ```
    pub fn auto_sizes(&self) -> Vec<AutoSizeChoice> {
        self.route
            .as_ref()
            .map_or_else(Vec::new, |r| r.costs.lock().report())
    }

    /// Sends on the socket waiting for their completion.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(zcbuf_core::io::ZeroCopySender::new(sock).unwrap().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        if let Some(u) = &self.uring {
            return u.pending();
        }
        self.entry
            .as_ref()
            .map_or(0, |e| e.engine.lock().pins.outstanding())
    }

    /// Bytes of memory this sender holds for itself and for its share of
    /// the socket's state, now: the sender, the socket's engine and its
    /// window of pins (not the pinned bytes themselves, nor what the
    /// process shares per route).
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert!(tx.memory_footprint() <= 512);
    /// ```
    pub fn memory_footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.entry.as_ref().map_or(0, |e| {
                let shared = std::mem::size_of::<SocketEntry>() + e.engine.lock().pins.heap_bytes();
                shared / e.engine.lock().users.max(1)
            })
    }

    /// The descriptor to use: the socket's shared entry's own one when
    /// there is an entry (the socket whose ids it tracks, whatever
    /// `self.sock.as_fd()` answers now), else the user's.
    fn raw(&self) -> RawFd {
        if let Some(u) = &self.uring {
            return u.raw();
        }
        match &self.entry {
            Some(e) => e.fd().as_raw_fd(),
            None => self.sock.as_fd().as_raw_fd(),
        }
    }

    /// One `sendmsg` of up to [`IOV_MAX`](crate::io::IOV_MAX) components from
    /// the front of `msg`, which is advanced by the bytes sent (the sent
    /// views move into the pin list if the send was zero-copy). `EINTR`
    /// is retried; `EAGAIN` is returned as [`ErrorKind::WouldBlock`] with
    /// `msg` untouched (on a blocking socket: once its own send timeout
    /// has passed; until then it waits for room without holding the
    /// socket's shared state, so other senders of the socket go on). Completions are read first once
    /// [`ZeroCopyConfig::poll_every`] sends are outstanding, or whenever
    /// pins wait while zero-copy is off.
    ///
    /// On a datagram socket one call is one datagram: a `msg` of more
    /// than `IOV_MAX` pieces has its tail copied into one piece so it goes
    /// whole (or fails, e.g. with `EMSGSIZE`), never split.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// let mut msg = Composite::from(Buf::from_static(b"small"));
    /// assert_eq!(tx.send(&mut msg).unwrap(), 5);
    /// assert!(msg.is_empty());
    /// assert_eq!(tx.stats().zerocopy_sends, 0); // below the threshold
    /// ```
    pub fn send(&mut self, msg: &mut Composite) -> io::Result<usize> {
        if let Some(u) = &mut self.uring {
            return u.send(msg);
        }
        if msg.is_empty() {
            return Ok(0);
        }
        self.send_waiting(Message::Many(msg))
    }

    /// [`send`](Self::send) of either kind of message.
    fn send_waiting(&mut self, mut msg: Message<'_>) -> io::Result<usize> {
        // The call that shares the socket's engine is made under its lock
        // (the kernel's ids must be pinned in the order it gives them), so
        // it never blocks there: a sender blocked on a full socket would
        // hold every other sender of the socket, their `flush` timeouts
        // and `Drop`, and through the registry every sender being made or
        // dropped in the process. A blocking socket waits here instead,
        // without the lock, as the kernel would (`SO_SNDTIMEO` included).
        let mut deadline = None;
        loop {
            match self.send_once(msg.reborrow()) {
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock
                        && (self.entry.is_some() || self.wait_limit.is_some()) =>
                {
                    let fd = self.raw();
                    if !blocking_wait(fd, self.wait_limit, &mut deadline)? {
                        return Err(e);
                    }
                    // A full send buffer may be full of pinned sends.
                    self.poll_completions()?;
                }
                other => return other,
            }
        }
    }

    /// [`send`](Self::send) without waiting: the shared-engine call is
    /// made with `MSG_DONTWAIT`.
    fn send_once(&mut self, mut msg: Message<'_>) -> io::Result<usize> {
        if let Message::Many(m) = &mut msg {
            if self.message_socket && m.component_count() > IOV_MAX {
                coalesce_tail(m, IOV_MAX);
            }
        }
        let fd = self.raw();
        let Some(entry) = self.entry.as_deref() else {
            let mut iov = iov_array();
            let n = msg.fill(&mut iov);
            // SAFETY: iov[..n] describes `msg`'s components, alive for the
            // call; a plain send keeps nothing.
            // With a wait limit the call never blocks in the kernel: the
            // wait happens in `send_waiting`, bounded.
            let flags = if self.wait_limit.is_some() {
                libc::MSG_DONTWAIT
            } else {
                0
            };
            let sent = unsafe { send_iov(fd, &iov, n, flags, &mut self.not_socket)? };
            self.count(sent, n, false);
            msg.advance(sent);
            return Ok(sent);
        };
        let mode = self.config.mode;
        let auto = mode == ZeroCopyMode::Auto;
        let mut eng = entry.engine.lock();
        if eng.poll_due(mode, self.config.poll_every) {
            let started = Instant::now();
            read_error_queue(fd, &mut eng)?;
            if let (true, Some(r)) = (auto, &self.route) {
                r.costs
                    .lock()
                    .add_poll_time(started.elapsed().as_nanos() as u64);
            }
        }
        let mut iov = iov_array();
        let mut n = msg.fill(&mut iov);
        let (mut bytes, mut pages) = measure(&iov, n);
        let mut zerocopy = eng.zerocopy_allowed(mode) && bytes >= self.config.threshold;
        let mut timed = false;
        if zerocopy && auto && !self.route_known {
            // Made before the socket was connected: learn the peer now,
            // before the first send by reference.
            // SAFETY: `fd` is the entry's own descriptor, open while
            // `entry` is borrowed.
            if let Some(r) = route_of(unsafe { BorrowedFd::borrow_raw(fd) }) {
                self.route_known = true;
                if r.local {
                    eng.auto.set_local_peer();
                    zerocopy = false;
                }
                self.route = Some(r);
            }
        }
        if zerocopy && auto && eng.auto.probing() && eng.pins.outstanding() > 0 {
            // One probe at a time until the first completion has decided.
            zerocopy = false;
        }
        if zerocopy && auto {
            zerocopy = worth_pinning(bytes, pages);
            if let (true, Some(r)) = (zerocopy, &self.route) {
                (zerocopy, timed) = r.costs.lock().want_zerocopy(bytes);
            }
        }
        if zerocopy && auto && !self.message_socket && eng.auto.probing() {
            // The probe's pinned pages count against the peer's receive
            // buffer: keep it within half the window it offers, and wait
            // for a larger window when that is below the threshold.
            let budget = probe_budget(fd);
            if budget < self.config.threshold {
                zerocopy = false;
            } else if bytes > budget {
                (n, bytes) = truncate_iovecs(&mut iov, n, budget);
            }
        }
        if zerocopy && self.message_socket && pages > MAX_FRAGS {
            // Decided before the call: a datagram must fit one packet's
            // fragments to go by reference.
            if let Message::Many(m) = &mut msg {
                coalesce_small_pieces(m);
                n = msg.fill(&mut iov);
                (bytes, pages) = measure(&iov, n);
            }
            if pages > MAX_FRAGS {
                zerocopy = false;
                self.counters.emsgsize_fallbacks += 1;
            }
        }
        let started = timed.then(Instant::now);
        let sent = loop {
            let flags = libc::MSG_DONTWAIT | if zerocopy { libc::MSG_ZEROCOPY } else { 0 };
            // SAFETY: iov[..n] describes `msg`'s components, alive for the
            // call; after a zero-copy send their views are pinned below.
            let err = match unsafe { send_iov_once(fd, &iov, n, flags, &mut self.not_socket) } {
                Ok(sent) => break sent,
                Err(e) => e,
            };
            if zerocopy {
                settle_failed_send(fd, &mut eng)?;
            }
            match err.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EMSGSIZE) if zerocopy => {
                    self.counters.emsgsize_fallbacks += 1;
                    zerocopy = false;
                }
                Some(libc::ENOBUFS) if zerocopy => {
                    // Option memory or locked memory ran out: this call
                    // goes by copy.
                    self.counters.enobufs_fallbacks += 1;
                    zerocopy = false;
                }
                _ => return Err(err),
            }
        };
        let zerocopy = zerocopy && sent > 0;
        if let (true, Some(r)) = (auto, &self.route) {
            let mut costs = r.costs.lock();
            if let Some(started) = started {
                costs.record(bytes, sent, zerocopy, started.elapsed().as_nanos() as u64);
            }
            if zerocopy {
                costs.note_zerocopy(sent);
            }
        }
        if zerocopy {
            // Exactly the views of the bytes sent, moved, not copied: a
            // whole message or buffer pins itself (nothing allocated).
            match &mut msg {
                Message::Many(m) if sent < m.len() => eng.pin(m.split_to(sent)),
                Message::Many(m) => eng.pin(std::mem::take(*m)),
                Message::One(b) if sent < b.len() => eng.pin(b.slice(..sent)),
                Message::One(b) => eng.pin((*b).clone()),
            };
            if auto && !self.message_socket && eng.auto.probing() {
                push_tail(fd);
            }
        } else {
            msg.advance(sent);
        }
        drop(eng);
        self.count(sent, n, zerocopy);
        Ok(sent)
    }

    fn count(&mut self, sent: usize, iovecs: usize, zerocopy: bool) {
        let c = &mut self.counters;
        c.sends += 1;
        c.bytes += sent as u64;
        c.iovecs += iovecs as u64;
        if zerocopy {
            c.zerocopy_sends += 1;
            c.zerocopy_bytes += sent as u64;
        }
    }

    /// One send of `buf` (a datagram on UDP) without building a
    /// [`Composite`]: a zero-copy send pins `buf` itself (a retain, no
    /// allocation); returns the bytes sent (on a stream socket possibly
    /// fewer than `buf.len()`, and then only those are pinned). Same rules
    /// as [`send`](Self::send).
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// assert_eq!(tx.send_buf(&Buf::from_static(b"datagram")).unwrap(), 8);
    /// let mut got = [0u8; 16];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 8);
    /// ```
    pub fn send_buf(&mut self, buf: &Buf) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(u) = &mut self.uring {
            return u.send(&mut Composite::from(buf.clone()));
        }
        let plain = match &self.entry {
            None => true,
            Some(e) => {
                buf.len() < self.config.threshold
                    && !e
                        .engine
                        .lock()
                        .poll_due(self.config.mode, self.config.poll_every)
            }
        };
        if plain {
            let mut iov = iov_array();
            let n = fill_iovecs(&mut iov, [buf.as_slice()]);
            // SAFETY: iov[0] describes `buf`, alive for the call; a plain
            // send keeps nothing.
            let sent = unsafe { send_iov(self.raw(), &iov, n, 0, &mut self.not_socket)? };
            self.count(sent, n, false);
            return Ok(sent);
        }
        self.send_waiting(Message::One(buf))
    }

    /// Sends all of `msg`, blocking (on `EAGAIN` it reads completions,
    /// then waits with `poll`). The bytes may still be pinned when it
    /// returns; see [`flush`](Self::flush). On a blocking socket with a
    /// send timeout (`SO_SNDTIMEO`, [`TcpStream::set_write_timeout`]) it
    /// gives up as `std`'s `write_all` does: a
    /// [`WouldBlock`](ErrorKind::WouldBlock) error saying how many bytes
    /// were not sent.
    ///
    /// [`TcpStream::set_write_timeout`]: std::net::TcpStream::set_write_timeout
    ///
    /// ```
    /// use std::io::Read;
    /// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut b, _) = l.accept().unwrap();
    /// let mut tx = ZeroCopySender::new(a).unwrap();
    /// tx.send_all(Composite::from(Buf::from(vec![3u8; 20_000]))).unwrap();
    /// let mut got = vec![0u8; 20_000];
    /// b.read_exact(&mut got).unwrap();
    /// tx.flush(std::time::Duration::from_secs(5)).unwrap();
    /// assert_eq!(tx.stats().pinned_bytes, 0);
    /// ```
    pub fn send_all(&mut self, mut msg: Composite) -> io::Result<()> {
        // SAFETY: `self.sock` owns or borrows the descriptor for at least
        // as long as this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.raw()) };
        while !msg.is_empty() {
            match self.send(&mut msg) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "send returned 0")),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // A full send buffer may be full of pinned sends.
                    self.poll_completions()?;
                    if !is_nonblocking(fd.as_raw_fd())? {
                        // A blocking socket says EAGAIN only when its own
                        // send timeout has passed.
                        return Err(io::Error::new(
                            ErrorKind::WouldBlock,
                            format!(
                                "the socket's send timeout passed with {} bytes not sent",
                                msg.len()
                            ),
                        ));
                    }
                    poll_fd(fd, libc::POLLOUT, None)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Like [`send_all`](Self::send_all) for the concatenation of `bufs`.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// tx.send_bufs(&[Buf::from_static(b"a"), Buf::from_static(b"b")]).unwrap();
    /// let mut got = [0u8; 2];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 2);
    /// ```
    pub fn send_bufs(&mut self, bufs: &[Buf]) -> io::Result<()> {
        self.send_all(bufs.iter().cloned().collect())
    }

    /// Sends each of `msgs` as its own datagram, in order, as few system
    /// calls as the backend allows; returns how many went. On the io_uring
    /// backend ([`SendBackend::IoUring`]) that is one submission per
    /// datagram (`SEND_ZC`, from a registered buffer where the bytes lie
    /// in the pool, when the mode and threshold ask for zero-copy; a plain
    /// `SEND` otherwise) and one `io_uring_enter` per 64 of them; each
    /// datagram's view is released only after its own notification. On
    /// the syscall backend it is one [`send_buf`](Self::send_buf) each:
    /// `sendmmsg` with `MSG_ZEROCOPY` would take one completion id per
    /// message yet report only how many went, which the socket's shared id
    /// accounting cannot match to views when it fails part way.
    ///
    /// Blocks as [`send`](Self::send) does. The count is always a prefix:
    /// when an error stops the batch after some datagrams went, it returns
    /// their number and the rest were not sent, and the next `send_each`
    /// returns that error (on a non-blocking socket `WouldBlock` once the
    /// send buffer is full; an ICMP error such as `ConnectionRefused`,
    /// which the kernel reports once only); if the first cannot go, the
    /// error. An empty
    /// `Buf` in `msgs`, or a stream socket (the datagrams' boundaries
    /// would be lost), is an [`InvalidInput`](ErrorKind::InvalidInput)
    /// error and nothing is sent. An empty slice sends nothing.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// let msgs: Vec<Buf> = (0..3u8).map(|i| Buf::from(vec![i; 100 + i as usize])).collect();
    /// assert_eq!(tx.send_each(&msgs).unwrap(), 3);
    /// let mut got = [0u8; 200];
    /// for i in 0..3u8 {
    ///     assert_eq!(rx.recv(&mut got).unwrap(), 100 + i as usize); // one datagram each
    ///     assert_eq!(got[0], i);
    /// }
    /// let empty = [Buf::from_static(b"a"), Buf::new()];
    /// assert_eq!(tx.send_each(&empty).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn send_each(&mut self, msgs: &[Buf]) -> io::Result<usize> {
        if !self.message_socket {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "send_each sends datagrams: it needs a datagram socket (UDP), not a stream",
            ));
        }
        if let Some(i) = msgs.iter().position(Buf::is_empty) {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("datagram {i} of the batch is empty"),
            ));
        }
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let (sent, failed) = match &mut self.uring {
            Some(u) => u.send_each(msgs),
            None => {
                let mut sent = 0;
                let mut failed = None;
                for b in msgs {
                    match self.send_buf(b) {
                        Ok(_) => sent += 1,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                (sent, failed)
            }
        };
        match failed {
            Some(e) if sent == 0 => Err(e),
            Some(e) => {
                // The count is returned now and the error by the next
                // call, as documented: the kernel reports some errors
                // (an ICMP error on UDP) once only.
                self.deferred = Some(e);
                Ok(sent)
            }
            None => Ok(sent),
        }
    }

    /// Reads every notification waiting on the socket's error queue
    /// without blocking and releases the sends they cover (whichever
    /// sender of the socket made them); returns how many were released.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let mut tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.poll_completions().unwrap(), 0);
    /// ```
    pub fn poll_completions(&mut self) -> io::Result<u64> {
        if let Some(u) = &mut self.uring {
            return Ok(u.poll());
        }
        match &self.entry {
            None => Ok(0),
            Some(e) => read_error_queue(self.raw(), &mut e.engine.lock()),
        }
    }

    /// Waits until every zero-copy send on the socket has completed, at
    /// most `timeout`. When the time runs out it returns an
    /// [`ErrorKind::TimedOut`] error and keeps every pin (call again, or
    /// drop the sender: see the module docs).
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let mut tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// tx.flush(std::time::Duration::from_millis(10)).unwrap(); // nothing pending
    /// ```
    pub fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        if let Some(u) = &mut self.uring {
            return u.flush(timeout);
        }
        let Some(entry) = self.entry.as_deref() else {
            return Ok(());
        };
        let fd = entry.fd();
        let deadline = deadline_after(timeout);
        loop {
            {
                let mut eng = entry.engine.lock();
                read_error_queue(fd.as_raw_fd(), &mut eng)?;
                if eng.pins.outstanding() == 0 {
                    eng.pins.shrink_if_empty();
                    return Ok(());
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "{} zero-copy sends ({} bytes) still pinned after {:?}",
                            eng.pins.outstanding(),
                            eng.pins.bytes(),
                            timeout
                        ),
                    ));
                }
            }
            let wait = deadline
                .map_or(Duration::MAX, |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_millis(20));
            // POLLERR (a notification queued) is reported whatever the
            // requested events; a hung-up socket is ready at once, so
            // sleep a little then instead of spinning.
            let started = Instant::now();
            let ready = poll_fd(fd, 0, Some(wait))?;
            if ready && started.elapsed() < Duration::from_millis(1) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Sends the datagrams of `batch` (laid back to back in one buffer,
    /// e.g. built in place by a
    /// [`DatagramBatchBuilder`](super::DatagramBatchBuilder)) on this
    /// connected UDP socket, as few `sendmsg` calls as the kernel allows:
    /// one per 64 datagrams or 65,507 bytes (IPv4; 65,527 over IPv6), each
    /// with a `UDP_SEGMENT` control message (GSO), and with `MSG_ZEROCOPY`
    /// where the sender's mode and threshold allow it (the batch's views
    /// are then pinned until the kernel's completion, one id per call; on
    /// the io_uring backend such a call is one `SENDMSG_ZC` with the same
    /// `UDP_SEGMENT` cmsg, its views held until its notification).
    /// A datagram is never split across calls. Blocks as
    /// [`send`](Self::send) does. Returns the datagrams sent: all of them,
    /// or, when an error stopped the batch after some went, how many (the
    /// rest were not sent; sending them again reports the error). Where
    /// the kernel or device refuses GSO the datagrams go by `sendmmsg`
    /// instead and [`gso_stats`](Self::gso_stats) says why. On a stream
    /// socket: an [`InvalidInput`](ErrorKind::InvalidInput) error.
    ///
    /// ```
    /// use zcbuf_core::io::{zerocopy::DatagramBatchBuilder, ZeroCopySender};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// let mut b = DatagramBatchBuilder::new(1200, 3).unwrap();
    /// for i in 0..3u8 {
    ///     b.push_with(1200, |out| { out.fill(i); if i == 2 { 100 } else { 1200 } }).unwrap();
    /// }
    /// assert_eq!(tx.send_batch(&b.finish()).unwrap(), 3);
    /// let mut got = [0u8; 2000];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 1200); // one datagram each
    /// assert_eq!(rx.recv(&mut got).unwrap(), 1200);
    /// assert_eq!(rx.recv(&mut got).unwrap(), 100);
    /// ```
    pub fn send_batch(&mut self, batch: &DatagramBatch) -> io::Result<usize> {
        self.send_gso(Source::Batch(batch), None)
    }

    /// [`send_batch`](Self::send_batch) to `to` on an unconnected UDP
    /// socket: a QUIC server answering many clients from one socket.
    ///
    /// ```
    /// use zcbuf_core::{io::{zerocopy::DatagramBatch, ZeroCopySender}, Buf};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = ZeroCopySender::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let mut tx = tx;
    /// let batch = DatagramBatch::new(Buf::from(vec![7u8; 2400]), 1200).unwrap();
    /// assert_eq!(tx.send_batch_to(&batch, rx.local_addr().unwrap()).unwrap(), 2);
    /// let mut got = [0u8; 2000];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 1200);
    /// assert_eq!(rx.recv(&mut got).unwrap(), 1200);
    /// ```
    pub fn send_batch_to(&mut self, batch: &DatagramBatch, to: SocketAddr) -> io::Result<usize> {
        self.send_gso(Source::Batch(batch), Some(&Destination::new(to)))
    }

    /// Sends `datagrams` (each a [`Composite`], e.g. a header `Buf` and a
    /// payload slice: QUIC's shape) as [`send_batch`](Self::send_batch)
    /// does. Every datagram but the last must be exactly as long as the
    /// first (the segment size) and the last no longer; none may be
    /// empty: otherwise an [`InvalidInput`](ErrorKind::InvalidInput) error
    /// naming the first wrong datagram, and nothing is sent. Pieces
    /// contiguous in memory are merged; calls by reference are made only
    /// when they fit one packet's 17 fragments *and* pay by the engine's
    /// rule (at least the threshold, at least half of each pinned page
    /// payload). Scattered MTU-sized datagrams (a header and a payload
    /// slice each: 5 to 8 per fragment budget) go instead as one copying
    /// GSO call of up to 64, which measured faster than both splitting
    /// them into zero-copy calls and coalescing them into a pooled chunk
    /// first (see the `io_zerocopy` bench); build datagrams in place with
    /// a [`DatagramBatchBuilder`](super::DatagramBatchBuilder) to send
    /// them with no copy at all. An empty slice sends nothing.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// tx.connect(rx.local_addr().unwrap()).unwrap();
    /// let mut tx = ZeroCopySender::new(tx).unwrap();
    /// let payload = Buf::from(vec![9u8; 3000]);
    /// let datagrams: Vec<Composite> = (0..3)
    ///     .map(|i| {
    ///         let mut d = Composite::from(Buf::from(vec![i as u8; 8])); // header
    ///         d.push(payload.slice(i * 1000..(i + 1) * 1000 - if i == 2 { 500 } else { 0 }));
    ///         d
    ///     })
    ///     .collect();
    /// assert_eq!(tx.send_datagrams(&datagrams).unwrap(), 3);
    /// let mut got = [0u8; 2000];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 1008);
    /// assert_eq!(got[0], 0);
    /// // Every datagram but the last must be the segment size:
    /// let bad = [Composite::from(Buf::from_static(b"ab")), Composite::from(Buf::from_static(b"c")), Composite::from(Buf::from_static(b"d"))];
    /// assert_eq!(tx.send_datagrams(&bad).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn send_datagrams(&mut self, datagrams: &[Composite]) -> io::Result<usize> {
        gso::validate(datagrams)?;
        self.send_gso(Source::List(datagrams), None)
    }

    /// [`send_datagrams`](Self::send_datagrams) to `to` on an unconnected
    /// UDP socket.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
    /// let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let mut tx = ZeroCopySender::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let d: Vec<Composite> = (0..2u8).map(|i| Composite::from(Buf::from(vec![i; 500]))).collect();
    /// assert_eq!(tx.send_datagrams_to(&d, rx.local_addr().unwrap()).unwrap(), 2);
    /// let mut got = [0u8; 600];
    /// assert_eq!(rx.recv(&mut got).unwrap(), 500);
    /// assert_eq!(got[0], 0);
    /// ```
    pub fn send_datagrams_to(
        &mut self,
        datagrams: &[Composite],
        to: SocketAddr,
    ) -> io::Result<usize> {
        gso::validate(datagrams)?;
        self.send_gso(Source::List(datagrams), Some(&Destination::new(to)))
    }

    /// What UDP GSO did on this sender's socket, and whether (and why)
    /// it was refused.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.gso_stats().gso_sends, 0);
    /// ```
    pub fn gso_stats(&self) -> GsoStats {
        self.gso.stats
    }

    fn send_gso(&mut self, src: Source<'_>, to: Option<&Destination>) -> io::Result<usize> {
        if !self.message_socket {
            // On a stream the datagrams would run together.
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "datagram batches need a datagram socket (UDP), not a stream",
            ));
        }
        let fd = self.raw();
        if self.config.mode == ZeroCopyMode::Auto && !self.route_known {
            // Made before the socket was connected: learn the peer now,
            // before the first send by reference.
            // SAFETY: `fd` is open while `self` is borrowed.
            if let Some(r) = route_of(unsafe { BorrowedFd::borrow_raw(fd) }) {
                self.route_known = true;
                if let (true, Some(e)) = (r.local, &self.entry) {
                    e.engine.lock().auto.set_local_peer();
                }
                self.route = Some(r);
            }
        }
        let mut tally = Tally::default();
        let mut ctx = gso::Ctx {
            fd,
            entry: self.entry.as_deref(),
            mode: self.config.mode,
            threshold: self.config.threshold,
            poll_every: self.config.poll_every,
            state: &mut self.gso,
            tally: &mut tally,
            to,
            wait_limit: self.wait_limit,
            uring: self.uring.as_deref_mut(),
        };
        let r = gso::send_all(&mut ctx, src);
        if let Some(u) = &mut self.uring {
            // An io_uring sender's stats are its own counters.
            u.count_gso(&tally);
            return r;
        }
        let c = &mut self.counters;
        c.sends += tally.sends;
        c.zerocopy_sends += tally.zerocopy_sends;
        c.bytes += tally.bytes;
        c.zerocopy_bytes += tally.zerocopy_bytes;
        c.iovecs += tally.iovecs;
        c.enobufs_fallbacks += tally.enobufs_fallbacks;
        c.emsgsize_fallbacks += tally.emsgsize_fallbacks;
        r
    }

    /// Gives up on the connection: discards what the socket still has to
    /// send (on TCP a reset: `connect(AF_UNSPEC)` purges the send queue and
    /// sends an RST; on UDP it dissociates the peer), then drops the
    /// sender. The kernel reports completions for the purged sends, and
    /// the pins go back as they arrive, a moment later, without waiting
    /// for the peer. Other senders on the same socket see it reset too.
    ///
    /// ```
    /// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _b = l.accept().unwrap();
    /// let mut tx = ZeroCopySender::new(&a).unwrap();
    /// tx.send_all(Composite::from(Buf::from(vec![1u8; 1000]))).unwrap();
    /// tx.abort().unwrap();
    /// ```
    pub fn abort(self) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr is valid; AF_UNSPEC is 0 anyway.
        let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
        sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
        // SAFETY: `sa` is a valid sockaddr for the call.
        let r = unsafe {
            libc::connect(
                self.raw(),
                &sa,
                std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
            )
        };
        let result = if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        drop(self);
        result
    }
}

impl<S: AsFd> Drop for ZeroCopySender<S> {
    /// Never waits: pins still outstanding stay with the socket's shared
    /// state and are released when their completions arrive (see the
    /// module docs).
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            detach(&entry, entry.fd());
        }
    }
}
