//! The baseline zcbuf's zero-copy sender is measured against: what a C
//! program does with `MSG_ZEROCOPY` and nothing else (libc only). One
//! `send(.., MSG_ZEROCOPY)` per datagram on its own socket; the error
//! queue is drained once more than [`REAP_AFTER`] sends are outstanding
//! and after every failed send, one `recvmsg(MSG_ERRQUEUE)` per
//! notification until the queue is empty. It keeps no pins and checks no
//! ids: it sends the same buffer again and again, which only a benchmark
//! may do.

#![allow(dead_code)]

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Outstanding sends before the loop drains the error queue (as the
/// probe `udpzc.c` this loop mirrors: `pending > 64`).
pub const REAP_AFTER: u64 = 64;

/// `SO_EE_CODE_ZEROCOPY_COPIED` (include/uapi/linux/errqueue.h).
const COPIED: u8 = 1;

/// A UDP socket in zero-copy mode and the loop's counters.
pub struct RawZeroCopy {
    sock: UdpSocket,
    pending: u64,
    /// Sends that succeeded.
    pub sends: u64,
    /// Sends the kernel refused (`ENOBUFS`: option memory ran out).
    pub failed: u64,
    /// Error-queue notifications read.
    pub notes: u64,
    /// Sends those notifications covered.
    pub completed: u64,
    /// Of which the kernel copied after all.
    pub copied: u64,
    /// `recvmsg(MSG_ERRQUEUE)` calls made.
    pub reads: u64,
}

impl RawZeroCopy {
    /// Sets `SO_ZEROCOPY` on `sock` (a connected UDP socket).
    pub fn new(sock: UdpSocket) -> io::Result<Self> {
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value living across
        // the call.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ZEROCOPY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            sock,
            pending: 0,
            sends: 0,
            failed: 0,
            notes: 0,
            completed: 0,
            copied: 0,
            reads: 0,
        })
    }

    /// One zero-copy datagram of `payload`; `ENOBUFS` is counted and
    /// tolerated (as the C loop does), any other error returned.
    ///
    /// The caller must keep `payload` unchanged and alive until
    /// [`drain`](Self::drain) has seen every completion: the kernel may
    /// still read it.
    pub fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        // SAFETY: `payload` is readable for its length; the caller keeps
        // it alive and unchanged until the completions are drained.
        let w = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                payload.as_ptr().cast(),
                payload.len(),
                libc::MSG_ZEROCOPY,
            )
        };
        if w < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENOBUFS) {
                return Err(err);
            }
            self.failed += 1;
        } else {
            self.sends += 1;
            self.pending += 1;
        }
        if self.pending > REAP_AFTER || w < 0 {
            self.reap();
        }
        Ok(())
    }

    /// Reads every notification queued now.
    fn reap(&mut self) {
        loop {
            let mut control = [0u64; 16];
            // SAFETY: an all-zero msghdr is valid (no name, no iovecs).
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_control = control.as_mut_ptr().cast();
            m.msg_controllen = std::mem::size_of_val(&control) as _;
            self.reads += 1;
            // SAFETY: `m` points at `control`, writable and alive across
            // the call.
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
            // SAFETY: the kernel filled `m.msg_controllen` bytes of
            // `control` with well-formed cmsgs.
            let cm = unsafe { libc::CMSG_FIRSTHDR(&m) };
            if cm.is_null() {
                continue;
            }
            // SAFETY: a zero-copy notification carries one
            // sock_extended_err; read_unaligned copes with any alignment.
            let ee: libc::sock_extended_err =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast()) };
            let n = u64::from(ee.ee_data.wrapping_sub(ee.ee_info)) + 1;
            self.notes += 1;
            self.completed += n;
            self.pending = self.pending.saturating_sub(n);
            if ee.ee_code & COPIED != 0 {
                self.copied += n;
            }
        }
    }

    /// Waits (polling, at most `timeout`) until every send has completed,
    /// so the payload may be dropped.
    pub fn drain(&mut self, timeout: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        loop {
            self.reap();
            if self.pending == 0 {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// A plain copying send loop on its own socket: `send(.., 0)`.
pub fn plain_send(sock: &UdpSocket, payload: &[u8]) -> io::Result<()> {
    // SAFETY: `payload` is readable for its length during the call.
    let w = unsafe { libc::send(sock.as_raw_fd(), payload.as_ptr().cast(), payload.len(), 0) };
    if w < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
