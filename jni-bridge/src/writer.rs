//! Socket writers for Java: a [`ZeroCopySender`] over a duplicate of the
//! descriptor of a channel the JVM owns.
//!
//! The descriptor is read from the channel object natively (JNI field
//! access is not subject to module encapsulation, so no `--add-opens`) and
//! duplicated at once. The writer owns its duplicate: when Java closes its
//! channel first, the number may be reused by an unrelated file, but the
//! writer keeps sending to its own socket (or gets an error from it), and
//! the socket stays open for the completions of pinned sends.
//!
//! Between reading the number and duplicating it, Java may close the
//! channel and the number may name something else. So after the duplicate
//! the writer checks that the channel is still open (a channel never
//! reopens, and the JDK marks it closed before it closes the descriptor:
//! open after the duplicate means the duplicate is of its socket) and that
//! the duplicate is a socket; otherwise it refuses with
//! `ClosedChannelException` / `IllegalArgumentException`.
//!
//! Pieces of mapped files go out with `sendfile` on stream sockets (see
//! [`crate::file_region`]): the page cache's pages go to the socket and no
//! byte is copied through the mapping. A small header before a file (an
//! HTTP response) goes with `MSG_MORE`, other mixes under `TCP_CORK`, so
//! memory and file bytes share segments instead of a small packet going
//! alone (and, with Nagle, waiting for a delayed ACK). Datagram sockets, and
//! files `sendfile` refuses, get the mapped bytes in a gather write.

