//! The io_uring backend of [`ZeroCopySender`](super::ZeroCopySender):
//! `IORING_OP_SEND_ZC` (one piece) and `IORING_OP_SENDMSG_ZC` (several),
//! with the process-wide pool's chunks registered as fixed buffers.
//!
//! # What is different from `MSG_ZEROCOPY`
//!
//! Each zero-copy send is one submission whose *data* completion carries
//! the bytes sent (or the error) and, when the kernel still references the
//! memory, the flag `IORING_CQE_F_MORE`: a second, *notification*
//! completion (`IORING_CQE_F_NOTIF`) with the same `user_data` follows once
//! the kernel is done with every page. Nothing goes through the socket's
//! error queue or its id counter, so completions cannot be mismatched.
//! With `IORING_SEND_ZC_REPORT_USAGE` the notification says whether the
//! kernel copied after all (`IORING_NOTIF_USAGE_ZC_COPIED`), which feeds
//! [`ZeroCopyStats::copied_completions`](super::ZeroCopyStats) and `Auto`.
//!
//! # The rules kept
//!
//! - **Release after the notification.** The views a submission covered
//!   (retained [`Buf`](crate::Buf)s, not copies) sit in the ring's table
//!   under its `user_data` until *both* completions came: the data one
//!   (without `F_MORE`: nothing else comes) and the notification.
//!   A submission whose result was never seen (the wait failed) keeps its
//!   views, and the message header it points at, until it is.
//! - **One data submission at a time.** A sender waits for each data
//!   completion before the next send, so on a stream a short result is
//!   resent from the exact next byte and no two submissions can reorder
//!   bytes; notifications are what stays outstanding.
//! - **Batches are datagrams, linked.** `send_each` (datagram sockets
//!   only) queues one submission per datagram, chained with
//!   `IOSQE_IO_LINK`, and enters the kernel once per [`SQ_ENTRIES`]:
//!   the sends run in order, and the first failure cancels the rest of
//!   the chain unsent, so what went is always a prefix and the count
//!   returned is exact. Every data completion of the chain is waited for
//!   before the call returns; each datagram's view is released after its
//!   own notification, as for a single send.
//! - **One owner per socket.** A socket that has an io_uring sender cannot
//!   get another sender (either backend) that asks for zero-copy: `EBUSY`.
//!   A socket with `SO_ZEROCOPY` set (a `MSG_ZEROCOPY` sender's, live or
//!   parked, or someone else's) cannot get an io_uring sender: `EBUSY`
//!   (`SendBackend::Auto` then uses the syscall backend).
//! - **Drop never blocks.** A sender dropped with notifications
//!   outstanding parks its ring, its duplicate of the socket and the
//!   views with a reaper thread, which releases them as the notifications
//!   arrive; [`parked_pins`](super::parked_pins) counts them.
//!
//! UDP GSO (`send_batch` and friends) on an io_uring sender: a call that
//! goes by reference by the engine's rule is one `SENDMSG_ZC` carrying the
//! `UDP_SEGMENT` cmsg (and the destination, when given), its header, cmsg
//! and address kept with its views; the rest go as the syscall backend's
//! copying calls.
//!
//! # Registered buffers
//!
//! A single-piece send whose bytes lie in one chunk of
//! [`Pool::global`](crate::pool::Pool::global) goes with the chunk's
//! registered index, so the kernel pins no page per send. The table is
//! refreshed before a fixed send whenever the pool unmapped a chunk since
//! it was built (a stale entry would send the old pages), and on a miss
//! once the pool mapped new chunks. Registering pins the chunks' pages
//! (they count against `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`); when the
//! kernel refuses, the sender goes on without fixed buffers, which is
//! correct, only slower. Other memory (a `Vec`-backed `Buf`, a mapped
//! file, another pool) goes with non-fixed `SEND_ZC`.
//!
//! A non-fixed zero-copy send has its pinned pages charged to the
//! user's `RLIMIT_MEMLOCK` (without `CAP_IPC_LOCK`); when that runs out
//! (`ENOMEM`), or the socket's option memory does (`ENOBUFS`), the call is
//! redone as a plain copying send, counted in
//! [`ZeroCopyStats::enobufs_fallbacks`](super::ZeroCopyStats).
//!
//! The cost of that: while a ring lives, the pool's chunks it registered
//! stay resident (idle blocks given back with `MADV_FREE` keep their
//! pinned pages, and a trimmed chunk's pages go only when the table is
//! rewritten at the ring's next fixed send, or the ring closes).
//!
//! Submissions carry `MSG_DONTWAIT` (io_uring would otherwise wait for
//! room whatever the descriptor's `O_NONBLOCK`): on `EAGAIN` a
//! non-blocking socket's call fails with
//! [`WouldBlock`](std::io::ErrorKind::WouldBlock), and a blocking one's
//! waits with `poll` for room, up to its `SO_SNDTIMEO` if it has one, as
//! a blocking `sendmsg` would.

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use parking_lot::Mutex;

use super::config::ZeroCopyStats;
use super::config::{AutoDecision, AutoState, SendBackend, ZeroCopyConfig, ZeroCopyMode};
use super::engine::{coalesce_small_pieces, pages_spanned, MAX_FRAGS};
use super::gso::UDP_SEGMENT;
use super::sender::{deadline_after, send_timeout};
use crate::io::gather::{iov_array, send_iov};
use crate::io::{coalesce_tail, fill_iovecs, poll_fd, IOV_MAX};
use crate::pool::regions;
use crate::{Buf, Composite};

