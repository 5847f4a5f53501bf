//! Zero-copy I/O: bytes go from [`Buf`](crate::Buf)s and
//! [`Composite`](crate::Composite)s to the kernel where they lie, and come
//! back from sockets into chunks that are cut into frames by reference.
//!
//! - [`gather`]: one `writev`/`sendmsg` per call over up to [`IOV_MAX`]
//!   components; a [`GatherWriter`] keeps the exact position across partial
//!   writes, `EINTR` and `EAGAIN`; [`write_all`] is the blocking helper.
//! - [`zerocopy`] (Linux): [`ZeroCopySender`] sends with `MSG_ZEROCOPY` and
//!   keeps every sent `Buf` pinned until the kernel's completion covers it.
//! - [`files`] (Linux for `sendfile`/`splice`): file regions to sockets
//!   without mapping them, or [`map_file`] into a `Buf`.
//! - [`recv`]: reads into reusable chunks and hands out length-prefixed
//!   frames as `Buf`s (or `Composite`s when they span chunks).
//!
//! Everything is Linux first. On other Unix systems gather writes use plain
//! `writev`; zero-copy sends, `sendfile` and `splice` are Linux only.
//!
//! ```
//! use std::io::Read;
//! use std::os::unix::net::UnixStream;
//! use zcbuf_core::{io, Buf, Composite};
//!
//! let (a, mut b) = UnixStream::pair().unwrap();
//! let mut msg = Composite::new();
//! msg.push(Buf::from_static(b"head "));
//! msg.push(Buf::from(b"body".to_vec()));
//! io::write_all(&a, &msg).unwrap();
//! drop(a);
//! let mut got = Vec::new();
//! b.read_to_end(&mut got).unwrap();
//! assert_eq!(got, b"head body");
//! ```

#[cfg(feature = "http-body")]
pub mod body;
pub mod files;
pub mod gather;
pub mod recv;
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub mod tokio;
#[cfg(target_os = "linux")]
pub mod zerocopy;

pub use files::map_file;
#[cfg(target_os = "linux")]
pub use files::{sendfile_all, splice_all};
pub use gather::{write_all, write_bufs_all, GatherWriter, IOV_MAX};
pub use recv::{ChunkSource, Frame, FrameDecoder, HeapChunks};
#[cfg(target_os = "linux")]
pub use zerocopy::{
    parked_pins, AutoDecision, AutoSizeChoice, DatagramBatch, DatagramBatchBuilder, GsoStats,
    SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender, ZeroCopyStats,
};

use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// Waits until `fd` is ready for `events` (`POLLIN`, `POLLOUT`, ...) or
/// `timeout` passes; `None` waits forever. Returns whether it became ready.
pub(crate) fn poll_fd(
    fd: impl AsFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> std::io::Result<bool> {
    let ms = match timeout {
        None => -1,
        Some(t) => t.as_millis().min(i32::MAX as u128) as libc::c_int,
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd living across the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The one blocking loop of the module: runs `op` until it succeeds or
/// fails with something other than `EINTR` (retried at once) or `EAGAIN`
/// (waits with `poll` for `events` on `fd`, then retries).
pub(crate) fn retry_blocking<T>(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    mut op: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll_fd(fd, events, None)?;
            }
            other => return other,
        }
    }
}

/// The one iovec filler of the module: writes the non-empty `pieces`
/// into `iov`, front first, and returns how many it filled (at most
/// `iov.len()`).
pub(crate) fn fill_iovecs<'a>(
    iov: &mut [MaybeUninit<libc::iovec>],
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> usize {
    let mut n = 0;
    for piece in pieces {
        if n == iov.len() {
            break;
        }
        if piece.is_empty() {
            continue;
        }
        iov[n].write(libc::iovec {
            iov_base: piece.as_ptr() as *mut libc::c_void,
            iov_len: piece.len(),
        });
        n += 1;
    }
    n
}

/// Whether `fd` is a socket that keeps message boundaries (`SOCK_DGRAM`,
/// `SOCK_SEQPACKET`, `SOCK_RAW`): one call is one message there, so a
/// message must never be split across calls. Not a socket: `false`.
pub(crate) fn is_message_socket(fd: BorrowedFd<'_>) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for writes during the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && matches!(ty, libc::SOCK_DGRAM | libc::SOCK_SEQPACKET | libc::SOCK_RAW)
}

/// Rebuilds `msg` so that it has at most `max_pieces` non-empty
/// components, keeping the first `max_pieces - 1` and copying the rest
/// into one new buffer: the way to send a message of more than
/// [`IOV_MAX`] pieces in one call without splitting it.
pub(crate) fn coalesce_tail(msg: &mut crate::Composite, max_pieces: usize) {
    let max_pieces = max_pieces.max(1);
    let pieces = msg.chunks().filter(|c| !c.is_empty()).count();
    if pieces <= max_pieces {
        return;
    }
    let mut kept = crate::Composite::with_capacity(max_pieces);
    let mut tail = Vec::new();
    for buf in msg.components().filter(|b| !b.is_empty()) {
        if kept.component_count() + 1 < max_pieces {
            kept.push(buf.clone());
        } else {
            tail.extend_from_slice(buf);
        }
    }
    kept.push(crate::Buf::from(tail));
    *msg = kept;
}
