//! Configuration, statistics and `Auto`'s per-socket decision.

use std::fmt;
use std::io;
use std::time::Duration;

#[cfg(doc)]
use super::ZeroCopySender;

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

/// Which kernel interface a [`ZeroCopySender`] sends through.
///
/// The default is [`Syscall`](Self::Syscall). Measured on the veth sink
/// (UDP datagrams from one pool buffer, interleaved in the same minutes,
/// by the sending thread's CPU time, on a loaded 2-core machine;
/// `benches/support/uring_rows.rs`), io_uring `SEND_ZC` from a registered
/// buffer was 1.18x a plain `send` at 64 KiB and about even with
/// `MSG_ZEROCOPY` there (1.02x), but 0.78x a plain `send` at 16 KiB and
/// 0.70x at 4 KiB: each send still waits for its own result, so it pays a
/// ring round trip and a notification per datagram. It also cannot share
/// a socket with the syscall backend's senders, which Java writers through
/// the JNI bridge use. So io_uring is what a user asks for, by
/// [`IoUring`](Self::IoUring) or [`Auto`](Self::Auto), not a silent change
/// under existing code.
///
/// ```
/// use zcbuf_core::io::{SendBackend, ZeroCopyConfig};
/// assert_eq!(ZeroCopyConfig::default().backend, SendBackend::Syscall);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendBackend {
    /// io_uring where the kernel lets this process set up a ring and the
    /// peer is not this host (where the kernel copies anyway); `sendmsg`
    /// with `MSG_ZEROCOPY` otherwise. Never an error of its own.
    Auto,
    /// `sendmsg` with `MSG_ZEROCOPY` and the socket's error queue.
    #[default]
    Syscall,
    /// io_uring (`IORING_OP_SEND_ZC`, `SENDMSG_ZC` for several pieces),
    /// with the process-wide pool's chunks registered as fixed buffers.
    /// Making the sender fails when no ring can be set up (`ENOSYS`,
    /// `EPERM` from `kernel.io_uring_disabled` or a seccomp filter).
    IoUring,
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
    /// Kept for source compatibility; no longer used: dropping a sender
    /// never waits (pins still held are released by the reaper when their
    /// completions arrive, see the module docs).
    pub drop_timeout: Duration,
    /// Which kernel interface sends. Default [`SendBackend::Syscall`].
    pub backend: SendBackend,
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
            backend: SendBackend::Syscall,
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
    /// `SO_ZEROCOPY` was refused (errno given), or (`EBUSY`) the socket
    /// already had it set by someone outside zcbuf whose id counter is
    /// unknown: plain sends only.
    Unsupported {
        /// The `setsockopt` error number, or `EBUSY`.
        errno: i32,
    },
    /// The peer is this host (loopback or one of its own addresses): the
    /// kernel would copy every send into the receiving socket, and each
    /// pinned piece would count a whole page against its receive buffer,
    /// so zero-copy is off from the start.
    LocalPeer,
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
            AutoDecision::LocalPeer => write!(
                f,
                "zero-copy off from the start: the peer is this host (the kernel copies anyway)"
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
    /// Completions for ids this socket's senders never used (should stay
    /// 0; any makes the socket [`desynchronised`](Self::desynchronised)).
    pub unknown_completions: u64,
    /// Failed zero-copy sends whose id the kernel used anyway (the error
    /// queue showed its completion, e.g. a UDP datagram dropped by a
    /// queueing discipline with `ENOBUFS`); their ids were skipped.
    pub failed_sends_taking_id: u64,
    /// A completion outside the window of outstanding ids came: the ids
    /// can no longer be matched, so zero-copy stopped on the socket and
    /// the pins still held are never released (leaked, not freed early).
    pub desynchronised: bool,
    /// Senders (Rust or Java) currently sharing this socket's completion
    /// state, this one included; 0 for a sender without zero-copy.
    pub socket_users: usize,
    /// Zero-copy sends refused with `ENOBUFS` and redone as plain sends.
    pub enobufs_fallbacks: u64,
    /// Datagrams that would need more fragments than one packet holds
    /// even after their small pieces were coalesced (counted before the
    /// call), or that the kernel refused with `EMSGSIZE`: sent by copy.
    pub emsgsize_fallbacks: u64,
    /// Sends on this socket still waiting for their completion.
    pub pinned_sends: usize,
    /// Bytes those sends pin.
    pub pinned_bytes: usize,
    /// Most bytes pinned at once on this socket.
    pub peak_pinned_bytes: usize,
    /// Whether the next large send asks for zero-copy.
    pub zerocopy_active: bool,
    /// What `Auto` decided.
    pub auto: AutoDecision,
    /// The backend this sender uses ([`SendBackend::Syscall`] or
    /// [`SendBackend::IoUring`], never `Auto`).
    pub backend: SendBackend,
    /// io_uring zero-copy sends whose bytes came from a registered (fixed)
    /// buffer, so the kernel pinned no page for them.
    pub registered_sends: u64,
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
            failed_sends_taking_id: 0,
            desynchronised: false,
            socket_users: 0,
            enobufs_fallbacks: 0,
            emsgsize_fallbacks: 0,
            pinned_sends: 0,
            pinned_bytes: 0,
            peak_pinned_bytes: 0,
            zerocopy_active: false,
            auto: AutoDecision::NotAuto,
            backend: SendBackend::Syscall,
            registered_sends: 0,
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

/// `Auto`'s judgement of one socket from its completions: the first
/// completion decides (copied: off; not copied: on), later windows of
/// `window` completions may still switch it off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AutoState {
    pub(crate) decision: AutoDecision,
    /// Whether `Auto` senders may still ask for zero-copy on the socket.
    pub(crate) on: bool,
    completions: u32,
    copied: u32,
    window: u32,
    percent: u8,
}

