//! Pooled memory: size-classed, page-aligned blocks with thread-local
//! caches, statistics, a cap, trimming and leak tracking.
//!
//! # Representation
//!
//! A [`Pool`] is a cheap handle (`Arc`) to its shared state: one arena per
//! size class, each a list of page-aligned chunks mapped anonymously
//! (`memmap2`) and carved into equal blocks, plus the free blocks behind a
//! `parking_lot` lock. There are 44 classes from 256 B to 1 MiB, four per
//! power of two (256, 320, 384, 448, 512, 640, ...), so a block is at most
//! a quarter larger than the smallest request it serves; blocks of a page
//! or more are whole pages — 8 and 12 KiB are the only classes between 4
//! and 16 KiB — so they are page-aligned, as zero-copy sends want. Every
//! block is aligned to the largest power of two dividing its size, up to a
//! page (a 4 KiB block to 4096, a 384 B block to 128), and
//! [`BufMut::reserve`] keeps that alignment when it grows. Each thread
//! keeps a bounded cache of free blocks per pool, so the common path
//! allocates and frees without a lock; an empty cache refills from the
//! arena in batches, a full one sends its older half to it, and a
//! thread's exit hands its cache back. Statistics on that path are counted
//! per thread (counters only their thread writes, summed by
//! [`Pool::stats`]), so the common path does no locked atomic operation
//! for them either. Requests above 1 MiB get a dedicated map that goes
//! back to the OS when freed.
//!
//! Idle memory: an arena keeps up to 1 MiB of free blocks of each class
//! from 16 KiB up resident and gives the pages of more back to the OS once
//! they stayed unused from one check to the next (a check per 1 MiB of
//! blocks freed to it, so blocks cycling between threads are not given
//! back and taken again; an idle arena holds at most 2 MiB)
//! (`MADV_FREE`: the blocks stay mapped, so nothing can fault on them;
//! the kernel takes their pages when it needs memory — until then they
//! may still show in the process's RSS, as `LazyFree` — and a block that
//! serves again before that costs no page fault). What a workload freed after
//! its peak thus costs no memory, in all 44 classes at once; a thread's
//! cache refills large classes by at most half its limit. [`Pool::trim`]
//! unmaps whole free chunks.
//!
//! An allocation is a [`BufMut`] whose storage header is the block's own
//! slot: each chunk comes with a table of headers, one per block (count,
//! address, class, home), so lending a block allocates nothing and the
//! header is recycled with the block. The block returns to the pool when
//! the last view of that header is dropped — the last
//! [`Buf`](crate::Buf) view frozen from it — on whatever thread that
//! happens. So memory pinned by a zero-copy send, or by a frame a reader
//! still holds, is never handed out again early. Every lent block holds
//! the pool alive (one count per loan; the global pool needs none), so
//! dropping the last `Pool` handle with buffers outstanding is safe.
//!
//! ```
//! use zcbuf_core::pool::Pool;
//!
//! let pool = Pool::new(Default::default());
//! let mut chunk = pool.alloc(4096);
//! chunk.extend_from_slice(b"frame");
//! let frame = chunk.split_to(5); // a Buf view; the block stays out of the pool
//! drop(chunk);
//! assert_eq!(pool.stats().live_buffers, 1);
//! drop(frame);
//! assert_eq!(pool.stats().live_buffers, 0);
//! ```

mod cache;
mod chunks;
mod class;
mod leak;
pub(crate) mod regions;
mod stats;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use memmap2::MmapMut;
use parking_lot::Mutex;

use crate::storage::{BlockHome, HomePtr, SlotPtr, StorageRef};
use crate::BufMut;
use class::{chunk_size, class_of, class_size, map_anon, Arena, CLASS_COUNT};
use leak::Registry;
use stats::{Counters, LocalCounters};

pub use chunks::PoolChunks;
pub use leak::{LeakTracking, Outstanding};
pub use stats::{ClassStats, PoolStats};

