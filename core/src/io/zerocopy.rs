//! `MSG_ZEROCOPY` sends (Linux): the kernel reads the sent bytes where they
//! lie, after `sendmsg` has returned, so every sent [`Buf`] stays pinned
//! until the kernel says it is done with it.
//!
//! # How completions are tracked
//!
//! `SO_ZEROCOPY` is set on the socket once. The kernel numbers the
//! successful `MSG_ZEROCOPY` sends of a socket 0, 1, 2, ... (a 32-bit
//! counter that wraps) and later queues, on the socket's error queue,
//! notifications carrying an inclusive range `[ee_info, ee_data]` of
//! finished ids; consecutive notifications may be merged into one range
//! and ranges may arrive out of order. The sender mirrors the counter: the
//! views covering exactly the bytes of send `id` (a [`Composite`] of
//! retained `Buf`s, not copies) sit in a window indexed by
//! `id - front_id`, and are dropped only when a range covering `id` has
//! been read from the error queue. A send that fails takes no id (the
//! kernel gives it back), so the mirror stays in step. The sender must be
//! the only user of `MSG_ZEROCOPY` on its socket.
//!
//! A notification with `SO_EE_CODE_ZEROCOPY_COPIED` means the kernel copied
//! after all (always on loopback, or into a local receiving socket). In
//! [`ZeroCopyMode::Auto`] the sender judges each window of
//! [`ZeroCopyConfig::auto_window`] completions and stops asking for
//! zero-copy on the socket when at least
//! [`ZeroCopyConfig::auto_copied_percent`] of them were copied; the
//! decision is in [`ZeroCopyStats::auto`]. `ENOBUFS` from a zero-copy send
//! (the `optmem` or locked-memory limit) makes that one call a plain
//! copying send, counted in [`ZeroCopyStats::enobufs_fallbacks`]; so does
//! `EMSGSIZE` for a datagram spread over more pieces of memory than one
//! packet can reference ([`ZeroCopyStats::emsgsize_fallbacks`]).
//!
//! Zero-copy is not free either: pinning pages and handling completions
//! costs more than copying a small, cache-hot send. `Auto` therefore also
//! times both kinds of send per power-of-two size class at or above the
//! threshold and uses the cheaper one ([`ZeroCopySender::auto_sizes`]
//! shows the choices and the costs behind them).
//!
//! # When completions do not come
//!
//! [`ZeroCopySender::flush`] waits at most the given time; when it runs
//! out it returns a [`ErrorKind::TimedOut`] error and keeps every pin.
//! Dropping the sender waits up to [`ZeroCopyConfig::drop_timeout`]; pins
//! still outstanding then are *parked* in a process-wide list
//! ([`parked_pins`]) and never freed, because once the socket is closed no
//! completion can come and the kernel may still be reading the memory.
//! Leaking a little memory in that rare case is the price of never letting
//! the kernel read freed (and perhaps reused) memory.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::autocost::{AutoSizeChoice, CostModel};
use super::gather::{fill_iovecs, iov_array, send_iov};
use crate::{Buf, Composite};

/// `SO_ZEROCOPY` from include/uapi/asm-generic/socket.h (the value on
/// x86, arm, riscv and the other asm-generic architectures); the libc
/// crate does not export it for linux-gnu.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_ZEROCOPY: libc::c_int = 60;
/// `SO_ZEROCOPY` from arch/sparc/include/uapi/asm/socket.h.
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_ZEROCOPY: libc::c_int = 0x003e;
/// `SO_EE_ORIGIN_ZEROCOPY` from include/uapi/linux/errqueue.h.
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED` from include/uapi/linux/errqueue.h.
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// When a [`ZeroCopySender`] asks the kernel for zero-copy.
///
/// ```
/// assert_eq!(zcbuf_core::io::ZeroCopyMode::default(), zcbuf_core::io::ZeroCopyMode::Auto);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopyMode {
    /// Zero-copy for sends at or above the threshold, until the socket
    /// shows that the kernel copies anyway.
    #[default]
    Auto,
    /// Zero-copy for every send at or above the threshold.
    Always,
    /// Plain copying sends only.
    Never,
}