/// `IORING_SEND_ZC_REPORT_USAGE` (include/uapi/linux/io_uring.h).
const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
/// `IORING_NOTIF_USAGE_ZC_COPIED`: the notification's result bit saying
/// the kernel copied the bytes after all.
const NOTIF_USAGE_ZC_COPIED: i32 = 1 << 31;
/// Slots of the registered-buffer table (the kernel allows 16384).
const TABLE_SLOTS: u32 = 1024;
/// Submission queue entries: one data submission at a time for `send`,
/// and up to this many datagrams per `io_uring_enter` for `send_each`.
const SQ_ENTRIES: u32 = 64;
/// Completion queue entries: notifications may pile up while the peer is
/// slow; more go to the kernel's overflow list and are flushed on the next
/// enter, never lost.
const CQ_ENTRIES: u32 = 1024;
/// Largest length one submission carries (the SQE's length is 32 bits;
/// a stream send takes the rest in the next call).
const MAX_SEND: usize = 1 << 30;

/// Longest single wait in `io_uring_enter`. Short, so that a tool that
/// does not know the call blocks (valgrind 3.19 keeps its one-thread-at-a-
/// time lock across it) lets the other threads run between slices: a
/// reader the completions wait for would otherwise never get to read.
const WAIT_SLICE: Duration = Duration::from_millis(20);

type Key = (u64, u64);

/// Sockets an io_uring sender owns now.
static OWNED: Mutex<Option<HashSet<Key>>> = Mutex::new(None);

fn identity(fd: BorrowedFd<'_>) -> io::Result<Key> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable for the call.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
    }
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// Whether an io_uring sender owns `fd`'s socket now.
pub(crate) fn owned(fd: BorrowedFd<'_>) -> bool {
    identity(fd).is_ok_and(|key| OWNED.lock().as_ref().is_some_and(|s| s.contains(&key)))
}

fn int_sockopt(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are writable for the call.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// A `sendmsg` header and its iovecs, on the heap so that they stay put
/// for as long as the kernel may read them (until the data completion).
struct MsgStorage {
    hdr: libc::msghdr,
    iov: [MaybeUninit<libc::iovec>; IOV_MAX],
    /// A GSO call's `UDP_SEGMENT` cmsg (u64 for cmsghdr alignment).
    control: [u64; 4],
    /// A GSO call's destination on an unconnected socket.
    name: libc::sockaddr_storage,
}

impl MsgStorage {
    fn new() -> Box<Self> {
        Box::new(MsgStorage {
            // SAFETY: an all-zero msghdr is valid (no name, no iovecs).
            hdr: unsafe { std::mem::zeroed() },
            iov: iov_array(),
            control: [0; 4],
            // SAFETY: an all-zero sockaddr_storage is a valid value.
            name: unsafe { std::mem::zeroed() },
        })
    }
}

// SAFETY: the raw pointers in `hdr`/`iov` point into views the same
// `Inflight` holds (or into `iov` itself); nothing reads them but the
// kernel.
unsafe impl Send for MsgStorage {}

/// The views one submission covered.
enum Held {
    /// A datagram of `send_each`: the buffer itself (a retain, nothing
    /// allocated per datagram).
    One(Buf),
    /// The front of a message.
    Many(Composite),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::One(b) => b.len(),
            Held::Many(c) => c.len(),
        }
    }

    /// Keeps the first `n` bytes' views.
    fn truncate(&mut self, n: usize) {
        match self {
            Held::One(b) => b.truncate(n),
            Held::Many(c) => c.truncate(n),
        }
    }
}

/// `Ring::inflight`'s hasher: tokens are distinct counters, so a
/// multiply spreads them well enough, at a fraction of SipHash's cost
/// (paid twice per send).
#[derive(Default, Clone, Copy)]
struct TokenHasher(u64);

impl std::hash::Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type TokenMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<TokenHasher>>;

/// One submission the kernel may still reference.
struct Inflight {
    /// The views it covered; dropped only when both flags below are clear.
    bufs: Held,
    /// For `SENDMSG_ZC`: the header the submission points at.
    msg: Option<Box<MsgStorage>>,
    /// The data completion has not come yet.
    awaiting_data: bool,
    /// The data completion said a notification follows, and it has not
    /// come yet.
    awaiting_notif: bool,
    /// The send moved bytes (its notification counts as a completion).
    sent: bool,
}

/// Everything that must outlive a dropped sender while notifications are
/// outstanding: the ring, the socket, and the views.
struct Ring {
    ring: IoUring,
    /// The ring's own duplicate of the socket: submissions name it, so a
    /// user closing its descriptor changes nothing here.
    fd: OwnedFd,
    inflight: TokenMap<Inflight>,
    pinned_bytes: usize,
    peak_pinned_bytes: usize,
    completions: u64,
    copied_completions: u64,
    auto: AutoState,
    /// The token whose data completion a sender waits for, and its result
    /// once it came.
    waiting: Option<u64>,
    result: Option<(i32, u32)>,
    /// The tokens `first..first + results.len()` of a batch being
    /// waited for, and each one's data result once it came.
    batch_first: u64,
    batch_results: Vec<Option<i32>>,
}

impl Ring {
    fn outstanding(&self) -> usize {
        self.inflight.len()
    }

    /// Reads every completion there is without waiting; returns the
    /// submissions released.
    fn drain(&mut self) -> u64 {
        if self.ring.submission().cq_overflow() {
            // Completions that did not fit wait in the kernel: an enter
            // with GETEVENTS moves them into the queue.
            let _ = self.ring.submit();
        }
        let mut released = 0;
        let Ring {
            ring,
            inflight,
            pinned_bytes,
            completions,
            copied_completions,
            auto,
            waiting,
            result,
            batch_first,
            batch_results,
            ..
        } = self;
        for cqe in ring.completion() {
            let token = cqe.user_data();
            let flags = cqe.flags();
            let Some(entry) = inflight.get_mut(&token) else {
                continue; // a cancel's own completion
            };
            if cqueue::notif(flags) {
                entry.awaiting_notif = false;
                if entry.sent {
                    let copied = cqe.result() & NOTIF_USAGE_ZC_COPIED != 0;
                    *completions += 1;
                    if copied {
                        *copied_completions += 1;
                    }
                    auto.on_completions(1, copied);
                }
            } else {
                entry.awaiting_data = false;
                entry.msg = None;
                entry.awaiting_notif = cqueue::more(flags);
                let res = cqe.result();
                entry.sent = res > 0;
                if let Ok(sent) = usize::try_from(res) {
                    // Only the bytes that went can be referenced by the
                    // kernel (as MSG_ZEROCOPY's window pins): the request
                    // is over, the rest is in no packet.
                    if sent < entry.bufs.len() {
                        *pinned_bytes -= entry.bufs.len() - sent;
                        entry.bufs.truncate(sent);
                    }
                }
                if *waiting == Some(token) {
                    *result = Some((cqe.result(), flags));
                }
                let i = token.wrapping_sub(*batch_first);
                if let Some(slot) = usize::try_from(i)
                    .ok()
                    .and_then(|i| batch_results.get_mut(i))
                {
                    *slot = Some(res);
                }
            }
            if !entry.awaiting_data && !entry.awaiting_notif {
                let entry = inflight.remove(&token).expect("present");
                *pinned_bytes -= entry.bufs.len();
                released += 1;
            }
        }
        if inflight.is_empty() && inflight.capacity() > 256 {
            *inflight = TokenMap::default();
        }
        released
    }

