//! Size classes and the shared arena of one class: page-aligned chunks
//! carved into equal blocks, and the list of free blocks.

use std::io;

use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};
use parking_lot::Mutex;

use crate::storage::{HomePtr, SlotPtr, SlotTable};

/// Smallest class: 256 bytes.
pub(crate) const MIN_CLASS_SHIFT: u32 = 8;
/// Largest class: 1 MiB; bigger requests get a dedicated map.
pub(crate) const MAX_CLASS_SHIFT: u32 = 20;
/// Number of size classes.
pub(crate) const CLASS_COUNT: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;

/// The class serving `len` bytes, or `None` above the largest class.
#[inline]
pub(crate) fn class_of(len: usize) -> Option<usize> {
    // Checked first: `next_power_of_two` overflows above `usize::MAX / 2`.
    if len > 1 << MAX_CLASS_SHIFT {
        return None;
    }
    let shift = len
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_CLASS_SHIFT);
    (shift <= MAX_CLASS_SHIFT).then(|| (shift - MIN_CLASS_SHIFT) as usize)
}

/// Block size of class `class`.
#[inline]
pub(crate) const fn class_size(class: usize) -> usize {
    1 << (class as u32 + MIN_CLASS_SHIFT)
}

/// Bytes mapped at a time for a class: 16 blocks, at least 64 KiB, at
/// most 4 MiB (so a 1 MiB class maps 4 blocks at once, a 256 B class 256).
pub(crate) const fn chunk_size(class: usize) -> usize {
    let want = class_size(class) * 16;
    if want < 64 << 10 {
        64 << 10
    } else if want > 4 << 20 {
        4 << 20
    } else {
        want
    }
}

/// Maps `len` bytes of anonymous, page-aligned memory.
pub(crate) fn map_anon(len: usize, huge_pages: bool) -> io::Result<MmapMut> {
    let map = MmapOptions::new().len(len).map_anon()?;
    if huge_pages {
        // SAFETY: the range is exactly the mapping just created; MADV_HUGEPAGE
        // only changes how the kernel backs it, never its contents. Failure
        // (no THP support) is harmless and ignored.
        unsafe {
            libc::madvise(map.as_ptr() as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    Ok(map)
}

/// The shared state of one size class.
pub(crate) struct Arena {
    inner: Mutex<ArenaInner>,
}

struct ArenaInner {
    /// Slots of free blocks, in chunks this arena keeps mapped.
    free: Vec<SlotPtr>,
    chunks: Vec<Chunk>,
}

/// A mapped chunk and the slots (storage headers) of its blocks, which
/// live and go together: a slot is recycled with its block, so a pooled
/// buffer allocates no header of its own.
struct Chunk {
    /// Dropped first: no slot is lent when a chunk goes. Held only to be
    /// dropped with the map (blocks reach their slots through `SlotPtr`s).
    #[allow(dead_code)]
    slots: SlotTable,
    map: MmapMut,
}

impl Arena {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(ArenaInner {
                free: Vec::new(),
                chunks: Vec::new(),
            }),
        }
    }

    /// A free block, if the arena has one.
    pub(crate) fn pop(&self) -> Option<SlotPtr> {
        self.inner.lock().free.pop()
    }

    /// Moves up to `max` free blocks into `into`; returns how many.
    pub(crate) fn pop_batch(&self, max: usize, into: &mut Vec<SlotPtr>) -> usize {
        let mut inner = self.inner.lock();
        let n = inner.free.len().min(max);
        let from = inner.free.len() - n;
        into.extend(inner.free.drain(from..));
        n
    }

    /// Gives blocks back.
    pub(crate) fn push_all(&self, blocks: impl IntoIterator<Item = SlotPtr>) {
        self.inner.lock().free.extend(blocks);
    }

    /// Adds a freshly mapped chunk of class `class`, whose blocks go back
    /// to `home`, and returns the slot of one of its blocks; the others
    /// become free.
    pub(crate) fn add_chunk(&self, class: usize, mut map: MmapMut, home: HomePtr) -> SlotPtr {
        let size = class_size(class);
        // From the map itself (not a shared borrow of its bytes): blocks
        // are written through these pointers.
        let base = NonNull::new(map.as_mut_ptr()).expect("a map is not at address 0");
        let slots = SlotTable::new(base, size, map.len() / size, class, home);
        let first = slots.slot(0);
        let mut inner = self.inner.lock();
        inner
            .free
            .extend((1..slots.len()).rev().map(|i| slots.slot(i)));
        inner.chunks.push(Chunk { slots, map });
        first
    }

    /// Number of free blocks held here.
    pub(crate) fn free_blocks(&self) -> usize {
        self.inner.lock().free.len()
    }

    /// Unmaps every chunk whose blocks are all free; returns bytes unmapped.
    pub(crate) fn trim(&self, class: usize) -> usize {
        let size = class_size(class);
        let mut inner = self.inner.lock();
        let ArenaInner { free, chunks } = &mut *inner;
        free.sort_unstable_by_key(|b| b.addr());
        let mut released = 0;
        chunks.retain(|Chunk { map, .. }| {
            let base = map.as_ptr() as usize;
            let end = base + map.len();
            let lo = free.partition_point(|p| p.addr() < base);
            let hi = free.partition_point(|p| p.addr() < end);
            if hi - lo == map.len() / size {
                free.drain(lo..hi);
                released += map.len();
                false // every block free: the slots go, the map is unmapped
            } else {
                true
            }
        });
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes() {
        assert_eq!(class_of(0), Some(0));
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(256), Some(0));
        assert_eq!(class_of(257), Some(1));
        assert_eq!(class_of(4096), Some(4));
        assert_eq!(class_of(1 << 20), Some(CLASS_COUNT - 1));
        assert_eq!(class_of((1 << 20) + 1), None);
        for huge in [
            usize::MAX,
            usize::MAX / 2 + 1,
            isize::MAX as usize + 1,
            usize::MAX / 2,
        ] {
            assert_eq!(class_of(huge), None, "{huge}");
        }
        for class in 0..CLASS_COUNT {
            assert_eq!(chunk_size(class) % class_size(class), 0);
            assert_eq!(class_of(class_size(class)), Some(class));
        }
    }
}
