//! Per-thread caches of free blocks: the common path takes and returns a
//! block without a lock and without a locked atomic operation. Each thread
//! keeps one cache per pool it touched, with its own statistics counters
//! ([`LocalCounters`]); a full cache sends half its blocks to the shared
//! arena in one go, an empty one refills from it in batches, and a
//! thread's exit returns everything it held and folds its counters into
//! the pool's.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::class::CLASS_COUNT;
use super::stats::LocalCounters;
use super::PoolInner;
use crate::storage::SlotPtr;

/// Blocks moved from the arena to a thread cache at once.
const REFILL_BATCH: usize = 16;

struct ThreadCache {
    pool_id: u64,
    pool: Weak<PoolInner>,
    counters: Arc<LocalCounters>,
    blocks: [Vec<SlotPtr>; CLASS_COUNT],
}

impl ThreadCache {
    /// Records how many blocks of `class` this cache holds now.
    #[inline]
    fn set_cached(&self, class: usize) {
        self.counters.cached[class].store(self.blocks[class].len(), Ordering::Relaxed);
    }

    /// Gives every cached block back to `pool`'s arenas.
    fn return_all(&mut self, pool: &PoolInner) {
        for class in 0..CLASS_COUNT {
            if !self.blocks[class].is_empty() {
                pool.give_to_arena(class, self.blocks[class].drain(..));
                self.set_cached(class);
            }
        }
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            self.return_all(&pool);
            pool.retire_local(&self.counters);
        }
        // If the pool is gone its chunks are unmapped; the addresses held
        // here are forgotten without being touched.
    }
}

thread_local! {
    static CACHES: RefCell<Vec<ThreadCache>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's cache for `pool`, creating it if needed;
/// `None` when the thread is exiting or the cache is busy.
#[inline]
fn with_cache<R>(pool: &PoolInner, f: impl FnOnce(&mut ThreadCache) -> R) -> Option<R> {
    CACHES
        .try_with(|caches| {
            let mut caches = caches.try_borrow_mut().ok()?;
            // Most threads use one pool: its cache is first.
            let index = match caches.first() {
                Some(first) if first.pool_id == pool.id => 0,
                _ => match caches.iter().position(|c| c.pool_id == pool.id) {
                    Some(i) => i,
                    None => new_cache(&mut caches, pool),
                },
            };
            Some(f(&mut caches[index]))
        })
        .ok()
        .flatten()
}

/// Makes this thread's cache for `pool`; returns its index. Out of line:
/// it runs once per thread and pool, and keeps the common path short.
#[cold]
#[inline(never)]
fn new_cache(caches: &mut Vec<ThreadCache>, pool: &PoolInner) -> usize {
    // Forget caches of pools that are gone.
    caches.retain(|c| c.pool.strong_count() > 0);
    caches.push(ThreadCache {
        pool_id: pool.id,
        pool: Weak::clone(&pool.me),
        counters: pool.register_local(),
        blocks: std::array::from_fn(|_| Vec::new()),
    });
    caches.len() - 1
}

/// Refills an empty cache of `class` from the arena and takes a block.
#[cold]
#[inline(never)]
fn refill(pool: &PoolInner, class: usize, blocks: &mut Vec<SlotPtr>) -> Option<SlotPtr> {
    // No more than the cache may hold: large blocks are few.
    let batch = REFILL_BATCH.min(pool.cache_limits[class] / 2).max(1);
    pool.arenas[class].pop_batch(batch, blocks);
    blocks.pop()
}

/// Sends the older half of a full cache of `class` to the arena: the most
/// recently freed blocks (warmest in the CPU cache) stay for the next
/// allocations here.
#[cold]
#[inline(never)]
fn overflow(pool: &PoolInner, class: usize, blocks: &mut Vec<SlotPtr>) {
    let limit = pool.cache_limits[class];
    pool.give_to_arena(class, blocks.drain(..limit / 2));
}

/// A free block of `class` from this thread's cache, refilled from the
/// arena when empty, counted as an allocation in this thread's counters.
/// `None` when neither has one (or the cache is unavailable): the caller
/// takes the slow path and counts there.
#[inline]
pub(crate) fn take(pool: &PoolInner, class: usize) -> Option<SlotPtr> {
    with_cache(pool, |cache| {
        let block = match cache.blocks[class].pop() {
            Some(block) => block,
            None => refill(pool, class, &mut cache.blocks[class])?,
        };
        cache.set_cached(class);
        cache.counters.count_alloc(class);
        Some(block)
    })
    .flatten()
}

/// Puts a freed block in this thread's cache and counts the free in this
/// thread's counters. A full cache first sends its older half to the
/// arena under one lock. `false` if the cache is unavailable (the thread
/// is exiting): the caller must count the free and give the block to the
/// arena itself.
#[inline]
pub(crate) fn give(pool: &PoolInner, class: usize, block: SlotPtr) -> bool {
    let limit = pool.cache_limits[class];
    with_cache(pool, |cache| {
        let blocks = &mut cache.blocks[class];
        if blocks.len() >= limit {
            overflow(pool, class, blocks);
        }
        blocks.push(block);
        cache.set_cached(class);
        cache.counters.count_free(class);
        true
    })
    .unwrap_or(false)
}

/// Moves every block this thread caches for `pool` back to the arena.
pub(crate) fn flush(pool: &PoolInner) {
    with_cache(pool, |cache| cache.return_all(pool));
}
