//! Async front end (feature `tokio`): zero-copy sends and framed receive
//! for tokio programs.
//!
//! # Sending
//!
//! [`AsyncZeroCopySender`] drives the very same send engine as the
//! blocking [`ZeroCopySender`]: every call to the socket is the blocking
//! sender's non-blocking step ([`ZeroCopySender::send`], which never
//! waits and returns [`WouldBlock`](io::ErrorKind::WouldBlock) with
//! nothing lost). Ids, pins, `Auto`, the one-owner-per-socket registry,
//! datagram boundaries and `IOV_MAX` batches are therefore exactly the
//! blocking sender's; only the waiting differs.
//!
//! ## Why a private epoll instance
//!
//! Every zero-copy completion raises `EPOLLERR` on the socket. Tokio
//! (through mio) reads an event that carries `EPOLLERR` as "write side
//! closed", a readiness it never clears again (tokio issue 5550): after
//! the first completion, tokio would call the socket writable forever and
//! a writer waiting for room in the send buffer would spin. So the sender
//! never waits on the socket's own tokio registration. It owns a small
//! epoll instance in which the socket is armed one-shot
//! (`EPOLLONESHOT`) for exactly what it waits for: `EPOLLOUT` when the
//! send buffer was full, nothing but the always-reported `EPOLLERR` (a
//! completion queued) when it waits for pins. That epoll descriptor is
//! what tokio watches ([`AsyncFd`], readable). Waiting costs no thread,
//! no timer and no busy loop; the extra descriptor is the price.
//!
//! ## Cancellation
//!
//! [`send`](AsyncZeroCopySender::send) (and
//! [`send_file`](AsyncZeroCopySender::send_file), whose file regions go
//! by `sendfile` in the same queue) queues the message *when it is
//! called* and returns a future that hands queued bytes to the kernel.
//! Dropping that future at any point loses nothing and repeats nothing:
//! each system call is made and accounted (sent bytes leave the queue,
//! zero-copy ones become pins) inside one poll, and bytes still queued
//! go out, in order, with the next `send`, [`drain`](AsyncZeroCopySender::drain),
//! [`flush`](AsyncZeroCopySender::flush) or [`poll_write`](::tokio::io::AsyncWrite::poll_write).
//! Pins are only ever released by the kernel's completions, never by a
//! dropped future. Dropping the sender itself discards what is still
//! queued (never sent) and parks the pins like the blocking sender.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use tokio::io::AsyncReadExt;
//! use zcbuf_core::io::tokio::AsyncZeroCopySender;
//! use zcbuf_core::{Buf, Composite};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
//! let (mut server, _) = listener.accept().await?;
//!
//! let mut tx = AsyncZeroCopySender::new(client)?;
//! let mut msg = Composite::new();
//! msg.push(Buf::from_static(b"header "));
//! msg.push(Buf::from(vec![b'x'; 100_000]));
//! tx.send(&msg).await?;
//! tx.flush(std::time::Duration::from_secs(5)).await?; // every pin released
//!
//! let mut got = vec![0u8; msg.len()];
//! server.read_exact(&mut got).await?;
//! assert_eq!(got, msg.to_vec());
//! # Ok(()) }
//! ```
//!
//! # Receiving
//!
//! [`AsyncFrameReader`] runs a [`FrameDecoder`] over any [`AsyncRead`]:
//! bytes are read into the decoder's pooled chunks and frames come out as
//! views of them ([`Frame`]), never copied.
//!
//! There is deliberately no `tokio_util::codec::Decoder`: a codec is
//! handed a `BytesMut` that `FramedRead` owns and regrows. The frames cut
//! from it could be shared without a copy, but the bytes of the frame
//! still arriving are moved (copied) into a new allocation whenever
//! `FramedRead` reserves room behind frames that are still held, and the
//! memory is the allocator's, never the pool's. Neither can be fixed from
//! inside a `Decoder`, so the zero-copy path is [`AsyncFrameReader`].
//!
//! [`ZeroCopySender`]: super::ZeroCopySender
//! [`ZeroCopySender::send`]: super::ZeroCopySender::send
//! [`FrameDecoder`]: super::FrameDecoder
//! [`Frame`]: super::Frame

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use super::recv::{ChunkSource, Frame, FrameDecoder};
use super::{ZeroCopyConfig, ZeroCopySender, ZeroCopyStats};
use crate::pool::PoolChunks;
use crate::{Buf, Composite};

