//! Size classes and the shared arena of one class: page-aligned chunks
//! carved into equal blocks, and the list of free blocks.

use std::io;

use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};
use parking_lot::Mutex;

use crate::storage::{HomePtr, SlotPtr, SlotTable};

/// Smallest class: 256 bytes.
const MIN_CLASS_SHIFT: u32 = 8;
/// Largest class: 1 MiB; bigger requests get a dedicated map.
pub(crate) const MAX_CLASS: usize = 1 << 20;
/// The page size blocks of a page or more are multiples of (and so, in a
/// page-aligned chunk, aligned to): what zero-copy sends pin by.
const PAGE: usize = 4096;

/// Block sizes of the classes, smallest first: four per power of two
/// (256, 320, 384, 448, 512, 640, ...) up to a page, so a block wastes at
/// most a fifth of itself; from a page on, only multiples of the page keep
/// every block page-aligned, so 8 and 12 KiB serve above 4 KiB, and from
/// 16 KiB on the four steps per power of two are whole pages again.
pub(crate) const CLASS_SIZES: [usize; CLASS_COUNT] = class_sizes();
/// Number of size classes.
pub(crate) const CLASS_COUNT: usize = 44;

/// Steps per power of two, and the "generic" sizes they make: generic
/// class `g` (0 for 256 B) has `(1 << shift) + (q + 1) << (shift - 2)`
/// bytes for `g = (shift - 8) * 4 + q + 1`; up to 1 MiB there are 49.
const GENERIC_COUNT: usize = 49;

const fn generic_size(g: usize) -> usize {
    if g == 0 {
        return 1 << MIN_CLASS_SHIFT;
    }
    let shift = MIN_CLASS_SHIFT as usize + (g - 1) / 4;
    let q = (g - 1) % 4;
    (1 << shift) + ((q + 1) << (shift - 2))
}

const fn class_sizes() -> [usize; CLASS_COUNT] {
    let mut sizes = [0; CLASS_COUNT];
    let (mut g, mut n) = (0, 0);
    while g < GENERIC_COUNT {
        let size = generic_size(g);
        if size <= PAGE || size % PAGE == 0 {
            sizes[n] = size;
            n += 1;
        }
        g += 1;
    }
    // A wrong CLASS_COUNT fails the build here.
    assert!(n == CLASS_COUNT);
    sizes
}

/// For each generic class, the smallest class at least as large.
const GENERIC_TO_CLASS: [u8; GENERIC_COUNT] = generic_to_class();

const fn generic_to_class() -> [u8; GENERIC_COUNT] {
    let mut map = [0; GENERIC_COUNT];
    let (mut g, mut c) = (0, 0);
    while g < GENERIC_COUNT {
        while CLASS_SIZES[c] < generic_size(g) {
            c += 1;
        }
        map[g] = c as u8;
        g += 1;
    }
    map
}

/// Granularity of [`SMALL_CLASS`]: every class size up to a page is a
/// multiple of it.
const SMALL_STEP_SHIFT: u32 = 6;

/// The class of every request up to a page, by `(len - 1) >> 6`: a table
/// lookup instead of the arithmetic below for the common sizes.
const SMALL_CLASS: [u8; PAGE >> SMALL_STEP_SHIFT] = small_class();

const fn small_class() -> [u8; PAGE >> SMALL_STEP_SHIFT] {
    let mut map = [0; PAGE >> SMALL_STEP_SHIFT];
    let (mut i, mut c) = (0, 0);
    while i < map.len() {
        // The largest request of this step; the smallest one (after the
        // step below's largest) falls in the same class, as every class
        // size up to a page is a multiple of the step (checked here).
        let largest = (i + 1) << SMALL_STEP_SHIFT;
        while CLASS_SIZES[c] < largest {
            c += 1;
        }
        assert!(CLASS_SIZES[c] % (1 << SMALL_STEP_SHIFT) == 0);
        map[i] = c as u8;
        i += 1;
    }
    map
}