    /// Waits until a completion may be there, at most `timeout` (`None`:
    /// without limit) and at most [`WAIT_SLICE`] at a time (callers loop
    /// and drain). With `poll` on the ring, not `io_uring_enter`: a tool
    /// that does not know the latter blocks (valgrind 3.19 keeps its
    /// one-thread-at-a-time lock across it) would otherwise starve the
    /// thread the completions wait for, e.g. a reader. A notification's
    /// work queued for this thread interrupts the poll, runs, and the poll
    /// then sees its completion.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let t = timeout.map_or(WAIT_SLICE, |t| t.min(WAIT_SLICE));
        if self.ring.submission().cq_overflow() {
            self.ring.submit()?;
        }
        // SAFETY: the ring's descriptor, open while `self.ring` lives.
        let fd = unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) };
        match poll_fd(fd, libc::POLLIN, Some(t)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands everything queued to the kernel, however many enters it
    /// takes.
    fn submit_queued(&mut self) -> io::Result<()> {
        while !self.ring.submission().is_empty() {
            match self.ring.submit() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) =>
                {
                    self.drain();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues `sqe` and hands it to the kernel.
    ///
    /// # Safety
    ///
    /// Everything `sqe` points at must stay valid until its data
    /// completion, and the pages it sends until its notification: the
    /// caller has put them in `self.inflight` under its token.
    unsafe fn submit(&mut self, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller's contract.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                break;
            }
            self.ring.submit()?;
            self.drain();
        }
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                    ) =>
                {
                    self.drain();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The registered-buffer table of one ring.
struct Table {
    /// `(address, length, slot)` of every slot in use, sorted by address.
    regions: Vec<(usize, usize, u16)>,
    /// Slots `0..used` were written by the last full build and the
    /// additions since.
    used: usize,
    /// [`regions::generation`] when the table was last built.
    generation: (u64, u64),
    /// `Some(errno)`: the kernel refused; no fixed sends any more.
    refused: Option<i32>,
}

impl Table {
    fn lookup(&self, addr: usize, len: usize) -> Option<u16> {
        let i = self.regions.partition_point(|&(base, _, _)| base <= addr);
        let (base, rlen, slot) = *self.regions.get(i.checked_sub(1)?)?;
        (addr + len <= base + rlen).then_some(slot)
    }
}

/// This sender's own counters.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    sends: u64,
    zerocopy_sends: u64,
    bytes: u64,
    zerocopy_bytes: u64,
    iovecs: u64,
    enobufs_fallbacks: u64,
    emsgsize_fallbacks: u64,
    registered_sends: u64,
}

/// The io_uring state of one sender.
pub(crate) struct UringSender {
    /// `None` only while dropping.
    ring: Option<Ring>,
    key: Key,
    table: Table,
    mode: ZeroCopyMode,
    threshold: usize,
    /// The socket is the ring's fixed file 0.
    fixed_file: bool,
    message_socket: bool,
    local_peer: bool,
    next_token: u64,
    counters: Counters,
    not_socket: bool,
    /// A `SENDMSG_ZC` from a registered buffer was refused (a kernel
    /// before 6.15): GSO calls by reference go unregistered.
    vectored_fixed_refused: bool,
}

impl std::fmt::Debug for UringSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringSender")
            .field("key", &self.key)
            .field("table_slots", &self.table.regions.len())
            .field("table_refused", &self.table.refused)
            .finish()
    }
}

