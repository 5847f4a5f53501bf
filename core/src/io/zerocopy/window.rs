//! The window of pinned sends, the process-wide registry of zero-copy
//! sockets, and parking.
//!
//! # One owner per socket
//!
//! The kernel numbers a socket's zero-copy sends with one counter and
//! reports their completions on one error queue, whoever reads it. So the
//! process keeps one [`Engine`] per socket, found by the socket's
//! identity (`st_dev`, `st_ino` from `fstat`: every duplicate of a
//! descriptor, including the one the JNI bridge takes of a Java channel,
//! has the same). A second sender on the socket shares the first one's
//! engine: one id counter, one window; completions read by either release
//! the right pins.
//!
//! # Identity reuse
//!
//! An inode number is reused only after the socket is really closed. A
//! live entry always has the socket open through its own duplicate of
//! the descriptor, taken when the entry is made; every sender of the
//! entry sends, reads completions and waits through that duplicate, never
//! through what its `AsFd` answers later, so a sender's calls always go
//! to the socket whose ids the entry tracks (and, once no sender is left
//! but pins are, the engine keeps a second one, [`Engine::parked_fd`],
//! for the reaper). When an entry goes (no sender, no
//! pin), the next id is kept as a small tombstone, used only if the
//! socket still has `SO_ZEROCOPY` set. A new socket that got a reused
//! identity has `SO_ZEROCOPY` clear (the flag starts clear and only
//! zcbuf, under the registry lock, sets it), so it starts at id 0 and
//! never inherits a dead socket's state. A socket with `SO_ZEROCOPY` set
//! and no entry or tombstone (someone outside zcbuf set it, or the
//! tombstone was evicted) has an unknown counter: zero-copy is refused
//! on it (`Always`: an `EBUSY` error; `Auto`: plain sends).
//!
//! # Parking
//!
//! Dropping the last sender never waits: pins still outstanding stay
//! with the engine, which keeps its own duplicate of the socket, and a
//! reaper thread (started when something is parked, gone when nothing
//! is) reads the parked sockets' error queues and releases each pin when
//! its completion arrives, e.g. when the peer reads, closes or resets, or
//! after an [`abort`](super::ZeroCopySender::abort) purged the send
//! queue. A later sender on the same socket adopts the parked engine and
//! continues its ids.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::config::ZeroCopyConfig;
use super::engine::Engine;
use super::sender::read_error_queue;
use crate::{Buf, Composite};

/// What one zero-copy send pinned: the views covering exactly the bytes
/// it sent. A send of one whole buffer (the usual datagram) pins that
/// buffer itself, so pinning and releasing it allocate nothing.
#[derive(Debug)]
pub(crate) enum Pinned {
    /// One buffer, sent whole.
    One(Buf),
    /// Any other message (or, empty, the id of a failed send whose fate
    /// is being learnt).
    Many(Composite),
}

impl Pinned {
    fn len(&self) -> usize {
        match self {
            Pinned::One(b) => b.len(),
            Pinned::Many(c) => c.len(),
        }
    }
}

impl From<Composite> for Pinned {
    fn from(c: Composite) -> Self {
        Pinned::Many(c)
    }
}

impl From<Buf> for Pinned {
    fn from(b: Buf) -> Self {
        Pinned::One(b)
    }
}

/// The sends awaiting completion, indexed by kernel id.
#[derive(Debug, Default)]
pub(crate) struct Pins {
    /// Id of `window[0]`.
    front_id: u32,
    /// `None` once completed; the front is popped as soon as it completes.
    window: VecDeque<Option<Pinned>>,
    bytes: usize,
    outstanding: usize,
}

impl Pins {
    pub(crate) fn starting_at(id: u32) -> Self {
        Self {
            front_id: id,
            ..Self::default()
        }
    }

    pub(crate) fn next_id(&self) -> u32 {
        self.front_id.wrapping_add(self.window.len() as u32)
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Heap bytes the window holds now.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.window.capacity() * std::mem::size_of::<Option<Pinned>>()
    }

    /// Gives the window's memory back once it is empty.
    pub(crate) fn shrink_if_empty(&mut self) {
        if self.window.is_empty() {
            self.window = VecDeque::new();
        }
    }

