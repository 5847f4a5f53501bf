//! UDP generic segmentation offload (GSO): many datagrams of one size
//! (the last may be shorter) go to the kernel in ONE `sendmsg` carrying a
//! `UDP_SEGMENT` control message; the kernel (or the device) cuts them
//! apart. With `MSG_ZEROCOPY` on top the payload is not even copied.
//!
//! # The two shapes
//!
//! - **Back to back** ([`DatagramBatch`], filled in place by a
//!   [`DatagramBatchBuilder`] from a pool chunk, as a QUIC stack encrypting
//!   into its output buffer does): the whole batch is one piece of memory,
//!   so a send of up to 64 datagrams / 65,507 bytes is one iovec spanning
//!   at most 17 pages, within the packet's fragment limit, and goes by
//!   reference in one call.
//! - **Stitched by reference** (`&[Composite]`, e.g. a header `Buf` plus a
//!   payload slice per datagram): with `MSG_ZEROCOPY` each piece not
//!   contiguous with the previous one needs a fragment of its own, and one
//!   packet holds 17 (`MAX_SKB_FRAGS`). So the sender plans zero-copy
//!   sends that fit that budget only when they pay by the engine's rule
//!   (at least [`ZeroCopyConfig::threshold`] bytes per call, at least half
//!   of each pinned page payload). MTU-sized datagrams of two pieces each
//!   fit only 5 to 8 per budget (~11 KiB per call), which does not pay,
//!   so such a batch goes as one *copying* GSO call of up to 64: the
//!   kernel copies each piece once into its packet, pinning nothing.
//!   Measured on the veth sink with 44 x (32 + 1,440) B: budget-sized
//!   zero-copy calls are 4.4-5.7x slower than that one copying call, and
//!   copying the pieces into a pooled chunk first and sending that by
//!   reference was 0.8-1.1x of it across four runs (no consistent win,
//!   and it holds pool chunks while pinned), so it is not done for the
//!   user. A stack that can write its datagrams in place should use a
//!   [`DatagramBatchBuilder`]: no copy at all. Pieces contiguous in
//!   memory (slices of one buffer laid back to back) are merged into one
//!   iovec first, so a stitched batch that is really back to back goes by
//!   reference like a [`DatagramBatch`].
//!
//! # Rules checked before anything is sent
//!
//! Every datagram but the last must be exactly the segment size (the
//! first datagram's length) and the last no longer: otherwise an
//! [`InvalidInput`](io::ErrorKind::InvalidInput) error names the first
//! datagram that is wrong. Empty datagrams are refused the same way (a
//! GSO segment cannot be empty). Batches of more than 64 datagrams
//! (`UDP_MAX_SEGMENTS`) or more bytes than one UDP send holds (65,507 over
//! IPv4, 65,527 over IPv6) are split into several sends at datagram
//! boundaries: a datagram is never split, never truncated.
//!
//! # Completions
//!
//! A zero-copy GSO call takes one id like any other `MSG_ZEROCOPY` call,
//! and its views are pinned under that id in the socket's shared window
//! until the completion covering it is read; a failed call goes through
//! the same failed-send protocol as [`ZeroCopySender::send`]. So every rule
//! of the sender holds (completion before release, failed sends taking an
//! id, `Drop` never blocks).
//!
//! # Modes
//!
//! `Always` asks for zero-copy on every call that pays by the rules above;
//! `Never` sends GSO calls that copy; `Auto` follows the socket's `Auto`
//! decision (no zero-copy to a local peer or once completions came back
//! copied, one probe at a time until the first completion) but not its
//! per-size timing, which is learnt from single sends.
//!
//! # When GSO is refused
//!
//! A kernel without `UDP_SEGMENT` (`ENOPROTOOPT` when asked once), or a
//! route whose device cannot checksum or segment (`EIO`, `EOPNOTSUPP`),
//! turns GSO off for the sender's socket: the datagrams go by one
//! `sendmmsg` per 64 (copying), and [`GsoStats::refused`] says why.
//! `EMSGSIZE` from a copying GSO call, or `EINVAL` on older kernels (a
//! segment plus its headers larger than the route's MTU), turns GSO off
//! only for segments of that size or larger ([`GsoStats::max_segment`]);
//! those go by `sendmmsg`, where IP fragments them as it would any
//! datagram larger than the MTU.
//!
//! [`ZeroCopySender::send`]: super::ZeroCopySender::send
//! [`ZeroCopyConfig::threshold`]: super::ZeroCopyConfig::threshold

use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::config::ZeroCopyMode;
use super::engine::{worth_pinning, Engine, MAX_FRAGS, PAGE};
use super::sender::{blocking_wait, read_error_queue, settle_failed_send};
use super::uring::UringSender;
use super::window::{Pinned, SocketEntry};
use crate::io::gather::{iov_array, IovArray};
use crate::io::IOV_MAX;
use crate::pool::Pool;
use crate::{Buf, BufMut, Composite};

/// `UDP_SEGMENT` from include/uapi/linux/udp.h (the libc crate exports it
/// only for some C libraries).
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
/// Most segments one GSO send may carry (`UDP_MAX_SEGMENTS`; 64 on every
/// kernel with GSO, raised on newer ones): larger batches are split.
///
/// ```
/// assert_eq!(zcbuf_core::io::zerocopy::MAX_SEGMENTS, 64);
/// ```
pub const MAX_SEGMENTS: usize = 64;
/// Most payload bytes of one UDP send over IPv4: 65,535 minus the IPv4
/// and UDP headers.
const MAX_BYTES_V4: usize = 65_535 - 20 - 8;
/// Most payload bytes of one UDP send over IPv6 (the payload length field
/// covers the UDP header, not the IPv6 one).
const MAX_BYTES_V6: usize = 65_535 - 8;

