//! Gather writes: a [`Composite`] (or a list of [`Buf`]s) goes to a file
//! descriptor in one `sendmsg`/`writev` per call, straight from the
//! components' memory.
//!
//! # Position keeping
//!
//! A [`GatherWriter`] owns the bytes still to write as a `Composite` of
//! views (retains, not copies). A write of `n` bytes advances that
//! composite by exactly `n`, dropping finished components from the front,
//! so a partial write resumes at the right byte of the right component.
//! `EINTR` is retried inside the call; `EAGAIN` comes back as
//! [`ErrorKind::WouldBlock`] and leaves the position untouched.
//!
//! Sockets get `sendmsg` with `MSG_NOSIGNAL` (a reset peer is an `EPIPE`
//! error, not a `SIGPIPE`); anything else (files, pipes) gets `writev`.
//! One call passes at most [`IOV_MAX`] iovecs; longer composites take
//! several calls on a stream. On a socket that keeps message boundaries
//! (UDP, `SOCK_SEQPACKET`) a call is a message, so a composite of more
//! than `IOV_MAX` pieces is never split: its tail is copied into one piece
//! and the message goes whole in one call (or fails, e.g. `EMSGSIZE`).

use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use super::{coalesce_tail, fill_iovecs, is_message_socket, retry_blocking};
use crate::{Buf, Composite};

/// Most iovecs one `writev`/`sendmsg` call accepts (Linux `UIO_MAXIOV`,
/// the POSIX `IOV_MAX` of every current Unix).
///
/// ```
/// assert_eq!(zcbuf_core::io::IOV_MAX, 1024);
/// ```
pub const IOV_MAX: usize = 1024;

#[cfg(any(target_os = "linux", target_os = "android"))]
const NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NOSIGNAL: libc::c_int = 0;

/// Stack storage for one call's iovecs; never initialised as a whole.
pub(crate) type IovArray = [MaybeUninit<libc::iovec>; IOV_MAX];

pub(crate) fn iov_array() -> IovArray {
    [const { MaybeUninit::uninit() }; IOV_MAX]
}