/// Settings of a [`ZeroCopySender`].
///
/// ```
/// use zcbuf_core::io::{ZeroCopyConfig, ZeroCopyMode};
/// let cfg = ZeroCopyConfig { mode: ZeroCopyMode::Always, threshold: 0, ..Default::default() };
/// assert_eq!(cfg.auto_window, 8);
/// ```
#[derive(Debug, Clone)]
pub struct ZeroCopyConfig {
    /// When to ask for zero-copy.
    pub mode: ZeroCopyMode,
    /// Sends of fewer bytes than this never ask for zero-copy (the kernel
    /// documentation puts the break-even around 10 KB). Default 10 KiB.
    pub threshold: usize,
    /// Completions `Auto` looks at before each judgement. Default 8.
    pub auto_window: u32,
    /// Share of copied completions in a window (percent) at or above which
    /// `Auto` switches zero-copy off. Default 75.
    pub auto_copied_percent: u8,
    /// [`send`](ZeroCopySender::send) reads the error queue only once at
    /// least this many sends are outstanding, so a stream of sends pays one
    /// extra system call per this many, not per send (the kernel merges
    /// the notifications meanwhile). Default 16; 1 reads before every send.
    pub poll_every: usize,
    /// How long dropping the sender waits for outstanding completions
    /// before parking their pins. Default 1 s.
    pub drop_timeout: Duration,
}

impl Default for ZeroCopyConfig {
    fn default() -> Self {
        Self {
            mode: ZeroCopyMode::Auto,
            threshold: 10 * 1024,
            auto_window: 8,
            auto_copied_percent: 75,
            poll_every: 16,
            drop_timeout: Duration::from_secs(1),
        }
    }
}

/// What `Auto` decided, and on what evidence.
///
/// ```
/// let d = zcbuf_core::io::AutoDecision::Probing { completions: 0, copied: 0 };
/// assert!(d.to_string().contains("probing"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoDecision {
    /// The mode is not `Auto`.
    NotAuto,
    /// Still asking for zero-copy, not yet a full window of completions.
    Probing {
        /// Completions seen in the current window.
        completions: u64,
        /// Of which copied.
        copied: u64,
    },
    /// The last full window showed real zero-copy: keeps asking.
    KeptOn {
        /// Completions in the judged window.
        completions: u64,
        /// Of which copied.
        copied: u64,
    },
    /// The kernel kept copying: no longer asks for zero-copy.
    SwitchedOff {
        /// Completions in the judged window.
        completions: u64,
        /// Of which copied.
        copied: u64,
    },
    /// `SO_ZEROCOPY` was refused (errno given): plain sends only.
    Unsupported {
        /// The `setsockopt` error number.
        errno: i32,
    },
}

impl fmt::Display for AutoDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AutoDecision::NotAuto => write!(f, "not in Auto mode"),
            AutoDecision::Probing {
                completions,
                copied,
            } => write!(
                f,
                "probing: {copied} of {completions} completions copied so far"
            ),
            AutoDecision::KeptOn {
                completions,
                copied,
            } => write!(
                f,
                "zero-copy kept on: only {copied} of the last {completions} completions were copied"
            ),
            AutoDecision::SwitchedOff {
                completions,
                copied,
            } => write!(
                f,
                "zero-copy switched off: the kernel copied {copied} of {completions} sends anyway"
            ),
            AutoDecision::Unsupported { errno } => write!(
                f,
                "zero-copy unsupported on this socket: {}",
                io::Error::from_raw_os_error(errno)
            ),
        }
    }
}