/// What GSO did on a sender's socket.
///
/// ```
/// let s = zcbuf_core::io::zerocopy::GsoStats::default();
/// assert_eq!(s.refused, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GsoStats {
    /// `sendmsg` calls carrying `UDP_SEGMENT`.
    pub gso_sends: u64,
    /// Of which with `MSG_ZEROCOPY` (each took one completion id).
    pub gso_zerocopy_sends: u64,
    /// Datagrams those calls carried.
    pub gso_datagrams: u64,
    /// Calls that carried a single datagram (no segmentation needed).
    pub single_sends: u64,
    /// `sendmmsg` calls made because GSO was refused.
    pub fallback_calls: u64,
    /// Datagrams sent by those calls.
    pub fallback_datagrams: u64,
    /// The error (errno) with which the kernel or device refused GSO on
    /// this socket (`ENOPROTOOPT`, `EIO`, `EOPNOTSUPP`): every batch since
    /// goes by `sendmmsg`. `None` while GSO works.
    pub refused: Option<i32>,
    /// Segments larger than this were refused with `EMSGSIZE` or
    /// `EINVAL` (they and their headers exceed the route's MTU): such
    /// batches go by `sendmmsg`, smaller segments still by GSO.
    pub max_segment: Option<usize>,
}

/// Per-sender GSO state, kept inside the [`ZeroCopySender`](super::ZeroCopySender).
#[derive(Debug, Default)]
pub(crate) struct GsoState {
    pub(crate) stats: GsoStats,
    /// Most bytes per send on this socket's family (learnt once).
    max_bytes: Option<usize>,
    /// Whether `UDP_SEGMENT` support was checked.
    checked: bool,
}

/// What the sends did, for the sender's own counters.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) sends: u64,
    pub(crate) zerocopy_sends: u64,
    pub(crate) bytes: u64,
    pub(crate) zerocopy_bytes: u64,
    pub(crate) iovecs: u64,
    pub(crate) enobufs_fallbacks: u64,
    pub(crate) emsgsize_fallbacks: u64,
}

/// What the GSO code needs of a sender.
pub(crate) struct Ctx<'a> {
    pub(crate) fd: RawFd,
    pub(crate) entry: Option<&'a SocketEntry>,
    pub(crate) mode: ZeroCopyMode,
    pub(crate) threshold: usize,
    pub(crate) poll_every: usize,
    pub(crate) state: &'a mut GsoState,
    pub(crate) tally: &'a mut Tally,
    /// Where the datagrams go on an unconnected socket (`None`: the
    /// connected peer).
    pub(crate) to: Option<&'a Destination>,
    /// The io_uring backend, when the sender has it: zero-copy calls go
    /// as `SENDMSG_ZC` there (`entry` is then `None`).
    pub(crate) uring: Option<&'a mut UringSender>,
    /// [`ZeroCopySender::set_wait_limit`](super::ZeroCopySender::set_wait_limit).
    pub(crate) wait_limit: Option<std::time::Duration>,
}

