//! Per-thread caches of free blocks: the common path takes and returns a
//! block without a lock. Each thread keeps one cache per pool it touched;
//! a full cache sends blocks to the shared arena, an empty one refills
//! from it in batches, and a thread's exit returns everything it held.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::class::{class_size, CLASS_COUNT};
use super::PoolInner;

/// Blocks moved from the arena to a thread cache at once.
const REFILL_BATCH: usize = 16;

struct ThreadCache {
    pool_id: u64,
    pool: Weak<PoolInner>,
    blocks: [Vec<usize>; CLASS_COUNT],
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            for (class, blocks) in self.blocks.iter_mut().enumerate() {
                pool.counters.classes[class]
                    .cached
                    .fetch_sub(blocks.len(), Ordering::Relaxed);
                pool.arenas[class].push_all(blocks.drain(..));
            }
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
fn with_cache<R>(pool: &Arc<PoolInner>, f: impl FnOnce(&mut ThreadCache) -> R) -> Option<R> {
    CACHES
        .try_with(|caches| {
            let mut caches = caches.try_borrow_mut().ok()?;
            let index = match caches.iter().position(|c| c.pool_id == pool.id) {
                Some(i) => i,
                None => {
                    // Forget caches of pools that are gone.
                    caches.retain(|c| c.pool.strong_count() > 0);
                    caches.push(ThreadCache {
                        pool_id: pool.id,
                        pool: Arc::downgrade(pool),
                        blocks: std::array::from_fn(|_| Vec::new()),
                    });
                    caches.len() - 1
                }
            };
            Some(f(&mut caches[index]))
        })
        .ok()
        .flatten()
}

/// A free block of `class` from this thread's cache, refilled from the
/// arena when empty.
pub(crate) fn take(pool: &Arc<PoolInner>, class: usize) -> Option<usize> {
    with_cache(pool, |cache| {
        let blocks = &mut cache.blocks[class];
        if blocks.is_empty() {
            let got = pool.arenas[class].pop_batch(REFILL_BATCH, blocks);
            pool.counters.classes[class]
                .cached
                .fetch_add(got, Ordering::Relaxed);
        }
        let block = blocks.pop()?;
        pool.counters.classes[class]
            .cached
            .fetch_sub(1, Ordering::Relaxed);
        Some(block)
    })
    .flatten()
}

/// Puts a freed block in this thread's cache; `false` if it is full (or
/// unavailable) and the caller must give the block to the arena.
pub(crate) fn give(pool: &Arc<PoolInner>, class: usize, block: usize) -> bool {
    let limit = (pool.config.thread_cache_bytes / class_size(class)).max(2);
    with_cache(pool, |cache| {
        let blocks = &mut cache.blocks[class];
        if blocks.len() >= limit {
            return false;
        }
        blocks.push(block);
        pool.counters.classes[class]
            .cached
            .fetch_add(1, Ordering::Relaxed);
        true
    })
    .unwrap_or(false)
}

/// Moves every block this thread caches for `pool` back to the arena.
pub(crate) fn flush(pool: &Arc<PoolInner>) {
    with_cache(pool, |cache| {
        for (class, blocks) in cache.blocks.iter_mut().enumerate() {
            pool.counters.classes[class]
                .cached
                .fetch_sub(blocks.len(), Ordering::Relaxed);
            pool.arenas[class].push_all(blocks.drain(..));
        }
    });
}