/// One `sendmsg(flags | MSG_NOSIGNAL)`, or `writev` when `fd` is not a
/// socket (remembered in `not_socket`); `EINTR` retried.
///
/// # Safety
///
/// As [`send_iov_once`].
pub(crate) unsafe fn send_iov(
    fd: RawFd,
    iov: &[MaybeUninit<libc::iovec>],
    n: usize,
    flags: libc::c_int,
    not_socket: &mut bool,
) -> io::Result<usize> {
    loop {
        // SAFETY: the caller's guarantee, passed on.
        match unsafe { send_iov_once(fd, iov, n, flags, not_socket) } {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One `sendmsg(flags | MSG_NOSIGNAL)` (`send` for one iovec), or
/// `writev` when `fd` is not a socket (learnt from `ENOTSOCK` and
/// remembered in `not_socket`). `EINTR` is returned: a zero-copy caller
/// must look at the error queue after any failed call.
///
/// # Safety
///
/// `iov[..n]` must be initialised and describe readable memory that stays
/// valid for the duration of the call (and, with `MSG_ZEROCOPY`, until the
/// kernel's completion).
pub(crate) unsafe fn send_iov_once(
    fd: RawFd,
    iov: &[MaybeUninit<libc::iovec>],
    n: usize,
    flags: libc::c_int,
    not_socket: &mut bool,
) -> io::Result<usize> {
    let iov_ptr = iov.as_ptr() as *mut libc::iovec;
    loop {
        let r = if n == 1 && !*not_socket {
            // One iovec: send(2) skips sendmsg's msghdr and iovec import,
            // measurably cheaper for single-buffer datagrams.
            // SAFETY: the caller guarantees iov[0] is initialised and readable.
            let v = unsafe { iov[0].assume_init_ref() };
            // SAFETY: `v` describes readable memory (see above).
            unsafe { libc::send(fd, v.iov_base, v.iov_len, flags | NOSIGNAL) }
        } else if *not_socket {
            // SAFETY: the caller guarantees iov[..n] is initialised and readable.
            unsafe { libc::writev(fd, iov_ptr, n as libc::c_int) }
        } else {
            // SAFETY: an all-zero msghdr is valid; we then point it at the
            // caller's initialised iovecs.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_iov = iov_ptr;
            hdr.msg_iovlen = n as _;
            // SAFETY: `hdr` describes `n` initialised iovecs over readable memory.
            unsafe { libc::sendmsg(fd, &hdr, flags | NOSIGNAL) }
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Nothing was sent: the same bytes go by writev.
            Some(libc::ENOTSOCK) if !*not_socket => *not_socket = true,
            _ => return Err(err),
        }
    }
}

/// Writes a [`Composite`] to a file descriptor without copying, keeping
/// its position across partial writes, `EINTR` and `EAGAIN`.
///
/// ```
/// use std::io::Read;
/// use std::os::unix::net::UnixStream;
/// use zcbuf_core::{io::GatherWriter, Buf};
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let parts: Vec<Buf> = (0..3000).map(|i| Buf::from(vec![i as u8; 3])).collect();
/// let mut w = GatherWriter::from_bufs(&parts);
/// let reader = std::thread::spawn(move || {
///     let mut v = Vec::new();
///     b.read_to_end(&mut v).unwrap();
///     v
/// });
/// w.write_all(&a).unwrap();
/// assert!(w.calls() >= 3); // 3000 components, at most 1024 per call
/// drop(a);
/// assert_eq!(reader.join().unwrap().len(), 9000);
/// ```
#[derive(Debug, Default)]
pub struct GatherWriter {
    pending: Composite,
    written: u64,
    calls: u64,
    iovecs: u64,
    not_socket: bool,
    /// Whether the descriptor keeps message boundaries; asked only when a
    /// call could not take every piece.
    message_socket: Option<bool>,
}

impl GatherWriter {
    /// A writer of `msg`'s bytes.
    ///
    /// ```
    /// let w = zcbuf_core::io::GatherWriter::new(zcbuf_core::Buf::from_static(b"hi").into());
    /// assert_eq!(w.remaining(), 2);
    /// ```
    pub fn new(msg: Composite) -> Self {
        Self {
            pending: msg,
            ..Self::default()
        }
    }

    /// A writer of the concatenation of `bufs` (each one retained, not copied).
    ///
    /// ```
    /// use zcbuf_core::{io::GatherWriter, Buf};
    /// let w = GatherWriter::from_bufs(&[Buf::from_static(b"a"), Buf::from_static(b"bc")]);
    /// assert_eq!(w.remaining(), 3);
    /// ```
    pub fn from_bufs(bufs: &[Buf]) -> Self {
        Self::new(bufs.iter().cloned().collect())
    }

    /// Appends `buf` to the bytes still to write.
    ///
    /// ```
    /// let mut w = zcbuf_core::io::GatherWriter::default();
    /// w.push(zcbuf_core::Buf::from_static(b"more"));
    /// assert_eq!(w.remaining(), 4);
    /// ```
    pub fn push(&mut self, buf: Buf) {
        self.pending.push(buf);
    }

    /// Bytes not yet written.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::GatherWriter::default().remaining(), 0);
    /// ```
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }

    /// Whether every byte has been written.
    ///
    /// ```
    /// assert!(zcbuf_core::io::GatherWriter::default().is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes written so far.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::GatherWriter::default().written(), 0);
    /// ```
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Successful system calls made so far.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::GatherWriter::default().calls(), 0);
    /// ```
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Iovecs passed over all successful calls (divide by
    /// [`calls`](Self::calls) for iovecs per call).
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::GatherWriter::default().iovecs(), 0);
    /// ```
    pub fn iovecs(&self) -> u64 {
        self.iovecs
    }

    /// The bytes not yet written, by reference.
    ///
    /// ```
    /// let w = zcbuf_core::io::GatherWriter::new(zcbuf_core::Buf::from_static(b"x").into());
    /// assert_eq!(*w.pending(), b"x"[..]);
    /// ```
    pub fn pending(&self) -> &Composite {
        &self.pending
    }

    /// Gives back the bytes not yet written.
    ///
    /// ```
    /// let w = zcbuf_core::io::GatherWriter::new(zcbuf_core::Buf::from_static(b"x").into());
    /// assert_eq!(w.into_pending().len(), 1);
    /// ```
    pub fn into_pending(self) -> Composite {
        self.pending
    }

    /// One `sendmsg`/`writev` of up to [`IOV_MAX`] components; returns the
    /// bytes written (0 only when nothing is left). `EINTR` is retried;
    /// `EAGAIN` is returned as [`ErrorKind::WouldBlock`] with the position
    /// kept, so calling again later resumes at the same byte.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let (a, _b) = UnixStream::pair().unwrap();
    /// let mut w = zcbuf_core::io::GatherWriter::new(zcbuf_core::Buf::from_static(b"ping").into());
    /// assert_eq!(w.write_once(&a).unwrap(), 4);
    /// assert!(w.is_done());
    /// ```
    pub fn write_once(&mut self, fd: impl AsFd) -> io::Result<usize> {
        if self.pending.is_empty() {
            return Ok(0);
        }
        let fd = fd.as_fd();
        if self.pending.component_count() > IOV_MAX
            && *self
                .message_socket
                .get_or_insert_with(|| is_message_socket(fd))
        {
            // One message: never split it across calls.
            coalesce_tail(&mut self.pending, IOV_MAX);
        }
        let mut iov = iov_array();
        let n = fill_iovecs(&mut iov, self.pending.chunks());
        // SAFETY: iov[..n] was just filled from `self.pending`'s components,
        // which stay alive and unchanged for the whole call.
        let written = unsafe { send_iov(fd.as_raw_fd(), &iov, n, 0, &mut self.not_socket)? };
        self.calls += 1;
        self.iovecs += n as u64;
        self.written += written as u64;
        self.pending.advance(written);
        Ok(written)
    }

    /// Writes everything, blocking: on `EAGAIN` (a non-blocking descriptor)
    /// it waits with `poll` until the descriptor is writable again.
    /// A write that makes no progress is an [`ErrorKind::WriteZero`] error;
    /// on any error the position is kept.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let (a, _b) = UnixStream::pair().unwrap();
    /// let mut w = zcbuf_core::io::GatherWriter::new(zcbuf_core::Buf::from_static(b"all").into());
    /// w.write_all(&a).unwrap();
    /// assert_eq!(w.written(), 3);
    /// ```
    pub fn write_all(&mut self, fd: impl AsFd) -> io::Result<()> {
        let fd = fd.as_fd();
        while !self.pending.is_empty() {
            if retry_blocking(fd, libc::POLLOUT, || self.write_once(fd))? == 0 {
                return Err(io::Error::new(ErrorKind::WriteZero, "write returned 0"));
            }
        }
        Ok(())
    }
}

/// Writes all of `msg` to `fd` without copying its bytes, blocking until
/// done (on `EAGAIN` it waits with `poll`). Unlike a [`GatherWriter`] it
/// borrows `msg` and keeps its position as (component, offset), so it
/// does not even retain the components. Returns the number of system
/// calls it took.
///
/// ```
/// use std::io::Read;
/// use std::os::unix::net::UnixStream;
/// use zcbuf_core::{Buf, Composite};
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let msg: Composite = [Buf::from_static(b"x"), Buf::from_static(b"y")].into_iter().collect();
/// assert_eq!(zcbuf_core::io::write_all(&a, &msg).unwrap(), 1);
/// let mut got = [0; 2];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"xy");
/// ```
pub fn write_all(fd: impl AsFd, msg: &Composite) -> io::Result<u64> {
    write_all_indexed(fd.as_fd(), msg.component_count(), |i| {
        msg.component(i).map(|b| b.as_slice())
    })
}

/// Writes the concatenation of `bufs` to `fd` without copying, blocking
/// until done (see [`write_all`]). Returns the number of system calls it
/// took.
///
/// ```
/// use std::io::Read;
/// use std::os::unix::net::UnixStream;
/// use zcbuf_core::Buf;
/// let (a, mut b) = UnixStream::pair().unwrap();
/// zcbuf_core::io::write_bufs_all(&a, &[Buf::from_static(b"ab"), Buf::from_static(b"c")]).unwrap();
/// let mut got = [0; 3];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"abc");
/// ```
pub fn write_bufs_all(fd: impl AsFd, bufs: &[Buf]) -> io::Result<u64> {
    write_all_indexed(fd.as_fd(), bufs.len(), |i| {
        bufs.get(i).map(|b| b.as_slice())
    })
}

/// The borrowed gather loop: components by index, position as
/// (component, offset into it).
fn write_all_indexed<'a>(
    fd: std::os::fd::BorrowedFd<'_>,
    count: usize,
    component: impl Fn(usize) -> Option<&'a [u8]>,
) -> io::Result<u64> {
    let raw = fd.as_raw_fd();
    let mut not_socket = false;
    let mut iov = iov_array();
    let pieces = (0..count)
        .filter(|&i| component(i).is_some_and(|c| !c.is_empty()))
        .count();
    if pieces > IOV_MAX && is_message_socket(fd) {
        // One message: never split it across calls; the pieces that do
        // not fit are copied into one.
        let mut tail = Vec::new();
        let mut kept = Vec::with_capacity(IOV_MAX);
        for bytes in (0..count).filter_map(&component).filter(|c| !c.is_empty()) {
            if kept.len() + 1 < IOV_MAX {
                kept.push(bytes);
            } else {
                tail.extend_from_slice(bytes);
            }
        }
        let n = fill_iovecs(&mut iov, kept.into_iter().chain([&tail[..]]));
        retry_blocking(
            fd,
            libc::POLLOUT,
            // SAFETY: iov[..n] describes borrowed components and `tail`,
            // all alive for the call.
            || unsafe { send_iov(raw, &iov, n, 0, &mut not_socket) },
        )?;
        return Ok(1);
    }
    let (mut idx, mut off) = (0usize, 0usize);
    let mut calls = 0;
    loop {
        let first = idx;
        let n = fill_iovecs(
            &mut iov,
            (first..count).map(|i| {
                let bytes = component(i).unwrap_or(&[]);
                if i == first {
                    &bytes[off..]
                } else {
                    bytes
                }
            }),
        );
        if n == 0 {
            return Ok(calls);
        }
        let written = retry_blocking(
            fd,
            libc::POLLOUT,
            // SAFETY: iov[..n] was just filled from components borrowed
            // for the whole call.
            || unsafe { send_iov(raw, &iov, n, 0, &mut not_socket) },
        )?;
        if written == 0 {
            return Err(io::Error::new(ErrorKind::WriteZero, "write returned 0"));
        }
        calls += 1;
        let mut left = written;
        while left > 0 {
            let rest = component(idx).map_or(0, <[u8]>::len) - off;
            if left >= rest {
                left -= rest;
                idx += 1;
                off = 0;
            } else {
                off += left;
                left = 0;
            }
        }
    }
}