    /// Pins `sent` under the next id and returns that id.
    pub(crate) fn push(&mut self, sent: Pinned) -> u32 {
        let id = self.next_id();
        self.bytes += sent.len();
        self.outstanding += 1;
        self.window.push_back(Some(sent));
        id
    }

    /// Removes the last pin if it is `id` and still outstanding; returns
    /// whether it did.
    pub(crate) fn remove_last_if_pending(&mut self, id: u32) -> bool {
        if self.window.is_empty() || self.next_id().wrapping_sub(1) != id {
            return false;
        }
        match self.window.pop_back() {
            Some(Some(sent)) => {
                self.bytes -= sent.len();
                self.outstanding -= 1;
                true
            }
            other => {
                self.window.push_back(other.flatten());
                false
            }
        }
    }

    /// Releases every pinned send in the inclusive wrapping range
    /// `lo..=hi` and returns how many, or, if any id of the range is not
    /// outstanding, releases nothing and returns `Err(ids not outstanding)`.
    pub(crate) fn complete(&mut self, lo: u32, hi: u32) -> Result<u64, u64> {
        let span = u64::from(hi.wrapping_sub(lo)) + 1;
        let len = self.window.len();
        if span > len as u64 {
            return Err(span);
        }
        let span = span as usize;
        let start = lo.wrapping_sub(self.front_id) as usize;
        let inside = start < len && span <= len - start;
        if !inside || !self.window.range(start..start + span).all(Option::is_some) {
            // Some id of the range is not outstanding: count them and
            // release nothing.
            let unknown = (0..span)
                .filter(|&k| {
                    let i = lo.wrapping_add(k as u32).wrapping_sub(self.front_id) as usize;
                    i >= len || self.window[i].is_none()
                })
                .count() as u64;
            return Err(unknown);
        }
        if start == 0 {
            // The usual case: the oldest sends completed, in order.
            for sent in self.window.drain(..span).flatten() {
                self.bytes -= sent.len();
            }
            self.front_id = self.front_id.wrapping_add(span as u32);
        } else {
            for slot in self.window.range_mut(start..start + span) {
                if let Some(sent) = slot.take() {
                    self.bytes -= sent.len();
                }
            }
        }
        self.outstanding -= span;
        while matches!(self.window.front(), Some(None)) {
            self.window.pop_front();
            self.front_id = self.front_id.wrapping_add(1);
        }
        Ok(span as u64)
    }

    /// Takes every outstanding pin out (to be leaked, never freed).
    pub(crate) fn take_all(&mut self) -> Vec<Pinned> {
        self.bytes = 0;
        self.outstanding = 0;
        self.window.drain(..).flatten().collect()
    }
}

/// A socket's identity: (`st_dev`, `st_ino`).
type Key = (u64, u64);

/// One zero-copy socket of the process.
#[derive(Debug)]
pub(crate) struct SocketEntry {
    key: Key,
    /// The entry's own duplicate of the socket, taken when the entry was
    /// made: every sender of the entry sends and reads completions through
    /// it, never through what its `AsFd` answers later (a safe `AsFd` may
    /// answer with another descriptor, even another socket, whose ids
    /// this engine does not track).
    fd: OwnedFd,
    pub(crate) engine: Mutex<Engine>,
}