/// The socket's descriptor, borrowed for as long as the
/// [`AsyncZeroCopySender`] that holds it owns the socket itself.
struct SockRef(RawFd);

impl AsFd for SockRef {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: a `SockRef` lives only in `AsyncZeroCopySender::tx`,
        // which is declared (so dropped) before `io`, the owner of the
        // descriptor; `io` is private and never replaced, so the
        // descriptor stays open for the whole life of the `SockRef`.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// The private epoll instance the sender waits on (see the module docs).
struct Waiter {
    ep: AsyncFd<OwnedFd>,
    sock: RawFd,
    /// Events the socket is armed for; `None`: not armed (never added,
    /// or its one-shot event was consumed).
    armed: Option<u32>,
    added: bool,
}

impl Waiter {
    fn new(sock: RawFd) -> io::Result<Self> {
        if ::tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "AsyncZeroCopySender must be made inside a tokio runtime with I/O enabled",
            ));
        }
        // SAFETY: plain epoll_create1(2) call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            // SAFETY: the `AsyncFd` owns `owned`, so the descriptor stays
            // open and the same file for the whole life of the `AsyncFd`.
            ep: unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE)? },
            sock,
            armed: None,
            added: false,
        })
    }

    /// Arms the socket one-shot for `events` (`EPOLLERR` and `EPOLLHUP`
    /// are always reported) unless it already is.
    fn arm(&mut self, events: u32) -> io::Result<()> {
        if self.armed == Some(events) {
            return Ok(());
        }
        let mut ev = libc::epoll_event {
            events: events | libc::EPOLLONESHOT as u32,
            u64: 0,
        };
        let op = if self.added {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        // SAFETY: both descriptors are open (the socket: see `SockRef`);
        // `ev` is valid for the call.
        let r = unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, self.sock, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.added = true;
        self.armed = Some(events);
        Ok(())
    }

    /// Waits until the socket reports one of `events` or an error-queue
    /// notification or hang-up; returns the events seen.
    fn poll_wait(&mut self, cx: &mut Context<'_>, events: u32) -> Poll<io::Result<u32>> {
        loop {
            self.arm(events)?;
            let mut guard = ready!(self.ep.poll_read_ready(cx))?;
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: `ev` is valid for one event; timeout 0 never blocks.
            let n = unsafe { libc::epoll_wait(self.ep.as_raw_fd(), &mut ev, 1, 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Poll::Ready(Err(err));
            }
            // The private instance holds one item: it is empty now, so
            // tokio's readiness for it is stale either way.
            guard.clear_ready();
            if n == 1 {
                self.armed = None;
                return Poll::Ready(Ok(ev.events));
            }
        }
    }
}

/// Sends [`Composite`]s from async code with `MSG_ZEROCOPY` where it
/// pays, through the same engine as the blocking
/// [`ZeroCopySender`](super::ZeroCopySender) (see the module docs).
///
/// `S` is the socket: a [`tokio::net::TcpStream`](::tokio::net::TcpStream),
/// a [`tokio::net::UdpSocket`](::tokio::net::UdpSocket) (connected), or any
/// socket as an [`AsFd`] (made non-blocking if it is not). Read from the
/// socket as usual through [`get_ref`](Self::get_ref); write only through
/// the sender, never through the socket's own tokio write methods (its
/// write readiness is unreliable once completions flow, see the module
/// docs).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use zcbuf_core::io::tokio::AsyncZeroCopySender;
/// use zcbuf_core::{Buf, Composite};
///
/// let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
/// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
/// sock.connect(rx.local_addr()?).await?;
/// let mut tx = AsyncZeroCopySender::new(sock)?;
/// let datagram: Composite = [Buf::from_static(b"one "), Buf::from_static(b"datagram")]
///     .into_iter()
///     .collect();
/// tx.send(&datagram).await?;
/// let mut got = [0u8; 64];
/// let n = rx.recv(&mut got).await?;
/// assert_eq!(&got[..n], b"one datagram");
/// # Ok(()) }
/// ```
pub struct AsyncZeroCopySender<S: AsFd> {
    /// The engine's driver; declared before `io` so it is dropped first
    /// (its `Drop` may still use the descriptor to park pins).
    tx: ZeroCopySender<SockRef>,
    waiter: Waiter,
    /// Messages accepted but not yet wholly handed to the kernel, in
    /// order. On a datagram socket each is one datagram; on a stream the
    /// front one may be partly sent.
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    message_socket: bool,
    /// Whether `shutdown(SHUT_WR)` was done.
    shut: bool,
    /// The pause of a flush on a hung-up socket.
    pause: Option<Pin<Box<::tokio::time::Sleep>>>,
    io: S,
}

impl<S: AsFd> fmt::Debug for AsyncZeroCopySender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncZeroCopySender")
            .field("tx", &self.tx)
            .field("queued_bytes", &self.queued_bytes)
            .finish()
    }
}