/// A socket address in the form `sendmsg`'s `msg_name` takes.
pub(crate) struct Destination {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl Destination {
    pub(crate) fn new(to: SocketAddr) -> Self {
        // SAFETY: an all-zero sockaddr_storage is a valid value.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match to {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr kind, sockaddr_in among them.
                unsafe { std::ptr::write((&mut addr as *mut libc::sockaddr_storage).cast(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write((&mut addr as *mut libc::sockaddr_storage).cast(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        Self {
            addr,
            len: len as libc::socklen_t,
        }
    }

    /// The address and its length, for a header that outlives `self`
    /// (it copies them).
    pub(crate) fn raw(&self) -> (&libc::sockaddr_storage, libc::socklen_t) {
        (&self.addr, self.len)
    }

    /// `msg_name` and `msg_namelen` for a header that lives no longer
    /// than `self`.
    fn name(to: Option<&Self>) -> (*mut libc::c_void, libc::socklen_t) {
        match to {
            Some(d) => (
                (&d.addr as *const libc::sockaddr_storage).cast_mut().cast(),
                d.len,
            ),
            None => (std::ptr::null_mut(), 0),
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, msg)
}

/// Datagrams of `segment_size` bytes (the last may be shorter) laid back
/// to back in one [`Buf`]: the shape that goes by reference in one GSO
/// send. Made by a [`DatagramBatchBuilder`] or from any `Buf`.
///
/// ```
/// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
/// let b = DatagramBatch::new(Buf::from(vec![1u8; 2500]), 1000).unwrap();
/// assert_eq!(b.datagram_count(), 3);
/// assert_eq!(b.datagram(2).unwrap().len(), 500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DatagramBatch {
    data: Buf,
    segment_size: usize,
}

impl DatagramBatch {
    /// `data` cut into datagrams of `segment_size` bytes, the last one
    /// shorter if `data.len()` is not a multiple. An
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) error if
    /// `segment_size` is 0.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
    /// assert!(DatagramBatch::new(Buf::from_static(b"abc"), 0).is_err());
    /// assert_eq!(DatagramBatch::new(Buf::new(), 1200).unwrap().datagram_count(), 0);
    /// ```
    pub fn new(data: Buf, segment_size: usize) -> io::Result<Self> {
        if segment_size == 0 {
            return Err(invalid(
                "a datagram batch needs a segment size above 0".into(),
            ));
        }
        Ok(Self { data, segment_size })
    }

    /// Bytes of every datagram but the last.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
    /// assert_eq!(DatagramBatch::new(Buf::from_static(b"abcd"), 3).unwrap().segment_size(), 3);
    /// ```
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// How many datagrams the batch holds.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
    /// assert_eq!(DatagramBatch::new(Buf::from_static(b"abcd"), 2).unwrap().datagram_count(), 2);
    /// ```
    pub fn datagram_count(&self) -> usize {
        self.data.len().div_ceil(self.segment_size.max(1))
    }

    /// Whether the batch holds no datagram.
    ///
    /// ```
    /// assert!(zcbuf_core::io::zerocopy::DatagramBatch::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Datagram `i` (a view, not a copy), or `None` past the end.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
    /// let b = DatagramBatch::new(Buf::from_static(b"aabbc"), 2).unwrap();
    /// assert_eq!(&b.datagram(1).unwrap()[..], b"bb");
    /// assert!(b.datagram(3).is_none());
    /// ```
    pub fn datagram(&self, i: usize) -> Option<Buf> {
        let start = i.checked_mul(self.segment_size)?;
        if start >= self.data.len() {
            return None;
        }
        let end = start.saturating_add(self.segment_size).min(self.data.len());
        Some(self.data.slice(start..end))
    }

    /// All the datagrams' bytes, back to back.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatch, Buf};
    /// let b = DatagramBatch::new(Buf::from_static(b"aabbc"), 2).unwrap();
    /// assert_eq!(b.as_buf().len(), 5);
    /// ```
    pub fn as_buf(&self) -> &Buf {
        &self.data
    }

    /// Byte range of datagrams `i..j`.
    fn range(&self, i: usize, j: usize) -> std::ops::Range<usize> {
        let len = self.data.len();
        (i * self.segment_size).min(len)..(j * self.segment_size).min(len)
    }
}

/// Builds a [`DatagramBatch`] in place in one pooled chunk: each datagram
/// is written straight into the memory that will be sent (no copy later,
/// and the whole batch is one piece that goes by reference).
///
/// ```
/// use zcbuf_core::io::zerocopy::DatagramBatchBuilder;
/// let mut b = DatagramBatchBuilder::new(1200, 8).unwrap();
/// b.push(&[7u8; 1200]).unwrap();
/// // Encrypt in place: write at most 1200 bytes, say how many were used.
/// b.push_with(1200, |out| { out[..4].copy_from_slice(b"tail"); 4 }).unwrap();
/// assert!(b.push(&[1u8; 10]).is_err()); // after a short datagram nothing may follow
/// let batch = b.finish();
/// assert_eq!(batch.datagram_count(), 2);
/// assert_eq!(&batch.datagram(1).unwrap()[..], b"tail");
/// ```
#[derive(Debug)]
pub struct DatagramBatchBuilder {
    buf: BufMut,
    segment_size: usize,
    max_datagrams: usize,
    count: usize,
    /// The last datagram pushed was shorter than the segment size.
    closed: bool,
}

impl DatagramBatchBuilder {
    /// A builder for up to `max_datagrams` datagrams of `segment_size`
    /// bytes, in a chunk of the process-wide [`Pool`]. An
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) error for a 0 size or
    /// count or one whose product overflows; the pool's error if it cannot
    /// allocate.
    ///
    /// ```
    /// use zcbuf_core::io::zerocopy::DatagramBatchBuilder;
    /// assert!(DatagramBatchBuilder::new(1472, 44).is_ok());
    /// assert!(DatagramBatchBuilder::new(0, 44).is_err());
    /// ```
    pub fn new(segment_size: usize, max_datagrams: usize) -> io::Result<Self> {
        Self::with_pool(Pool::global(), segment_size, max_datagrams)
    }

    /// As [`new`](Self::new), from `pool`.
    ///
    /// ```
    /// use zcbuf_core::{io::zerocopy::DatagramBatchBuilder, pool::Pool};
    /// let pool = Pool::new(Default::default());
    /// assert_eq!(DatagramBatchBuilder::with_pool(&pool, 1000, 4).unwrap().capacity(), 4);
    /// ```
    pub fn with_pool(pool: &Pool, segment_size: usize, max_datagrams: usize) -> io::Result<Self> {
        if segment_size == 0 || max_datagrams == 0 {
            return Err(invalid(format!(
                "a datagram batch of {max_datagrams} datagrams of {segment_size} bytes holds nothing"
            )));
        }
        let bytes = segment_size.checked_mul(max_datagrams).ok_or_else(|| {
            invalid(format!(
                "{max_datagrams} datagrams of {segment_size} bytes overflow usize"
            ))
        })?;
        Ok(Self {
            buf: pool.try_alloc(bytes)?,
            segment_size,
            max_datagrams,
            count: 0,
            closed: false,
        })
    }

    /// Datagrams the builder can hold.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(100, 3).unwrap().capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.max_datagrams
    }

    /// Datagrams pushed so far.
    ///
    /// ```
    /// let mut b = zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(100, 3).unwrap();
    /// b.push(&[0u8; 100]).unwrap();
    /// assert_eq!(b.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing was pushed.
    ///
    /// ```
    /// assert!(zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(100, 3).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends a copy of `datagram`. Same rules as
    /// [`push_with`](Self::push_with).
    ///
    /// ```
    /// let mut b = zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(4, 2).unwrap();
    /// b.push(b"abcd").unwrap();
    /// assert!(b.push(b"toolong").is_err());
    /// ```
    pub fn push(&mut self, datagram: &[u8]) -> io::Result<()> {
        self.push_with(datagram.len(), |out| {
            out.copy_from_slice(datagram);
            datagram.len()
        })
        .map(drop)
    }

    /// Appends a datagram written in place: `write` gets `max_len` zeroed
    /// bytes of the chunk and returns how many it used (the datagram's
    /// length). An [`InvalidInput`](io::ErrorKind::InvalidInput) error,
    /// with nothing appended, if `max_len` exceeds the segment size, the
    /// builder is full, a shorter datagram was already pushed (only the
    /// last may be short), or `write` returns 0 or more than `max_len`.
    ///
    /// ```
    /// let mut b = zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(8, 2).unwrap();
    /// assert_eq!(b.push_with(8, |out| { out.fill(1); 8 }).unwrap(), 8);
    /// assert!(b.push_with(8, |_| 9).is_err());
    /// ```
    pub fn push_with(
        &mut self,
        max_len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> io::Result<usize> {
        let i = self.count;
        if self.closed {
            return Err(invalid(format!(
                "datagram {i}: datagram {} was shorter than the segment size ({} bytes), \
                 so it must be the last",
                i - 1,
                self.segment_size
            )));
        }
        if i == self.max_datagrams {
            return Err(invalid(format!(
                "datagram {i}: the batch holds at most {} datagrams",
                self.max_datagrams
            )));
        }
        if max_len > self.segment_size {
            return Err(invalid(format!(
                "datagram {i}: {max_len} bytes is more than the segment size {}",
                self.segment_size
            )));
        }
        let start = self.buf.len();
        let spare = &mut self.buf.spare_capacity_mut()[..max_len];
        spare.fill(MaybeUninit::new(0));
        // SAFETY: the `max_len` bytes are within capacity (count <
        // max_datagrams) and were just initialised, so they may be seen
        // as bytes. The length is set only after the writer returned, so
        // a writer that panics leaves the builder as it was.
        let out = unsafe { &mut *(spare as *mut [MaybeUninit<u8>] as *mut [u8]) };
        let used = write(out);
        if used == 0 || used > max_len {
            return Err(invalid(format!(
                "datagram {i}: the writer used {used} of {max_len} bytes (must be 1..={max_len})"
            )));
        }
        // SAFETY: `used <= max_len` bytes after `start` are initialised
        // (above) and within capacity.
        unsafe { self.buf.set_len(start + used) };
        self.count += 1;
        self.closed = used < self.segment_size;
        Ok(used)
    }

    /// The batch, frozen (no copy).
    ///
    /// ```
    /// let mut b = zcbuf_core::io::zerocopy::DatagramBatchBuilder::new(3, 2).unwrap();
    /// b.push(b"abc").unwrap();
    /// assert_eq!(b.finish().as_buf().len(), 3);
    /// ```
    pub fn finish(self) -> DatagramBatch {
        DatagramBatch {
            data: self.buf.freeze(),
            segment_size: self.segment_size,
        }
    }
}

/// Where the datagrams come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Batch(&'a DatagramBatch),
    List(&'a [Composite]),
}

impl Source<'_> {
    fn count(&self) -> usize {
        match self {
            Source::Batch(b) => b.datagram_count(),
            Source::List(l) => l.len(),
        }
    }

    fn segment_size(&self) -> usize {
        match self {
            Source::Batch(b) => b.segment_size,
            Source::List(l) => l.first().map_or(0, Composite::len),
        }
    }

    fn len_of(&self, i: usize) -> usize {
        match self {
            Source::Batch(b) => b.range(i, i + 1).len(),
            Source::List(l) => l[i].len(),
        }
    }

    /// What a zero-copy call of datagrams `i..j` pins: for a batch, one
    /// slice of its buffer (no allocation per call).
    fn pinned(&self, i: usize, j: usize) -> Pinned {
        match self {
            Source::Batch(b) => Pinned::One(b.data.slice(b.range(i, j))),
            Source::List(_) => Pinned::Many(self.views(i, j)),
        }
    }

    /// The views of datagrams `i..j`, to pin.
    fn views(&self, i: usize, j: usize) -> Composite {
        match self {
            Source::Batch(b) => Composite::from(b.data.slice(b.range(i, j))),
            Source::List(l) => l[i..j]
                .iter()
                .flat_map(|d| d.components().filter(|c| !c.is_empty()).cloned())
                .collect(),
        }
    }
}

/// Checks the kernel's rule for a list of datagrams; returns the
/// segment size (the first datagram's length).
pub(crate) fn validate(datagrams: &[Composite]) -> io::Result<usize> {
    let n = datagrams.len();
    let seg = datagrams.first().map_or(0, Composite::len);
    for (i, d) in datagrams.iter().enumerate() {
        let len = d.len();
        if len == 0 {
            return Err(invalid(format!(
                "datagram {i} is empty (a GSO segment cannot be)"
            )));
        }
        if i + 1 < n && len != seg {
            return Err(invalid(format!(
                "datagram {i} is {len} bytes, not the segment size {seg} (datagram 0's \
                 length): every datagram but the last must be exactly the segment size"
            )));
        }
        if len > seg {
            return Err(invalid(format!(
                "datagram {i} (the last) is {len} bytes, more than the segment size {seg}"
            )));
        }
        // Counting pieces walks the composite: only when it could matter.
        let pieces = || d.chunks().filter(|c| !c.is_empty()).count();
        if d.component_count() > IOV_MAX && pieces() > IOV_MAX {
            return Err(invalid(format!(
                "datagram {i} has {} pieces, more than one call takes ({IOV_MAX})",
                pieces()
            )));
        }
    }
    Ok(seg)
}

/// One planned call: datagrams `start..end`, `iov[..n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) end: usize,
    pub(crate) n: usize,
    pub(crate) bytes: usize,
    /// Pages the iovecs span; counted only when planned with the
    /// fragment budget (or for a back-to-back batch).
    pub(crate) pages: usize,
}

/// Pages spanned by one iovec, from its address alone (a merged iovec
/// covers several borrows: no slice is made of it).
fn iov_pages(v: &libc::iovec) -> usize {
    if v.iov_len == 0 {
        return 0;
    }
    let start = v.iov_base as usize;
    (start + v.iov_len - 1) / PAGE - start / PAGE + 1
}

/// Plans the next call from datagram `start`: as many whole datagrams as
/// fit `MAX_SEGMENTS`, `max_bytes`, `IOV_MAX` iovecs and (when
/// `frag_budget`) `MAX_FRAGS` pages, pieces contiguous in memory merged
/// into one iovec. At least one datagram.
pub(crate) fn plan(
    src: Source<'_>,
    start: usize,
    max_bytes: usize,
    frag_budget: bool,
    iov: &mut IovArray,
) -> Unit {
    let count = src.count();
    if let Source::Batch(b) = src {
        // One piece of memory: the call's size is arithmetic.
        let mut k = (count - start)
            .min(MAX_SEGMENTS)
            .min((max_bytes / b.segment_size).max(1));
        loop {
            let r = b.range(start, start + k);
            let v = libc::iovec {
                iov_base: b.data[r.clone()].as_ptr() as *mut libc::c_void,
                iov_len: r.len(),
            };
            let pages = iov_pages(&v);
            if !frag_budget || pages <= MAX_FRAGS || k == 1 {
                iov[0].write(v);
                return Unit {
                    end: start + k,
                    n: 1,
                    bytes: r.len(),
                    pages,
                };
            }
            k -= 1;
        }
    }
    let u = Unit {
        end: start,
        n: 0,
        bytes: 0,
        pages: 0,
    };
    plan_on(src, start, u, max_bytes, frag_budget, iov)
}

/// Goes on planning a list's call from `u` (the datagrams `start..u.end`
/// already in `iov[..u.n]`, as a plan left them).
pub(crate) fn plan_on(
    src: Source<'_>,
    start: usize,
    mut u: Unit,
    max_bytes: usize,
    frag_budget: bool,
    iov: &mut IovArray,
) -> Unit {
    let count = src.count();
    let mut i = u.end;
    while i < count && i - start < MAX_SEGMENTS {
        let len = src.len_of(i);
        if i > start && u.bytes + len > max_bytes {
            break;
        }
        // Tentatively add datagram i's pieces.
        let (saved_n, saved_pages) = (u.n, u.pages);
        let mut saved_last = None;
        let mut fits = true;
        let mut add = |piece: &[u8], u: &mut Unit| {
            if piece.is_empty() || !fits {
                return;
            }
            if u.n > 0 {
                // SAFETY: iov[..u.n] was written by this plan (or by the
                // one it goes on from).
                let last = unsafe { iov[u.n - 1].assume_init_mut() };
                if last.iov_base as usize + last.iov_len == piece.as_ptr() as usize {
                    if saved_last.is_none() && u.n == saved_n {
                        saved_last = Some(last.iov_len);
                    }
                    if frag_budget {
                        let before = iov_pages(last);
                        last.iov_len += piece.len();
                        u.pages = u.pages - before + iov_pages(last);
                    } else {
                        last.iov_len += piece.len();
                    }
                    return;
                }
            }
            if u.n == IOV_MAX {
                fits = false;
                return;
            }
            let v = libc::iovec {
                iov_base: piece.as_ptr() as *mut libc::c_void,
                iov_len: piece.len(),
            };
            if frag_budget {
                u.pages += iov_pages(&v);
            }
            iov[u.n].write(v);
            u.n += 1;
        };
        match src {
            Source::Batch(b) => add(&b.data[b.range(i, i + 1)], &mut u),
            Source::List(l) => {
                for c in l[i].chunks() {
                    add(c, &mut u);
                }
            }
        }
        let over = !fits || (frag_budget && u.pages > MAX_FRAGS);
        if over && i > start {
            // Undo: datagram i starts the next call.
            if let Some(len) = saved_last {
                // SAFETY: iov[saved_n - 1] is below u.n (see above).
                unsafe { iov[saved_n - 1].assume_init_mut() }.iov_len = len;
            }
            u.n = saved_n;
            u.pages = saved_pages;
            break;
        }
        u.bytes += len;
        i += 1;
        u.end = i;
        if over {
            break;
        }
    }
    u
}

/// The most payload bytes one send on `fd` may carry.
fn max_bytes_of(fd: RawFd) -> usize {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are writable for the call; `len` says how
    // much room `ss` has.
    let r = unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r == 0 && libc::c_int::from(ss.ss_family) == libc::AF_INET6 {
        MAX_BYTES_V6
    } else {
        MAX_BYTES_V4
    }
}

/// Whether the kernel knows `UDP_SEGMENT` on `fd`: `Err(errno)` if not.
fn gso_supported(fd: RawFd) -> Result<(), i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are writable for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOPROTOOPT))
    }
}

