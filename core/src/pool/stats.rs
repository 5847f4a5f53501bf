//! Pool statistics: counters updated on every allocation and free, and the
//! snapshot a caller reads.
//!
//! The common path (a thread's own cache) counts in that thread's
//! [`LocalCounters`], which only that thread writes: a relaxed load and
//! store, no locked read-modify-write, so allocating and freeing pay no
//! atomic contention for their statistics. Slow paths (the shared arena, a
//! new chunk, dedicated maps, a thread that is exiting) count in the
//! pool-wide [`Counters`]. A snapshot adds the pool-wide counters and every
//! live thread's; a thread's counters are folded into the pool-wide ones
//! when its cache goes away. A block freed on another thread than the one
//! that allocated it makes the freeing thread's `in_use` and `live` go
//! below zero (they wrap); only the sum over all threads means anything.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::class::{class_size, CLASS_COUNT};

/// Pool-wide counters (slow paths, and the totals of exited threads).
pub(crate) struct Counters {
    pub(crate) reserved: AtomicUsize,
    pub(crate) in_use: AtomicUsize,
    pub(crate) live: AtomicUsize,
    pub(crate) dedicated: AtomicUsize,
    pub(crate) classes: [ClassCounters; CLASS_COUNT],
}

/// Pool-wide counters of one size class.
#[derive(Default)]
pub(crate) struct ClassCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

/// The counters of one thread's cache for one pool. Only the owning
/// thread writes them (see [`LocalCounters::add`]); anyone may read them.
///
/// One counter per class and event, so that allocating and freeing each
/// touch one: the bytes and buffers in use are derived from them when a
/// snapshot is taken.
pub(crate) struct LocalCounters {
    /// Allocations served from this thread's cache, per class.
    pub(crate) hits: [AtomicU64; CLASS_COUNT],
    /// Blocks freed into this thread's cache, per class (wherever they
    /// were allocated: a thread's hits minus frees may be "negative").
    pub(crate) frees: [AtomicU64; CLASS_COUNT],
    /// Blocks moved into this thread's cache from the arena, per class.
    refilled: [AtomicU64; CLASS_COUNT],
    /// Blocks moved out of this thread's cache to the arena, per class.
    drained: [AtomicU64; CLASS_COUNT],
}

// By hand: `Default` is derived for arrays of at most 32 elements.
impl Default for Counters {
    fn default() -> Self {
        Self {
            reserved: AtomicUsize::new(0),
            in_use: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            dedicated: AtomicUsize::new(0),
            classes: std::array::from_fn(|_| ClassCounters::default()),
        }
    }
}

