//! Per-thread caches of free blocks: the common path takes and returns a
//! block without a lock and without a locked atomic operation. Each thread
//! keeps one cache per pool it touched, with its own statistics counters
//! ([`LocalCounters`]); a full cache sends half its blocks to the shared
//! arena in one go, an empty one refills from it in batches, and a
//! thread's exit returns everything it held and folds its counters into
//! the pool's.
//!
//! Finding the cache: the thread's caches live in [`CACHES`], whose
//! destructor returns their blocks at thread exit; the cache of the pool
//! this thread used last is also named by [`LAST`], a plain pair (pool id,
//! pointer) with no destructor, so the common path reads it without the
//! checks a destructor-carrying thread-local needs (is it initialised? is
//! it being destroyed?) and without searching.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use super::class::CLASS_COUNT;
use super::stats::LocalCounters;
use super::PoolInner;
use crate::storage::SlotPtr;

/// Most blocks moved from the arena to a thread cache at once (at most
/// half the cache's limit): a thread that allocates what another frees
/// takes the arena's lock once per this many allocations.
const REFILL_BATCH: usize = 64;

struct ThreadCache {
    pool: Weak<PoolInner>,
    counters: Arc<LocalCounters>,
    blocks: [Vec<SlotPtr>; CLASS_COUNT],
}

impl ThreadCache {
    /// Gives every cached block back to `pool`'s arenas.
    fn return_all(&mut self, pool: &PoolInner) {
        for class in 0..CLASS_COUNT {
            let n = self.blocks[class].len();
            if n > 0 {
                pool.give_to_arena(class, self.blocks[class].drain(..));
                self.counters.count_drained(class, n);
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

/// A thread's caches, one per pool.
struct Caches(Vec<Entry>);

/// One pool's cache in [`Caches`], with the pool's identity beside it so
/// that finding it needs no borrow of the cache.
struct Entry {
    pool_id: u64,
    pool: Weak<PoolInner>,
    /// `Rc` so that the cache stays at one address however the list
    /// changes ([`LAST`] points at it).
    cache: Rc<RefCell<ThreadCache>>,
}

impl Drop for Caches {
    fn drop(&mut self) {
        // Before any cache goes: nothing may reach one through `LAST` from
        // here on (a later thread-local destructor may still free a block;
        // it then finds no cache and gives the block to the arena).
        LAST.set(NO_CACHE);
    }
}

/// The pool id [`LAST`] names and its cache: ids start at 1, so
/// [`NO_CACHE`] matches no pool.
type Last = (u64, *const RefCell<ThreadCache>);
const NO_CACHE: Last = (0, ptr::null());

thread_local! {
    static CACHES: RefCell<Caches> = const { RefCell::new(Caches(Vec::new())) };
    /// The cache of the pool this thread used last. Invariant: its pointer
    /// is null or the address of a cache held in this thread's `CACHES`
    /// (set only from an entry of `CACHES`, reset before any entry is
    /// removed), so it is alive whenever it is read; and the pool id beside
    /// it is that cache's pool's.
    static LAST: Cell<Last> = const { Cell::new(NO_CACHE) };
}

/// Runs `f` on this thread's cache for `pool`, creating it if needed;
/// `None` when the thread is exiting or the cache is busy.
#[inline]
fn with_cache<R>(pool: &PoolInner, f: impl FnOnce(&mut ThreadCache) -> R) -> Option<R> {
    let (id, mut cache) = LAST.get();
    if id != pool.id {
        // Not generic, and takes no closure: the common path builds
        // nothing for it.
        cache = find_cache(pool)?;
    }
    // SAFETY: `cache` is `LAST`'s pointer, or one `find_cache` just put
    // there: it names a cache that this thread's `CACHES` holds, alive
    // until it is removed, which resets `LAST` first and happens only in
    // `new_cache` (never for a pool still in use, like `pool`) and at
    // thread exit. Only this thread uses it (`Rc`, not `Send`), and the
    // `RefCell` refuses a second, reentrant user.
    let mut cache = unsafe { &*cache }.try_borrow_mut().ok()?;
    Some(f(&mut cache))
}

/// This thread's cache for `pool`, made the one [`LAST`] names: found, or
/// made (`None` when the thread is exiting or its caches are busy).
#[cold]
#[inline(never)]
fn find_cache(pool: &PoolInner) -> Option<*const RefCell<ThreadCache>> {
    CACHES
        .try_with(|caches| {
            let mut caches = caches.try_borrow_mut().ok()?;
            let index = match caches.0.iter().position(|e| e.pool_id == pool.id) {
                Some(i) => i,
                None => new_cache(&mut caches, pool),
            };
            let cache = Rc::as_ptr(&caches.0[index].cache);
            LAST.set((pool.id, cache));
            Some(cache)
        })
        .ok()
        .flatten()
}

/// Makes this thread's cache for `pool`; returns its index.
fn new_cache(caches: &mut Caches, pool: &PoolInner) -> usize {
    // Forget caches of pools that are gone; `LAST` may name one of them.
    LAST.set(NO_CACHE);
    caches.0.retain(|e| e.pool.strong_count() > 0);
    caches.0.push(Entry {
        pool_id: pool.id,
        pool: Weak::clone(&pool.me),
        cache: Rc::new(RefCell::new(ThreadCache {
            pool: Weak::clone(&pool.me),
            counters: pool.register_local(),
            blocks: std::array::from_fn(|_| Vec::new()),
        })),
    });
    caches.0.len() - 1
}

/// Refills an empty cache of `class` from the arena and takes a block.
#[cold]
#[inline(never)]
fn refill(pool: &PoolInner, class: usize, cache: &mut ThreadCache) -> Option<SlotPtr> {
    // No more than the cache may hold: large blocks are few.
    let batch = REFILL_BATCH.min(pool.cache_limits[class] / 2).max(1);
    let n = pool.arenas[class].pop_batch(batch, &mut cache.blocks[class]);
    cache.counters.count_refilled(class, n);
    cache.blocks[class].pop()
}

/// Sends the older half of a full cache of `class` to the arena: the most
/// recently freed blocks (warmest in the CPU cache) stay for the next
/// allocations here.
#[cold]
#[inline(never)]
fn overflow(pool: &PoolInner, class: usize, cache: &mut ThreadCache) {
    let half = pool.cache_limits[class] / 2;
    pool.give_to_arena(class, cache.blocks[class].drain(..half));
    cache.counters.count_drained(class, half);
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
            None => refill(pool, class, cache)?,
        };
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
        if cache.blocks[class].len() >= limit {
            overflow(pool, class, cache);
        }
        cache.blocks[class].push(block);
        cache.counters.count_free(class);
        true
    })
    .unwrap_or(false)
}

/// Moves every block this thread caches for `pool` back to the arena.
pub(crate) fn flush(pool: &PoolInner) {
    with_cache(pool, |cache| cache.return_all(pool));
}
