//! The memory behind every [`Buf`](crate::Buf) and [`BufMut`](crate::BufMut).
//!
//! A [`Storage`] is one region of memory plus whatever must be kept alive
//! (or dropped) to give it back: a `Vec<u8>`, an aligned heap allocation, or
//! any foreign owner (a `bytes::Bytes`, a memory map, a pool chunk, memory
//! handed in from Java). It is always held through an `Arc<Storage>`: every
//! view holds one strong count, and the owner is dropped exactly once, when
//! the last view goes. That is also what keeps memory pinned by a zero-copy
//! send alive: the sender holds views until the kernel is done with them.

use std::alloc::{self, Layout};
use std::any::Any;
use std::ptr::NonNull;

/// The owner of a storage's memory; dropping it frees the memory.
pub(crate) enum Owner {
    /// A vector whose heap buffer the views point into. Moving the `Vec`
    /// does not move its buffer, so the pointers stay valid.
    Vec(#[allow(dead_code)] Vec<u8>),
    /// A `std::alloc` allocation with a caller-chosen alignment.
    Heap(HeapAlloc),
    /// A block of a [`Pool`](crate::pool::Pool), given back on drop. A
    /// variant of its own (not `Foreign`) so pooled buffers cost no second
    /// heap allocation for a boxed owner.
    #[cfg(unix)]
    Pooled(#[allow(dead_code)] crate::pool::Block),
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

    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
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
    /// Allocates `cap` bytes aligned to `align` (a power of two).
    ///
    /// Aborts through `handle_alloc_error` if the allocator fails, as `Vec`
    /// does; returns `None` for an impossible layout.
    pub(crate) fn new(cap: usize, align: usize) -> Option<Self> {
        let layout = Layout::from_size_align(cap, align).ok()?;
        let ptr = if cap == 0 {
            // A zero-sized region needs no memory, only a well-aligned,
            // non-null address; it is never dereferenced nor freed.
            NonNull::new(align as *mut u8)?
        } else {
            // SAFETY: `layout` has a non-zero size, as `alloc` requires.
            let raw = unsafe { alloc::alloc(layout) };
            match NonNull::new(raw) {
                Some(p) => p,
                None => alloc::handle_alloc_error(layout),
            }
        };
        Some(Self { ptr, layout })
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