/// Settings of a [`Pool`].
///
/// ```
/// use zcbuf_core::pool::{Pool, PoolConfig};
/// let pool = Pool::new(PoolConfig { max_reserved_bytes: Some(64 << 20), ..Default::default() });
/// assert_eq!(pool.config().max_reserved_bytes, Some(64 << 20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Cap on [reserved](PoolStats::reserved_bytes) bytes (memory taken
    /// from the OS and not given back); an allocation that would pass it
    /// fails with [`PoolError::CapacityExceeded`]. `None`: no cap.
    pub max_reserved_bytes: Option<usize>,
    /// Bytes of free blocks each thread may cache per size class (at
    /// least two blocks are always cacheable).
    pub thread_cache_bytes: usize,
    /// Ask for transparent huge pages on chunks (`MADV_HUGEPAGE`).
    pub huge_pages: bool,
    /// What to record about live buffers.
    pub leak_tracking: LeakTracking,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_reserved_bytes: None,
            thread_cache_bytes: 256 << 10,
            huge_pages: false,
            leak_tracking: LeakTracking::Off,
        }
    }
}

/// Why a pool could not allocate.
///
/// ```
/// use zcbuf_core::pool::{Pool, PoolConfig, PoolError};
/// let pool = Pool::new(PoolConfig { max_reserved_bytes: Some(1 << 20), ..Default::default() });
/// let err = pool.try_alloc(4 << 20).unwrap_err();
/// assert!(matches!(err, PoolError::CapacityExceeded { requested, .. } if requested == 4 << 20));
/// ```
#[derive(Debug)]
pub enum PoolError {
    /// Mapping more memory would pass the configured cap.
    CapacityExceeded {
        /// Bytes asked for.
        requested: usize,
        /// Bytes mapped when the request came.
        reserved: usize,
        /// The cap.
        cap: usize,
    },
    /// The OS refused to map memory.
    Map(io::Error),
    /// No allocation can be this large: `requested` rounded up to whole
    /// pages exceeds `max` (the largest multiple of the page size not above
    /// `isize::MAX`). Checked before the cap.
    ///
    /// ```
    /// use zcbuf_core::pool::{Pool, PoolError};
    /// let pool = Pool::new(Default::default());
    /// let err = pool.try_alloc(usize::MAX).unwrap_err();
    /// assert!(matches!(err, PoolError::TooLarge { requested: usize::MAX, .. }));
    /// ```
    TooLarge {
        /// Bytes asked for.
        requested: usize,
        /// The largest request that can be served at all.
        max: usize,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::CapacityExceeded {
                requested,
                reserved,
                cap,
            } => write!(
                f,
                "pool cap exceeded: {requested} bytes requested with {reserved} of {cap} bytes reserved"
            ),
            PoolError::Map(e) => write!(f, "pool could not map memory: {e}"),
            PoolError::TooLarge { requested, max } => write!(
                f,
                "pool request of {requested} bytes is larger than any allocation can be ({max} bytes)"
            ),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Map(e) => Some(e),
            PoolError::CapacityExceeded { .. } | PoolError::TooLarge { .. } => None,
        }
    }
}

impl From<PoolError> for io::Error {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Map(e) => e,
            PoolError::TooLarge { .. } => io::Error::new(io::ErrorKind::InvalidInput, err),
            other => io::Error::new(io::ErrorKind::OutOfMemory, other),
        }
    }
}

/// A buffer pool; cloning gives another handle to the same pool.
///
/// ```
/// let pool = zcbuf_core::pool::Pool::new(Default::default());
/// let buf = pool.alloc(100);
/// assert_eq!(buf.capacity(), 256); // the smallest class
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    id: u64,
    /// This pool itself, for the thread caches (which must not keep it
    /// alive) to hold.
    me: Weak<PoolInner>,
    /// Whether this is [`Pool::global`]'s pool, which is never dropped.
    global: bool,
    config: PoolConfig,
    /// Free blocks a thread may cache per class: `thread_cache_bytes`
    /// over the block size, at least 2 (computed once: no division when a
    /// block is freed).
    cache_limits: [usize; CLASS_COUNT],
    arenas: [Arena; CLASS_COUNT],
    counters: Counters,
    /// The counters of every thread that has a cache for this pool.
    locals: Mutex<Vec<Arc<LocalCounters>>>,
    registry: Registry,
}

impl PoolInner {
    /// New counters for a thread's cache, registered for snapshots.
    fn register_local(&self) -> Arc<LocalCounters> {
        let local = Arc::new(LocalCounters::default());
        self.locals.lock().push(Arc::clone(&local));
        local
    }

