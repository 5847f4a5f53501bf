//! The memory behind every [`Buf`](crate::Buf) and [`BufMut`](crate::BufMut).
//!
//! Every view of counted memory holds a [`StorageRef`]: a pointer to a
//! [`Header`] with the number of views and what gives the memory back when
//! that number reaches zero. There are two kinds of header:
//!
//! - an **owned** header, on the heap, holds an [`Owner`] (a `Vec<u8>`, an
//!   aligned heap allocation, or any foreign owner: a `bytes::Bytes`, a
//!   memory map, memory handed in from Java); the last view drops the owner
//!   and frees the header;
//! - a **block slot** is a header the pool keeps for each of its blocks, in
//!   a [`SlotTable`] beside the chunk: lending a block writes its slot and
//!   sets the count to one, and the last view gives the slot (and with it
//!   the block) back to its [`BlockHome`]. So a pooled buffer costs no heap
//!   allocation at all, and its header is recycled with its block.
//!
//! Either way the memory goes back exactly once, when the last view is
//! gone: that is what keeps memory pinned by a zero-copy send alive (the
//! sender holds views until the kernel is done with them).
//!
//! This module is the bottom layer: it knows nothing of the pool, which
//! implements [`BlockHome`].

use std::alloc::{self, Layout};
use std::any::Any;
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};
use std::sync::atomic::{self, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::AllocError;

/// The owner of an owned header's memory; dropping it frees the memory.
pub(crate) enum Owner {
    /// A vector whose heap buffer the views point into. Moving the `Vec`
    /// does not move its buffer, so the pointers stay valid.
    Vec(#[allow(dead_code)] Vec<u8>),
    /// A `std::alloc` allocation with a caller-chosen alignment.
    Heap(HeapAlloc),
    /// Anything else that keeps the memory alive while it lives.
    Foreign(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
}

/// The shared header of one memory region: the count of views and what
/// gives the memory back.
pub(crate) struct Header {
    /// Views holding this header. Meaningless for a block slot not lent
    /// out (it is set to 1 when the block is lent).
    count: AtomicUsize,
    body: Body,
}

enum Body {
    /// A header of its own on the heap, freed with its owner.
    Owned(Owner),
    /// A pool block's slot, which lives as long as the block's chunk.
    Block(BlockSlot),
}

/// What a block slot knows of its block.
///
/// Everything but the tag is fixed when the table is made, so lending a
/// block writes its count (and its tag, when the home gives one) and the
/// last view reads back exactly those: no per-buffer home to store, no
/// store the next read cannot forward.
struct BlockSlot {
    /// The block's first byte.
    addr: NonNull<u8>,
    /// The block's size class.
    class: usize,
    /// Where the block goes back to.
    home: HomePtr,
    /// The home's tag for the current loan ([`NO_TAG`]: none, and always
    /// while the slot is free): written when the block is lent with a tag,
    /// read and reset by the last view. Only whoever holds
    /// the slot exclusively touches it: the pool while the block is free
    /// (no view, the slot in one free list), the last view when it goes.
    tag: UnsafeCell<u64>,
}

/// The tag of a loan without one.
const NO_TAG: u64 = u64::MAX;

/// Where a lent block goes back to when the last view of it is gone.
///
/// Implemented by the pool; this trait is what lets the storage layer hold
/// pool blocks without depending on the pool.
pub(crate) trait BlockHome: Send + Sync {
    /// Takes back the block whose slot is `slot`, of size class `class`;
    /// `tag` is what the home attached to it when it lent it. The slot is
    /// free from now on (no view of it is left).
    fn take_back(&self, slot: SlotPtr, class: usize, tag: Option<u64>);
}

/// The home of every block of a slot table.
#[derive(Clone, Copy)]
pub(crate) struct HomePtr {
    home: NonNull<dyn BlockHome>,
    /// Whether the home is an `Arc` that every loan holds one count of
    /// (else it lives for the whole process).
    counted: bool,
}

// SAFETY: a `HomePtr` only reaches a `BlockHome`, which is `Send + Sync`.
unsafe impl Send for HomePtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for HomePtr {}

impl HomePtr {
    /// A home that lives for the whole process: loans count nothing.
    #[cfg_attr(not(unix), allow(dead_code))] // only the pool (unix) makes one
    pub(crate) fn forever(home: &'static dyn BlockHome) -> Self {
        Self {
            home: NonNull::from(home),
            counted: false,
        }
    }

    /// A home in an `Arc`: each loan holds one count of it, so the home
    /// (and the tables it keeps) lives as long as any lent block.
    ///
    /// # Safety
    ///
    /// `home` must come from `Arc::as_ptr` of an `Arc<_>` that is alive
    /// whenever a block of the table is lent (the lender holds it).
    #[cfg_attr(not(unix), allow(dead_code))] // only the pool (unix) makes one
    pub(crate) unsafe fn counted(home: *const dyn BlockHome) -> Self {
        Self {
            home: NonNull::new(home.cast_mut()).expect("an Arc's pointer is not null"),
            counted: true,
        }
    }
}

/// The slot of one pool block: a name for a [`Header`] in a [`SlotTable`].
///
/// A `SlotPtr` is only made by a `SlotTable` (or handed back by the last
/// view of a block) and the pool uses it only while the table lives: the
/// pool drops a table only with its chunk, when every block of the chunk
/// is free, or when the pool itself goes (no block can be lent then: each
/// holds the pool alive).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SlotPtr(NonNull<Header>);

// SAFETY: a `SlotPtr` is a name for a slot; the pool hands each slot (and
// its block) to one user at a time, and the slot's shared parts are
// immutable or atomic.
unsafe impl Send for SlotPtr {}
// SAFETY: as for `Send`; shared access reads only the address.
unsafe impl Sync for SlotPtr {}

impl SlotPtr {
    #[inline]
    fn slot(&self) -> &BlockSlot {
        // SAFETY: the table holding the slot lives while the pool uses this
        // name (see the type's docs); `addr` and `class` are never written
        // after the table was made, and `tag` is not touched here.
        match unsafe { &self.0.as_ref().body } {
            Body::Block(slot) => slot,
            Body::Owned(_) => unreachable!("a SlotPtr names a block slot"),
        }
    }

    /// The block's first byte, with the provenance of its chunk's map.
    #[inline]
    pub(crate) fn block(self) -> NonNull<u8> {
        self.slot().addr
    }

    /// The block's address, for sorting.
    pub(crate) fn addr(self) -> usize {
        self.block().as_ptr() as usize
    }
}

/// One slot of a [`SlotTable`]: a header alone on its cache line (a
/// header is 56 bytes), so that lending a block on one thread and freeing
/// its neighbour on another never write the same line. `repr(C)`: the
/// header is at the line's start, where a [`SlotPtr`] points.
#[repr(C, align(64))]
struct SlotLine(Header);

/// The slots of one chunk's blocks, at addresses that never change; freed
/// on drop (when no block of the chunk is lent).
pub(crate) struct SlotTable {
    /// From `Box::into_raw`: kept raw so that moving the table does not
    /// assert unique access to slots that views point at.
    slots: NonNull<[SlotLine]>,
}

// SAFETY: the table only owns its slots; see `SlotPtr` for how they are
// shared.
unsafe impl Send for SlotTable {}
// SAFETY: as for `Send`.
unsafe impl Sync for SlotTable {}

impl SlotTable {
    /// Slots for `blocks` blocks of `size` bytes of class `class`, the
    /// first at `base`; `base + blocks * size` must not pass the end of
    /// the chunk `base` belongs to.
    pub(crate) fn new(
        base: NonNull<u8>,
        size: usize,
        blocks: usize,
        class: usize,
        home: HomePtr,
    ) -> Self {
        let slots: Box<[SlotLine]> = (0..blocks)
            .map(|i| {
                SlotLine(Header {
                    count: AtomicUsize::new(0),
                    body: Body::Block(BlockSlot {
                        // Inside the chunk (callers' contract), so not null;
                        // `wrapping_add` keeps the chunk's provenance.
                        addr: NonNull::new(base.as_ptr().wrapping_add(i * size))
                            .expect("a block inside a map is not at address 0"),
                        class,
                        home,
                        tag: UnsafeCell::new(NO_TAG),
                    }),
                })
            })
            .collect();
        Self {
            slots: NonNull::from(Box::leak(slots)),
        }
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The slot of block `i`; panics if `i >= len()`.
    pub(crate) fn slot(&self, i: usize) -> SlotPtr {
        assert!(i < self.len(), "slot {i} of {}", self.len());
        // SAFETY: `i` is inside the table, so the pointer is too; `add` on
        // the table's own raw pointer keeps its provenance, and the header
        // is at the start of its `repr(C)` line.
        SlotPtr(unsafe { self.slots.cast::<SlotLine>().add(i) }.cast::<Header>())
    }
}

impl Drop for SlotTable {
    fn drop(&mut self) {
        // SAFETY: `slots` came from `Box::leak` of a boxed slice and is
        // freed only here, once; the pool drops a table only when none of
        // its blocks is lent (see `SlotPtr`), so nothing refers to it.
        drop(unsafe { Box::from_raw(self.slots.as_ptr()) });
    }
}

/// One counted reference to a [`Header`]: what every view of counted
/// memory holds. Cloning adds a view, dropping removes one; the last drop
/// gives the memory back.
pub(crate) struct StorageRef {
    header: NonNull<Header>,
}

// SAFETY: the count is atomic; an owned header's owner is `Send + Sync`
// (every `Owner` is), a block slot's home is `Send + Sync`, and the rest of
// a header is immutable while views exist (`tag` is touched only by whoever
// holds the slot exclusively, see `BlockSlot`).
unsafe impl Send for StorageRef {}
// SAFETY: as for `Send`: `&StorageRef` reads only immutable parts and the
// atomic count.
unsafe impl Sync for StorageRef {}

impl StorageRef {
    /// A new owned header on the heap, with one view.
    pub(crate) fn new(owner: Owner) -> Self {
        let header = Box::new(Header {
            count: AtomicUsize::new(1),
            body: Body::Owned(owner),
        });
        Self {
            header: NonNull::from(Box::leak(header)),
        }
    }

    /// Lends the block of a free slot: its first view.
    ///
    /// # Safety
    ///
    /// `slot` must be free (no view of it alive, in no free list) and held
    /// by the caller alone; for a counted home, the caller holds a count
    /// of the home's `Arc` while it calls this.
    #[inline]
    pub(crate) unsafe fn lend(slot: SlotPtr, tag: Option<u64>) -> Self {
        let header = slot.0;
        // SAFETY: the caller holds the free slot alone, so nobody else
        // reads or writes its tag; the table keeps the header alive, and
        // the count taken of a counted home keeps the table alive until the
        // last view gives the block back.
        unsafe {
            let Body::Block(block) = &(*header.as_ptr()).body else {
                unreachable!("a SlotPtr names a block slot");
            };
            if block.home.counted {
                Arc::increment_strong_count(block.home.home.as_ptr().cast_const());
            }
            // A slot's tag is `NO_TAG` while it is free (the last view
            // resets it), so a loan without one writes nothing.
            if let Some(tag) = tag {
                *block.tag.get() = tag;
            }
            // Relaxed: whoever hands out the free slot (a thread's own
            // cache, or the arena's lock) orders this after the last
            // release of it.
            (*header.as_ptr()).count.store(1, Ordering::Relaxed);
        }
        Self { header }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: this reference counts as a view, so the header (on the
        // heap, or in a slot table the pool keeps while the block is lent)
        // is alive.
        unsafe { self.header.as_ref() }
    }

    /// Number of views holding this header now.
    pub(crate) fn count(&self) -> usize {
        self.header().count.load(Ordering::Acquire)
    }

    /// Whether both are views of one header.
    pub(crate) fn ptr_eq(&self, other: &StorageRef) -> bool {
        self.header == other.header
    }

    /// The whole region of a heap storage when this is its only view:
    /// where `BufMut` may reclaim to.
    pub(crate) fn unique_heap_region(&mut self) -> Option<(NonNull<u8>, usize)> {
        let header = self.header();
        // Acquire: other views' last reads of the region happen before the
        // caller writes it.
        if header.count.load(Ordering::Acquire) != 1 {
            return None;
        }
        match &header.body {
            Body::Owned(Owner::Heap(alloc)) => Some((alloc.ptr(), alloc.size())),
            _ => None,
        }
    }

    /// The foreign owner, if it is a `T`: how `Buf::from_owner` reaches the
    /// owner where it finally lives, inside the header.
    pub(crate) fn foreign<T: Any>(&self) -> Option<&T> {
        match &self.header().body {
            Body::Owned(Owner::Foreign(owner)) => owner.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The last view is gone: give the memory back. Not `#[cold]`: for a
    /// buffer that is never cloned this runs on every drop.
    #[inline]
    fn release(&mut self) {
        // Pairs with the `Release` decrements of the other views: their
        // uses of the memory happen before it is given back.
        atomic::fence(Ordering::Acquire);
        let header = self.header.as_ptr();
        // SAFETY: this was the last view (its count reached 0, or was 1): the
        // header is ours alone (the heap one to free, the slot to give
        // back) and alive until we do either.
        unsafe {
            match &(*header).body {
                Body::Owned(_) => Self::free_owned(self.header),
                Body::Block(block) => {
                    let tag = *block.tag.get();
                    if tag != NO_TAG {
                        // Free slots carry no tag (see `lend`).
                        *block.tag.get() = NO_TAG;
                    }
                    let (class, home) = (block.class, block.home);
                    // From here on the slot may be lent again, on any
                    // thread: nothing below touches it.
                    home.home.as_ref().take_back(
                        SlotPtr(self.header),
                        class,
                        (tag != NO_TAG).then_some(tag),
                    );
                    if home.counted {
                        // Last, as it may be the only count of the home,
                        // whose tables hold the slot. The count is the
                        // one `lend` took.
                        Arc::decrement_strong_count(home.home.as_ptr().cast_const());
                    }
                }
            }
        }
    }
}

impl StorageRef {
    /// Frees an owned header and its owner. Out of line: the owner's drop
    /// is not small, and keeping it out keeps a pooled buffer's drop
    /// short.
    ///
    /// # Safety
    ///
    /// `header` is an owned header from [`StorageRef::new`] whose last view
    /// is gone.
    #[inline(never)]
    unsafe fn free_owned(header: NonNull<Header>) {
        // SAFETY: the header came from `Box::leak` in `new` and no view of
        // it is left (the caller's contract), so it is freed once, here.
        drop(unsafe { Box::from_raw(header.as_ptr()) });
    }
}

impl Clone for StorageRef {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed, as `Arc` does: a new view is made from an existing one,
        // which keeps the header alive meanwhile.
        let before = self.header().count.fetch_add(1, Ordering::Relaxed);
        if before > isize::MAX as usize {
            // As `Arc`: the count cannot wrap (that would free memory in
            // use), and so many views mean leaked clones; stop the process.
            std::process::abort();
        }
        Self {
            header: self.header,
        }
    }
}

impl Drop for StorageRef {
    #[inline]
    fn drop(&mut self) {
        let count = &self.header().count;
        // A count of 1 seen by its holder cannot change under it: no other
        // view exists to clone or drop. So the common case, a buffer never
        // shared, skips the locked decrement. `Acquire` pairs with the
        // `Release` decrements of the views dropped before.
        if count.load(Ordering::Acquire) == 1 || count.fetch_sub(1, Ordering::Release) == 1 {
            self.release();
        }
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