/// One `sendmsg` of `iov[..n]` with a `UDP_SEGMENT` cmsg of `segment`
/// when given; `EINTR` returned.
///
/// # Safety
///
/// `iov[..n]` must be initialised and describe readable memory valid for
/// the call (with `MSG_ZEROCOPY`, until its completion).
unsafe fn sendmsg_gso(
    fd: RawFd,
    to: Option<&Destination>,
    iov: &IovArray,
    n: usize,
    segment: Option<u16>,
    flags: libc::c_int,
) -> io::Result<usize> {
    // u64 for cmsghdr alignment; CMSG_SPACE(2) is 24 bytes on 64-bit.
    let mut control = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid (no name, no iovecs).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    (hdr.msg_name, hdr.msg_namelen) = Destination::name(to);
    hdr.msg_iov = iov.as_ptr() as *mut libc::iovec;
    hdr.msg_iovlen = n as _;
    if let Some(seg) = segment {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        assert!(space <= std::mem::size_of_val(&control));
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = space as _;
        // SAFETY: `hdr` points at `control`, large enough for one cmsg
        // of a u16 (checked above), zeroed and writable.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
        }
    }
    // SAFETY: `hdr` describes `n` initialised iovecs over readable memory
    // (the caller's guarantee) and a valid control buffer.
    let r = unsafe { libc::sendmsg(fd, &hdr, flags | libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Plain `sendmmsg` of datagrams `start..end`; returns how many went.
fn sendmmsg_plain(
    fd: RawFd,
    to: Option<&Destination>,
    src: Source<'_>,
    start: usize,
    end: usize,
) -> io::Result<usize> {
    let mut iovs: Vec<libc::iovec> = Vec::new();
    let mut spans = Vec::with_capacity(end - start);
    for i in start..end {
        let first = iovs.len();
        let mut push = |p: &[u8]| {
            if !p.is_empty() {
                iovs.push(libc::iovec {
                    iov_base: p.as_ptr() as *mut libc::c_void,
                    iov_len: p.len(),
                });
            }
        };
        match src {
            Source::Batch(b) => push(&b.data[b.range(i, i + 1)]),
            Source::List(l) => l[i].chunks().for_each(push),
        }
        spans.push((first, iovs.len() - first));
    }
    let mut msgs: Vec<libc::mmsghdr> = spans
        .iter()
        .map(|&(first, n)| {
            // SAFETY: an all-zero mmsghdr is valid (no name, no iovecs).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            (m.msg_hdr.msg_name, m.msg_hdr.msg_namelen) = Destination::name(to);
            // SAFETY: `first + n <= iovs.len()`; `iovs` is not resized again.
            m.msg_hdr.msg_iov = unsafe { iovs.as_mut_ptr().add(first) };
            m.msg_hdr.msg_iovlen = n as _;
            m
        })
        .collect();
    loop {
        // SAFETY: every mmsghdr points at initialised iovecs over the
        // datagrams' memory, alive for the call; a plain send keeps
        // nothing.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What one step did.
enum Step {
    /// Datagrams sent.
    Sent(usize),
    /// GSO was refused with this errno for segments of this size: send
    /// the same datagrams by `sendmmsg`.
    Refused(i32),
}

/// Sends all of `src` (validated), blocking as [`ZeroCopySender::send`]
/// does; returns the datagrams sent (fewer only when an error stopped
/// them after some went).
///
/// [`ZeroCopySender::send`]: super::ZeroCopySender::send
pub(crate) fn send_all(ctx: &mut Ctx<'_>, src: Source<'_>) -> io::Result<usize> {
    let count = src.count();
    if count == 0 {
        return Ok(0);
    }
    if !ctx.state.checked {
        ctx.state.checked = true;
        ctx.state.max_bytes = Some(max_bytes_of(ctx.fd));
        if let Err(errno) = gso_supported(ctx.fd) {
            ctx.state.stats.refused = Some(errno);
        }
    }
    let mut done = 0;
    let mut deadline = None;
    while done < count {
        let r = step(ctx, src, done);
        match r {
            Ok(k) => done += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !blocking_wait(ctx.fd, ctx.wait_limit, &mut deadline)? {
                    return if done > 0 { Ok(done) } else { Err(e) };
                }
                if let Some(entry) = ctx.entry {
                    read_error_queue(ctx.fd, &mut entry.engine.lock())?;
                }
            }
            Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
        }
    }
    Ok(done)
}

/// Whether GSO may be asked for segments of `seg` bytes.
fn gso_allowed(st: &GsoState, seg: usize) -> bool {
    st.stats.refused.is_none() && st.stats.max_segment.map_or(true, |m| seg <= m)
}

/// One call (GSO, or `sendmmsg` when refused) from datagram `start`.
fn step(ctx: &mut Ctx<'_>, src: Source<'_>, start: usize) -> io::Result<usize> {
    let seg = src.segment_size();
    let max_bytes = ctx.state.max_bytes.unwrap_or(MAX_BYTES_V4);
    if gso_allowed(ctx.state, seg) {
        match gso_step(ctx, src, start, seg, max_bytes)? {
            Step::Sent(k) => return Ok(k),
            Step::Refused(errno) => {
                if errno == libc::EINVAL || errno == libc::EMSGSIZE {
                    ctx.state.stats.max_segment = Some(seg.saturating_sub(1));
                } else {
                    ctx.state.stats.refused = Some(errno);
                }
            }
        }
    }
    let end = (start + MAX_SEGMENTS).min(src.count());
    if let Some(entry) = ctx.entry {
        let mut eng = entry.engine.lock();
        if eng.poll_due(ctx.mode, ctx.poll_every) {
            read_error_queue(ctx.fd, &mut eng)?;
        }
    }
    let sent = sendmmsg_plain(ctx.fd, ctx.to, src, start, end)?;
    let st = &mut ctx.state.stats;
    st.fallback_calls += 1;
    st.fallback_datagrams += sent as u64;
    let bytes: usize = (start..start + sent).map(|i| src.len_of(i)).sum();
    ctx.tally.sends += sent as u64;
    ctx.tally.bytes += bytes as u64;
    ctx.tally.iovecs += sent as u64;
    Ok(sent)
}

/// Whether a zero-copy call of `bytes` over `pages` may be made now.
fn zerocopy_wanted(ctx: &Ctx<'_>, eng: &Engine, bytes: usize, pages: usize) -> bool {
    if !eng.zerocopy_allowed(ctx.mode) || bytes < ctx.threshold || pages > MAX_FRAGS {
        return false;
    }
    if ctx.mode == ZeroCopyMode::Auto && eng.auto.probing() && eng.pins.outstanding() > 0 {
        // One probe at a time until the first completion has decided.
        return false;
    }
    worth_pinning(bytes, pages)
}

fn gso_step(
    ctx: &mut Ctx<'_>,
    src: Source<'_>,
    start: usize,
    seg: usize,
    max_bytes: usize,
) -> io::Result<Step> {
    let mut iov = iov_array();
    if ctx.uring.is_some() {
        return uring_gso_step(ctx, src, start, seg, max_bytes);
    }
    let Some(entry) = ctx.entry else {
        let u = plan(src, start, max_bytes, false, &mut iov);
        return gso_call(ctx, None, src, start, seg, &iov, u, How::Copy);
    };
    let mut eng = entry.engine.lock();
    if eng.poll_due(ctx.mode, ctx.poll_every) {
        read_error_queue(ctx.fd, &mut eng)?;
    }
    let allowed = eng.zerocopy_allowed(ctx.mode);
    let mut u = plan(src, start, max_bytes, allowed, &mut iov);
    let zerocopy = allowed && zerocopy_wanted(ctx, &eng, u.bytes, u.pages);
    if allowed && !zerocopy {
        // Copying: no fragment budget, as many datagrams as one call
        // takes, going on from where the budget stopped.
        u = match src {
            Source::List(_) => plan_on(src, start, u, max_bytes, false, &mut iov),
            Source::Batch(_) => plan(src, start, max_bytes, false, &mut iov),
        };
    }
    let how = if zerocopy { How::ZeroCopy } else { How::Copy };
    gso_call(ctx, Some(&mut eng), src, start, seg, &iov, u, how)
}

/// [`gso_step`] on an io_uring sender: a call that pays by the engine's
/// rule goes as one `SENDMSG_ZC` (UDP GSO by reference, its views held
/// by the ring until the notification); one the kernel refuses by
/// reference (`EMSGSIZE`, `ENOBUFS`, `ENOMEM`) and every other goes as
/// the plain copying call. No other submission of the ring is in flight
/// meanwhile (each is waited for), so datagrams cannot reorder.
fn uring_gso_step(
    ctx: &mut Ctx<'_>,
    src: Source<'_>,
    start: usize,
    seg: usize,
    max_bytes: usize,
) -> io::Result<Step> {
    let mut iov = iov_array();
    let ur = ctx.uring.as_deref_mut().expect("an io_uring sender");
    let allowed = ur.gso_zerocopy_allowed();
    let u = plan(src, start, max_bytes, allowed, &mut iov);
    let zerocopy = allowed
        && u.bytes >= ctx.threshold
        && u.pages <= MAX_FRAGS
        && worth_pinning(u.bytes, u.pages);
    if zerocopy {
        let datagrams = u.end - start;
        let gso = datagrams > 1;
        let segment = gso.then_some(seg as u16);
        let to = ctx.to.map(Destination::raw);
        match ur.send_gso_zc(&iov, u.n, segment, to, src.views(start, u.end))? {
            Ok(sent) => {
                let t = &mut *ctx.tally;
                t.sends += 1;
                t.bytes += sent as u64;
                t.iovecs += u.n as u64;
                t.zerocopy_sends += 1;
                t.zerocopy_bytes += sent as u64;
                let st = &mut ctx.state.stats;
                if gso {
                    st.gso_sends += 1;
                    st.gso_datagrams += datagrams as u64;
                    st.gso_zerocopy_sends += 1;
                } else {
                    st.single_sends += 1;
                }
                return Ok(Step::Sent(datagrams));
            }
            Err(libc::EMSGSIZE) => ctx.tally.emsgsize_fallbacks += 1,
            Err(libc::ENOBUFS | libc::ENOMEM) => ctx.tally.enobufs_fallbacks += 1,
            Err(e @ (libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)) if gso => {
                return Ok(Step::Refused(e))
            }
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
    // By copy: no fragment budget, as many datagrams as one call takes.
    let u = plan(src, start, max_bytes, false, &mut iov);
    gso_call(ctx, None, src, start, seg, &iov, u, How::Copy)
}

/// How a GSO call goes.
#[derive(Clone, Copy)]
enum How {
    /// Plain: the kernel copies.
    Copy,
    /// `MSG_ZEROCOPY`, pinning the source's views.
    ZeroCopy,
}

#[allow(clippy::too_many_arguments)]
fn gso_call(
    ctx: &mut Ctx<'_>,
    mut eng: Option<&mut Engine>,
    src: Source<'_>,
    start: usize,
    seg: usize,
    iov: &IovArray,
    u: Unit,
    how: How,
) -> io::Result<Step> {
    let mut zerocopy = matches!(how, How::ZeroCopy);
    let datagrams = u.end - start;
    let gso = datagrams > 1;
    let segment = gso.then_some(seg as u16);
    debug_assert!(!gso || seg <= usize::from(u16::MAX));
    let sent = loop {
        let flags = libc::MSG_DONTWAIT | if zerocopy { libc::MSG_ZEROCOPY } else { 0 };
        // SAFETY: iov[..u.n] describes the datagrams' memory, alive for
        // the call; after a zero-copy send their views are pinned below.
        let err = match unsafe { sendmsg_gso(ctx.fd, ctx.to, iov, u.n, segment, flags) } {
            Ok(sent) => break sent,
            Err(e) => e,
        };
        if zerocopy {
            let eng = eng.as_deref_mut().expect("zero-copy only with an engine");
            settle_failed_send(ctx.fd, eng)?;
        }
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EMSGSIZE) if zerocopy => {
                ctx.tally.emsgsize_fallbacks += 1;
                zerocopy = false;
            }
            Some(libc::ENOBUFS) if zerocopy => {
                ctx.tally.enobufs_fallbacks += 1;
                zerocopy = false;
            }
            Some(
                e @ (libc::EIO
                | libc::EINVAL
                | libc::EMSGSIZE
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP),
            ) if gso => {
                return Ok(Step::Refused(e));
            }
            _ => return Err(err),
        }
    };
    if zerocopy {
        let eng = eng.expect("zero-copy only with an engine");
        eng.pin(src.pinned(start, u.end));
    }
    let t = &mut *ctx.tally;
    t.sends += 1;
    t.bytes += sent as u64;
    t.iovecs += u.n as u64;
    if zerocopy {
        t.zerocopy_sends += 1;
        t.zerocopy_bytes += sent as u64;
    }
    let st = &mut ctx.state.stats;
    if gso {
        st.gso_sends += 1;
        st.gso_datagrams += datagrams as u64;
        if zerocopy {
            st.gso_zerocopy_sends += 1;
        }
    } else {
        st.single_sends += 1;
    }
    Ok(Step::Sent(datagrams))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(lens: &[usize]) -> Vec<Composite> {
        lens.iter()
            .map(|&n| Composite::from(Buf::from(vec![1u8; n])))
            .collect()
    }

    #[test]
    fn validation_names_the_wrong_datagram() {
        assert_eq!(validate(&list(&[100, 100, 40])).unwrap(), 100);
        assert_eq!(validate(&[]).unwrap(), 0);
        let e = validate(&list(&[100, 99, 100])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("datagram 1 is 99 bytes"), "{e}");
        let e = validate(&list(&[100, 100, 101])).unwrap_err();
        assert!(e.to_string().contains("datagram 2 (the last)"), "{e}");
        let e = validate(&list(&[100, 0])).unwrap_err();
        assert!(e.to_string().contains("datagram 1 is empty"), "{e}");
        let one = Buf::from(vec![2u8; 4 * IOV_MAX]);
        let many: Composite = (0..IOV_MAX + 1).map(|i| one.slice(i..i + 1)).collect();
        let e = validate(&[many]).unwrap_err();
        assert!(e.to_string().contains("datagram 0 has 1025 pieces"), "{e}");
    }

    #[test]
    fn back_to_back_batches_plan_one_iovec_per_call() {
        let data = Buf::from(vec![3u8; 100 * 1000]);
        let b = DatagramBatch::new(data, 1000).unwrap();
        let mut iov = iov_array();
        let u = plan(Source::Batch(&b), 0, MAX_BYTES_V4, false, &mut iov);
        assert_eq!((u.end, u.n, u.bytes), (MAX_SEGMENTS, 1, 64_000));
        let u = plan(Source::Batch(&b), 64, MAX_BYTES_V4, false, &mut iov);
        assert_eq!((u.end, u.bytes), (100, 36_000));
        // The byte limit splits at a datagram boundary.
        let big = DatagramBatch::new(Buf::from(vec![0u8; 60 * 1472]), 1472).unwrap();
        let u = plan(Source::Batch(&big), 0, MAX_BYTES_V4, true, &mut iov);
        assert_eq!(u.end, 44);
        assert!(u.bytes <= MAX_BYTES_V4 && u.pages <= MAX_FRAGS, "{u:?}");
    }

    #[test]
    fn stitched_views_of_one_buffer_merge_and_scattered_ones_fit_the_budget() {
        let data = Buf::from(vec![5u8; 44 * 1472]);
        let back_to_back: Vec<Composite> = (0..44)
            .map(|i| {
                let mut c = Composite::from(data.slice(i * 1472..i * 1472 + 32));
                c.push(data.slice(i * 1472 + 32..(i + 1) * 1472));
                c
            })
            .collect();
        let mut iov = iov_array();
        let u = plan(Source::List(&back_to_back), 0, MAX_BYTES_V4, true, &mut iov);
        assert_eq!((u.end, u.n), (44, 1), "{u:?}");
        // Header + payload pairs in separate memory: a fragment budget
        // of 17 pages holds only a few.
        let payload = Buf::from(vec![6u8; 44 * 1500]);
        let stitched: Vec<Composite> = (0..44)
            .map(|i| {
                let mut c = Composite::from(Buf::from(vec![i as u8; 32]));
                c.push(payload.slice(i * 1500..i * 1500 + 1440));
                c
            })
            .collect();
        let u = plan(Source::List(&stitched), 0, MAX_BYTES_V4, true, &mut iov);
        assert!(u.pages <= MAX_FRAGS && u.end >= 4 && u.end < 44, "{u:?}");
        assert!(!worth_pinning(u.bytes, u.pages), "{u:?}");
        let all = plan(Source::List(&stitched), 0, MAX_BYTES_V4, false, &mut iov);
        assert_eq!((all.end, all.n), (44, 88));
        // Going on from the budget's stop plans the same call.
        let budget = plan(Source::List(&stitched), 0, MAX_BYTES_V4, true, &mut iov);
        let on = plan_on(
            Source::List(&stitched),
            0,
            budget,
            MAX_BYTES_V4,
            false,
            &mut iov,
        );
        assert_eq!((on.end, on.n, on.bytes), (all.end, all.n, all.bytes));
        // Planning is repeatable from the undo: the next call starts
        // where this one ended.
        let next = plan(Source::List(&stitched), u.end, MAX_BYTES_V4, true, &mut iov);
        assert!(next.end > u.end);
    }

    #[test]
    fn builder_keeps_the_kernel_rule() {
        let mut b = DatagramBatchBuilder::new(10, 3).unwrap();
        b.push(&[1; 10]).unwrap();
        assert!(b.push(&[1; 11]).is_err());
        assert!(b.push_with(10, |_| 0).is_err());
        assert_eq!(b.len(), 1);
        b.push_with(10, |o| {
            o[..3].copy_from_slice(b"abc");
            3
        })
        .unwrap();
        assert!(b.push(&[1; 10]).is_err(), "a short one was pushed");
        let batch = b.finish();
        assert_eq!(batch.datagram_count(), 2);
        assert_eq!(&batch.datagram(1).unwrap()[..], b"abc");
        let mut full = DatagramBatchBuilder::new(4, 1).unwrap();
        full.push(b"abcd").unwrap();
        assert!(full.push(b"efgh").is_err());
        assert!(DatagramBatchBuilder::new(usize::MAX, 2).is_err());
    }
}
