//! Pooled read chunks for the receive path.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Pool;
use crate::io::ChunkSource;
use crate::BufMut;

/// A [`ChunkSource`] that takes read chunks from a [`Pool`]: frames cut out
/// of a chunk hold its block, which returns to the pool when the last
/// frame is dropped.
///
/// When the pool refuses (its cap is reached, or the OS will not map
/// more), the chunk comes from the heap instead so that receiving goes on;
/// [`heap_fallbacks`](Self::heap_fallbacks) counts those.
///
/// ```
/// use zcbuf_core::io::{ChunkSource, FrameDecoder};
/// use zcbuf_core::pool::{Pool, PoolChunks};
///
/// let pool = Pool::new(Default::default());
/// let mut chunks = PoolChunks::new(pool.clone(), 16 * 1024);
/// assert_eq!(chunks.next_chunk().capacity(), 16 * 1024);
/// let decoder = FrameDecoder::with_source(chunks);
/// # drop(decoder);
/// ```
#[derive(Debug)]
pub struct PoolChunks {
    pool: Pool,
    size: usize,
    heap_fallbacks: AtomicU64,
}

impl PoolChunks {
    /// Chunks of at least `size` bytes (at least 1) from `pool`.
    ///
    /// Panics if `size` exceeds `isize::MAX`: no chunk, pooled or not, can
    /// be that large.
    ///
    /// ```
    /// let chunks = zcbuf_core::pool::PoolChunks::new(zcbuf_core::pool::Pool::global().clone(), 4096);
    /// assert_eq!(chunks.heap_fallbacks(), 0);
    /// ```
    #[track_caller]
    pub fn new(pool: Pool, size: usize) -> Self {
        assert!(
            size <= isize::MAX as usize,
            "read chunks of {size} bytes are larger than any allocation can be"
        );
        Self {
            pool,
            size: size.max(1),
            heap_fallbacks: AtomicU64::new(0),
        }
    }

    /// Chunks the pool refused and the heap served.
    ///
    /// ```
    /// use zcbuf_core::io::ChunkSource;
    /// use zcbuf_core::pool::{Pool, PoolChunks, PoolConfig};
    /// let capped = Pool::new(PoolConfig { max_reserved_bytes: Some(0), ..Default::default() });
    /// let mut chunks = PoolChunks::new(capped, 4096);
    /// assert_eq!(chunks.next_chunk().capacity(), 4096);
    /// assert_eq!(chunks.heap_fallbacks(), 1);
    /// ```
    pub fn heap_fallbacks(&self) -> u64 {
        self.heap_fallbacks.load(Ordering::Relaxed)
    }
}

impl Default for PoolChunks {
    /// 64 KiB chunks from the process-wide pool.
    fn default() -> Self {
        Self::new(Pool::global().clone(), 64 * 1024)
    }
}

impl ChunkSource for PoolChunks {
    fn next_chunk(&mut self) -> BufMut {
        self.pool.try_alloc(self.size).unwrap_or_else(|_| {
            self.heap_fallbacks.fetch_add(1, Ordering::Relaxed);
            BufMut::with_capacity(self.size)
        })
    }
}
