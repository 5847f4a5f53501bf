//! A read-only view of where the process-wide pool's chunks lie, for
//! io_uring's registered (fixed) buffers.
//!
//! A registered buffer is a table entry in the kernel holding the *pages*
//! of an address range, not the range itself: if the pool unmapped a chunk
//! and later mapped a new one at the same address, a send through the old
//! entry would read the old pages. So every unmap bumps
//! [`generation`]'s first number *before* the memory goes, and a user of
//! the table refreshes it before its next fixed send whenever that number
//! moved. Only [`Pool::global`](super::Pool::global)'s chunks are listed:
//! that pool is never dropped, so trimming is its only way to unmap.

use std::sync::atomic::{AtomicU64, Ordering};

use super::class::CLASS_COUNT;
use super::Pool;

/// Chunks unmapped so far, by any pool.
static UNMAPS: AtomicU64 = AtomicU64::new(0);
/// Chunks mapped so far, by any pool.
static MAPS: AtomicU64 = AtomicU64::new(0);

/// A chunk is about to be unmapped (called before the unmap).
pub(crate) fn note_unmapping() {
    UNMAPS.fetch_add(1, Ordering::SeqCst);
}

/// A chunk was mapped.
pub(crate) fn note_mapped() {
    MAPS.fetch_add(1, Ordering::SeqCst);
}

/// `(chunks unmapped, chunks mapped)` so far in the process: a table built
/// when the first number was `u` is stale once it is not `u`; a table that
/// misses an address may find it after the second number moved.
pub(crate) fn generation() -> (u64, u64) {
    (UNMAPS.load(Ordering::SeqCst), MAPS.load(Ordering::SeqCst))
}

/// `(address, length)` of every chunk of the process-wide pool mapped now,
/// sorted by address (chunks never overlap).
pub(crate) fn global_regions() -> Vec<(usize, usize)> {
    let pool = Pool::global();
    let mut out = Vec::new();
    for class in 0..CLASS_COUNT {
        pool.inner.arenas[class].chunk_regions(&mut out);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_block_lies_in_a_listed_region() {
        let buf = Pool::global().alloc(64 * 1024);
        let addr = buf.as_ptr() as usize;
        let regions = global_regions();
        assert!(regions
            .iter()
            .any(|&(base, len)| addr >= base && addr + buf.capacity() <= base + len));
        assert!(regions.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    }

    #[test]
    fn unmapping_moves_the_generation() {
        let pool = Pool::new(Default::default());
        drop(pool.alloc(1000));
        let (before, _) = generation();
        assert!(pool.trim() > 0);
        assert!(generation().0 > before);
    }
}