impl AutoState {
    pub(crate) fn new(config: &ZeroCopyConfig) -> Self {
        Self {
            decision: AutoDecision::Probing {
                completions: 0,
                copied: 0,
            },
            on: true,
            completions: 0,
            copied: 0,
            window: config.auto_window.max(1),
            percent: config.auto_copied_percent,
        }
    }

    /// Whether no completion has been judged yet: until one has, `Auto`
    /// sends little by reference and reads completions before each send.
    pub(crate) fn probing(&self) -> bool {
        self.on && matches!(self.decision, AutoDecision::Probing { .. })
    }

    /// The peer turned out to be this host (learnt when the socket got
    /// connected after the sender was made): zero-copy off for good.
    pub(crate) fn set_local_peer(&mut self) {
        self.on = false;
        self.decision = AutoDecision::LocalPeer;
    }

    /// Counts `released` completions of one notification.
    pub(crate) fn on_completions(&mut self, released: u64, copied: bool) {
        if !self.on || released == 0 {
            return;
        }
        let released = released.min(u64::from(u32::MAX)) as u32;
        self.completions = self.completions.saturating_add(released);
        if copied {
            self.copied = self.copied.saturating_add(released);
        }
        let (completions, copied_n) = (u64::from(self.completions), u64::from(self.copied));
        let first = matches!(self.decision, AutoDecision::Probing { .. });
        if !first && self.completions < self.window {
            return;
        }
        let switch_off = if first {
            copied
        } else {
            copied_n * 100 >= completions * u64::from(self.percent)
        };
        self.decision = if switch_off {
            self.on = false;
            AutoDecision::SwitchedOff {
                completions,
                copied: copied_n,
            }
        } else {
            AutoDecision::KeptOn {
                completions,
                copied: copied_n,
            }
        };
        self.completions = 0;
        self.copied = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_completion_decides() {
        let cfg = ZeroCopyConfig::default();
        let mut a = AutoState::new(&cfg);
        a.on_completions(1, true);
        assert!(!a.on);
        assert_eq!(
            a.decision,
            AutoDecision::SwitchedOff {
                completions: 1,
                copied: 1
            }
        );
        let mut b = AutoState::new(&cfg);
        b.on_completions(3, false);
        assert!(b.on);
        assert_eq!(
            b.decision,
            AutoDecision::KeptOn {
                completions: 3,
                copied: 0
            }
        );
        // Later the route starts copying: a full window switches it off.
        for _ in 0..cfg.auto_window {
            b.on_completions(1, true);
        }
        assert!(!b.on);
    }
}