impl UringSender {
    /// Sets up a ring for `fd`'s socket and claims it; `local_peer`: the
    /// peer is this host (`Auto` then never asks for zero-copy). Errors:
    /// not a socket (`ENOTSOCK`), no ring (`ENOSYS`, `EPERM`, `ENOMEM`),
    /// or (`EBUSY`) the socket already has an io_uring sender or
    /// `SO_ZEROCOPY` set.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        config: &ZeroCopyConfig,
        message_socket: bool,
        local_peer: bool,
    ) -> io::Result<Self> {
        let key = identity(fd)?;
        if int_sockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ZEROCOPY)? != 0 {
            // In MSG_ZEROCOPY mode (a syscall-backend sender's, live or
            // parked, or someone else's): one owner per socket.
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        // Not SINGLE_ISSUER: a sender may move between threads, and the
        // reaper enters a parked ring to flush overflowed completions.
        // COOP_TASKRUN: a notification does not interrupt the sending
        // thread while it runs in user space (measured: the interrupt per
        // notification cost MSG_ZEROCOPY's lead at 64 KiB); it is handled
        // at the thread's next entry into the kernel, and a sleeping
        // thread is still woken for it, so parked rings drain. Kernels
        // before 5.19 refuse the flag: a plain ring then.
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_coop_taskrun()
            .build(SQ_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .build(SQ_ENTRIES)
            })?;
        let refused = ring
            .submitter()
            .register_buffers_sparse(TABLE_SLOTS)
            .err()
            .map(|e| e.raw_os_error().unwrap_or(libc::EINVAL));
        let own = fd.try_clone_to_owned()?;
        // The socket as the ring's fixed file 0: no descriptor lookup per
        // submission. Refused (an old kernel, RLIMIT_NOFILE): by
        // descriptor.
        let fixed_file = ring.submitter().register_files(&[own.as_raw_fd()]).is_ok();
        {
            let mut owned = OWNED.lock();
            let set = owned.get_or_insert_with(HashSet::new);
            if !set.insert(key) {
                // Another io_uring sender has it: one owner per socket.
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
        }
        let mut auto = AutoState::new(config);
        if local_peer && config.mode == ZeroCopyMode::Auto {
            auto.set_local_peer();
        }
        Ok(Self {
            ring: Some(Ring {
                ring,
                fd: own,
                inflight: TokenMap::default(),
                pinned_bytes: 0,
                peak_pinned_bytes: 0,
                completions: 0,
                copied_completions: 0,
                auto,
                waiting: None,
                result: None,
                batch_first: 0,
                batch_results: Vec::new(),
            }),
            key,
            table: Table {
                regions: Vec::new(),
                used: 0,
                generation: (u64::MAX, u64::MAX),
                refused,
            },
            mode: config.mode,
            threshold: config.threshold,
            fixed_file,
            message_socket,
            local_peer,
            next_token: 0,
            counters: Counters::default(),
            not_socket: false,
            vectored_fixed_refused: false,
        })
    }

    fn ring(&mut self) -> &mut Ring {
        self.ring.as_mut().expect("a live sender has its ring")
    }

    /// The socket the ring sends on.
    pub(crate) fn raw(&self) -> RawFd {
        self.ring.as_ref().expect("live").fd.as_raw_fd()
    }

    /// Brings the registered table up to the pool's chunks now: after an
    /// unmap every slot is rewritten (an old one might name pages the pool
    /// no longer maps there); otherwise only chunks mapped since are added,
    /// in free slots, so pages already pinned are not pinned again.
    fn refresh_table(&mut self) {
        // Read before listing: an unmap during the listing shows as a
        // newer generation and makes the next send refresh again.
        let generation = regions::generation();
        let mut list = regions::global_regions();
        list.retain(|&(_, len)| len <= 1 << 30);
        let rebuild = generation.0 != self.table.generation.0;
        let (first, mut keep) = if rebuild {
            (0, Vec::new())
        } else {
            list.retain(|&(base, len)| {
                !self.table.regions.iter().any(|r| (r.0, r.1) == (base, len))
            });
            (
                self.table.regions.len(),
                std::mem::take(&mut self.table.regions),
            )
        };
        list.truncate(TABLE_SLOTS as usize - first);
        // Slots past the new list that an old table used are cleared.
        let used_before = if rebuild { self.table.used } else { first };
        let count = list.len().max(used_before.saturating_sub(first));
        let iov: Vec<libc::iovec> = (0..count)
            .map(|i| match list.get(i) {
                Some(&(base, len)) => libc::iovec {
                    iov_base: base as *mut libc::c_void,
                    iov_len: len,
                },
                None => libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
            })
            .collect();
        if iov.is_empty() {
            self.table.regions = keep;
            self.table.generation = generation;
            return;
        }
        // Until the update succeeded no slot may be used: a partial update
        // could leave stale ones.
        self.table.regions.clear();
        // SAFETY: every iovec names a mapped chunk of the global pool,
        // which is never dropped; the kernel pins the pages, and a chunk
        // unmapped later bumps the generation first, so the table is
        // rewritten before it is used again.
        let r = unsafe {
            self.ring
                .as_ref()
                .expect("live")
                .ring
                .submitter()
                .register_buffers_update(first as u32, &iov, None)
        };
        match r {
            Ok(_) => {
                keep.extend(
                    list.iter()
                        .enumerate()
                        .map(|(i, &(base, len))| (base, len, (first + i) as u16)),
                );
                keep.sort_unstable();
                self.table.used = first + list.len();
                self.table.regions = keep;
                self.table.generation = generation;
            }
            Err(e) => self.table.refused = Some(e.raw_os_error().unwrap_or(libc::EINVAL)),
        }
    }

    /// The registered slot holding `[addr, addr + len)`, if any.
    fn fixed_slot(&mut self, addr: usize, len: usize) -> Option<u16> {
        if self.table.refused.is_some() || cfg!(miri) {
            return None;
        }
        let (unmaps, maps) = regions::generation();
        if unmaps != self.table.generation.0 {
            self.refresh_table();
        }
        if let Some(slot) = self.table.lookup(addr, len) {
            return Some(slot);
        }
        if maps != self.table.generation.1 && self.table.refused.is_none() {
            self.refresh_table();
            return self.table.lookup(addr, len);
        }
        None
    }

    /// Whether this send may ask for zero-copy.
    fn zerocopy_allowed(&mut self) -> bool {
        match self.mode {
            ZeroCopyMode::Never => false,
            ZeroCopyMode::Always => true,
            ZeroCopyMode::Auto => !self.local_peer && self.ring().auto.on,
        }
    }

    /// One send from the front of `msg` (a whole datagram on a message
    /// socket), which is advanced by the bytes sent; the same contract as
    /// `ZeroCopySender::send`.
    pub(crate) fn send(&mut self, msg: &mut Composite) -> io::Result<usize> {
        if msg.is_empty() {
            return Ok(0);
        }
        self.ring().drain();
        if self.message_socket && msg.component_count() > IOV_MAX {
            coalesce_tail(msg, IOV_MAX);
        }
        let mut zerocopy = self.zerocopy_allowed() && msg.len() >= self.threshold;
        if zerocopy && self.message_socket && pages_spanned(msg.chunks()) > MAX_FRAGS {
            coalesce_small_pieces(msg);
            if pages_spanned(msg.chunks()) > MAX_FRAGS {
                zerocopy = false;
                self.counters.emsgsize_fallbacks += 1;
            }
        }
        let mut deadline = None;
        loop {
            if !zerocopy {
                return self.send_plain(msg);
            }
            match self.send_zc(msg)? {
                Ok(sent) => return Ok(sent),
                Err(errno) => match errno {
                    libc::EMSGSIZE => {
                        self.counters.emsgsize_fallbacks += 1;
                        zerocopy = false;
                    }
                    // ENOMEM: io_uring charges the pages a non-fixed send
                    // pins to the user's RLIMIT_MEMLOCK, and it ran out.
                    libc::ENOBUFS | libc::ENOMEM => {
                        self.counters.enobufs_fallbacks += 1;
                        zerocopy = false;
                    }
                    libc::EINTR => {}
                    libc::EAGAIN => {
                        if !self.wait_for_room(&mut deadline)? {
                            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                        }
                    }
                    e => return Err(io::Error::from_raw_os_error(e)),
                },
            }
        }
    }

    /// Sends each of `msgs` (none empty, checked by the caller) as its own
    /// datagram, up to [`SQ_ENTRIES`] per `io_uring_enter`; the contract
    /// of `ZeroCopySender::send_each`. A datagram the batch could not send
    /// is redone alone by [`send`](Self::send), which knows the fallbacks
    /// (`EMSGSIZE`, `ENOBUFS`, `ENOMEM` by copy) and waits for room on a
    /// blocking socket; if that fails too, the count so far is returned
    /// (or, for the first datagram, the error).
    pub(crate) fn send_each(&mut self, msgs: &[Buf]) -> (usize, Option<io::Error>) {
        let mut done = 0;
        while done < msgs.len() {
            let start = done;
            let upto = msgs.len().min(start + SQ_ENTRIES as usize);
            // One longer than an entry's 32-bit length goes alone.
            let end = msgs[start..upto]
                .iter()
                .position(|b| b.len() >= MAX_SEND)
                .map_or(upto, |p| start + p);
            let (went, failed) = if end > start {
                match self.send_chunk(&msgs[start..end]) {
                    Ok(r) => r,
                    Err(e) => return (done, Some(e)),
                }
            } else {
                (0, None)
            };
            done = start + went;
            if done < upto {
                // Only what a send alone can cure is redone alone; any
                // other error (an ICMP error the socket reports for an
                // earlier datagram: ECONNREFUSED) stops the batch and is
                // reported, not swallowed by a retry that would succeed.
                if let Some(errno) = failed.filter(|e| {
                    !matches!(
                        *e,
                        libc::EMSGSIZE | libc::ENOBUFS | libc::ENOMEM | libc::EAGAIN
                    )
                }) {
                    return (done, Some(io::Error::from_raw_os_error(errno)));
                }
                let mut one = Composite::from(msgs[done].clone());
                match self.send(&mut one) {
                    Ok(_) => done += 1,
                    Err(e) => return (done, Some(e)),
                }
            }
        }
        (done, None)
    }

    /// Submits `chunk` (at most [`SQ_ENTRIES`] non-empty datagrams) as one
    /// chain of linked sends in one `io_uring_enter`, and waits for every
    /// data completion. Returns how many went: always a prefix, since a
    /// link stops the chain at its first failure (its followers complete
    /// with `ECANCELED`, unsent). Each datagram's view stays in the
    /// table until its own completions came, as for [`send`](Self::send).
    fn send_chunk(&mut self, chunk: &[Buf]) -> io::Result<(usize, Option<i32>)> {
        debug_assert!(chunk.len() <= SQ_ENTRIES as usize);
        self.ring().drain();
        let zc_allowed = self.zerocopy_allowed();
        // Per datagram: zero-copy, and the registered slot (on the stack:
        // a chunk is at most SQ_ENTRIES).
        let mut plan = [(false, None::<u16>); SQ_ENTRIES as usize];
        for (b, p) in chunk.iter().zip(plan.iter_mut()) {
            let mut zc = zc_allowed && b.len() >= self.threshold && b.len() < MAX_SEND;
            if zc && pages_spanned([b.as_slice()]) > MAX_FRAGS {
                zc = false;
                self.counters.emsgsize_fallbacks += 1;
            }
            if zc {
                // May rewrite the table: done for all before any entry is
                // queued, so no queued entry names a slot rewritten since.
                self.fixed_slot(b.as_ptr() as usize, b.len());
            }
            p.0 = zc;
        }
        if self.table.refused.is_none() && !cfg!(miri) {
            for (b, p) in chunk.iter().zip(plan.iter_mut()) {
                if p.0 {
                    p.1 = self.table.lookup(b.as_ptr() as usize, b.len());
                }
            }
        }
        let first = self.next_token;
        self.next_token = self.next_token.wrapping_add(chunk.len() as u64);
        let raw = self.raw();
        let fixed_file = self.fixed_file;
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        let ring = self.ring();
        // Nothing of an earlier call may still wait in the queue: the
        // chain must be all there is to submit.
        ring.submit_queued()?;
        ring.batch_first = first;
        ring.batch_results.clear();
        ring.batch_results.resize(chunk.len(), None);
        for (i, b) in chunk.iter().enumerate() {
            let (addr, len) = (b.as_ptr(), b.len() as u32);
            let (zc, slot) = plan[i];
            let sqe = match (zc, fixed_file) {
                (true, true) => opcode::SendZc::new(types::Fixed(0), addr, len)
                    .buf_index(slot)
                    .flags(flags)
                    .zc_flags(SEND_ZC_REPORT_USAGE)
                    .build(),
                (true, false) => opcode::SendZc::new(types::Fd(raw), addr, len)
                    .buf_index(slot)
                    .flags(flags)
                    .zc_flags(SEND_ZC_REPORT_USAGE)
                    .build(),
                (false, true) => opcode::Send::new(types::Fixed(0), addr, len)
                    .flags(flags)
                    .build(),
                (false, false) => opcode::Send::new(types::Fd(raw), addr, len)
                    .flags(flags)
                    .build(),
            };
            let link = if i + 1 < chunk.len() {
                squeue::Flags::IO_LINK
            } else {
                squeue::Flags::empty()
            };
            let sqe = sqe.user_data(first.wrapping_add(i as u64)).flags(link);
            ring.inflight.insert(
                first.wrapping_add(i as u64),
                Inflight {
                    bufs: Held::One(b.clone()),
                    msg: None,
                    awaiting_data: true,
                    awaiting_notif: false,
                    sent: false,
                },
            );
            ring.pinned_bytes += b.len();
            // SAFETY: the view `sqe` sends is in `inflight` under its
            // token, kept until both its completions came; the queue was
            // empty and holds SQ_ENTRIES >= chunk.len() entries.
            let pushed = unsafe { ring.ring.submission().push(&sqe) };
            debug_assert!(pushed.is_ok(), "the queue has room for the chunk");
        }
        ring.peak_pinned_bytes = ring.peak_pinned_bytes.max(ring.pinned_bytes);
        let outcome = ring.submit_queued().and_then(|()| loop {
            ring.drain();
            if ring.batch_results.iter().all(Option::is_some) {
                break Ok(());
            }
            ring.wait(None)?;
        });
        let went = ring
            .batch_results
            .iter()
            .position(|r| !r.is_some_and(|r| r > 0))
            .unwrap_or(chunk.len());
        // Why the chain stopped: the first failed entry's errno (its
        // followers were cancelled).
        let failed = ring
            .batch_results
            .get(went)
            .copied()
            .flatten()
            .filter(|r| *r < 0)
            .map(|r| -r);
        // No later completion may be taken for this batch's.
        ring.batch_results.clear();
        outcome?;
        let c = &mut self.counters;
        for i in 0..went {
            let len = chunk[i].len() as u64;
            c.sends += 1;
            c.bytes += len;
            c.iovecs += 1;
            if plan[i].0 {
                c.zerocopy_sends += 1;
                c.zerocopy_bytes += len;
                if plan[i].1.is_some() {
                    c.registered_sends += 1;
                }
            }
        }
        Ok((went, failed))
    }

    fn send_plain(&mut self, msg: &mut Composite) -> io::Result<usize> {
        let mut iov = iov_array();
        let n = fill_iovecs(&mut iov, msg.chunks());
        let fd = self.raw();
        // SAFETY: iov[..n] describes `msg`'s components, alive for the
        // call; a plain send keeps nothing. No data submission is in
        // flight (each is waited for), so bytes cannot reorder.
        let sent = unsafe { send_iov(fd, &iov, n, 0, &mut self.not_socket)? };
        msg.advance(sent);
        let c = &mut self.counters;
        c.sends += 1;
        c.bytes += sent as u64;
        c.iovecs += n as u64;
        Ok(sent)
    }

    /// One zero-copy submission of the front of `msg`, waited for:
    /// `Ok(Ok(sent))`, or `Ok(Err(errno))` for the kernel's refusal.
    fn send_zc(&mut self, msg: &mut Composite) -> io::Result<Result<usize, i32>> {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let fd = types::Fd(self.raw());
        let fixed_file = self.fixed_file;
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        let (sqe, bufs, storage, pieces, fixed) = if msg.component_count() == 1 {
            let piece = msg.chunks().next().expect("one piece");
            let len = piece.len().min(MAX_SEND);
            let addr = piece.as_ptr();
            let slot = self.fixed_slot(addr as usize, len);
            let sqe = if fixed_file {
                opcode::SendZc::new(types::Fixed(0), addr, len as u32)
                    .buf_index(slot)
                    .flags(flags)
                    .zc_flags(SEND_ZC_REPORT_USAGE)
                    .build()
            } else {
                opcode::SendZc::new(fd, addr, len as u32)
                    .buf_index(slot)
                    .flags(flags)
                    .zc_flags(SEND_ZC_REPORT_USAGE)
                    .build()
            };
            (sqe, Held::Many(msg.slice(..len)), None, 1, slot.is_some())
        } else {
            let mut storage = MsgStorage::new();
            let mut n = fill_iovecs(&mut storage.iov, msg.chunks());
            let mut total = 0usize;
            for (i, slot) in storage.iov[..n].iter_mut().enumerate() {
                // SAFETY: fill_iovecs initialised iov[..n].
                let v = unsafe { slot.assume_init_mut() };
                if total + v.iov_len >= MAX_SEND {
                    v.iov_len = MAX_SEND - total;
                    total = MAX_SEND;
                    n = i + 1;
                    break;
                }
                total += v.iov_len;
            }
            storage.hdr.msg_iov = storage.iov.as_mut_ptr().cast();
            storage.hdr.msg_iovlen = n as _;
            let sqe = if fixed_file {
                opcode::SendMsgZc::new(types::Fixed(0), &storage.hdr)
                    .flags(flags as u32)
                    .ioprio(SEND_ZC_REPORT_USAGE)
                    .build()
            } else {
                opcode::SendMsgZc::new(fd, &storage.hdr)
                    .flags(flags as u32)
                    .ioprio(SEND_ZC_REPORT_USAGE)
                    .build()
            };
            (sqe, Held::Many(msg.slice(..total)), Some(storage), n, false)
        };
        let sqe = sqe.user_data(token);
        let submitted = bufs.len();
        let ring = self.ring();
        ring.inflight.insert(
            token,
            Inflight {
                bufs,
                msg: storage,
                awaiting_data: true,
                awaiting_notif: false,
                sent: false,
            },
        );
        ring.pinned_bytes += submitted;
        ring.peak_pinned_bytes = ring.peak_pinned_bytes.max(ring.pinned_bytes);
        ring.waiting = Some(token);
        ring.result = None;
        // SAFETY: the views `sqe` sends and the header it points at are in
        // `inflight` under `token`, kept until both its completions came.
        unsafe { ring.submit(&sqe)? };
        let (res, _flags) = self.wait_result()?;
        if res < 0 {
            return Ok(Err(-res));
        }
        let sent = res as usize;
        msg.advance(sent);
        let c = &mut self.counters;
        c.sends += 1;
        c.bytes += sent as u64;
        c.iovecs += pieces as u64;
        if sent > 0 {
            c.zerocopy_sends += 1;
            c.zerocopy_bytes += sent as u64;
            if fixed {
                c.registered_sends += 1;
            }
        }
        Ok(Ok(sent))
    }

    /// Whether a GSO call may go by reference now (the mode's and
    /// `Auto`'s say; the caller checks size and fragments).
    pub(crate) fn gso_zerocopy_allowed(&mut self) -> bool {
        self.zerocopy_allowed()
    }

    /// One zero-copy `SENDMSG_ZC` of `iov[..n]` (UDP GSO when `segment`
    /// is given: a `UDP_SEGMENT` cmsg), to `to` on an unconnected socket,
    /// waited for: `Ok(Ok(sent))`, or `Ok(Err(errno))` for the kernel's
    /// refusal (nothing sent). `views` are what the iovecs describe; they
    /// stay in the ring's table until the notification, like every other
    /// zero-copy send of this ring. The caller counts the call.
    pub(crate) fn send_gso_zc(
        &mut self,
        iov: &[MaybeUninit<libc::iovec>],
        n: usize,
        segment: Option<u16>,
        to: Option<(&libc::sockaddr_storage, libc::socklen_t)>,
        views: Composite,
    ) -> io::Result<Result<usize, i32>> {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        let mut storage = MsgStorage::new();
        // The iovecs are copied: the caller's array is gone before the
        // kernel may have read them (only the bytes they name are kept).
        storage.iov[..n].copy_from_slice(&iov[..n]);
        storage.hdr.msg_iov = storage.iov.as_mut_ptr().cast();
        storage.hdr.msg_iovlen = n as _;
        if let Some((addr, len)) = to {
            storage.name = *addr;
            storage.hdr.msg_name = (&mut storage.name as *mut libc::sockaddr_storage).cast();
            storage.hdr.msg_namelen = len;
        }
        if let Some(seg) = segment {
            // SAFETY: CMSG_SPACE is a pure computation.
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
            assert!(space <= std::mem::size_of_val(&storage.control));
            storage.hdr.msg_control = storage.control.as_mut_ptr().cast();
            storage.hdr.msg_controllen = space as _;
            // SAFETY: the header points at `control`, zeroed, writable and
            // large enough for one cmsg of a u16 (checked above).
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&storage.hdr);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
            }
        }
        // Every iovec inside one registered chunk (a batch built in a
        // pool buffer): the kernel takes the pages from the table, no pin
        // per call (vectored fixed sends: Linux 6.15+; refused before,
        // then remembered and the call redone unregistered).
        let mut slot = None;
        if !self.vectored_fixed_refused {
            for (i, v) in iov[..n].iter().enumerate() {
                // SAFETY: the caller initialised iov[..n].
                let v = unsafe { v.assume_init_ref() };
                let s = self.fixed_slot(v.iov_base as usize, v.iov_len);
                if s.is_none() || (i > 0 && s != slot) {
                    slot = None;
                    break;
                }
                slot = s;
            }
        }
        let flags = (libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as u32;
        let sqe = if self.fixed_file {
            opcode::SendMsgZc::new(types::Fixed(0), &storage.hdr)
                .flags(flags)
                .ioprio(SEND_ZC_REPORT_USAGE)
                .buf_index(slot)
                .build()
        } else {
            opcode::SendMsgZc::new(types::Fd(self.raw()), &storage.hdr)
                .flags(flags)
                .ioprio(SEND_ZC_REPORT_USAGE)
                .buf_index(slot)
                .build()
        };
        let sqe = sqe.user_data(token);
        let submitted = views.len();
        let retry = slot.is_some().then(|| views.clone());
        let ring = self.ring();
        ring.drain();
        ring.inflight.insert(
            token,
            Inflight {
                bufs: Held::Many(views),
                msg: Some(storage),
                awaiting_data: true,
                awaiting_notif: false,
                sent: false,
            },
        );
        ring.pinned_bytes += submitted;
        ring.peak_pinned_bytes = ring.peak_pinned_bytes.max(ring.pinned_bytes);
        ring.waiting = Some(token);
        ring.result = None;
        // SAFETY: the views `sqe` sends and the header, iovecs, cmsg and
        // name it points at are in `inflight` under `token`, kept until
        // both its completions came.
        unsafe { ring.submit(&sqe)? };
        let (res, _flags) = self.wait_result()?;
        if let (Some(views), true) = (retry, res == -libc::EINVAL || res == -libc::EFAULT) {
            // A kernel without vectored fixed sends: unregistered from now.
            self.vectored_fixed_refused = true;
            return self.send_gso_zc(iov, n, segment, to, views);
        }
        if res < 0 {
            return Ok(Err(-res));
        }
        if slot.is_some() && res > 0 {
            self.counters.registered_sends += 1;
        }
        Ok(Ok(res as usize))
    }

    /// Adds what a GSO call sent to this sender's counters.
    pub(crate) fn count_gso(&mut self, t: &super::gso::Tally) {
        let c = &mut self.counters;
        c.sends += t.sends;
        c.zerocopy_sends += t.zerocopy_sends;
        c.bytes += t.bytes;
        c.zerocopy_bytes += t.zerocopy_bytes;
        c.iovecs += t.iovecs;
        c.enobufs_fallbacks += t.enobufs_fallbacks;
        c.emsgsize_fallbacks += t.emsgsize_fallbacks;
    }

    /// Waits for `token`'s data completion (prompt: the submission
    /// carries `MSG_DONTWAIT`).
    fn wait_result(&mut self) -> io::Result<(i32, u32)> {
        let ring = self.ring();
        loop {
            ring.drain();
            if let Some(r) = ring.result.take() {
                ring.waiting = None;
                return Ok(r);
            }
            ring.wait(None)?;
        }
    }

    /// After `EAGAIN`: `false` on a non-blocking socket (the error
    /// stands); on a blocking one waits for room and returns `true`, or
    /// `false` once its `SO_SNDTIMEO` has passed since the first wait.
    fn wait_for_room(&mut self, deadline: &mut Option<Option<Instant>>) -> io::Result<bool> {
        let fd = self.raw();
        // SAFETY: F_GETFL only reads the descriptor's status flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK != 0 {
            return Ok(false);
        }
        let deadline = *deadline.get_or_insert_with(|| send_timeout(fd).and_then(deadline_after));
        let wait = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                Some(left)
            }
        };
        // SAFETY: the ring's own descriptor, open while `self` lives.
        poll_fd(unsafe { BorrowedFd::borrow_raw(fd) }, libc::POLLOUT, wait)?;
        // Room may have come from notifications too.
        self.ring().drain();
        Ok(true)
    }

    /// Releases what completed; returns how many submissions.
    pub(crate) fn poll(&mut self) -> u64 {
        self.ring().drain()
    }

    /// Submissions still waiting for a completion.
    pub(crate) fn pending(&self) -> usize {
        self.ring.as_ref().map_or(0, Ring::outstanding)
    }

    /// Waits until nothing is outstanding, at most `timeout`.
    pub(crate) fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = deadline_after(timeout);
        let ring = self.ring();
        loop {
            ring.drain();
            if ring.outstanding() == 0 {
                return Ok(());
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "{} io_uring zero-copy sends ({} bytes) still pinned after {:?}",
                        ring.outstanding(),
                        ring.pinned_bytes,
                        timeout
                    ),
                ));
            }
            ring.wait(left)?;
        }
    }

    /// Fills the counters of `s`.
    pub(crate) fn fill_stats(&self, s: &mut ZeroCopyStats) {
        let c = &self.counters;
        s.sends = c.sends;
        s.zerocopy_sends = c.zerocopy_sends;
        s.bytes = c.bytes;
        s.zerocopy_bytes = c.zerocopy_bytes;
        s.iovecs = c.iovecs;
        s.enobufs_fallbacks = c.enobufs_fallbacks;
        s.emsgsize_fallbacks = c.emsgsize_fallbacks;
        s.registered_sends = c.registered_sends;
        s.backend = SendBackend::IoUring;
        s.socket_users = 1;
        if let Some(r) = &self.ring {
            s.completions = r.completions;
            s.copied_completions = r.copied_completions;
            s.notifications = r.completions;
            s.pinned_sends = r.outstanding();
            s.pinned_bytes = r.pinned_bytes;
            s.peak_pinned_bytes = r.peak_pinned_bytes;
            s.auto = if self.mode == ZeroCopyMode::Auto {
                r.auto.decision
            } else {
                AutoDecision::NotAuto
            };
            s.zerocopy_active = match self.mode {
                ZeroCopyMode::Never => false,
                ZeroCopyMode::Always => true,
                ZeroCopyMode::Auto => !self.local_peer && r.auto.on,
            };
        }
    }

    /// Why fixed buffers are not used, if the kernel refused them.
    #[allow(dead_code)]
    pub(crate) fn registration_refused(&self) -> Option<i32> {
        self.table.refused
    }
}