impl Default for LocalCounters {
    fn default() -> Self {
        Self {
            hits: std::array::from_fn(|_| AtomicU64::new(0)),
            frees: std::array::from_fn(|_| AtomicU64::new(0)),
            refilled: std::array::from_fn(|_| AtomicU64::new(0)),
            drained: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl LocalCounters {
    /// Adds one to a counter only the calling thread writes: a plain load
    /// and store, not a locked read-modify-write. Readers on other threads
    /// see the old or the new value.
    #[inline]
    fn bump(counter: &AtomicU64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// Counts a block of `class` handed out from the cache.
    #[inline]
    pub(crate) fn count_alloc(&self, class: usize) {
        Self::bump(&self.hits[class]);
    }

    /// Counts a block of `class` freed into this thread's cache.
    #[inline]
    pub(crate) fn count_free(&self, class: usize) {
        Self::bump(&self.frees[class]);
    }

    /// Counts `n` blocks of `class` moved from the arena into the cache
    /// (a slow path: the common path writes only `hits` and `frees`).
    #[inline]
    pub(crate) fn count_refilled(&self, class: usize, n: usize) {
        let c = &self.refilled[class];
        c.store(
            c.load(Ordering::Relaxed).wrapping_add(n as u64),
            Ordering::Relaxed,
        );
    }

    /// Counts `n` blocks of `class` moved from the cache to the arena.
    #[inline]
    pub(crate) fn count_drained(&self, class: usize, n: usize) {
        let c = &self.drained[class];
        c.store(
            c.load(Ordering::Relaxed).wrapping_add(n as u64),
            Ordering::Relaxed,
        );
    }

    /// Blocks of `class` in this thread's cache: what came in (frees and
    /// refills) minus what went out (allocations and drains). Derived, so
    /// that the common path stores no length; read from another thread
    /// while this one counts, it may be off for a moment (shown as 0 when
    /// it would be negative).
    pub(crate) fn cached(&self, class: usize) -> usize {
        let load = |c: &[AtomicU64; CLASS_COUNT]| c[class].load(Ordering::Relaxed);
        let held = (load(&self.frees).wrapping_add(load(&self.refilled)))
            .wrapping_sub(load(&self.hits).wrapping_add(load(&self.drained)));
        if held > isize::MAX as u64 {
            0
        } else {
            held as usize
        }
    }

    /// Buffers allocated minus buffers freed here, per class (wrapping).
    fn net(&self, class: usize) -> usize {
        let hits = self.hits[class].load(Ordering::Relaxed);
        let frees = self.frees[class].load(Ordering::Relaxed);
        hits.wrapping_sub(frees) as usize
    }

    /// Block bytes allocated minus freed here (wrapping).
    pub(crate) fn in_use(&self) -> usize {
        (0..CLASS_COUNT).fold(0usize, |acc, c| {
            acc.wrapping_add(self.net(c).wrapping_mul(class_size(c)))
        })
    }

    /// Buffers allocated minus freed here (wrapping).
    pub(crate) fn live(&self) -> usize {
        (0..CLASS_COUNT).fold(0usize, |acc, c| acc.wrapping_add(self.net(c)))
    }

    /// Moves everything counted here into the pool-wide counters (the
    /// thread is done with this pool, and no longer writes them); `cached`
    /// must already be zero.
    pub(crate) fn fold_into(&self, counters: &Counters) {
        counters.in_use.fetch_add(self.in_use(), Ordering::Relaxed);
        counters.live.fetch_add(self.live(), Ordering::Relaxed);
        for class in 0..CLASS_COUNT {
            counters.classes[class].hits.fetch_add(
                self.hits[class].swap(0, Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.frees[class].store(0, Ordering::Relaxed);
            self.refilled[class].store(0, Ordering::Relaxed);
            self.drained[class].store(0, Ordering::Relaxed);
        }
    }
}

/// A snapshot of a pool's statistics.
///
/// ```
/// let pool = zcbuf_core::pool::Pool::new(Default::default());
/// let buf = pool.alloc(1000);
/// let stats = pool.stats();
/// assert_eq!(stats.live_buffers, 1);
/// assert_eq!(stats.in_use_bytes, 1024);
/// assert!(stats.reserved_bytes >= 1024);
/// drop(buf);
/// assert_eq!(pool.stats().in_use_bytes, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of memory the pool holds: chunks and dedicated maps, less the
    /// free large blocks whose pages it gave back to the OS (those stay
    /// mapped, the kernel reclaims them when it needs memory, and they
    /// count again when they serve again).
    pub reserved_bytes: usize,
    /// Bytes of blocks handed out and not yet returned (block sizes, not
    /// requested sizes).
    pub in_use_bytes: usize,
    /// Buffers handed out and not yet returned.
    pub live_buffers: usize,
    /// Bytes in dedicated maps (requests above the largest class).
    pub dedicated_bytes: usize,
    /// Per size class, smallest first.
    pub classes: Vec<ClassStats>,
}

/// Statistics of one size class.
///
/// ```
/// let pool = zcbuf_core::pool::Pool::new(Default::default());
/// drop(pool.alloc(100));
/// drop(pool.alloc(100));
/// let small = &pool.stats().classes[0];
/// assert_eq!(small.block_size, 256);
/// assert_eq!((small.hits, small.misses), (1, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size of the class.
    pub block_size: usize,
    /// Allocations served from a thread cache or the shared arena.
    pub hits: u64,
    /// Allocations that had to map a new chunk.
    pub misses: u64,
    /// Free blocks held in thread caches, all threads together.
    pub cached_blocks: usize,
    /// Free blocks held in the shared arena.
    pub arena_free_blocks: usize,
}

impl Counters {
    /// The pool-wide counters plus every thread's in `locals`, which the
    /// caller keeps from being folded in meanwhile (it holds their lock).
    pub(crate) fn snapshot(
        &self,
        locals: &[Arc<LocalCounters>],
        arena_free: impl Fn(usize) -> usize,
    ) -> PoolStats {
        let sum = |global: &AtomicUsize, local: fn(&LocalCounters) -> usize| {
            let total = locals
                .iter()
                .fold(global.load(Ordering::Relaxed), |acc, l| {
                    acc.wrapping_add(local(l))
                });
            // Threads update their counters while this runs; a sum read
            // across them can momentarily dip below zero: show zero then.
            if total > isize::MAX as usize {
                0
            } else {
                total
            }
        };
        PoolStats {
            reserved_bytes: self.reserved.load(Ordering::Relaxed),
            in_use_bytes: sum(&self.in_use, LocalCounters::in_use),
            live_buffers: sum(&self.live, LocalCounters::live),
            dedicated_bytes: self.dedicated.load(Ordering::Relaxed),
            classes: self
                .classes
                .iter()
                .enumerate()
                .map(|(class, c)| ClassStats {
                    block_size: class_size(class),
                    hits: locals
                        .iter()
                        .fold(c.hits.load(Ordering::Relaxed), |acc, l| {
                            acc + l.hits[class].load(Ordering::Relaxed)
                        }),
                    misses: c.misses.load(Ordering::Relaxed),
                    cached_blocks: locals.iter().map(|l| l.cached(class)).sum(),
                    arena_free_blocks: arena_free(class),
                })
                .collect(),
        }
    }
}
