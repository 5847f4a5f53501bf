//! Pool statistics: atomics updated on every allocation and free, and the
//! snapshot a caller reads.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::class::{class_size, CLASS_COUNT};

/// Live counters of one pool.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) reserved: AtomicUsize,
    pub(crate) in_use: AtomicUsize,
    pub(crate) live: AtomicUsize,
    pub(crate) dedicated: AtomicUsize,
    pub(crate) classes: [ClassCounters; CLASS_COUNT],
}

/// Live counters of one size class.
#[derive(Default)]
pub(crate) struct ClassCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) cached: AtomicUsize,
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
    /// Bytes mapped from the OS (chunks and dedicated maps).
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
    pub(crate) fn snapshot(&self, arena_free: impl Fn(usize) -> usize) -> PoolStats {
        PoolStats {
            reserved_bytes: self.reserved.load(Ordering::Relaxed),
            in_use_bytes: self.in_use.load(Ordering::Relaxed),
            live_buffers: self.live.load(Ordering::Relaxed),
            dedicated_bytes: self.dedicated.load(Ordering::Relaxed),
            classes: self
                .classes
                .iter()
                .enumerate()
                .map(|(class, c)| ClassStats {
                    block_size: class_size(class),
                    hits: c.hits.load(Ordering::Relaxed),
                    misses: c.misses.load(Ordering::Relaxed),
                    cached_blocks: c.cached.load(Ordering::Relaxed),
                    arena_free_blocks: arena_free(class),
                })
                .collect(),
        }
    }
}