use std::fs::File;
use std::io::{self, ErrorKind, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use jni::objects::JObject;
use jni::JNIEnv;
use zcbuf_core::io::{ZeroCopyConfig, ZeroCopyMode, ZeroCopySender, ZeroCopyStats, IOV_MAX};
use zcbuf_core::Composite;

use crate::error::{BridgeError, BridgeResult};
use crate::file_region::{self, Piece};
use crate::table;

/// How long one blocking send on a full socket waits before it returns
/// what it sent (the sender's wait limit for memory; `SO_SNDTIMEO`, set
/// for the length of a write only, for file pieces). The
/// writer's duplicate keeps the socket open when another thread closes the
/// channel, and nothing wakes a thread blocked in a send on it; bounded
/// sends let Java's write loop see the close. Set only while the writer
/// sends: a blocking `SocketChannel.write` under a send timeout returns
/// short counts, which the channel's own users do not expect.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// One socket's sender.
pub struct Writer {
    sender: ZeroCopySender<OwnedFd>,
    /// Whether blocking writes set [`SEND_TIMEOUT`] (a stream socket without a send timeout of its own).
    bound_sends: bool,
    /// Whether file pieces go with `sendfile`: a stream socket, until `sendfile` refused once.
    sendfile: bool,
    /// Whether `TCP_CORK` may be tried (a TCP socket, as far as we know).
    cork: bool,
    /// Bytes sent with `sendfile`.
    file_bytes: u64,
    /// Pieces below this go with `MSG_MORE` before a file (the sender would not ask for zero-copy for them).
    threshold: usize,
    /// `sendmsg` calls, bytes and iovecs sent with `MSG_MORE` outside the sender, for the statistics.
    more_sends: u64,
    more_bytes: u64,
    more_iovecs: u64,
}

/// What one write sends, in order.
///
/// ```
/// use zcbuf_jni::writer::Message;
/// let msg = Message::Memory(zcbuf_core::Composite::default());
/// assert!(matches!(msg, Message::Memory(m) if m.is_empty()));
/// ```
pub enum Message {
    /// Memory only: one gather write.
    Memory(Composite),
    /// Memory and mapped-file pieces.
    Pieces(Vec<Piece>),
}

impl Message {
    /// The `(handle, offset, length)` pieces of a write, with mapped files
    /// found (see [`file_region::split`]); every handle and range checked.
    ///
    /// ```
    /// use zcbuf_jni::{table, writer::Message};
    /// let h = table::insert(table::Entry::Memory(zcbuf_core::Buf::from_static(b"abc")));
    /// assert!(matches!(Message::gather(&[h], &[1], &[2]), Ok(Message::Memory(m)) if m.to_vec() == b"bc"));
    /// assert!(Message::gather(&[h], &[2], &[2]).is_err());
    /// table::remove_memory(h).unwrap();
    /// ```
    pub fn gather(handles: &[i64], offsets: &[i32], lengths: &[i32]) -> BridgeResult<Self> {
        Ok(match file_region::split(handles, offsets, lengths)? {
            Some(pieces) => Message::Pieces(pieces),
            None => Message::Memory(table::gather(handles, offsets, lengths)?),
        })
    }

    /// Everything as memory, for sockets that take no `sendfile`: maps as
    /// they are, file regions read into buffers of their own.
    fn into_memory(self) -> BridgeResult<Composite> {
        match self {
            Message::Memory(msg) => Ok(msg),
            Message::Pieces(pieces) => {
                let mut msg = Composite::default();
                for piece in pieces {
                    match piece {
                        Piece::Memory(m) => msg.append(m),
                        Piece::File {
                            mapped: Some(m), ..
                        } => msg.append(m),
                        Piece::File {
                            file,
                            offset,
                            len,
                            mapped: None,
                        } => msg.push(file_region::read(&file, offset, len)?),
                    }
                }
                Ok(msg)
            }
        }
    }
}

/// An integer socket option.
fn int_option(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is open (borrowed); `value` and `len` describe a writable `c_int`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sets an integer socket option.
fn set_int_option(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `fd` is open (borrowed); `value` is a `c_int` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads the descriptor of a `SocketChannel` or `DatagramChannel`
/// (`sun.nio.ch.*ChannelImpl.fdVal`, else its `FileDescriptor fd`).
fn channel_fd(env: &mut JNIEnv<'_>, channel: &JObject<'_>) -> BridgeResult<RawFd> {
    if channel.is_null() {
        return Err(BridgeError::Null("the channel"));
    }
    if let Ok(value) = env.get_field(channel, "fdVal", "I") {
        return Ok(value.i()?);
    }
    env.exception_clear()?; // NoSuchFieldError from the lookup above
    let fd_object = env
        .get_field(channel, "fd", "Ljava/io/FileDescriptor;")
        .and_then(|v| v.l());
    let fd_object = match fd_object {
        Ok(obj) if !obj.is_null() => obj,
        _ => {
            env.exception_clear()?;
            return Err(BridgeError::IllegalArgument(
                "this channel has no socket descriptor zcbuf can read".into(),
            ));
        }
    };
    Ok(env.get_field(&fd_object, "fd", "I")?.i()?)
}

/// The socket's send timeout (`SO_SNDTIMEO`).
fn send_timeout(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `fd` is open (borrowed); `tv` and `len` describe a writable
    // `timeval`, the option's type.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

/// Sets the socket's send timeout (`SO_SNDTIMEO`; zero: none).
fn set_send_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `fd` is open (borrowed); `tv` is a valid `timeval` of the
    // size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is a socket (`fstat`'s `S_ISSOCK`).
fn is_socket(fd: &OwnedFd) -> BridgeResult<bool> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open (owned); fstat writes a whole `stat` on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error().into());
    }
    // SAFETY: fstat succeeded, so `st` is initialised.
    let mode = unsafe { st.assume_init() }.st_mode;
    Ok(mode & libc::S_IFMT == libc::S_IFSOCK)
}

impl Writer {
    /// A writer on `channel`'s socket with the given mode (0 `Auto`,
    /// 1 `Always`, 2 `Never`) and zero-copy threshold.
    pub fn open(
        env: &mut JNIEnv<'_>,
        channel: &JObject<'_>,
        mode: i32,
        threshold: i32,
    ) -> BridgeResult<Self> {
        let mode = match mode {
            0 => ZeroCopyMode::Auto,
            1 => ZeroCopyMode::Always,
            2 => ZeroCopyMode::Never,
            other => {
                return Err(BridgeError::IllegalArgument(format!(
                    "no zero-copy mode {other}"
                )))
            }
        };
        let threshold = usize::try_from(threshold)
            .map_err(|_| BridgeError::IllegalArgument(format!("negative threshold {threshold}")))?;
        let fd = channel_fd(env, channel)?;
        if fd < 0 {
            return Err(BridgeError::ClosedChannel("the channel is closed".into()));
        }
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor number only reads it;
        // a stale number fails with EBADF, handled below.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: `dup` is a new descriptor that nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(dup) };
        let open = env.call_method(channel, "isOpen", "()Z", &[])?.z()?;
        if !open {
            return Err(BridgeError::ClosedChannel(
                "the channel was closed while the writer opened".into(),
            ));
        }
        if !is_socket(&sock)? {
            return Err(BridgeError::IllegalArgument(
                "the channel's descriptor is not a socket".into(),
            ));
        }
        let stream =
            int_option(sock.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE)? == libc::SOCK_STREAM;
        // A send timeout the socket's owner set stays theirs: blocking sends are bounded by it. Only a
        // stream socket's send waits for a peer (its window); a datagram's waits for the local device to
        // drain the send buffer, which takes no peer's will, so it goes without the two setsockopt calls
        // per write (on a UDP socket a quarter of the time of the send itself, measured on the veth sink).
        let bound_sends = stream && send_timeout(sock.as_fd())?.is_zero();
        let domain = int_option(sock.as_fd(), libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        let tcp = stream && (domain == libc::AF_INET || domain == libc::AF_INET6);
        let config = ZeroCopyConfig {
            mode,
            threshold,
            ..Default::default()
        };
        let threshold = config.threshold;
        let sender = ZeroCopySender::with_config(sock, config).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                // Another owner outside zcbuf set SO_ZEROCOPY on this socket: its
                // completions cannot be matched with ours, so ALWAYS is refused.
                BridgeError::ZeroCopyRefused(format!(
                    "zero-copy refused on this socket: SO_ZEROCOPY was set outside zcbuf ({e})"
                ))
            } else {
                e.into()
            }
        })?;
        Ok(Writer {
            sender,
            bound_sends,
            sendfile: stream,
            cork: tcp,
            file_bytes: 0,
            threshold,
            more_sends: 0,
            more_bytes: 0,
            more_iovecs: 0,
        })
    }

    /// Sends `msg` until it is all gone or the socket would block; returns
    /// the bytes sent. An error after some bytes went out returns those
    /// bytes (the error comes back on the next call), so Java's reader
    /// index never skips or repeats a byte. On a `blocking` stream socket
    /// each send waits at most [`SEND_TIMEOUT`] for room (unless the socket
    /// has a send timeout of its own), so a full socket returns what went, and
    /// Java can see a close by another thread before it sends on.
    /// Mapped-file pieces go with `sendfile` on stream sockets; a file that
    /// ended before its piece (truncated) is an `UnexpectedEof` error once no
    /// byte of the call went.
    pub fn write(&mut self, msg: Message, blocking: bool) -> BridgeResult<i64> {
        let bounded = blocking && self.bound_sends;
        // Memory goes through the sender, which bounds its own wait without touching the socket: one
        // system call per write where setting and clearing SO_SNDTIMEO took three.
        self.sender.set_wait_limit(bounded.then_some(SEND_TIMEOUT));
        match msg {
            Message::Memory(msg) => self.send(msg),
            Message::Pieces(pieces) if self.sendfile => {
                // sendfile and MSG_MORE sends block in the kernel: bounded by the socket's timeout, set
                // for this write only.
                if bounded {
                    set_send_timeout(self.sender.get_ref().as_fd(), SEND_TIMEOUT)?;
                }
                let result = self.send_pieces(pieces);
                if bounded {
                    // Back to none: a setsockopt with a valid timeval on an open socket does not fail, and
                    // an error here would lose the count of bytes that went out.
                    let _ = set_send_timeout(self.sender.get_ref().as_fd(), Duration::ZERO);
                }
                result
            }
            msg => msg.into_memory().and_then(|msg| self.send(msg)),
        }
    }

    fn send(&mut self, mut msg: Composite) -> BridgeResult<i64> {
        let mut sent = 0usize;
        while !msg.is_empty() {
            match self.sender.send(&mut msg) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent as i64)
    }

    /// Sends `pieces` in order until one goes short; returns the bytes sent
    /// (an error after some bytes went is left for the next call).
    fn send_pieces(&mut self, pieces: Vec<Piece>) -> BridgeResult<i64> {
        if let [Piece::Memory(head), Piece::File { .. }] = pieces.as_slice() {
            if self.cork && head.len() < self.threshold && head.component_count() <= IOV_MAX {
                return self.send_header_and_file(pieces);
            }
        }
        // Held while the pieces go so that a header and the file's first
        // bytes share segments; released at the end, which sends what waits.
        let corked = pieces.len() > 1 && self.set_cork(true);
        let mut sent = 0i64;
        let mut failure = None;
        for piece in pieces {
            let (want, result) = match piece {
                Piece::Memory(msg) => (msg.len() as i64, self.send(msg)),
                Piece::File {
                    file,
                    offset,
                    len,
                    mapped,
                } => (len as i64, self.send_file(&file, offset, len, mapped)),
            };
            match result {
                Ok(n) => {
                    sent += n;
                    if n < want {
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if corked {
            self.set_cork(false);
        }
        match failure {
            Some(e) if sent == 0 => Err(e),
            _ => Ok(sent),
        }
    }

    /// A small header and a file (an HTTP response): the header with
    /// `MSG_MORE`, so that it waits for the file's first bytes, then the
    /// file with `sendfile`, whose last bytes push both out. Two system calls
    /// where a cork takes four. When the file does not go whole (a full
    /// socket, a truncated file), what waits is pushed out at once.
    fn send_header_and_file(&mut self, pieces: Vec<Piece>) -> BridgeResult<i64> {
        let mut pieces = pieces.into_iter();
        let (
            Some(Piece::Memory(head)),
            Some(Piece::File {
                file,
                offset,
                len,
                mapped,
            }),
        ) = (pieces.next(), pieces.next())
        else {
            unreachable!("the caller matched a header and a file");
        };
        let want = head.len() as i64;
        let sent = self.send_more(&head)?;
        if sent < want {
            self.push();
            return Ok(sent);
        }
        let result = self.send_file(&file, offset, len, mapped);
        if !matches!(result, Ok(n) if n == len as i64) {
            self.push();
        }
        match result {
            Ok(n) => Ok(sent + n),
            // The header went: its bytes are reported, the error comes back on the next call.
            Err(_) => Ok(sent),
        }
    }

    /// One `sendmsg(MSG_MORE)` of `msg` (at most [`IOV_MAX`] pieces); the
    /// bytes sent, 0 when the socket is full.
    fn send_more(&mut self, msg: &Composite) -> io::Result<i64> {
        let mut slices = vec![IoSlice::new(&[]); msg.component_count()];
        let n = msg.fill_io_slices(&mut slices);
        // SAFETY: a zeroed msghdr is valid (no name, no control data).
        let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is guaranteed ABI-compatible with iovec on Unix; the kernel only reads them.
        header.msg_iov = slices.as_mut_ptr().cast::<libc::iovec>();
        header.msg_iovlen = n as _;
        loop {
            // SAFETY: the socket is open (owned by the sender); `header`
            // points at `n` iovecs over `msg`'s pieces, which `msg` keeps
            // alive for the call; a plain send, so nothing is pinned after it.
            let r = unsafe {
                libc::sendmsg(
                    self.sender.get_ref().as_raw_fd(),
                    &header,
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if r >= 0 {
                self.more_sends += 1;
                self.more_bytes += r as u64;
                self.more_iovecs += n as u64;
                return Ok(r as i64);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                ErrorKind::Interrupted => continue,
                ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        }
    }

    /// Sends what `MSG_MORE` held back (clearing `TCP_CORK` pushes the queue).
    fn push(&mut self) {
        // Best effort: a socket that failed has nothing to push.
        let _ = set_int_option(
            self.sender.get_ref().as_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            0,
        );
    }

    /// Sets or clears `TCP_CORK`; whether it is set. A socket that refuses
    /// it (not TCP after all) is not asked again.
    fn set_cork(&mut self, on: bool) -> bool {
        if !self.cork {
            return false;
        }
        let fd = self.sender.get_ref().as_fd();
        if set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_CORK, i32::from(on)).is_err() {
            self.cork = false;
            return false;
        }
        true
    }

    /// `len` bytes of `file` from `offset` with `sendfile`, until they are all
    /// gone or the socket is full; the bytes sent. A socket or file that
    /// `sendfile` cannot serve gets `mapped` (the same bytes; read with
    /// `pread` for an unmapped region) in a gather write instead, and the
    /// writer stops asking.
    fn send_file(
        &mut self,
        file: &File,
        offset: u64,
        len: u64,
        mapped: Option<Composite>,
    ) -> BridgeResult<i64> {
        let mut off = libc::off_t::try_from(offset)
            .map_err(|_| BridgeError::OutOfRange(format!("file offset {offset} too large")))?;
        let sock = self.sender.get_ref().as_raw_fd();
        let mut sent = 0u64;
        while sent < len {
            // Linux sends at most 0x7ffff000 bytes per call.
            let count = (len - sent).min(1 << 30) as usize;
            // SAFETY: both descriptors are open (the writer owns the socket,
            // the region's Arc keeps the file); `off` is a valid off_t the
            // kernel advances. A file truncated meanwhile makes the call
            // return short or 0, never fault.
            let r = unsafe { libc::sendfile(sock, file.as_raw_fd(), &mut off, count) };
            if r > 0 {
                sent += r as u64;
                self.file_bytes += r as u64;
                continue;
            }
            if r == 0 {
                if sent > 0 {
                    break;
                }
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "the file ended at byte {off} before the {len} bytes sent from {offset}: \
                         it was truncated after it was mapped"
                    ),
                )
                .into());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => break,
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) if sent == 0 => {
                    self.sendfile = false;
                    let mapped = match mapped {
                        Some(m) => m,
                        None => {
                            let mut m = Composite::default();
                            m.push(file_region::read(file, offset, len)?);
                            m
                        }
                    };
                    return self.send(mapped);
                }
                _ if sent > 0 => break,
                _ => return Err(e.into()),
            }
        }
        Ok(sent as i64)
    }

    /// Bytes this writer sent with `sendfile`.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Waits at most `timeout` for every outstanding completion.
    pub fn flush(&mut self, timeout: Duration) -> BridgeResult<()> {
        Ok(self.sender.flush(timeout)?)
    }

    /// The sender's counters (completions read first), with the headers sent
    /// with `MSG_MORE` before a file; `bytes` counts the bytes sent with
    /// `sendfile` too (`sends` only `sendmsg` calls).
    pub fn stats(&mut self) -> ZeroCopyStats {
        // A failed poll leaves the counters as they were: still true.
        let _ = self.sender.poll_completions();
        let mut stats = self.sender.stats();
        stats.bytes += self.file_bytes + self.more_bytes;
        stats.sends += self.more_sends;
        stats.iovecs += self.more_iovecs;
        stats
    }
}

/// The statistics in the order `io.zcbuf.ZeroCopyStats` reads them.
///
/// ```
/// let s = zcbuf_core::io::ZeroCopyStats { sends: 3, socket_users: 2, ..Default::default() };
/// let a = zcbuf_jni::writer::stats_array(&s);
/// assert_eq!((a[0], a[17]), (3, 2));
/// ```
pub fn stats_array(s: &ZeroCopyStats) -> [i64; 18] {
    [
        s.sends as i64,
        s.zerocopy_sends as i64,
        s.bytes as i64,
        s.zerocopy_bytes as i64,
        s.iovecs as i64,
        s.completions as i64,
        s.copied_completions as i64,
        s.enobufs_fallbacks as i64,
        s.emsgsize_fallbacks as i64,
        s.pinned_sends as i64,
        s.pinned_bytes as i64,
        s.peak_pinned_bytes as i64,
        i64::from(s.zerocopy_active),
        s.notifications as i64,
        s.unknown_completions as i64,
        s.failed_sends_taking_id as i64,
        i64::from(s.desynchronised),
        s.socket_users as i64,
    ]
}
