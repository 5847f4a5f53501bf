//! The memory behind every [`Buf`](crate::Buf) and [`BufMut`](crate::BufMut).
//!
//! A [`Storage`] is one region of memory plus whatever must be kept alive
//! (or dropped) to give it back: a `Vec<u8>`, an aligned heap allocation, or
//! any foreign owner (a `bytes::Bytes`, a memory map, a pool chunk, memory
//! handed in from Java). It is always held through an `Arc<Storage>`: every
//! view holds one strong count, and the owner is dropped exactly once, when
//! the last view goes. That is also what keeps memory pinned by a zero-copy
//! send alive: the sender holds views until the kernel is done with them.
//!
//! This module is the bottom layer: it knows nothing of the pool. A pool
//! block is an [`Owner::Pooled`] whose [`PooledBlock`] goes back through
//! the [`BlockHome`] trait, which the pool implements.

use std::alloc::{self, Layout};
use std::any::Any;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use crate::error::AllocError;

/// The owner of a storage's memory; dropping it frees the memory.
pub(crate) enum Owner {
    /// A vector whose heap buffer the views point into. Moving the `Vec`
    /// does not move its buffer, so the pointers stay valid.
    Vec(#[allow(dead_code)] Vec<u8>),
    /// A `std::alloc` allocation with a caller-chosen alignment.
    Heap(HeapAlloc),
    /// A block of an allocator with size classes (the pool), given back
    /// on drop. A variant of its own (not `Foreign`) so pooled buffers cost
    /// no second heap allocation for a boxed owner.
    Pooled(#[allow(dead_code)] PooledBlock),
    /// Anything else that keeps the memory alive while it lives.
    Foreign(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
}

/// Shared header of one memory region.
pub(crate) struct Storage {
    owner: Owner,
}

impl Storage {
    pub(crate) fn new(owner: Owner) -> Self {
        Self { owner }
    }

    /// The whole region of a heap storage: where `BufMut` may reclaim to.
    pub(crate) fn heap_region(&self) -> Option<(NonNull<u8>, usize)> {
        match &self.owner {
            Owner::Heap(alloc) => Some((alloc.ptr(), alloc.size())),
            _ => None,
        }
    }

    /// The foreign owner, if it is a `T`: how `Buf::from_owner` reaches the
    /// owner where it finally lives, inside the shared storage.
    pub(crate) fn foreign<T: Any>(&self) -> Option<&T> {
        match &self.owner {
            Owner::Foreign(owner) => owner.downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// Where a [`PooledBlock`] goes back to when the last view of it is gone.
///
/// Implemented by the pool; this trait is what lets the storage layer hold
/// pool blocks without depending on the pool.
pub(crate) trait BlockHome: Send + Sync {
    /// Takes back the block at `addr` of size class `class`; `tag` is what
    /// the home attached to the block when it handed it out.
    fn take_back(&self, addr: NonNull<u8>, class: usize, tag: Option<u64>);
}

/// A reference to a block's home that keeps it alive.
#[cfg_attr(not(unix), allow(dead_code))] // only the pool (unix) makes one
pub(crate) enum HomeRef {
    /// A home that lives for the whole process: no count to update.
    Static(&'static dyn BlockHome),
    /// A counted home, alive at least as long as the block.
    Counted(Arc<dyn BlockHome>),
}

/// One block handed out by a [`BlockHome`]; dropping it gives it back.
pub(crate) struct PooledBlock {
    home: HomeRef,
    addr: NonNull<u8>,
    class: usize,
    tag: Option<u64>,
}

impl PooledBlock {
    #[cfg_attr(not(unix), allow(dead_code))] // only the pool (unix) makes one
    pub(crate) fn new(home: HomeRef, addr: NonNull<u8>, class: usize, tag: Option<u64>) -> Self {
        Self {
            home,
            addr,
            class,
            tag,
        }
    }
}

// SAFETY: the block's address is only handed back to its home, which is
// `Send + Sync`; the bytes are used by the views of the storage, whose own
// rules (immutable once frozen, one writer before) make them shareable.
unsafe impl Send for PooledBlock {}
// SAFETY: as for `Send`: `&PooledBlock` gives access to nothing.
unsafe impl Sync for PooledBlock {}

impl Drop for PooledBlock {
    fn drop(&mut self) {
        let home: &dyn BlockHome = match &self.home {
            HomeRef::Static(home) => *home,
            HomeRef::Counted(home) => &**home,
        };
        home.take_back(self.addr, self.class, self.tag);
    }
}

/// An aligned allocation from the global allocator, freed on drop.
pub(crate) struct HeapAlloc {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `HeapAlloc` uniquely owns its allocation; nothing about it is tied
// to the thread that made it, and it only hands out its pointer.
unsafe impl Send for HeapAlloc {}
// SAFETY: a shared `&HeapAlloc` gives access to nothing but the pointer value.
unsafe impl Sync for HeapAlloc {}

impl HeapAlloc {
    /// Allocates `cap` bytes aligned to `align` (a power of two), or says
    /// why not; never aborts.
    pub(crate) fn try_new(cap: usize, align: usize) -> Result<Self, AllocError> {
        let layout = Layout::from_size_align(cap, align)
            .map_err(|_| AllocError::InvalidLayout { size: cap, align })?;
        let ptr = if cap == 0 {
            // A zero-sized region needs no memory, only a well-aligned,
            // non-null address (without provenance: it is never
            // dereferenced nor freed). `align` is a power of two, so not 0.
            NonNull::new(ptr::null_mut::<u8>().wrapping_add(align))
                .ok_or(AllocError::InvalidLayout { size: cap, align })?
        } else {
            // SAFETY: `layout` has a non-zero size, as `alloc` requires.
            let raw = unsafe { alloc::alloc(layout) };
            NonNull::new(raw).ok_or(AllocError::OutOfMemory { size: cap, align })?
        };
        Ok(Self { ptr, layout })
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    pub(crate) fn size(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HeapAlloc {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: `ptr` came from `alloc` with exactly this `layout` and is
            // freed only here, once, when the owning storage is dropped.
            unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }
}
