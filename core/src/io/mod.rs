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

#[cfg(target_os = "linux")]
mod autocost;
pub mod files;
pub mod gather;
pub mod recv;
#[cfg(target_os = "linux")]
pub mod zerocopy;

#[cfg(target_os = "linux")]
pub use autocost::AutoSizeChoice;
pub use files::map_file;
#[cfg(target_os = "linux")]
pub use files::{sendfile_all, splice_all};
pub use gather::{write_all, write_bufs_all, GatherWriter, IOV_MAX};
pub use recv::{ChunkSource, Frame, FrameDecoder, HeapChunks};
#[cfg(target_os = "linux")]
pub use zerocopy::{
    parked_pins, AutoDecision, ZeroCopyConfig, ZeroCopyMode, ZeroCopySender, ZeroCopyStats,
};

use std::os::fd::{AsFd, AsRawFd};
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