impl Drop for UringSender {
    /// Never waits: a ring with notifications outstanding is parked.
    fn drop(&mut self) {
        if let Some(set) = OWNED.lock().as_mut() {
            set.remove(&self.key);
        }
        if let Some(mut ring) = self.ring.take() {
            ring.waiting = None;
            ring.drain();
            if ring.outstanding() > 0 {
                park(ring);
            }
        }
    }
}

/// Rings of dropped senders with notifications outstanding.
struct Parked {
    rings: Vec<Ring>,
    reaper: bool,
}

static PARKED: Mutex<Parked> = Mutex::new(Parked {
    rings: Vec::new(),
    reaper: false,
});

fn park(ring: Ring) {
    let mut p = PARKED.lock();
    p.rings.push(ring);
    if !p.reaper {
        p.reaper = std::thread::Builder::new()
            .name("zcbuf-uring-reaper".into())
            .spawn(reap)
            .is_ok();
    }
}

/// Reads the parked rings' completions every millisecond while they come,
/// backing off to every 20 ms; exits when nothing is parked.
fn reap() {
    let mut quiet = 0u32;
    loop {
        std::thread::sleep(Duration::from_millis(if quiet < 20 { 1 } else { 20 }));
        let mut p = PARKED.lock();
        let mut released = 0;
        for ring in &mut p.rings {
            released += ring.drain();
        }
        // A ring goes (closing it and its socket duplicate) only once
        // nothing of it is outstanding.
        p.rings.retain(|r| r.outstanding() > 0);
        if p.rings.is_empty() {
            p.reaper = false;
            return;
        }
        quiet = if released > 0 { 0 } else { quiet + 1 };
    }
}

/// Submissions and bytes parked with dropped io_uring senders.
pub(crate) fn parked() -> (usize, usize) {
    let p = PARKED.lock();
    p.rings.iter().fold((0, 0), |(s, b), r| {
        (s + r.outstanding(), b + r.pinned_bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_finds_only_whole_ranges_inside_one_slot() {
        let t = Table {
            regions: vec![(4096, 8192, 3), (65536, 4096, 0)],
            used: 4,
            generation: (0, 0),
            refused: None,
        };
        assert_eq!(t.lookup(4096, 8192), Some(3));
        assert_eq!(t.lookup(8192, 100), Some(3));
        assert_eq!(t.lookup(8192, 8192), None); // runs past the slot
        assert_eq!(t.lookup(65536 + 10, 10), Some(0));
        assert_eq!(t.lookup(100, 10), None);
        assert_eq!(t.lookup(70000, 10), None);
    }
}