/// Counters of a [`ZeroCopySender`].
///
/// ```
/// let s = zcbuf_core::io::ZeroCopyStats::default();
/// assert_eq!(s.copied_share(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroCopyStats {
    /// Successful `sendmsg` calls.
    pub sends: u64,
    /// Of which with `MSG_ZEROCOPY`.
    pub zerocopy_sends: u64,
    /// Bytes sent in all.
    pub bytes: u64,
    /// Bytes sent with `MSG_ZEROCOPY`.
    pub zerocopy_bytes: u64,
    /// Iovecs passed over all successful calls.
    pub iovecs: u64,
    /// Zero-copy sends whose completion has been read.
    pub completions: u64,
    /// Of which the kernel reported `SO_EE_CODE_ZEROCOPY_COPIED`.
    pub copied_completions: u64,
    /// Error-queue notifications read (one may cover many sends).
    pub notifications: u64,
    /// Completions for ids this sender never used (should stay 0).
    pub unknown_completions: u64,
    /// Zero-copy sends refused with `ENOBUFS` and redone as plain sends.
    pub enobufs_fallbacks: u64,
    /// Zero-copy datagrams refused with `EMSGSIZE` (too many fragments
    /// for one skb) and redone as plain sends.
    pub emsgsize_fallbacks: u64,
    /// Sends still waiting for their completion.
    pub pinned_sends: usize,
    /// Bytes those sends pin.
    pub pinned_bytes: usize,
    /// Most bytes pinned at once.
    pub peak_pinned_bytes: usize,
    /// Whether the next large send asks for zero-copy.
    pub zerocopy_active: bool,
    /// What `Auto` decided.
    pub auto: AutoDecision,
}

impl Default for ZeroCopyStats {
    fn default() -> Self {
        Self {
            sends: 0,
            zerocopy_sends: 0,
            bytes: 0,
            zerocopy_bytes: 0,
            iovecs: 0,
            completions: 0,
            copied_completions: 0,
            notifications: 0,
            unknown_completions: 0,
            enobufs_fallbacks: 0,
            emsgsize_fallbacks: 0,
            pinned_sends: 0,
            pinned_bytes: 0,
            peak_pinned_bytes: 0,
            zerocopy_active: false,
            auto: AutoDecision::NotAuto,
        }
    }
}

impl ZeroCopyStats {
    /// Share of completions the kernel copied (0.0 when none yet).
    ///
    /// ```
    /// let s = zcbuf_core::io::ZeroCopyStats { completions: 4, copied_completions: 1, ..Default::default() };
    /// assert_eq!(s.copied_share(), 0.25);
    /// ```
    pub fn copied_share(&self) -> f64 {
        if self.completions == 0 {
            0.0
        } else {
            self.copied_completions as f64 / self.completions as f64
        }
    }
}

/// The window of sends awaiting completion, indexed by kernel id.
#[derive(Debug, Default)]
struct Pins {
    /// Id of `window[0]`.
    front_id: u32,
    /// `None` once completed; the front is popped as soon as it completes.
    window: VecDeque<Option<Composite>>,
    bytes: usize,
    outstanding: usize,
}

impl Pins {
    #[cfg(test)]
    fn starting_at(id: u32) -> Self {
        Self {
            front_id: id,
            ..Self::default()
        }
    }

    /// Pins `sent` under the next id and returns that id.
    fn push(&mut self, sent: Composite) -> u32 {
        let id = self.front_id.wrapping_add(self.window.len() as u32);
        self.bytes += sent.len();
        self.outstanding += 1;
        self.window.push_back(Some(sent));
        id
    }

    /// Releases every pinned send in the inclusive wrapping range
    /// `lo..=hi`; returns (sends released, ids outside the window).
    fn complete(&mut self, lo: u32, hi: u32) -> (u64, u64) {
        let span = hi.wrapping_sub(lo) as u64 + 1;
        let mut released = 0u64;
        let release = |slot: &mut Option<Composite>, bytes: &mut usize| {
            if let Some(sent) = slot.take() {
                *bytes -= sent.len();
                drop(sent);
                true
            } else {
                false
            }
        };
        let len = self.window.len() as u64;
        if span <= len {
            for k in 0..span {
                let idx = lo.wrapping_add(k as u32).wrapping_sub(self.front_id) as u64;
                if idx < len && release(&mut self.window[idx as usize], &mut self.bytes) {
                    released += 1;
                }
            }
        } else {
            for (idx, slot) in self.window.iter_mut().enumerate() {
                let id = self.front_id.wrapping_add(idx as u32);
                if id.wrapping_sub(lo) <= hi.wrapping_sub(lo) && release(slot, &mut self.bytes) {
                    released += 1;
                }
            }
        }
        self.outstanding -= released as usize;
        while matches!(self.window.front(), Some(None)) {
            self.window.pop_front();
            self.front_id = self.front_id.wrapping_add(1);
        }
        (released, span - released)
    }