/// One entry of the send queue.
enum Queued {
    /// Memory, sent by the engine (gather, zero-copy where it pays).
    Msg(Composite),
    /// A file region still to go by `sendfile`: no copy, no mapping.
    File {
        file: Arc<File>,
        offset: u64,
        left: u64,
    },
}

/// Makes `fd` non-blocking (a blocking socket would stall the runtime).
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(2) on an open descriptor, no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl<S: AsFd> AsyncZeroCopySender<S> {
    /// A sender in [`ZeroCopyMode::Auto`](super::ZeroCopyMode::Auto) with
    /// the default threshold. Must be called inside a tokio runtime with
    /// I/O enabled (else an error); same errors as
    /// [`ZeroCopySender::new`](super::ZeroCopySender::new) otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.queued_bytes(), 0);
    /// # }
    /// ```
    pub fn new(io: S) -> io::Result<Self> {
        Self::with_config(io, ZeroCopyConfig::default())
    }

    /// A sender with `config` (see
    /// [`ZeroCopySender::with_config`](super::ZeroCopySender::with_config)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::io::{tokio::AsyncZeroCopySender, ZeroCopyConfig, ZeroCopyMode};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let cfg = ZeroCopyConfig { mode: ZeroCopyMode::Always, ..Default::default() };
    /// assert!(AsyncZeroCopySender::with_config(a, cfg).is_err()); // no MSG_ZEROCOPY on AF_UNIX
    /// # }
    /// ```
    pub fn with_config(io: S, config: ZeroCopyConfig) -> io::Result<Self> {
        let fd = io.as_fd().as_raw_fd();
        set_nonblocking(fd)?;
        let waiter = Waiter::new(fd)?;
        let tx = ZeroCopySender::with_config(SockRef(fd), config)?;
        Ok(Self {
            tx,
            waiter,
            queue: VecDeque::new(),
            queued_bytes: 0,
            message_socket: super::is_message_socket(io.as_fd()),
            shut: false,
            pause: None,
            io,
        })
    }

    /// The socket (to read from it, or to ask for its addresses).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap();
    /// assert!(tx.get_ref().local_addr().is_ok());
    /// # }
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The counters, as [`ZeroCopySender::stats`](super::ZeroCopySender::stats).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.stats().sends, 0);
    /// # }
    /// ```
    pub fn stats(&self) -> ZeroCopyStats {
        self.tx.stats()
    }

    /// Zero-copy sends on the socket waiting for their completion.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// assert_eq!(zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap().pending(), 0);
    /// # }
    /// ```
    pub fn pending(&self) -> usize {
        self.tx.pending()
    }

    /// Bytes accepted by [`send`](Self::send) (or [`queue`](Self::queue))
    /// and not yet handed to the kernel.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::{io::tokio::AsyncZeroCopySender, Buf, Composite};
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// sock.connect("127.0.0.1:9").await.unwrap();
    /// let mut tx = AsyncZeroCopySender::new(sock).unwrap();
    /// tx.queue(&Composite::from(Buf::from_static(b"later")));
    /// assert_eq!(tx.queued_bytes(), 5);
    /// # }
    /// ```
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Accepts `msg` (views of its components, no copy) for sending after
    /// everything accepted before it, without sending anything yet. On a
    /// datagram socket `msg` is one datagram. An empty `msg` is ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::{io::tokio::AsyncZeroCopySender, Buf, Composite};
    /// let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// sock.connect(rx.local_addr().unwrap()).await.unwrap();
    /// let mut tx = AsyncZeroCopySender::new(sock).unwrap();
    /// tx.queue(&Composite::from(Buf::from_static(b"a")));
    /// tx.queue(&Composite::from(Buf::from_static(b"b")));
    /// tx.drain().await.unwrap(); // two datagrams, in order
    /// let mut got = [0u8; 4];
    /// assert_eq!(rx.recv(&mut got).await.unwrap(), 1);
    /// assert_eq!(&got[..1], b"a");
    /// # }
    /// ```
    pub fn queue(&mut self, msg: &Composite) {
        if msg.is_empty() {
            return;
        }
        self.queued_bytes += msg.len();
        match self.queue.back_mut() {
            // On a stream, one composite of everything queued lets one
            // call carry many messages (up to IOV_MAX pieces).
            Some(Queued::Msg(back)) if !self.message_socket => {
                for buf in msg.components() {
                    back.push(buf.clone());
                }
            }
            _ => self.queue.push_back(Queued::Msg(msg.clone())),
        }
    }

    /// Accepts `len` bytes of `file` from `offset` for sending, in order
    /// after everything accepted before, by `sendfile` (the page cache
    /// goes to the socket: no copy, no mapping). Stream sockets only: on
    /// a datagram socket it is an [`ErrorKind::InvalidInput`] error (a
    /// region would be cut into datagrams). A file that turns out shorter
    /// than the region fails the drain with [`ErrorKind::UnexpectedEof`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::{io::Write, sync::Arc};
    /// let path = std::env::temp_dir().join(format!("zcbuf-doc-qfile-{}", std::process::id()));
    /// std::fs::File::create(&path).unwrap().write_all(b"file bytes").unwrap();
    /// let file = Arc::new(std::fs::File::open(&path).unwrap());
    /// let (a, _b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.queue_file(&file, 5, 5).unwrap();
    /// assert_eq!(tx.queued_bytes(), 5);
    /// std::fs::remove_file(&path).unwrap();
    /// # }
    /// ```
    pub fn queue_file(&mut self, file: &Arc<File>, offset: u64, len: u64) -> io::Result<()> {
        if self.message_socket {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "file regions go on stream sockets only",
            ));
        }
        if libc::off_t::try_from(offset.saturating_add(len)).is_err() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "file region beyond the largest offset",
            ));
        }
        let queued = usize::try_from(len)
            .ok()
            .and_then(|l| self.queued_bytes.checked_add(l))
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "file region too large"))?;
        if len > 0 {
            self.queued_bytes = queued;
            self.queue.push_back(Queued::File {
                file: Arc::clone(file),
                offset,
                left: len,
            });
        }
        Ok(())
    }

    /// [`queue_file`](Self::queue_file), then a future like
    /// [`send`](Self::send)'s: resolves when the region (and everything
    /// before it) has been handed to the kernel; dropping it loses and
    /// repeats nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::{io::Write, sync::Arc};
    /// let path = std::env::temp_dir().join(format!("zcbuf-doc-sfile-{}", std::process::id()));
    /// std::fs::File::create(&path).unwrap().write_all(b"file bytes").unwrap();
    /// let file = Arc::new(std::fs::File::open(&path).unwrap());
    /// let (a, b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.send_file(&file, 5, 5).await.unwrap();
    /// let mut got = [0u8; 5];
    /// b.readable().await.unwrap();
    /// assert_eq!(b.try_read(&mut got).unwrap(), 5);
    /// assert_eq!(&got, b"bytes");
    /// std::fs::remove_file(&path).unwrap();
    /// # }
    /// ```
    pub fn send_file<'a>(
        &'a mut self,
        file: &Arc<File>,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = io::Result<()>> + 'a {
        let queued = self.queue_file(file, offset, len);
        async move {
            queued?;
            poll_fn(|cx| self.poll_drain(cx)).await
        }
    }

    /// Accepts `msg` at once (see [`queue`](Self::queue)) and returns a
    /// future that resolves when it and everything queued before it has
    /// been handed to the kernel (zero-copy bytes may still be pinned:
    /// see [`flush`](Self::flush)). Dropping the future never loses or
    /// repeats a byte: what it did not send goes with the next call.
    ///
    /// On a datagram socket an error rejects the datagram at the head of
    /// the queue (it is dropped, never partly sent); on a stream the
    /// queue is kept and the error returned again by later calls.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::{io::tokio::AsyncZeroCopySender, Buf, Composite};
    /// let (a, b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = AsyncZeroCopySender::new(a).unwrap(); // plain sends on AF_UNIX
    /// tx.send(&Composite::from(Buf::from_static(b"ping"))).await.unwrap();
    /// let mut got = [0u8; 4];
    /// b.readable().await.unwrap();
    /// assert_eq!(b.try_read(&mut got).unwrap(), 4);
    /// # }
    /// ```
    pub fn send<'a>(&'a mut self, msg: &Composite) -> impl Future<Output = io::Result<()>> + 'a {
        self.queue(msg);
        poll_fn(move |cx| self.poll_drain(cx))
    }

    /// [`send`](Self::send) of one buffer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (a, _b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.send_buf(&zcbuf_core::Buf::from_static(b"x")).await.unwrap();
    /// assert_eq!(tx.stats().bytes, 1);
    /// # }
    /// ```
    pub fn send_buf<'a>(&'a mut self, buf: &Buf) -> impl Future<Output = io::Result<()>> + 'a {
        self.send(&Composite::from(buf.clone()))
    }

    /// [`send`](Self::send) of the concatenation of `bufs` (one datagram
    /// on a datagram socket).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::Buf;
    /// let (a, _b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.send_bufs(&[Buf::from_static(b"a"), Buf::from_static(b"b")]).await.unwrap();
    /// assert_eq!(tx.stats().bytes, 2);
    /// # }
    /// ```
    pub fn send_bufs<'a>(&'a mut self, bufs: &[Buf]) -> impl Future<Output = io::Result<()>> + 'a {
        self.send(&bufs.iter().cloned().collect())
    }

    /// Resolves when everything queued has been handed to the kernel.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (a, _b) = tokio::net::UnixStream::pair().unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.drain().await.unwrap(); // nothing queued
    /// # }
    /// ```
    pub async fn drain(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_drain(cx)).await
    }

    /// Hands queued bytes to the kernel until the queue is empty, or the
    /// socket has no room (then `Pending`, woken by room or a completion).
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(front) = self.queue.front_mut() {
            if self.shut {
                return Poll::Ready(Err(io::Error::new(
                    ErrorKind::BrokenPipe,
                    "the sender was shut down",
                )));
            }
            let result = match front {
                Queued::Msg(msg) => {
                    let before = msg.len();
                    match self.tx.send(msg) {
                        Ok(0) => Err(io::Error::new(ErrorKind::WriteZero, "send returned 0")),
                        Ok(_) => {
                            // Whatever the call did to the composite (a
                            // datagram's tail coalesced, the sent part
                            // pinned or dropped), the bytes that left are
                            // the ones no longer in it.
                            self.queued_bytes -= before - msg.len();
                            if msg.is_empty() || self.message_socket {
                                // A datagram goes whole or not at all.
                                self.queued_bytes -= msg.len();
                                self.queue.pop_front();
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Queued::File { file, offset, left } => {
                    match sendfile_once(self.io.as_fd(), file, *offset, *left) {
                        Ok(0) => Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "file ended before the region was sent",
                        )),
                        Ok(n) => {
                            *offset += n;
                            *left -= n;
                            self.queued_bytes -= n as usize;
                            if *left == 0 {
                                self.queue.pop_front();
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // A full send buffer may be full of pinned sends.
                    self.tx.poll_completions()?;
                    ready!(self.waiter.poll_wait(cx, libc::EPOLLOUT as u32))?;
                    self.tx.poll_completions()?;
                }
                Err(e) => {
                    // A datagram that failed is rejected whole; a file
                    // region that cannot be read is given up (the
                    // stream has a hole now: the error says so).
                    let drop_front = self.message_socket
                        || (e.kind() == ErrorKind::UnexpectedEof
                            && matches!(self.queue.front(), Some(Queued::File { .. })));
                    if drop_front {
                        if let Some(front) = self.queue.pop_front() {
                            self.queued_bytes -= match front {
                                Queued::Msg(m) => m.len(),
                                Queued::File { left, .. } => left as usize,
                            };
                        }
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads the completions waiting on the error queue without waiting
    /// and releases the sends they cover; returns how many.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap();
    /// assert_eq!(tx.poll_completions().unwrap(), 0);
    /// # }
    /// ```
    pub fn poll_completions(&mut self) -> io::Result<u64> {
        self.tx.poll_completions()
    }

    /// Waits until every pin on the socket is released (everything queued
    /// is sent first), woken only by the socket's completions.
    pub fn poll_flush_pins(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        loop {
            self.tx.poll_completions()?;
            if self.tx.pending() == 0 {
                return Poll::Ready(Ok(()));
            }
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
                continue;
            }
            let events = ready!(self.waiter.poll_wait(cx, 0))?;
            if events & libc::EPOLLHUP as u32 != 0 && self.tx.poll_completions()? == 0 {
                // A hung-up socket reports itself ready at every wait:
                // its remaining completions come when the purged sends
                // are freed, so look again a millisecond later instead
                // of spinning (only ever on a dead socket).
                self.pause = Some(Box::pin(::tokio::time::sleep(Duration::from_millis(1))));
            }
        }
    }

    /// Sends everything queued, then waits until every zero-copy send on
    /// the socket has completed, at most `timeout`. When the time runs
    /// out it returns an [`ErrorKind::TimedOut`] error and keeps every
    /// pin (and what is still queued). Dropping the future is as safe.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    /// let mut tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(sock).unwrap();
    /// tx.flush(std::time::Duration::from_millis(10)).await.unwrap(); // nothing pending
    /// # }
    /// ```
    pub async fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        match ::tokio::time::timeout(timeout, poll_fn(|cx| self.poll_flush_pins(cx))).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "{} bytes still queued and {} zero-copy sends still pinned after {:?}",
                    self.queued_bytes,
                    self.tx.pending(),
                    timeout
                ),
            )),
        }
    }

    /// Gives up on the connection, as
    /// [`ZeroCopySender::abort`](super::ZeroCopySender::abort): the
    /// socket's send queue is discarded (a TCP reset), pins come back as
    /// the kernel frees them, and what is still queued here is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let a = tokio::net::TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    /// let tx = zcbuf_core::io::tokio::AsyncZeroCopySender::new(a).unwrap();
    /// tx.abort().unwrap();
    /// # }
    /// ```
    pub fn abort(self) -> io::Result<()> {
        let Self { tx, io, .. } = self;
        let r = tx.abort();
        drop(io);
        r
    }
}

impl<S: AsFd + Unpin> AsyncWrite for AsyncZeroCopySender<S> {
    /// Queued bytes go first; then `buf` is sent by copy (a borrowed slice
    /// cannot stay pinned after the call). For zero-copy, use
    /// [`send`](AsyncZeroCopySender::send).
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.shut {
            return Poll::Ready(Err(io::Error::new(
                ErrorKind::BrokenPipe,
                "the sender was shut down",
            )));
        }
        loop {
            let fd = this.io.as_fd().as_raw_fd();
            // SAFETY: `buf` is readable for its length during the call;
            // a plain send keeps no reference to it.
            let r = unsafe {
                libc::send(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if r >= 0 {
                return Poll::Ready(Ok(r as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                ErrorKind::Interrupted => {}
                ErrorKind::WouldBlock => {
                    this.tx.poll_completions()?;
                    ready!(this.waiter.poll_wait(cx, libc::EPOLLOUT as u32))?;
                }
                _ => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Hands everything queued to the kernel (pins may remain: they are
    /// released by completions, see
    /// [`flush`](AsyncZeroCopySender::flush)).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    /// Sends everything queued, then shuts the socket's write side
    /// (`SHUT_WR`: a FIN on TCP) once; later writes fail with
    /// [`ErrorKind::BrokenPipe`]. Pins still held are released by their
    /// completions as usual.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if !this.shut {
            // SAFETY: shutdown(2) on the open socket, no pointers.
            let r = unsafe { libc::shutdown(this.io.as_fd().as_raw_fd(), libc::SHUT_WR) };
            if r < 0 {
                let err = io::Error::last_os_error();
                // A datagram socket has no write side to close.
                if err.raw_os_error() != Some(libc::ENOTCONN) || !this.message_socket {
                    return Poll::Ready(Err(err));
                }
            }
            this.shut = true;
        }
        Poll::Ready(Ok(()))
    }
}

/// One non-blocking `sendfile` of up to `left` bytes of `file` from
/// `offset`; `EINTR` retried, `EAGAIN` as [`ErrorKind::WouldBlock`].
fn sendfile_once(sock: BorrowedFd<'_>, file: &File, offset: u64, left: u64) -> io::Result<u64> {
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "offset too large"))?;
    let count = left.min(1 << 30) as usize;
    loop {
        // SAFETY: both descriptors are open for the call (the socket is
        // borrowed, the file held); `off` is a valid off_t the kernel
        // updates.
        let r = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count) };
        if r >= 0 {
            return Ok(r as u64);
        }
        let err = io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// [`Read`] over one poll of an [`AsyncRead`]: `Pending` reads as
/// [`ErrorKind::WouldBlock`], which [`FrameDecoder::read_from`] returns
/// with nothing lost.
struct PollReader<'a, 'b, R> {
    io: Pin<&'a mut R>,
    cx: &'a mut Context<'b>,
}

impl<R: AsyncRead> Read for PollReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        match self.io.as_mut().poll_read(self.cx, &mut rb) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(ErrorKind::WouldBlock.into()),
        }
    }
}

/// Length-prefixed frames (see [`FrameDecoder`]) from any [`AsyncRead`],
/// as views of the decoder's pooled chunks: no copy.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tokio::io::AsyncWriteExt;
/// use zcbuf_core::io::{recv::frame_header, tokio::AsyncFrameReader};
///
/// let (mut a, b) = tokio::io::duplex(64);
/// let mut frames = AsyncFrameReader::new(b);
/// a.write_all(&frame_header(5)).await.unwrap();
/// a.write_all(b"hello").await.unwrap();
/// drop(a);
/// assert_eq!(frames.next_frame().await.unwrap().unwrap().to_vec(), b"hello");
/// assert!(frames.next_frame().await.unwrap().is_none()); // clean end of stream
/// # }
/// ```
pub struct AsyncFrameReader<R, C: ChunkSource = PoolChunks> {
    io: R,
    dec: FrameDecoder<C>,
}

impl<R> AsyncFrameReader<R, PoolChunks> {
    /// Frames from `io` over 64 KiB pool chunks, up to 16 MiB each.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (_a, b) = tokio::io::duplex(64);
    /// let frames = zcbuf_core::io::tokio::AsyncFrameReader::new(b);
    /// assert_eq!(frames.decoder().buffered(), 0);
    /// # }
    /// ```
    pub fn new(io: R) -> Self {
        Self::with_decoder(io, FrameDecoder::new())
    }
}

impl<R, C: ChunkSource> AsyncFrameReader<R, C> {
    /// Frames from `io` cut by `dec` (its chunk source and maximum).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use zcbuf_core::io::{tokio::AsyncFrameReader, FrameDecoder, HeapChunks};
    /// let (_a, b) = tokio::io::duplex(64);
    /// let dec = FrameDecoder::with_source(HeapChunks::new(4096)).max_frame(1024);
    /// let _frames = AsyncFrameReader::with_decoder(b, dec);
    /// # }
    /// ```
    pub fn with_decoder(io: R, dec: FrameDecoder<C>) -> Self {
        Self { io, dec }
    }

    /// The decoder (its counters).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (_a, b) = tokio::io::duplex(64);
    /// let frames = zcbuf_core::io::tokio::AsyncFrameReader::new(b);
    /// assert_eq!(frames.decoder().reads(), 0);
    /// # }
    /// ```
    pub fn decoder(&self) -> &FrameDecoder<C> {
        &self.dec
    }

    /// The reader.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (_a, b) = tokio::io::duplex(64);
    /// let frames = zcbuf_core::io::tokio::AsyncFrameReader::new(b);
    /// let _io: &tokio::io::DuplexStream = frames.get_ref();
    /// # }
    /// ```
    pub fn get_ref(&self) -> &R {
        &self.io
    }
}

impl<R: AsyncRead + Unpin, C: ChunkSource> AsyncFrameReader<R, C> {
    /// The next frame: `Ready(Ok(None))` at a clean end of stream,
    /// [`ErrorKind::UnexpectedEof`] inside a frame, `InvalidData` for a
    /// length over the maximum.
    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Frame>>> {
        loop {
            if let Some(frame) = self.dec.decode()? {
                return Poll::Ready(Ok(Some(frame)));
            }
            let mut src = PollReader {
                io: Pin::new(&mut self.io),
                cx,
            };
            match self.dec.read_from(&mut src) {
                Ok(0) => {
                    return Poll::Ready(if self.dec.buffered() == 0 {
                        Ok(None)
                    } else {
                        Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "stream ended inside a frame",
                        ))
                    })
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The next frame (see [`poll_next_frame`](Self::poll_next_frame)).
    /// Cancel-safe: bytes read stay in the decoder for the next call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use tokio::io::AsyncWriteExt;
    /// let (mut a, b) = tokio::io::duplex(64);
    /// let mut frames = zcbuf_core::io::tokio::AsyncFrameReader::new(b);
    /// a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
    /// drop(a);
    /// assert!(frames.next_frame().await.is_err()); // ends inside a frame
    /// # }
    /// ```
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        poll_fn(|cx| self.poll_next_frame(cx)).await
    }
}