    /// Gives free blocks of `class` to its arena, which may give the pages
    /// of some back to the OS: those no longer count as reserved.
    fn give_to_arena(&self, class: usize, blocks: impl IntoIterator<Item = SlotPtr>) {
        let released = self.arenas[class].push_all(class, blocks);
        if released > 0 {
            self.counters
                .reserved
                .fetch_sub(released, Ordering::Relaxed);
        }
    }

    /// Folds a departing thread's counters into the pool-wide ones and
    /// forgets them, under the lock a snapshot holds, so a snapshot sees
    /// them exactly once.
    fn retire_local(&self, local: &Arc<LocalCounters>) {
        let mut locals = self.locals.lock();
        local.fold_into(&self.counters);
        locals.retain(|l| !Arc::ptr_eq(l, local));
    }
}

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

impl Pool {
    /// A new, empty pool.
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// assert_eq!(pool.stats().reserved_bytes, 0);
    /// ```
    pub fn new(config: PoolConfig) -> Self {
        Self::make(config, false)
    }

    fn make(config: PoolConfig, global: bool) -> Self {
        Self {
            inner: Arc::new_cyclic(|me| PoolInner {
                id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
                me: Weak::clone(me),
                global,
                cache_limits: std::array::from_fn(|class| {
                    (config.thread_cache_bytes / class_size(class)).max(2)
                }),
                config,
                arenas: std::array::from_fn(|_| Arena::new()),
                counters: Counters::default(),
                locals: Mutex::new(Vec::new()),
                registry: Registry::default(),
            }),
        }
    }