    fn take_all(&mut self) -> Vec<Composite> {
        self.bytes = 0;
        self.outstanding = 0;
        self.window.drain(..).flatten().collect()
    }
}

static PARKED: Mutex<Vec<Composite>> = Mutex::new(Vec::new());
static PARKED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Sends and bytes parked forever by senders dropped before their
/// completions arrived (see the module docs); normally `(0, 0)`.
///
/// ```
/// let (_sends, _bytes) = zcbuf_core::io::parked_pins();
/// ```
pub fn parked_pins() -> (usize, usize) {
    (PARKED.lock().len(), PARKED_BYTES.load(Ordering::Relaxed))
}

/// Sends [`Composite`]s on a TCP or UDP socket with `MSG_ZEROCOPY` where
/// it pays, pinning what it sent until the kernel's completion.
///
/// ```no_run
/// use std::net::TcpStream;
/// use zcbuf_core::{io::ZeroCopySender, Buf, Composite};
///
/// let sock = TcpStream::connect("127.0.0.1:8080").unwrap();
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
    active: bool,
    pins: Pins,
    stats: ZeroCopyStats,
    window_completions: u64,
    window_copied: u64,
    costs: CostModel,
}

impl<S: AsFd> fmt::Debug for ZeroCopySender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZeroCopySender")
            .field("fd", &self.sock.as_fd().as_raw_fd())
            .field("config", &self.config)
            .field("stats", &self.stats)
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
    /// assert!(tx.stats().zerocopy_active);
    /// ```
    pub fn new(sock: S) -> io::Result<Self> {
        Self::with_config(sock, ZeroCopyConfig::default())
    }

    /// A sender with `config`. Sets `SO_ZEROCOPY` unless the mode is
    /// `Never`; if the socket refuses it, `Always` fails with that error and
    /// `Auto` falls back to plain sends (recorded in the stats).
    ///
    /// ```
    /// use zcbuf_core::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let cfg = ZeroCopyConfig { mode: ZeroCopyMode::Always, ..Default::default() };
    /// assert!(ZeroCopySender::with_config(&a, cfg).is_err()); // no MSG_ZEROCOPY on AF_UNIX
    /// let tx = ZeroCopySender::new(&a).unwrap();
    /// assert!(!tx.stats().zerocopy_active);
    /// ```
    pub fn with_config(sock: S, config: ZeroCopyConfig) -> io::Result<Self> {
        let mut stats = ZeroCopyStats::default();
        let mut active = false;
        if config.mode != ZeroCopyMode::Never {
            let one: libc::c_int = 1;
            // SAFETY: a valid descriptor and a c_int option value living
            // across the call.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_fd().as_raw_fd(),
                    libc::SOL_SOCKET,
                    SO_ZEROCOPY,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                active = true;
            } else {
                let err = io::Error::last_os_error();
                if config.mode == ZeroCopyMode::Always || err.raw_os_error() == Some(libc::ENOTSOCK)
                {
                    return Err(err);
                }
                stats.auto = AutoDecision::Unsupported {
                    errno: err.raw_os_error().unwrap_or(0),
                };
            }
        }
        if active && config.mode == ZeroCopyMode::Auto {
            stats.auto = AutoDecision::Probing {
                completions: 0,
                copied: 0,
            };
        }
        stats.zerocopy_active = active;
        Ok(Self {
            sock,
            config,
            active,
            pins: Pins::default(),
            stats,
            window_completions: 0,
            window_copied: 0,
            costs: CostModel::default(),
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

    /// The counters, with the pin figures of this moment.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.stats().sends, 0);
    /// ```
    pub fn stats(&self) -> ZeroCopyStats {
        let mut s = self.stats;
        s.pinned_sends = self.pins.outstanding;
        s.pinned_bytes = self.pins.bytes;
        s.zerocopy_active = self.active;
        s
    }

    /// What `Auto`'s cost check chose per size class, and why (empty
    /// unless the mode is `Auto` and zero-copy is active); see the module
    /// docs.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(zcbuf_core::io::ZeroCopySender::new(sock).unwrap().auto_sizes().is_empty());
    /// ```
    pub fn auto_sizes(&self) -> Vec<AutoSizeChoice> {
        self.costs.report()
    }

    fn measuring(&self) -> bool {
        self.active && self.config.mode == ZeroCopyMode::Auto
    }

    /// Sends waiting for their completion.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(zcbuf_core::io::ZeroCopySender::new(sock).unwrap().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.pins.outstanding
    }

    /// One `sendmsg` of up to [`IOV_MAX`](super::IOV_MAX) components from
    /// the front of `msg`, which is advanced by the bytes sent (the sent
    /// views move into the pin list if the send was zero-copy). Reads
    /// pending completions first. `EINTR` is retried; `EAGAIN` is returned
    /// as [`ErrorKind::WouldBlock`] with `msg` untouched. Completions are
    /// read first once [`ZeroCopyConfig::poll_every`] sends are outstanding.
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
        if msg.is_empty() {
            return Ok(0);
        }
        let mut iov = iov_array();
        let n = fill_iovecs(msg, &mut iov);
        // SAFETY: iov[..n] describes `msg`'s components, alive for the call;
        // after a zero-copy send their views are pinned below.
        let (sent, zerocopy) = unsafe { self.send_iovecs(&iov, n)? };
        if zerocopy {
            self.pin(msg.split_to(sent));
        } else {
            msg.advance(sent);
        }
        Ok(sent)
    }

    /// One send of `buf` (a datagram on UDP) without building a
    /// [`Composite`]; returns the bytes sent (on a stream socket possibly
    /// fewer than `buf.len()`). Same rules as [`send`](Self::send).
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
        let mut iov = iov_array();
        iov[0].write(libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        });
        // SAFETY: iov[0] describes `buf`, alive for the call; after a
        // zero-copy send a view of the sent bytes is pinned below.
        let (sent, zerocopy) = unsafe { self.send_iovecs(&iov, 1)? };
        if zerocopy {
            self.pin(Composite::from(buf.slice(..sent)));
        }
        Ok(sent)
    }

    fn pin(&mut self, sent: Composite) {
        self.pins.push(sent);
        self.stats.peak_pinned_bytes = self.stats.peak_pinned_bytes.max(self.pins.bytes);
    }

    /// The common part of a send: reads completions when due, decides
    /// zero-copy or not, sends (falling back on `ENOBUFS`), times it when
    /// `Auto` probes, counts. Returns (bytes sent, whether zero-copy).
    ///
    /// # Safety
    ///
    /// `iov[..n]` must be initialised and readable for the call, and if the
    /// result says zero-copy the caller must pin the memory of the first
    /// `sent` bytes until its completion.
    unsafe fn send_iovecs(
        &mut self,
        iov: &[MaybeUninit<libc::iovec>],
        n: usize,
    ) -> io::Result<(usize, bool)> {
        if self.pins.outstanding >= self.config.poll_every.max(1) {
            let started = Instant::now();
            self.poll_completions()?;
            if self.measuring() {
                self.costs
                    .add_poll_time(started.elapsed().as_nanos() as u64);
            }
        }
        let call_bytes: usize = iov[..n]
            .iter()
            // SAFETY: the caller initialised iov[..n].
            .map(|v| unsafe { v.assume_init_ref() }.iov_len)
            .sum();
        let fd = self.sock.as_fd().as_raw_fd();
        let mut not_socket = false;
        let mut zerocopy = self.active && call_bytes >= self.config.threshold;
        let mut timed = false;
        if zerocopy && self.config.mode == ZeroCopyMode::Auto {
            (zerocopy, timed) = self.costs.want_zerocopy(call_bytes);
        }
        let started = timed.then(Instant::now);
        let sent = loop {
            let flags = if zerocopy { libc::MSG_ZEROCOPY } else { 0 };
            // SAFETY: the caller guarantees iov[..n] is readable for the
            // call and pins it after a zero-copy send.
            match unsafe { send_iov(fd, iov, n, flags, &mut not_socket) } {
                Ok(sent) => break sent,
                Err(e) if zerocopy && e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    // A datagram whose pages would need more fragments
                    // than an skb holds (MAX_SKB_FRAGS) cannot go by
                    // reference; a copying send of it still fits.
                    self.stats.emsgsize_fallbacks += 1;
                    zerocopy = false;
                }
                Err(e) if zerocopy && e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.stats.enobufs_fallbacks += 1;
                    zerocopy = false;
                    // Reading completions gives option memory back for
                    // the next zero-copy send.
                    self.poll_completions()?;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(started) = started {
            let ns = started.elapsed().as_nanos() as u64;
            self.costs.record(call_bytes, sent, zerocopy, ns);
        }
        self.stats.sends += 1;
        self.stats.bytes += sent as u64;
        self.stats.iovecs += n as u64;
        let zerocopy = zerocopy && sent > 0;
        if zerocopy {
            self.stats.zerocopy_sends += 1;
            self.stats.zerocopy_bytes += sent as u64;
            if self.config.mode == ZeroCopyMode::Auto {
                self.costs.note_zerocopy(sent);
            }
        }
        Ok((sent, zerocopy))
    }

    /// Sends all of `msg`, blocking (waits with `poll` on `EAGAIN`).
    /// The bytes may still be pinned when it returns; see
    /// [`flush`](Self::flush).
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
        while !msg.is_empty() {
            match self.send(&mut msg) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "send returned 0")),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // A full send buffer may be full of pinned sends.
                    self.poll_completions()?;
                    super::poll_fd(self.sock.as_fd(), libc::POLLOUT, None)?;
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

    /// Reads every notification waiting on the error queue without
    /// blocking and releases the sends they cover; returns how many were
    /// released.
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let mut tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.poll_completions().unwrap(), 0);
    /// ```
    pub fn poll_completions(&mut self) -> io::Result<u64> {
        let fd = self.sock.as_fd().as_raw_fd();
        let mut released = 0;
        loop {
            // Room for one cmsg of sock_extended_err plus the offender
            // address the kernel appends; u64 for cmsghdr alignment.
            let mut control = [MaybeUninit::<u64>::uninit(); 16];
            // SAFETY: an all-zero msghdr is valid (no name, no iovecs).
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = std::mem::size_of_val(&control) as _;
            // SAFETY: `hdr` points at `control`, writable and living
            // across the call.
            let r = unsafe { libc::recvmsg(fd, &mut hdr, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
            if r < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    ErrorKind::Interrupted => continue,
                    ErrorKind::WouldBlock => return Ok(released),
                    _ => return Err(err),
                }
            }
            // SAFETY: the kernel filled `hdr.msg_controllen` bytes of
            // `control` with well-formed cmsgs; CMSG_* walk only those.
            let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&hdr) };
            while !cmsg.is_null() {
                // SAFETY: non-null cmsg inside `control` (see above).
                let c = unsafe { &*cmsg };
                let is_recverr = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                    || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
                let data_len = c.cmsg_len as usize - (unsafe { libc::CMSG_LEN(0) } as usize);
                if is_recverr && data_len >= std::mem::size_of::<libc::sock_extended_err>() {
                    // SAFETY: the cmsg carries at least one
                    // sock_extended_err; read_unaligned copes with any
                    // alignment.
                    let ee: libc::sock_extended_err =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
                    if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY && ee.ee_errno == 0 {
                        released += self.on_completion(
                            ee.ee_info,
                            ee.ee_data,
                            ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
                        );
                    }
                }
                // SAFETY: as above, within the kernel-filled control data.
                cmsg = unsafe { libc::CMSG_NXTHDR(&hdr, cmsg) };
            }
        }
    }

    fn on_completion(&mut self, lo: u32, hi: u32, copied: bool) -> u64 {
        self.stats.notifications += 1;
        let (released, unknown) = self.pins.complete(lo, hi);
        self.stats.completions += released;
        self.stats.unknown_completions += unknown;
        if copied {
            self.stats.copied_completions += released;
        }
        if self.config.mode == ZeroCopyMode::Auto && self.active {
            self.window_completions += released;
            if copied {
                self.window_copied += released;
            }
            let (completions, copied) = (self.window_completions, self.window_copied);
            if completions >= u64::from(self.config.auto_window.max(1)) {
                if copied * 100 >= completions * u64::from(self.config.auto_copied_percent) {
                    self.active = false;
                    self.stats.auto = AutoDecision::SwitchedOff {
                        completions,
                        copied,
                    };
                } else {
                    self.stats.auto = AutoDecision::KeptOn {
                        completions,
                        copied,
                    };
                }
                self.window_completions = 0;
                self.window_copied = 0;
            } else if matches!(self.stats.auto, AutoDecision::Probing { .. }) {
                self.stats.auto = AutoDecision::Probing {
                    completions,
                    copied,
                };
            }
        }
        released
    }

    /// Waits until every zero-copy send has completed, at most `timeout`.
    /// When the time runs out it returns an [`ErrorKind::TimedOut`] error
    /// and keeps every pin (call again, or drop the sender; see the module
    /// docs).
    ///
    /// ```
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let mut tx = zcbuf_core::io::ZeroCopySender::new(sock).unwrap();
    /// tx.flush(std::time::Duration::from_millis(10)).unwrap(); // nothing pending
    /// ```
    pub fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll_completions()?;
            if self.pins.outstanding == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{} zero-copy sends ({} bytes) still pinned after {:?}",
                        self.pins.outstanding, self.pins.bytes, timeout
                    ),
                ));
            }
            let wait = (deadline - now).min(Duration::from_millis(20));
            // POLLERR (a notification queued) is reported whatever the
            // requested events; a hung-up socket is ready at once, so
            // sleep a little then instead of spinning.
            let started = Instant::now();
            let ready = super::poll_fd(self.sock.as_fd(), 0, Some(wait))?;
            if ready && started.elapsed() < Duration::from_millis(1) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl<S: AsFd> Drop for ZeroCopySender<S> {
    /// Waits up to `drop_timeout` for outstanding completions, then parks
    /// the pins that are left (never frees them): see the module docs.
    fn drop(&mut self) {
        if self.pins.outstanding == 0 {
            return;
        }
        let _ = self.flush(self.config.drop_timeout);
        if self.pins.outstanding > 0 {
            let bytes = self.pins.bytes;
            let left = self.pins.take_all();
            PARKED_BYTES.fetch_add(bytes, Ordering::Relaxed);
            PARKED.lock().extend(left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: usize) -> Composite {
        Composite::from(Buf::from(vec![0u8; n]))
    }

    #[test]
    fn ids_are_consecutive_and_wrap() {
        let mut p = Pins::starting_at(u32::MAX - 1);
        assert_eq!(p.push(sent(1)), u32::MAX - 1);
        assert_eq!(p.push(sent(1)), u32::MAX);
        assert_eq!(p.push(sent(1)), 0);
        assert_eq!(p.push(sent(1)), 1);
        // One merged range across the wrap releases all four.
        assert_eq!(p.complete(u32::MAX - 1, 1), (4, 0));
        assert_eq!(p.outstanding, 0);
        assert_eq!(p.bytes, 0);
        assert_eq!(p.front_id, 2);
    }

    #[test]
    fn out_of_order_ranges_release_exactly_what_they_cover() {
        let mut p = Pins::starting_at(u32::MAX - 3);
        let ids: Vec<u32> = (0..10).map(|i| p.push(sent(10 + i))).collect();
        // ids[6..=8] first (wrapped values), then ids[0], then the rest.
        assert_eq!(p.complete(ids[6], ids[8]), (3, 0));
        assert_eq!(p.outstanding, 7);
        assert_eq!(p.front_id, ids[0], "front stays until it completes");
        assert_eq!(p.complete(ids[0], ids[0]), (1, 0));
        assert_eq!(p.front_id, ids[1]);
        // A range repeating completed ids releases only the new ones.
        assert_eq!(p.complete(ids[5], ids[9]), (2, 3));
        assert_eq!(p.complete(ids[1], ids[4]), (4, 0));
        assert_eq!(p.outstanding, 0);
        assert!(p.window.is_empty());
        assert_eq!(p.front_id, ids[9].wrapping_add(1));
    }

    #[test]
    fn ranges_outside_the_window_release_nothing() {
        let mut p = Pins::default();
        p.push(sent(5));
        assert_eq!(p.complete(7, 9), (0, 3));
        // A huge wrapping range that skips id 0: scans the window instead.
        assert_eq!(p.complete(1, u32::MAX), (0, u64::from(u32::MAX)));
        assert_eq!(p.outstanding, 1);
        assert_eq!(p.complete(0, 0), (1, 0));
    }
}
