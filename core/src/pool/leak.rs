//! Leak tracking: a registry of every live pooled buffer, with where it
//! was allocated in the paranoid mode.

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// How much a pool records about its live buffers.
///
/// ```
/// use zcbuf_core::pool::{LeakTracking, Pool, PoolConfig};
/// let pool = Pool::new(PoolConfig { leak_tracking: LeakTracking::Track, ..Default::default() });
/// let buf = pool.alloc(10);
/// assert_eq!(pool.outstanding().len(), 1);
/// drop(buf);
/// assert!(pool.outstanding().is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeakTracking {
    /// Nothing beyond the counters in [`PoolStats`](super::PoolStats).
    #[default]
    Off,
    /// Every live buffer is recorded with its size.
    Track,
    /// As `Track`, plus a backtrace of where each buffer was allocated.
    Paranoid,
}

/// A pooled buffer that has not been returned yet.
///
/// ```
/// use zcbuf_core::pool::{LeakTracking, Pool, PoolConfig};
/// let pool = Pool::new(PoolConfig { leak_tracking: LeakTracking::Paranoid, ..Default::default() });
/// let _kept = pool.alloc(3000);
/// let leak = &pool.outstanding()[0];
/// assert_eq!((leak.requested, leak.capacity), (3000, 3072));
/// assert!(leak.allocated_at.is_some());
/// ```
#[derive(Clone)]
pub struct Outstanding {
    /// Allocation number within the pool.
    pub id: u64,
    /// Bytes asked for.
    pub requested: usize,
    /// Bytes handed out (the block size).
    pub capacity: usize,
    /// Where it was allocated (paranoid mode only).
    pub allocated_at: Option<Arc<Backtrace>>,
}

impl fmt::Debug for Outstanding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pooled buffer #{} ({} bytes requested, {} held)",
            self.id, self.requested, self.capacity
        )?;
        if let Some(trace) = &self.allocated_at {
            write!(f, ", allocated at:\n{trace}")?;
        }
        Ok(())
    }
}

/// The registry of one pool.
#[derive(Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Outstanding>>,
}

impl Registry {
    /// Records a new buffer; returns its id.
    pub(crate) fn record(&self, mode: LeakTracking, requested: usize, capacity: usize) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let allocated_at =
            (mode == LeakTracking::Paranoid).then(|| Arc::new(Backtrace::force_capture()));
        self.live.lock().insert(
            id,
            Outstanding {
                id,
                requested,
                capacity,
                allocated_at,
            },
        );
        id
    }

    pub(crate) fn forget(&self, id: u64) {
        self.live.lock().remove(&id);
    }

    pub(crate) fn outstanding(&self) -> Vec<Outstanding> {
        let mut all: Vec<Outstanding> = self.live.lock().values().cloned().collect();
        all.sort_by_key(|o| o.id);
        all
    }
}