impl SocketEntry {
    /// The socket this entry's ids belong to.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Tombstones kept at most (about 24 bytes each).
const MAX_TOMBSTONES: usize = 4096;

#[derive(Default)]
struct Registry {
    live: HashMap<Key, Arc<SocketEntry>>,
    /// Next id of sockets whose entry went while `SO_ZEROCOPY` stayed set.
    tombstones: HashMap<Key, u32>,
    /// Entries with pins and no sender, for the reaper.
    parked: Vec<Arc<SocketEntry>>,
    reaper: bool,
    /// Pins that can never be released safely (ids lost); kept forever.
    leaked: Vec<Pinned>,
    leaked_bytes: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> parking_lot::MappedMutexGuard<'static, Registry> {
    MutexGuard::map(REGISTRY.lock(), |r| r.get_or_insert_with(Registry::default))
}

/// What a new sender gets for its socket.
pub(crate) enum Attached {
    /// The socket's engine (new, adopted or shared).
    Shared(Arc<SocketEntry>),
    /// `SO_ZEROCOPY` could not be set (the error), or (`EBUSY`) it was set
    /// by someone outside zcbuf: no zero-copy on this socket.
    Refused(io::Error),
}

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

fn sockopt_zerocopy(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` and `len` are writable for the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ZEROCOPY,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(on != 0)
}

fn set_zerocopy(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid descriptor and a c_int option value living across
    // the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ZEROCOPY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Joins `fd`'s socket: shares its live engine (adopting a parked one), or
/// makes one, setting `SO_ZEROCOPY`. `Err` only when `fd` is not a socket.
pub(crate) fn attach(fd: BorrowedFd<'_>, config: &ZeroCopyConfig) -> io::Result<Attached> {
    let key = identity(fd)?;
    let mut reg = registry();
    if let Some(entry) = reg.live.get(&key).cloned() {
        let mut eng = entry.engine.lock();
        eng.users += 1;
        if eng.users == 1 {
            // Adopted: the new sender's descriptor keeps the socket open.
            eng.parked_fd = None;
            reg.parked.retain(|e| !Arc::ptr_eq(e, &entry));
        }
        drop(eng);
        return Ok(Attached::Shared(entry));
    }
    let own = match fd.try_clone_to_owned() {
        Ok(own) => own,
        Err(e) => return Ok(Attached::Refused(e)),
    };
    let next_id = match sockopt_zerocopy(fd) {
        Err(e) => return Ok(Attached::Refused(e)),
        Ok(false) => {
            // A fresh counter (a reused identity lands here too).
            reg.tombstones.remove(&key);
            if let Err(e) = set_zerocopy(fd) {
                return Ok(Attached::Refused(e));
            }
            0
        }
        Ok(true) => match reg.tombstones.remove(&key) {
            Some(next) => next,
            None => {
                // Someone outside zcbuf set SO_ZEROCOPY: its ids are unknown.
                return Ok(Attached::Refused(io::Error::from_raw_os_error(libc::EBUSY)));
            }
        },
    };
    let mut engine = Engine::new(next_id, config);
    engine.users = 1;
    let entry = Arc::new(SocketEntry {
        key,
        fd: own,
        engine: Mutex::new(engine),
    });
    reg.live.insert(key, Arc::clone(&entry));
    Ok(Attached::Shared(entry))
}

/// A sender on `entry` goes (`fd` is its descriptor, still open). Never
/// waits: reads what completions are there, and if it was the last
/// sender and pins remain, parks them for the reaper.
pub(crate) fn detach(entry: &Arc<SocketEntry>, fd: BorrowedFd<'_>) {
    let mut reg = registry();
    let mut eng = entry.engine.lock();
    let _ = read_error_queue(fd.as_raw_fd(), &mut eng);
    eng.users -= 1;
    if eng.users == 0 {
        retire_or_park(&mut reg, entry, &mut eng, Some(fd));
    }
}

/// With no sender left: drops the entry when no pin is left (keeping a
/// tombstone), leaks the pins of a desynchronised one, or parks.
fn retire_or_park(
    reg: &mut Registry,
    entry: &Arc<SocketEntry>,
    eng: &mut Engine,
    fd: Option<BorrowedFd<'_>>,
) {
    if eng.pins.outstanding() > 0 && !eng.desynced && eng.parked_fd.is_none() {
        // SAFETY: F_DUPFD_CLOEXEC only reads the open descriptor `fd`.
        let dup = fd.map_or(-1, |fd| unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0)
        });
        if dup >= 0 {
            // SAFETY: `dup` is a new descriptor nothing else owns.
            eng.parked_fd = Some(unsafe { OwnedFd::from_raw_fd(dup) });
        } else {
            // Without a descriptor no completion can be read: the pins
            // can never be released safely.
            eng.desync();
        }
    }
    if eng.pins.outstanding() > 0 && !eng.desynced {
        if !reg.parked.iter().any(|e| Arc::ptr_eq(e, entry)) {
            reg.parked.push(Arc::clone(entry));
        }
        start_reaper(reg);
        return;
    }
    if eng.desynced {
        reg.leaked_bytes += eng.pins.bytes();
        let pins = eng.pins.take_all();
        reg.leaked.extend(pins);
    } else {
        if reg.tombstones.len() >= MAX_TOMBSTONES {
            let victim = *reg.tombstones.keys().next().expect("full");
            reg.tombstones.remove(&victim);
        }
        reg.tombstones.insert(entry.key, eng.next_id());
    }
    eng.parked_fd = None;
    reg.parked.retain(|e| !Arc::ptr_eq(e, entry));
    if reg
        .live
        .get(&entry.key)
        .is_some_and(|e| Arc::ptr_eq(e, entry))
    {
        reg.live.remove(&entry.key);
    }
}

fn start_reaper(reg: &mut Registry) {
    if reg.reaper {
        return;
    }
    reg.reaper = std::thread::Builder::new()
        .name("zcbuf-zc-reaper".into())
        .spawn(reap)
        .is_ok();
}

/// The reaper: reads the parked sockets' error queues, every millisecond
/// while completions come, backing off to every 20 ms; exits when
/// nothing is parked.
fn reap() {
    let mut quiet_rounds = 0u32;
    loop {
        std::thread::sleep(Duration::from_millis(if quiet_rounds < 20 {
            1
        } else {
            20
        }));
        let parked = {
            let mut reg = registry();
            if reg.parked.is_empty() {
                reg.reaper = false;
                return;
            }
            reg.parked.clone()
        };
        let mut released = 0;
        let mut done = Vec::new();
        for entry in parked {
            let mut eng = entry.engine.lock();
            if eng.users > 0 {
                continue;
            }
            if let Some(fd) = eng.parked_fd.as_ref().map(|fd| fd.as_raw_fd()) {
                released += read_error_queue(fd, &mut eng).unwrap_or(0);
            }
            if eng.pins.outstanding() == 0 || eng.desynced {
                drop(eng);
                done.push(entry);
            }
        }
        quiet_rounds = if released > 0 { 0 } else { quiet_rounds + 1 };
        if !done.is_empty() {
            let mut reg = registry();
            for entry in done {
                let mut eng = entry.engine.lock();
                if eng.users == 0 {
                    retire_or_park(&mut reg, &entry, &mut eng, None);
                }
            }
        }
    }
}

/// Sends and bytes still pinned in the process by sockets no sender holds
/// any more: parked until their completions arrive (the reaper releases
/// them then), plus any that can never be released because their ids
/// were lost (see [`ZeroCopyStats::desynchronised`]), with either backend
/// (io_uring senders park their rings). Normally `(0, 0)`
/// a moment after the peers have read or closed.
///
/// [`ZeroCopyStats::desynchronised`]: super::ZeroCopyStats::desynchronised
///
/// ```
/// let (_sends, _bytes) = zcbuf_core::io::parked_pins();
/// ```
pub fn parked_pins() -> (usize, usize) {
    let reg = registry();
    let (mut sends, mut bytes) = (reg.leaked.len(), reg.leaked_bytes);
    let (uring_sends, uring_bytes) = super::uring::parked();
    (sends, bytes) = (sends + uring_sends, bytes + uring_bytes);
    for entry in &reg.parked {
        let eng = entry.engine.lock();
        sends += eng.pins.outstanding();
        bytes += eng.pins.bytes();
    }
    (sends, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Buf;

    fn sent(n: usize) -> Pinned {
        Pinned::Many(Composite::from(Buf::from(vec![0u8; n])))
    }

    #[test]
    fn ids_are_consecutive_and_wrap() {
        let mut p = Pins::starting_at(u32::MAX - 1);
        assert_eq!(p.push(sent(1)), u32::MAX - 1);
        assert_eq!(p.push(sent(1)), u32::MAX);
        assert_eq!(p.push(sent(1)), 0);
        assert_eq!(p.push(sent(1)), 1);
        // One merged range across the wrap releases all four.
        assert_eq!(p.complete(u32::MAX - 1, 1), Ok(4));
        assert_eq!(p.outstanding, 0);
        assert_eq!(p.bytes, 0);
        assert_eq!(p.front_id, 2);
    }

    #[test]
    fn out_of_order_ranges_release_exactly_what_they_cover() {
        let mut p = Pins::starting_at(u32::MAX - 3);
        let ids: Vec<u32> = (0..10).map(|i| p.push(sent(10 + i))).collect();
        assert_eq!(p.complete(ids[6], ids[8]), Ok(3));
        assert_eq!(p.outstanding, 7);
        assert_eq!(p.front_id, ids[0], "front stays until it completes");
        assert_eq!(p.complete(ids[0], ids[0]), Ok(1));
        assert_eq!(p.front_id, ids[1]);
        // A range repeating completed ids is not the kernel's: nothing
        // is released.
        assert_eq!(p.complete(ids[5], ids[9]), Err(3));
        assert_eq!(p.outstanding, 6);
        assert_eq!(p.complete(ids[1], ids[5]), Ok(5));
        assert_eq!(p.complete(ids[9], ids[9]), Ok(1));
        assert_eq!(p.outstanding, 0);
        assert!(p.window.is_empty());
        assert_eq!(p.front_id, ids[9].wrapping_add(1));
    }

    #[test]
    fn ranges_outside_the_window_release_nothing() {
        let mut p = Pins::default();
        p.push(sent(5));
        assert_eq!(p.complete(7, 9), Err(3));
        assert_eq!(p.complete(1, u32::MAX), Err(u64::from(u32::MAX)));
        assert_eq!(p.outstanding, 1);
        assert_eq!(p.complete(0, 0), Ok(1));
    }

    #[test]
    fn only_a_pending_last_pin_is_removed() {
        let mut p = Pins::starting_at(9);
        p.push(sent(1));
        let id = p.push(sent(0));
        assert!(p.remove_last_if_pending(id));
        assert_eq!(p.next_id(), 10);
        let id = p.push(sent(0));
        assert_eq!(p.complete(id, id), Ok(1));
        assert!(!p.remove_last_if_pending(id));
        assert_eq!(p.next_id(), 11);
    }
    /// `complete` against a plain model (a map of outstanding ids to
    /// lengths) on arbitrary pins and ranges, valid or not, across the
    /// 32-bit wrap: the same result, the same pins left, and a pinned
    /// buffer is released exactly when a range covering it succeeds.
    #[test]
    #[cfg_attr(miri, ignore = "many cases; the fixed cases above run under Miri")]
    fn complete_matches_a_model() {
        use proptest::prelude::*;
        use std::collections::BTreeMap;
        let ops = prop::collection::vec((0u8..3, 0u32..6, 0u32..4), 1..80);
        proptest!(|(start in prop_oneof![Just(u32::MAX - 20), any::<u32>()], ops in ops)| {
            let mut p = Pins::starting_at(start);
            let mut model: BTreeMap<u32, Buf> = BTreeMap::new();
            let mut next = start;
            for (kind, a, b) in ops {
                if kind == 0 {
                    let buf = Buf::from(vec![a as u8; a as usize + 1]);
                    prop_assert_eq!(p.push(Pinned::One(buf.clone())), next);
                    model.insert(next, buf);
                    next = next.wrapping_add(1);
                    continue;
                }
                // A range near the window: from some ids back to a few ahead.
                let lo = next.wrapping_sub(a + 1);
                let hi = lo.wrapping_add(b);
                let ids: Vec<u32> = (0..=b).map(|k| lo.wrapping_add(k)).collect();
                let known = ids.iter().filter(|id| model.contains_key(id)).count() as u64;
                let span = u64::from(b) + 1;
                let got = p.complete(lo, hi);
                if known == span {
                    prop_assert_eq!(got, Ok(span));
                    for id in &ids {
                        let buf = model.remove(id).unwrap();
                        prop_assert_eq!(buf.ref_count(), Some(1), "released");
                    }
                } else {
                    prop_assert!(got.is_err());
                    if span <= p.window.len() as u64 {
                        prop_assert_eq!(got, Err(span - known));
                    }
                }
                prop_assert_eq!(p.outstanding(), model.len());
                prop_assert_eq!(p.bytes(), model.values().map(Buf::len).sum::<usize>());
                for buf in model.values() {
                    prop_assert_eq!(buf.ref_count(), Some(2), "still pinned");
                }
                prop_assert_eq!(p.next_id(), next);
            }
        });
    }
}