    /// The process-wide pool (default settings), made on first use.
    ///
    /// ```
    /// let buf = zcbuf_core::pool::Pool::global().alloc(64);
    /// assert!(buf.capacity() >= 64);
    /// ```
    pub fn global() -> &'static Pool {
        static GLOBAL: OnceLock<Pool> = OnceLock::new();
        GLOBAL.get_or_init(|| Pool::make(PoolConfig::default(), true))
    }

    /// Where this pool's blocks go back to, fixed in each chunk's slot
    /// table: the global pool lives as long as the process, so its loans
    /// count nothing; any other pool is kept alive by a count per loan.
    fn home(&self) -> HomePtr {
        if self.inner.global {
            let global: &'static PoolInner = &Pool::global().inner;
            HomePtr::forever(global)
        } else {
            let inner: *const PoolInner = Arc::as_ptr(&self.inner);
            // SAFETY: from `Arc::as_ptr`; blocks are lent only by
            // `try_alloc`, through a `Pool` that holds this `Arc`.
            unsafe { HomePtr::counted(inner) }
        }
    }

    /// The pool's settings.
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// assert!(!pool.config().huge_pages);
    /// ```
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// A writable buffer of at least `len` bytes (its capacity is the size
    /// class's block size). Panics with the [`PoolError`]'s message if the
    /// pool cannot allocate; [`try_alloc`](Self::try_alloc) returns it.
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// let mut buf = pool.alloc(5000);
    /// assert_eq!(buf.capacity(), 8192);
    /// buf.extend_from_slice(b"pooled");
    /// assert_eq!(&buf.freeze()[..], b"pooled");
    /// ```
    #[track_caller]
    #[inline]
    pub fn alloc(&self, len: usize) -> BufMut {
        // The common case without a `Result` to build and take apart.
        if let Some(class) = class_of(len) {
            if let Some(slot) = cache::take(&self.inner, class) {
                return self.lend(slot, class, len);
            }
        }
        self.alloc_uncached(len)
    }

    /// [`alloc`](Self::alloc) when this thread's cache has no block.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn alloc_uncached(&self, len: usize) -> BufMut {
        // Not `try_alloc`, which would ask the cache again.
        let result = match class_of(len) {
            Some(class) => self
                .alloc_slow(class, len)
                .map(|slot| self.lend(slot, class, len)),
            None => self.alloc_dedicated(len),
        };
        match result {
            Ok(buf) => buf,
            Err(e) => panic!("{e}"),
        }
    }

    /// A writable buffer of at least `len` bytes, or why not; an error
    /// (never a panic, never a wrong capacity) for every `len`.
    ///
    /// ```
    /// use zcbuf_core::pool::{Pool, PoolConfig, PoolError};
    /// let pool = Pool::new(Default::default());
    /// assert!(pool.try_alloc(1 << 21).is_ok()); // above the classes: a dedicated map
    /// assert!(matches!(pool.try_alloc(usize::MAX), Err(PoolError::TooLarge { .. })));
    /// let capped = Pool::new(PoolConfig { max_reserved_bytes: Some(1 << 20), ..Default::default() });
    /// assert!(capped.try_alloc(isize::MAX as usize).is_err());
    /// ```
    #[inline]
    pub fn try_alloc(&self, len: usize) -> Result<BufMut, PoolError> {
        let Some(class) = class_of(len) else {
            return self.alloc_dedicated(len);
        };
        let slot = match cache::take(&self.inner, class) {
            // Counted in this thread's counters already.
            Some(slot) => slot,
            None => self.alloc_slow(class, len)?,
        };
        Ok(self.lend(slot, class, len))
    }

    /// The buffer of a block of `class` this thread just took out of the
    /// free lists for a request of `len` bytes.
    #[inline]
    fn lend(&self, slot: SlotPtr, class: usize, len: usize) -> BufMut {
        let size = class_size(class);
        let ptr = slot.block();
        // SAFETY: `slot` was free — in no cache, no arena list, no view —
        // and taken from there by this thread alone; its table lives with
        // its chunk, which this pool keeps mapped while the block is lent
        // (each loan of a pool other than the global one counts the pool,
        // and `self.inner` holds a count meanwhile).
        let storage = unsafe { StorageRef::lend(slot, self.record(len, size)) };
        // SAFETY: the block is `size` bytes of that chunk, used by nobody
        // else until the last view of `storage` gives it back.
        unsafe { BufMut::from_storage(ptr.as_ptr(), size, storage) }
    }

    /// A block of `class` when this thread's cache has none (or cannot be
    /// used): from the arena, else from a newly mapped chunk; counted in
    /// the pool-wide counters.
    #[cold]
    fn alloc_slow(&self, class: usize, len: usize) -> Result<SlotPtr, PoolError> {
        let inner = &self.inner;
        let counters = &inner.counters.classes[class];
        let addr = match inner.arenas[class].pop() {
            Some(popped) => {
                if popped.was_released {
                    // Its pages went back to the OS: they count again.
                    if let Err(e) = self.reserve(class_size(class), len) {
                        inner.arenas[class].unpop(popped);
                        return Err(e);
                    }
                }
                counters.hits.fetch_add(1, Ordering::Relaxed);
                popped.slot
            }
            None => {
                let chunk_len = chunk_size(class);
                self.reserve(chunk_len, len)?;
                let chunk = match map_anon(chunk_len, inner.config.huge_pages) {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        inner
                            .counters
                            .reserved
                            .fetch_sub(chunk_len, Ordering::Relaxed);
                        return Err(PoolError::Map(e));
                    }
                };
                counters.misses.fetch_add(1, Ordering::Relaxed);
                inner.arenas[class].add_chunk(class, chunk, self.home())
            }
        };
        inner
            .counters
            .in_use
            .fetch_add(class_size(class), Ordering::Relaxed);
        inner.counters.live.fetch_add(1, Ordering::Relaxed);
        Ok(addr)
    }

    fn alloc_dedicated(&self, len: usize) -> Result<BufMut, PoolError> {
        let inner = &self.inner;
        let map_len = dedicated_len(len, page_size()).ok_or(PoolError::TooLarge {
            requested: len,
            max: largest_request(page_size()),
        })?;
        self.reserve(map_len, len)?;
        let mut map = match map_anon(map_len, inner.config.huge_pages) {
            Ok(map) => map,
            Err(e) => {
                inner
                    .counters
                    .reserved
                    .fetch_sub(map_len, Ordering::Relaxed);
                return Err(PoolError::Map(e));
            }
        };
        inner
            .counters
            .dedicated
            .fetch_add(map_len, Ordering::Relaxed);
        inner.counters.in_use.fetch_add(map_len, Ordering::Relaxed);
        inner.counters.live.fetch_add(1, Ordering::Relaxed);
        let ptr = map.as_mut_ptr();
        let owner = Dedicated {
            pool: Arc::clone(inner),
            map,
            leak_id: self.record(len, map_len),
        };
        // SAFETY: the map is `map_len` writable bytes owned by `owner` alone;
        // moving the `MmapMut` does not move the mapping, which is unmapped
        // only when `owner` drops with the last view.
        Ok(unsafe { BufMut::from_raw_parts(ptr, map_len, owner) })
    }

    /// Counts `bytes` as reserved unless that passes the cap.
    fn reserve(&self, bytes: usize, requested: usize) -> Result<(), PoolError> {
        let reserved = &self.inner.counters.reserved;
        // Without a cap the count still may not wrap: the address space is
        // the cap then (concurrent huge requests could pass it otherwise).
        let cap = self.inner.config.max_reserved_bytes.unwrap_or(usize::MAX);
        reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                now.checked_add(bytes).filter(|&after| after <= cap)
            })
            .map(drop)
            .map_err(|now| PoolError::CapacityExceeded {
                requested,
                reserved: now,
                cap,
            })
    }

    #[inline]
    fn record(&self, requested: usize, capacity: usize) -> Option<u64> {
        let mode = self.inner.config.leak_tracking;
        (mode != LeakTracking::Off).then(|| self.inner.registry.record(mode, requested, capacity))
    }

    /// Returns idle memory to the OS: this thread's cached blocks go back
    /// to the arenas, and every chunk whose blocks are all free is
    /// unmapped. Returns the bytes unmapped.
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// drop(pool.alloc(1000));
    /// assert!(pool.stats().reserved_bytes > 0);
    /// let released = pool.trim();
    /// assert!(released > 0);
    /// assert_eq!(pool.stats().reserved_bytes, 0);
    /// ```
    pub fn trim(&self) -> usize {
        cache::flush(&self.inner);
        let (mut unmapped, mut resident) = (0, 0);
        for class in 0..CLASS_COUNT {
            let (u, r) = self.inner.arenas[class].trim(class);
            unmapped += u;
            resident += r;
        }
        self.inner
            .counters
            .reserved
            .fetch_sub(resident, Ordering::Relaxed);
        unmapped
    }

    /// A snapshot of the pool's statistics.
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// assert_eq!(pool.stats().classes.len(), 44);
    /// ```
    pub fn stats(&self) -> PoolStats {
        let locals = self.inner.locals.lock();
        self.inner
            .counters
            .snapshot(&locals, |class| self.inner.arenas[class].free_blocks())
    }

    /// Every live buffer, oldest first, when leak tracking is on (empty
    /// when it is off).
    ///
    /// ```
    /// let pool = zcbuf_core::pool::Pool::new(Default::default());
    /// let _buf = pool.alloc(10);
    /// assert!(pool.outstanding().is_empty()); // tracking is off by default
    /// ```
    pub fn outstanding(&self) -> Vec<Outstanding> {
        self.inner.registry.outstanding()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct("Pool")
            .field("reserved_bytes", &stats.reserved_bytes)
            .field("in_use_bytes", &stats.in_use_bytes)
            .field("live_buffers", &stats.live_buffers)
            .finish()
    }
}

