//! File regions to sockets: `sendfile` and `splice` move a region from the
//! page cache to a socket without it ever entering user space, and
//! [`map_file`] makes a region a [`Buf`] (a `memmap2` map) so it can go out
//! inside a [`Composite`](crate::Composite) next to a header, in one
//! `writev`.
//!
//! `sendfile_all` and `splice_all` block until the whole region is sent:
//! `EINTR` is retried and on a non-blocking socket `EAGAIN` waits with
//! `poll`. A file shorter than the region is an
//! [`ErrorKind::UnexpectedEof`] error that says how many of the region's
//! bytes were sent before the end of the file.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::ops::{Bound, RangeBounds};
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::Buf;

/// Maps `range` (byte offsets) of `file` read-only into a [`Buf`]; the map
/// lives as long as the last view of it. An empty range gives an empty
/// `Buf` without mapping anything.
///
/// # Safety
///
/// The file must not be truncated or written (by this or any other
/// process) while a view of the map is alive: a shrunk file makes reads
/// fault with `SIGBUS`, and a written one breaks the `Buf`'s promise that
/// its bytes never change.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("zcbuf-doc-map-{}", std::process::id()));
/// std::fs::File::create(&path).unwrap().write_all(b"0123456789").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// // SAFETY: nobody modifies the file while the map lives.
/// let buf = unsafe { zcbuf_core::io::map_file(&file, 2..5) }.unwrap();
/// assert_eq!(&buf[..], b"234");
/// std::fs::remove_file(&path).unwrap();
/// ```
pub unsafe fn map_file(file: &File, range: impl RangeBounds<u64>) -> io::Result<Buf> {
    let file_len = file.metadata()?.len();
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => file_len,
    };
    if start > end || end > file_len {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("range {start}..{end} out of bounds for a file of {file_len} bytes"),
        ));
    }
    let len = usize::try_from(end - start)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "range too large to map"))?;
    if len == 0 {
        return Ok(Buf::new());
    }
    // SAFETY: the caller promises the file is neither truncated nor written
    // while the map (kept alive by the Buf's owner) exists.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(start)
            .len(len)
            .map(file)?
    };
    Ok(Buf::from_owner(map))
}

/// The error of a region that runs past the end of its file: says how
/// much of it went, since the peer has those bytes.
#[cfg(target_os = "linux")]
fn region_past_eof(offset: u64, len: u64, sent: u64) -> io::Error {
    io::Error::new(
        ErrorKind::UnexpectedEof,
        format!(
            "file ended at offset {}: {sent} of the region's {len} bytes from offset {offset} were sent",
            offset.saturating_add(sent)
        ),
    )
}

/// Sends `len` bytes of `file` starting at `offset` to `sock` with
/// `sendfile(2)`; returns the number of `sendfile` calls it took.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// let path = std::env::temp_dir().join(format!("zcbuf-doc-sendfile-{}", std::process::id()));
/// std::fs::File::create(&path).unwrap().write_all(b"hello file").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// let (a, mut b) = UnixStream::pair().unwrap();
/// zcbuf_core::io::sendfile_all(&a, &file, 6, 4).unwrap();
/// let mut got = [0; 4];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"file");
/// std::fs::remove_file(&path).unwrap();
/// ```
#[cfg(target_os = "linux")]
pub fn sendfile_all(sock: impl AsFd, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    let sock = sock.as_fd();
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "offset too large"))?;
    let mut left = len;
    let mut calls = 0;
    while left > 0 {
        let count = left.min(1 << 30) as usize;
        let r = super::retry_blocking(sock, libc::POLLOUT, || {
            // SAFETY: both descriptors are open for the call; `off` is
            // a valid off_t the kernel updates.
            let r = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as u64)
            }
        })?;
        if r == 0 {
            return Err(region_past_eof(offset, len, len - left));
        }
        calls += 1;
        left -= r;
    }
    Ok(calls)
}

/// Sends `len` bytes of `file` starting at `offset` to `sock` through a
/// pipe with `splice(2)` (file → pipe → socket: page references move, the
/// bytes do not); returns the number of `splice` calls it took.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// let path = std::env::temp_dir().join(format!("zcbuf-doc-splice-{}", std::process::id()));
/// std::fs::File::create(&path).unwrap().write_all(b"spliced bytes").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// let (a, mut b) = UnixStream::pair().unwrap();
/// zcbuf_core::io::splice_all(&a, &file, 0, 7).unwrap();
/// let mut got = [0; 7];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"spliced");
/// std::fs::remove_file(&path).unwrap();
/// ```
#[cfg(target_os = "linux")]
pub fn splice_all(sock: impl AsFd, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    let sock = sock.as_fd();
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we now own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut off = libc::loff_t::try_from(offset)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "offset too large"))?;
    let mut left = len;
    let mut calls = 0;
    while left > 0 {
        let want = left.min(1 << 16) as usize;
        // The file side never blocks; EINTR is retried.
        let n = super::retry_blocking(file.as_fd(), libc::POLLIN, || {
            // SAFETY: valid descriptors; `off` is a valid loff_t the
            // kernel updates.
            let n = unsafe {
                libc::splice(
                    file.as_raw_fd(),
                    &mut off,
                    wr.as_raw_fd(),
                    std::ptr::null_mut(),
                    want,
                    libc::SPLICE_F_MOVE,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?;
        if n == 0 {
            return Err(region_past_eof(offset, len, len - left));
        }
        calls += 1;
        left -= n as u64;
        // SPLICE_F_MORE tells TCP that more follows (it holds back a
        // partial segment, as MSG_MORE does): only while it is true, so
        // the last bytes leave at once.
        let more = if left > 0 { libc::SPLICE_F_MORE } else { 0 };
        let mut in_pipe = n;
        while in_pipe > 0 {
            let m = super::retry_blocking(sock, libc::POLLOUT, || {
                // SAFETY: valid descriptors; no offsets (pipe and socket).
                let m = unsafe {
                    libc::splice(
                        rd.as_raw_fd(),
                        std::ptr::null_mut(),
                        sock.as_raw_fd(),
                        std::ptr::null_mut(),
                        in_pipe,
                        libc::SPLICE_F_MOVE | more,
                    )
                };
                if m < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(m as usize)
                }
            })?;
            if m == 0 {
                return Err(io::Error::new(
                    ErrorKind::WriteZero,
                    "socket accepted nothing",
                ));
            }
            calls += 1;
            in_pipe -= m;
        }
    }
    Ok(calls)
}