/// The class serving `len` bytes, or `None` above the largest class.
#[inline]
pub(crate) fn class_of(len: usize) -> Option<usize> {
    if len <= 1 << MIN_CLASS_SHIFT {
        return Some(0);
    }
    if len <= PAGE {
        // 256 < len <= 4096: `len - 1` cannot wrap, and the index is below 64.
        return Some(usize::from(SMALL_CLASS[(len - 1) >> SMALL_STEP_SHIFT]));
    }
    // Checked before any arithmetic: nothing below can overflow.
    if len > MAX_CLASS {
        return None;
    }
    // 256 < len <= 1 MiB: `len - 1` has its top bit at 8..=19, and the
    // two bits below it say which quarter of that power of two `len` is in.
    let top = (len - 1).ilog2();
    let quarter = ((len - 1) >> (top - 2)) & 3;
    let generic = (top - MIN_CLASS_SHIFT) as usize * 4 + quarter + 1;
    Some(usize::from(GENERIC_TO_CLASS[generic]))
}

/// Block size of class `class`.
#[inline]
pub(crate) const fn class_size(class: usize) -> usize {
    CLASS_SIZES[class]
}

/// Bytes mapped at a time for a class: whole pages, at least 64 KiB of
/// small blocks, at most 16 blocks and 1 MiB of large ones (at least one
/// block): a class holds at most one partly used chunk's worth of idle
/// memory, which for large blocks is what the memory overhead is made of.
pub(crate) const fn chunk_size(class: usize) -> usize {
    let size = class_size(class);
    let blocks = if size * 16 <= 64 << 10 {
        (64 << 10) / size
    } else if size * 16 <= 1 << 20 {
        16
    } else if size <= 1 << 20 {
        (1 << 20) / size
    } else {
        1
    };
    (blocks * size).div_ceil(PAGE) * PAGE
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

/// Blocks of at least this size are whole pages, and free ones beyond
/// [`ARENA_RESIDENT_BYTES`] go back to the OS.
const RELEASE_MIN_SIZE: usize = 16 << 10;
/// Free bytes of one large class the arena keeps resident (at least one
/// block); the pages of more are given back with `MADV_FREE`. What a workload
/// freed after its peak thus costs no memory, in every class at once.
const ARENA_RESIDENT_BYTES: usize = 1 << 20;

/// How many free blocks of `class` the arena keeps resident, if it gives
/// any back at all.
const fn resident_limit(class: usize) -> Option<usize> {
    let size = class_size(class);
    if size >= RELEASE_MIN_SIZE {
        let blocks = ARENA_RESIDENT_BYTES / size;
        Some(if blocks == 0 { 1 } else { blocks })
    } else {
        None
    }
}

/// The shared state of one size class.
pub(crate) struct Arena {
    inner: Mutex<ArenaInner>,
}

struct ArenaInner {
    /// Slots of free blocks whose memory is resident, in chunks this arena
    /// keeps mapped.
    free: Vec<SlotPtr>,
    /// Slots of free blocks whose pages went back to the OS (still mapped:
    /// the kernel reclaims them when it needs memory, until then a block
    /// reads as it was, after that as zeros; not counted as reserved).
    released: Vec<SlotPtr>,
    chunks: Vec<Chunk>,
    /// The fewest blocks `free` held since the last check (see
    /// [`Arena::push_all`]): the bottom `low_water` blocks of the list (it
    /// is a stack) stayed unused all that time.
    low_water: usize,
    /// Blocks given to the arena since the last check.
    since_check: usize,
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

/// Gives the pages of a free block back to the OS; `false` if it could not.
fn release_pages(block: SlotPtr, size: usize) -> bool {
    if cfg!(miri) {
        // Miri cannot run `madvise`: blocks stay resident there.
        return false;
    }
    // SAFETY: the block is free (no view, in no list but the one the caller
    // is putting it in, under the arena's lock), lies in a chunk this arena
    // keeps mapped, and is whole pages at a page-aligned address (classes
    // from RELEASE_MIN_SIZE on are multiples of the page, and chunks are
    // page-aligned). MADV_FREE keeps the mapping: the next user reads the
    // old bytes or zeros, never unmapped memory. Not MADV_DONTNEED: a block
    // that serves again before the kernel reclaims it costs no page faults
    // (blocks cycling between a producer and a consumer thread took 3x
    // longer with DONTNEED).
    unsafe {
        libc::madvise(
            block.block().as_ptr().cast::<libc::c_void>(),
            size,
            libc::MADV_FREE,
        ) == 0
    }
}

/// A block popped from an arena.
pub(crate) struct Popped {
    pub(crate) slot: SlotPtr,
    /// Whether its pages had gone back to the OS: it counts as reserved
    /// again from now on.
    pub(crate) was_released: bool,
}

impl Arena {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(ArenaInner {
                free: Vec::new(),
                released: Vec::new(),
                chunks: Vec::new(),
                low_water: 0,
                since_check: 0,
            }),
        }
    }

    /// A free block, resident ones first, if the arena has one.
    pub(crate) fn pop(&self) -> Option<Popped> {
        let mut inner = self.inner.lock();
        if let Some(slot) = inner.free.pop() {
            inner.low_water = inner.low_water.min(inner.free.len());
            return Some(Popped {
                slot,
                was_released: false,
            });
        }
        inner.released.pop().map(|slot| Popped {
            slot,
            was_released: true,
        })
    }

    /// Gives back a block `pop` returned and the caller could not use.
    pub(crate) fn unpop(&self, popped: Popped) {
        let mut inner = self.inner.lock();
        if popped.was_released {
            inner.released.push(popped.slot);
        } else {
            inner.free.push(popped.slot);
        }
    }

    /// Moves up to `max` resident free blocks into `into`; returns how many.
    pub(crate) fn pop_batch(&self, max: usize, into: &mut Vec<SlotPtr>) -> usize {
        let mut inner = self.inner.lock();
        let n = inner.free.len().min(max);
        let from = inner.free.len() - n;
        into.extend(inner.free.drain(from..));
        inner.low_water = inner.low_water.min(from);
        n
    }

    /// Gives free blocks of class `class` back; returns the bytes whose
    /// pages went back to the OS (no longer reserved).
    ///
    /// Large classes keep [`ARENA_RESIDENT_BYTES`] of free blocks
    /// resident; what is above that goes back to the OS only once it has
    /// stayed unused from one check to the next (a check per that many
    /// blocks given here). Giving back on every free beyond the budget
    /// cost a `madvise` — and, with threads on other CPUs, a TLB shootdown
    /// — per block whenever more blocks than the budget cycled between a
    /// producer and a consumer thread (1.6 µs per 64 KiB free, 2-3x
    /// `Vec`'s time); an idle arena holds at most twice the budget.
    pub(crate) fn push_all(
        &self,
        class: usize,
        blocks: impl IntoIterator<Item = SlotPtr>,
    ) -> usize {
        let mut inner = self.inner.lock();
        let before = inner.free.len();
        inner.free.extend(blocks);
        let Some(limit) = resident_limit(class) else {
            return 0;
        };
        inner.since_check += inner.free.len() - before;
        if inner.since_check < limit {
            return 0;
        }
        let ArenaInner {
            free,
            released,
            low_water,
            since_check,
            ..
        } = &mut *inner;
        *since_check = 0;
        // The bottom `low_water` blocks were not popped since the last
        // check: idle. Give back those above the budget, oldest first.
        let idle = (*low_water).min(free.len().saturating_sub(limit));
        let size = class_size(class);
        let mut given = 0;
        let mut kept = Vec::new();
        for block in free.drain(..idle) {
            if release_pages(block, size) {
                released.push(block);
                given += size;
            } else {
                kept.push(block);
            }
        }
        free.extend(kept);
        *low_water = free.len();
        given
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
        super::regions::note_mapped();
        first
    }

    /// Appends `(address, length)` of every chunk mapped now (read only,
    /// for [`super::regions`]).
    pub(crate) fn chunk_regions(&self, out: &mut Vec<(usize, usize)>) {
        let inner = self.inner.lock();
        out.extend(
            inner
                .chunks
                .iter()
                .map(|c| (c.map.as_ptr() as usize, c.map.len())),
        );
    }

    /// Number of free blocks held here.
    pub(crate) fn free_blocks(&self) -> usize {
        let inner = self.inner.lock();
        inner.free.len() + inner.released.len()
    }

    /// Unmaps every chunk whose blocks are all free; returns the bytes
    /// unmapped and, of those, the bytes that were still reserved
    /// (resident).
    pub(crate) fn trim(&self, class: usize) -> (usize, usize) {
        let size = class_size(class);
        let mut inner = self.inner.lock();
        let ArenaInner {
            free,
            released,
            chunks,
            low_water,
            ..
        } = &mut *inner;
        // Sorting reorders the stack: nothing in it counts as idle until
        // the next check.
        *low_water = 0;
        free.sort_unstable_by_key(|b| b.addr());
        released.sort_unstable_by_key(|b| b.addr());
        let (mut unmapped, mut resident) = (0, 0);
        chunks.retain(|Chunk { map, .. }| {
            let base = map.as_ptr() as usize;
            let end = base + map.len();
            let range = |list: &[SlotPtr]| {
                list.partition_point(|p| p.addr() < base)..list.partition_point(|p| p.addr() < end)
            };
            let (here, gone) = (range(free), range(released));
            if here.len() + gone.len() == map.len() / size {
                resident += map.len() - gone.len() * size;
                unmapped += map.len();
                free.drain(here);
                released.drain(gone);
                // Before the unmap: an io_uring table holding this range
                // must be refreshed before its next fixed send.
                super::regions::note_unmapping();
                false // every block free: the slots go, the map is unmapped
            } else {
                true
            }
        });
        (unmapped, resident)
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
        assert_eq!(class_size(class_of(257).unwrap()), 320);
        assert_eq!(class_size(class_of(4096).unwrap()), 4096);
        assert_eq!(class_size(class_of(4097).unwrap()), 8192);
        assert_eq!(class_size(class_of(8193).unwrap()), 12288);
        assert_eq!(class_size(class_of(16385).unwrap()), 20480);
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
        assert_eq!(class_size(CLASS_COUNT - 1), MAX_CLASS);
        // Every request up to a page (the table's range) and past it gets
        // the smallest class that holds it.
        let step = if cfg!(miri) { 61 } else { 1 };
        for len in (1..=3 * PAGE).step_by(step) {
            let class = class_of(len).unwrap();
            assert!(class_size(class) >= len, "{len}");
            assert!(class == 0 || class_size(class - 1) < len, "{len}");
        }
        for class in 0..CLASS_COUNT {
            let size = class_size(class);
            assert_eq!(class_of(size), Some(class));
            assert!(
                size < PAGE || size % PAGE == 0,
                "{size}: large blocks are whole pages"
            );
            assert_eq!(chunk_size(class) % PAGE, 0);
            assert!(chunk_size(class) / size >= 1);
            if class > 0 {
                let below = class_size(class - 1);
                assert!(below < size);
                // The smallest request this class serves wastes at most a
                // fifth of the block below a page (a half between 4 and 8
                // KiB, where no whole-page class fits between).
                let waste = size as f64 / (below + 1) as f64;
                assert!(
                    waste
                        <= if size <= PAGE || size > 4 * PAGE {
                            1.25
                        } else {
                            2.0
                        },
                    "{size}"
                );
                assert_eq!(class_of(below + 1), Some(class));
            }
        }
    }
}