/// Bytes a dedicated map for a request of `len` bytes takes (`len` rounded
/// up to whole pages), or `None` if no allocation can be that large.
fn dedicated_len(len: usize, page: usize) -> Option<usize> {
    let pages = len.div_ceil(page);
    pages
        .checked_mul(page)
        .filter(|&bytes| bytes <= largest_request(page))
}

/// The largest request any map can serve: the largest multiple of the page
/// size not above `isize::MAX`.
fn largest_request(page: usize) -> usize {
    isize::MAX as usize / page * page
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

/// The last view of a class block gives it back through this, on
/// whatever thread (see [`Pool::home`] for how a loan keeps the pool, and
/// so the block's chunk and slot, alive until then).
impl BlockHome for PoolInner {
    fn take_back(&self, slot: SlotPtr, class: usize, leak_id: Option<u64>) {
        if let Some(id) = leak_id {
            self.registry.forget(id);
        }
        // The common path counts the free in this thread's counters.
        if !cache::give(self, class, slot) {
            self.counters
                .in_use
                .fetch_sub(class_size(class), Ordering::Relaxed);
            self.counters.live.fetch_sub(1, Ordering::Relaxed);
            self.give_to_arena(class, [slot]);
        }
    }
}

/// The owner of a dedicated map: unmaps it on drop.
struct Dedicated {
    pool: Arc<PoolInner>,
    map: MmapMut,
    leak_id: Option<u64>,
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        let counters = &self.pool.counters;
        let len = self.map.len();
        if let Some(id) = self.leak_id {
            self.pool.registry.forget(id);
        }
        counters.in_use.fetch_sub(len, Ordering::Relaxed);
        counters.live.fetch_sub(1, Ordering::Relaxed);
        counters.dedicated.fetch_sub(len, Ordering::Relaxed);
        counters.reserved.fetch_sub(len, Ordering::Relaxed);
        // `map` is unmapped when this owner's fields drop, right after.
    }
}

#[cfg(test)]
mod tests {
    //! Small enough for Miri, which checks the pool's pointers (strict
    //! provenance), its cross-thread frees and its unmapping.
    use super::*;

    #[test]
    fn blocks_are_written_frozen_split_and_reused() {
        let pool = Pool::new(PoolConfig::default());
        let mut chunk = pool.alloc(100);
        assert_eq!(chunk.capacity(), 256);
        let addr = chunk.as_ptr();
        chunk.extend_from_slice(b"frame-one|frame-two");
        let one = chunk.split_to(10);
        let two = chunk.freeze();
        assert_eq!(
            (&one[..], &two[..]),
            (&b"frame-one|"[..], &b"frame-two"[..])
        );
        drop(one);
        assert_eq!(pool.stats().live_buffers, 1, "a view still holds the block");
        drop(two);
        assert_eq!(pool.stats().live_buffers, 0);
        let again = pool.alloc(256);
        assert_eq!(again.as_ptr(), addr, "the freed block serves again");
        drop(again);
        assert!(pool.trim() > 0);
        assert_eq!(pool.stats().reserved_bytes, 0);
    }

    #[test]
    fn blocks_freed_on_another_thread_go_back() {
        let pool = Pool::new(PoolConfig::default());
        let views: Vec<crate::Buf> = (0..6u8)
            .map(|i| {
                let mut buf = pool.alloc(300 * (usize::from(i) + 1));
                buf.extend_from_slice(&[i; 8]);
                buf.freeze()
            })
            .collect();
        std::thread::spawn(move || {
            for (i, view) in views.into_iter().enumerate() {
                assert_eq!(&view[..], &[i as u8; 8]);
            }
        })
        .join()
        .unwrap();
        let stats = pool.stats();
        assert_eq!((stats.in_use_bytes, stats.live_buffers), (0, 0));
        pool.trim();
        assert_eq!(pool.stats().reserved_bytes, 0);
    }

    #[test]
    fn dedicated_maps_and_sizes_that_cannot_be() {
        let pool = Pool::new(PoolConfig {
            max_reserved_bytes: Some(4 << 20),
            ..Default::default()
        });
        let mut big = pool.alloc((1 << 20) + 1);
        assert!(big.capacity() > 1 << 20);
        big.extend_from_slice(b"end");
        assert_eq!(pool.stats().dedicated_bytes, big.capacity());
        drop(big);
        assert_eq!(pool.stats().reserved_bytes, 0);
        for len in [usize::MAX, isize::MAX as usize + 1, usize::MAX / 2 + 2] {
            assert!(matches!(
                pool.try_alloc(len),
                Err(PoolError::TooLarge { .. })
            ));
        }
        assert!(matches!(
            pool.try_alloc(5 << 20),
            Err(PoolError::CapacityExceeded { .. })
        ));
        assert_eq!(dedicated_len(usize::MAX, 4096), None);
        assert_eq!(dedicated_len(1, 4096), Some(4096));
        assert_eq!(largest_request(4096) % 4096, 0);
    }

    #[test]
    fn a_non_global_pool_outlives_its_handle_through_its_blocks() {
        let pool = Pool::new(PoolConfig::default());
        let mut buf = pool.alloc(5000);
        buf.extend_from_slice(&[7; 64]);
        let view = buf.freeze();
        drop(pool);
        assert!(view.iter().all(|&b| b == 7));
    }
}
