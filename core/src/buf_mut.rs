//! [`BufMut`]: a unique, writable buffer that freezes into [`Buf`]s.
//!
//! # Representation
//!
//! A `BufMut` is a pointer to the start of its unfrozen bytes, the number of
//! bytes written (`len`), the number of bytes it may write from that pointer
//! (`cap`), the alignment it was made with, and the counted storage
//! reference of the region (see [`Buf`]'s representation). It owns `ptr..ptr+cap` exclusively: [`split_to`](BufMut::split_to)
//! and [`freeze`](BufMut::freeze) hand out [`Buf`]s only for bytes *before*
//! the pointer, which the `BufMut` then never touches again, so a reader can
//! fill one chunk and cut frames out of it while the rest stays writable.
//!
//! A buffer that never had a region (capacity 0, as [`BufMut::new`] makes)
//! has no storage and a dangling, well-aligned pointer; its first write
//! allocates.
//!
//! # Sizes
//!
//! No size arithmetic here wraps: a request that cannot be met is an
//! [`AllocError`] from the `try_*` forms, and a panic with its message from
//! the others (an allocator that has no memory aborts, as for `Vec`).
//!
//! # Alignment
//!
//! Every buffer has an alignment that growing keeps: the one asked for
//! ([`BufMut::with_capacity_aligned`]), [`DEFAULT_ALIGN`], or for memory
//! handed in ([`BufMut::from_raw_parts`], pool blocks) the alignment of its
//! first byte's address, up to [`MAX_INFERRED_ALIGN`].

use std::alloc::{self, Layout};
use std::any::Any;
use std::io;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr::{self, NonNull};
use std::{fmt, slice};

use crate::buf::Buf;
use crate::error::{check_at, or_panic, AllocError, RangeError};
use crate::preview::write_preview;
use crate::storage::{HeapAlloc, Owner, StorageRef};

/// Alignment of buffers made by [`BufMut::with_capacity`]: enough for any
/// primitive and for SIMD loads of a cache line's worth.
pub const DEFAULT_ALIGN: usize = 16;

/// Largest alignment a buffer made from memory handed in keeps when it
/// grows (a page): its first byte's address decides, up to this.
///
/// ```
/// use zcbuf_core::pool::Pool;
///
/// let pool = Pool::new(Default::default());
/// let mut page = pool.alloc(4096); // page-aligned block
/// page.extend_from_slice(&[1; 4096]);
/// page.reserve(1); // regrows on the heap: still page-aligned
/// assert_eq!(page.as_ptr() as usize % zcbuf_core::MAX_INFERRED_ALIGN, 0);
/// ```
pub const MAX_INFERRED_ALIGN: usize = 4096;

/// A unique, growable, writable buffer.
///
/// Write with [`bytes::BufMut`] or [`std::io::Write`], then hand the bytes
/// out without copying: [`freeze`](Self::freeze) the whole thing, or
/// [`split_to`](Self::split_to) a frozen prefix and keep writing after it in
/// the same allocation.
///
/// ```
/// use bytes::BufMut as _;
/// use zcbuf_core::BufMut;
///
/// let mut chunk = BufMut::with_capacity(64);
/// chunk.put_u16(5);
/// chunk.put_slice(b"hello");
/// let frame = chunk.split_to(7); // a frozen Buf, no copy
/// chunk.put_slice(b"next");
/// assert_eq!(&frame[..], b"\x00\x05hello");
/// assert_eq!(&chunk[..], b"next");
/// ```
pub struct BufMut {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    align: usize,
    /// `None` only for a buffer that never had a region (`cap == 0`).
    storage: Option<StorageRef>,
}

// SAFETY: a `BufMut` exclusively owns `ptr..ptr+cap`; its storage is
// `Send + Sync`, so moving the `BufMut` to another thread is sound.
unsafe impl Send for BufMut {}
// SAFETY: `&BufMut` allows only reads of the bytes it owns.
unsafe impl Sync for BufMut {}

impl BufMut {
    /// An empty buffer with no capacity; allocates nothing until written.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// assert_eq!(buf.capacity(), 0);
    /// assert!(buf.freeze().ref_count().is_none()); // no storage was made
    /// ```
    pub const fn new() -> Self {
        Self::empty(DEFAULT_ALIGN)
    }

    /// A buffer without a region whose first allocation will be aligned
    /// to `align` (a power of two).
    const fn empty(align: usize) -> Self {
        Self {
            // SAFETY: `align` is a power of two, so not zero: the address
            // is non-null. It has no provenance and is never dereferenced
            // (every access is of zero bytes while `cap == 0`).
            ptr: unsafe { NonNull::new_unchecked(ptr::null_mut::<u8>().wrapping_add(align)) },
            len: 0,
            cap: 0,
            align,
            storage: None,
        }
    }

    /// A buffer with room for `cap` bytes, aligned to [`DEFAULT_ALIGN`];
    /// allocates nothing when `cap` is 0.
    ///
    /// Panics if `cap` exceeds `isize::MAX` (see
    /// [`try_with_capacity`](Self::try_with_capacity)).
    ///
    /// ```
    /// let buf = zcbuf_core::BufMut::with_capacity(100);
    /// assert!(buf.capacity() >= 100);
    /// assert!(buf.is_empty());
    /// ```
    #[track_caller]
    pub fn with_capacity(cap: usize) -> Self {
        Self::with_capacity_aligned(cap, DEFAULT_ALIGN)
    }

    /// Like [`with_capacity`](Self::with_capacity), with an error instead
    /// of a panic (or an abort when the allocator has no memory).
    ///
    /// ```
    /// assert!(zcbuf_core::BufMut::try_with_capacity(1 << 10).is_ok());
    /// assert!(zcbuf_core::BufMut::try_with_capacity(isize::MAX as usize + 1).is_err());
    /// ```
    pub fn try_with_capacity(cap: usize) -> Result<Self, AllocError> {
        Self::try_with_capacity_aligned(cap, DEFAULT_ALIGN)
    }

    /// A buffer with room for `cap` bytes whose first byte is aligned to
    /// `align` (a power of two), e.g. 4096 for `O_DIRECT` or page-sized I/O.
    /// Growing it keeps that alignment.
    ///
    /// Panics if `align` is not a power of two or `cap` rounded up to it
    /// exceeds `isize::MAX`; aborts if the allocator has no memory.
    ///
    /// ```
    /// let buf = zcbuf_core::BufMut::with_capacity_aligned(8192, 4096);
    /// assert_eq!(buf.as_ptr() as usize % 4096, 0);
    /// ```
    #[track_caller]
    pub fn with_capacity_aligned(cap: usize, align: usize) -> Self {
        or_alloc_panic(Self::try_with_capacity_aligned(cap, align))
    }

    /// Like [`with_capacity_aligned`](Self::with_capacity_aligned), with an
    /// error instead of a panic or an abort.
    ///
    /// ```
    /// use zcbuf_core::{AllocError, BufMut};
    /// assert!(BufMut::try_with_capacity_aligned(4096, 4096).is_ok());
    /// assert_eq!(
    ///     BufMut::try_with_capacity_aligned(10, 24).unwrap_err(),
    ///     AllocError::InvalidLayout { size: 10, align: 24 },
    /// );
    /// ```
    pub fn try_with_capacity_aligned(cap: usize, align: usize) -> Result<Self, AllocError> {
        // Checks the layout also when nothing is allocated.
        let alloc = HeapAlloc::try_new(cap, align)?;
        if cap == 0 {
            return Ok(Self::empty(align));
        }
        Ok(Self {
            ptr: alloc.ptr(),
            len: 0,
            cap,
            align,
            storage: Some(StorageRef::new(Owner::Heap(alloc))),
        })
    }

    /// Makes a writable buffer of `cap` bytes at `ptr`, kept alive by
    /// `owner`: how pools and other allocators hand out memory.
    ///
    /// When it has to grow, the new region (on the heap) has the alignment
    /// of `ptr`, up to [`MAX_INFERRED_ALIGN`].
    ///
    /// # Safety
    ///
    /// `ptr` must be non-null, `ptr..ptr + cap` must be valid for reads and
    /// writes and used by nobody else for as long as `owner` is alive, and
    /// dropping `owner` is what gives the memory back. `ptr` must stay
    /// valid when `owner` moves (see [`Buf::from_raw_parts`]).
    ///
    /// ```
    /// let backing: Box<[u8]> = vec![0u8; 16].into_boxed_slice();
    /// let ptr = Box::into_raw(backing);
    /// struct Owner(*mut [u8]);
    /// // SAFETY: Owner only frees the allocation it was given.
    /// unsafe impl Send for Owner {}
    /// unsafe impl Sync for Owner {}
    /// impl Drop for Owner {
    ///     fn drop(&mut self) {
    ///         // SAFETY: the pointer came from Box::into_raw above.
    ///         drop(unsafe { Box::from_raw(self.0) });
    ///     }
    /// }
    /// // SAFETY: the 16 bytes are ours alone until Owner drops them.
    /// let mut buf = unsafe { zcbuf_core::BufMut::from_raw_parts(ptr as *mut u8, 16, Owner(ptr)) };
    /// buf.extend_from_slice(b"pooled");
    /// assert_eq!(&buf.freeze()[..], b"pooled");
    /// ```
    pub unsafe fn from_raw_parts(ptr: *mut u8, cap: usize, owner: impl Any + Send + Sync) -> Self {
        let storage = StorageRef::new(Owner::Foreign(Box::new(owner)));
        // SAFETY: the caller's guarantees are exactly `from_storage`'s.
        unsafe { Self::from_storage(ptr, cap, storage) }
    }

    /// [`from_raw_parts`](Self::from_raw_parts) with a storage reference
    /// already made (a pool block's slot, recycled with the block).
    ///
    /// # Safety
    ///
    /// As for `from_raw_parts`, with `storage` (its only view) in the place
    /// of the owner.
    #[inline]
    pub(crate) unsafe fn from_storage(ptr: *mut u8, cap: usize, storage: StorageRef) -> Self {
        let ptr = NonNull::new(ptr).expect("buffer pointer must not be null");
        Self {
            ptr,
            len: 0,
            cap,
            align: alignment_of(ptr),
            storage: Some(storage),
        }
    }

    /// Bytes written so far.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"abc");
    /// assert_eq!(buf.len(), 3);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    ///
    /// ```
    /// assert!(zcbuf_core::BufMut::with_capacity(8).is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can be held without growing.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::BufMut::with_capacity(32).capacity(), 32);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Pointer to the first unfrozen byte.
    ///
    /// ```
    /// let buf = zcbuf_core::BufMut::with_capacity(8);
    /// assert!(!buf.as_ptr().is_null());
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Mutable pointer to the first unfrozen byte, valid for `capacity()`
    /// bytes of writes (for `read(2)`-style fills with [`set_len`](Self::set_len)).
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::with_capacity(8);
    /// let p = buf.as_mut_ptr();
    /// // SAFETY: 3 <= capacity, and the bytes are initialised before set_len.
    /// unsafe {
    ///     p.copy_from_nonoverlapping(b"abc".as_ptr(), 3);
    ///     buf.set_len(3);
    /// }
    /// assert_eq!(&buf[..], b"abc");
    /// ```
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The written bytes.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"xy");
    /// assert_eq!(buf.as_slice(), b"xy");
    /// ```
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes at `ptr` are initialised and ours.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The written bytes, mutably.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"xy");
    /// buf.as_mut_slice()[0] = b'z';
    /// assert_eq!(&buf[..], b"zy");
    /// ```
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the first `len` bytes at `ptr` are initialised, and this
        // `BufMut` is their only user (see the module docs).
        unsafe { slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The unwritten capacity, for filling before [`set_len`](Self::set_len).
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::with_capacity(4);
    /// buf.spare_capacity_mut()[0].write(9);
    /// // SAFETY: the first byte was just initialised.
    /// unsafe { buf.set_len(1) };
    /// assert_eq!(&buf[..], &[9]);
    /// ```
    pub fn spare_capacity_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `ptr+len..ptr+cap` is inside the region this `BufMut`
        // owns exclusively; `MaybeUninit` makes no claim about its contents.
        unsafe {
            slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.len).cast::<MaybeUninit<u8>>(),
                self.cap - self.len,
            )
        }
    }

    /// Sets the number of written bytes.
    ///
    /// # Safety
    ///
    /// `len <= capacity()`, and the first `len` bytes must be initialised.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"abc");
    /// // SAFETY: shrinking keeps the bytes initialised.
    /// unsafe { buf.set_len(1) };
    /// assert_eq!(&buf[..], b"a");
    /// ```
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    /// Shortens the written bytes to `len`; does nothing if not longer.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"abcdef");
    /// buf.truncate(3);
    /// assert_eq!(&buf[..], b"abc");
    /// ```
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets the written bytes, keeping the capacity.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"abc");
    /// buf.clear();
    /// assert!(buf.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `bytes`, growing if needed.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"one ");
    /// buf.extend_from_slice(b"two");
    /// assert_eq!(&buf[..], b"one two");
    /// ```
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        // SAFETY: `reserve` made room for `bytes.len()` more bytes after
        // `len`, in memory this `BufMut` owns, which cannot overlap `bytes`
        // (a shared borrow of other memory, or of our own frozen bytes).
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(self.len), bytes.len());
        }
        self.len += bytes.len();
    }

    /// Makes room for at least `additional` more bytes.
    ///
    /// When no frozen view of this buffer's storage is alive any more, the
    /// written bytes move back to the start of the region and its whole
    /// size is reused; otherwise a new region is allocated on the heap (at
    /// least double the current capacity, same alignment — see the module
    /// docs) and the written bytes are copied into it. Frozen views keep
    /// the old region alive.
    ///
    /// Panics if `len() + additional` overflows or exceeds `isize::MAX`
    /// (see [`try_reserve`](Self::try_reserve)); aborts if the allocator
    /// has no memory.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::with_capacity_aligned(4, 4096);
    /// buf.reserve(100);
    /// assert!(buf.capacity() >= 100);
    /// assert_eq!(buf.as_ptr() as usize % 4096, 0);
    /// ```
    #[track_caller]
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        // Inline only the check: filling a buffer that has room (a pooled
        // block filled to its size) must not pay a call; `len <= cap` always.
        if self.cap - self.len < additional {
            self.reserve_slow(additional);
        }
    }

    #[track_caller]
    #[cold]
    #[inline(never)]
    fn reserve_slow(&mut self, additional: usize) {
        or_alloc_panic(self.grow(additional))
    }

    /// Like [`reserve`](Self::reserve), with an error (and the buffer
    /// unchanged) instead of a panic or an abort.
    ///
    /// ```
    /// use zcbuf_core::{AllocError, BufMut};
    /// let mut buf = BufMut::new();
    /// buf.extend_from_slice(b"abc");
    /// assert_eq!(
    ///     buf.try_reserve(usize::MAX).unwrap_err(),
    ///     AllocError::CapacityOverflow { len: 3, additional: usize::MAX },
    /// );
    /// assert!(buf.try_reserve(isize::MAX as usize).is_err());
    /// assert_eq!(&buf[..], b"abc");
    /// ```
    #[inline]
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), AllocError> {
        if self.cap - self.len >= additional {
            return Ok(());
        }
        self.grow(additional)
    }

    /// `try_reserve` when the room left is too small: reclaims the region
    /// or moves to a larger one.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, additional: usize) -> Result<(), AllocError> {
        let needed = self
            .len
            .checked_add(additional)
            .ok_or(AllocError::CapacityOverflow {
                len: self.len,
                additional,
            })?;
        if needed <= self.cap {
            return Ok(());
        }
        if self.try_reclaim(needed) {
            return Ok(());
        }
        // The largest size a layout of this alignment allows, so that
        // doubling never asks for more than any allocation can be.
        let largest = isize::MAX as usize - (self.align - 1);
        let new_cap = needed.max(self.cap.saturating_mul(2).min(largest)).max(64);
        let mut grown = match Self::try_with_capacity_aligned(new_cap, self.align) {
            // Doubling asked for more than the allocator has: `needed`
            // alone may still fit.
            Err(AllocError::OutOfMemory { .. }) if new_cap > needed => {
                Self::try_with_capacity_aligned(needed, self.align)?
            }
            other => other?,
        };
        // SAFETY: `grown` has room for `new_cap >= needed > len` bytes in a
        // fresh region, which cannot overlap our `len` initialised bytes.
        unsafe { ptr::copy_nonoverlapping(self.ptr.as_ptr(), grown.ptr.as_ptr(), self.len) };
        grown.len = self.len;
        *self = grown;
        Ok(())
    }

    /// Reuses the whole heap region when nothing else views it.
    fn try_reclaim(&mut self, needed: usize) -> bool {
        let Some((base, size)) = self
            .storage
            .as_mut()
            .and_then(StorageRef::unique_heap_region)
        else {
            return false;
        };
        if size < needed {
            return false;
        }
        // SAFETY: this is the only view of the storage (its count is 1),
        // so the whole region `base..base+size` is ours; `ptr..ptr+len` lies
        // inside it, and `copy` allows the overlap.
        unsafe { ptr::copy(self.ptr.as_ptr(), base.as_ptr(), self.len) };
        self.ptr = base;
        self.cap = size;
        true
    }

    /// Turns the written bytes into an immutable [`Buf`], without copying.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// buf.extend_from_slice(b"done");
    /// let frozen = buf.freeze();
    /// assert_eq!(&frozen[..], b"done");
    /// ```
    pub fn freeze(self) -> Buf {
        match self.storage {
            Some(storage) => Buf::from_storage(self.ptr.as_ptr(), self.len, storage),
            // Never had a region, so nothing was written.
            None => Buf::new(),
        }
    }

    /// Splits off the first `at` written bytes as a frozen [`Buf`]; the
    /// rest (and all spare capacity) stays writable in the same allocation.
    /// Panics if `at > len()`.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::with_capacity(16);
    /// buf.extend_from_slice(b"frame1frame2");
    /// let first = buf.split_to(6);
    /// assert_eq!(&first[..], b"frame1");
    /// assert_eq!(&buf[..], b"frame2");
    /// ```
    #[track_caller]
    pub fn split_to(&mut self, at: usize) -> Buf {
        or_panic(self.try_split_to(at))
    }

    /// Like [`split_to`](Self::split_to), with an error instead of a panic.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::new();
    /// assert!(buf.try_split_to(1).is_err());
    /// ```
    pub fn try_split_to(&mut self, at: usize) -> Result<Buf, RangeError> {
        check_at(at, self.len)?;
        let head = match &self.storage {
            Some(storage) => Buf::from_storage(self.ptr.as_ptr(), at, storage.clone()),
            // Never had a region: `at == len == 0`.
            None => Buf::new(),
        };
        // SAFETY: `at <= len <= cap`, so the pointer stays inside the region
        // (or one past its end); the frozen prefix is never written again.
        self.ptr = unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(at)) };
        self.len -= at;
        self.cap -= at;
        Ok(head)
    }

    /// Splits off everything written so far as a frozen [`Buf`], keeping
    /// the spare capacity; the same as `split_to(self.len())`.
    ///
    /// ```
    /// let mut buf = zcbuf_core::BufMut::with_capacity(16);
    /// buf.extend_from_slice(b"abc");
    /// let frozen = buf.split();
    /// assert_eq!(&frozen[..], b"abc");
    /// assert!(buf.is_empty() && buf.capacity() == 13);
    /// ```
    pub fn split(&mut self) -> Buf {
        self.split_to(self.len)
    }
}

/// The alignment of a region starting at `ptr`: the largest power of two
/// dividing its address, up to [`MAX_INFERRED_ALIGN`].
#[inline]
fn alignment_of(ptr: NonNull<u8>) -> usize {
    let addr = ptr.as_ptr() as usize;
    1usize
        << addr
            .trailing_zeros()
            .min(MAX_INFERRED_ALIGN.trailing_zeros())
}

/// Unwraps an allocation result for the panicking forms: the allocator's
/// own failure aborts through `handle_alloc_error` (as `Vec` does), every
/// other error panics with its message.
#[track_caller]
fn or_alloc_panic<T>(result: Result<T, AllocError>) -> T {
    match result {
        Ok(v) => v,
        Err(AllocError::OutOfMemory { size, align }) => {
            match Layout::from_size_align(size, align) {
                Ok(layout) => alloc::handle_alloc_error(layout),
                Err(_) => panic!("{}", AllocError::InvalidLayout { size, align }),
            }
        }
        Err(e) => panic!("{e}"),
    }
}

impl Default for BufMut {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for BufMut {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for BufMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for BufMut {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for BufMut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BufMut(len={}, cap={}, ", self.len, self.cap)?;
        write_preview(f, self.iter().copied(), self.len)?;
        f.write_str(")")
    }
}

impl From<BufMut> for Buf {
    fn from(buf: BufMut) -> Buf {
        buf.freeze()
    }
}

impl io::Write for BufMut {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// SAFETY: `chunk_mut` returns exactly the spare capacity after `len`, which
// this `BufMut` owns, and `advance_mut` only accepts counts within it.
unsafe impl bytes::BufMut for BufMut {
    fn remaining_mut(&self) -> usize {
        // Growable, like `Vec<u8>`: the limit is the address space.
        isize::MAX as usize - self.len
    }

    unsafe fn advance_mut(&mut self, count: usize) {
        assert!(
            count <= self.cap - self.len,
            "advance_mut({count}) past the {} bytes of spare capacity",
            self.cap - self.len
        );
        self.len += count;
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        if self.len == self.cap {
            self.reserve(64);
        }
        bytes::buf::UninitSlice::uninit(self.spare_capacity_mut())
    }

    #[inline]
    fn put_slice(&mut self, src: &[u8]) {
        self.extend_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut as _;

    #[test]
    fn split_to_keeps_writing_in_same_allocation() {
        let mut chunk = BufMut::with_capacity(32);
        chunk.put_slice(b"aaaabbbb");
        let base = chunk.as_ptr();
        let a = chunk.split_to(4);
        assert_eq!(a.as_ptr(), base);
        assert_eq!(chunk.as_ptr(), base.wrapping_add(4));
        chunk.put_slice(b"cc");
        assert_eq!(&chunk[..], b"bbbbcc");
        assert_eq!(&a[..], b"aaaa");
    }

    #[test]
    fn reserve_reclaims_when_views_are_gone() {
        let mut chunk = BufMut::with_capacity(16);
        chunk.put_slice(&[1; 12]);
        let base = chunk.as_ptr();
        let frame = chunk.split_to(10);
        drop(frame);
        chunk.reserve(10); // 2 written + 10 > 6 left, but the region is free
        assert_eq!(chunk.as_ptr(), base);
        assert_eq!(&chunk[..], &[1, 1]);
        assert_eq!(chunk.capacity(), 16);
    }

    #[test]
    fn reserve_with_live_view_copies_and_keeps_view() {
        let mut chunk = BufMut::with_capacity(8);
        chunk.put_slice(b"abcdefgh");
        let frame = chunk.split_to(4);
        chunk.reserve(100);
        chunk.put_slice(b"ij");
        assert_eq!(&frame[..], b"abcd");
        assert_eq!(&chunk[..], b"efghij");
    }

    #[test]
    fn new_allocates_nothing_until_written() {
        let mut buf = BufMut::new();
        assert!(buf.storage.is_none());
        assert!(BufMut::with_capacity(0).storage.is_none());
        assert!(buf.split().is_empty());
        assert!(buf.try_split_to(1).is_err());
        buf.extend_from_slice(b"");
        assert!(buf.storage.is_none(), "an empty write needs no region");
        buf.extend_from_slice(b"x");
        assert!(buf.storage.is_some());
        assert_eq!(buf.as_ptr() as usize % DEFAULT_ALIGN, 0);
        assert_eq!(&buf.freeze()[..], b"x");
        assert_eq!(BufMut::new().freeze().ref_count(), None);
        assert_eq!(
            BufMut::with_capacity_aligned(0, 4096).as_ptr() as usize,
            4096
        );
    }

    /// Issue 11 item 12: growing keeps the alignment, also for memory
    /// handed in (a page-aligned block came back at 2032 mod 4096).
    #[test]
    fn reserve_keeps_the_alignment_of_handed_in_memory() {
        let region = HeapAlloc::try_new(8192, 4096).unwrap();
        let ptr = region.ptr().as_ptr();
        // SAFETY: the region is ours until the owner drops it; its pointer
        // is raw, so moving the owner keeps it valid.
        let mut buf = unsafe { BufMut::from_raw_parts(ptr, 4096, region) };
        assert_eq!(buf.align, 4096);
        buf.extend_from_slice(&[7; 4096]);
        let frame = buf.split_to(2032); // a live view: no reclaim
        buf.reserve(1);
        assert_eq!(buf.as_ptr() as usize % 4096, 0);
        assert_eq!(&buf[..], &[7; 4096 - 2032][..]);
        assert_eq!(&frame[..], &[7; 2032][..]);

        // An odd address keeps alignment 1, a page multiple at most 4096.
        // A `Vec<u8>` promises alignment 1 only (Miri hands out odd
        // addresses), so step to whichever of its first two bytes is odd.
        let odd = vec![0u8; 9];
        let start = odd.as_ptr().cast_mut();
        let at = start.wrapping_add(1 - start as usize % 2);
        // SAFETY: as above, with the vector's heap buffer: `at` is one of its
        // first two bytes, so 8 bytes from it lie inside its 9.
        let buf = unsafe { BufMut::from_raw_parts(at, 8, odd) };
        assert_eq!(buf.align % 2, 1);
        let big = HeapAlloc::try_new(1 << 16, 1 << 16).unwrap();
        let ptr = big.ptr().as_ptr();
        // SAFETY: as above.
        let buf = unsafe { BufMut::from_raw_parts(ptr, 1 << 16, big) };
        assert_eq!(buf.align, MAX_INFERRED_ALIGN);
    }

    #[test]
    fn sizes_never_wrap() {
        let mut buf = BufMut::with_capacity_aligned(16, 4096);
        buf.extend_from_slice(b"abc");
        for huge in [
            usize::MAX,
            usize::MAX - 2,
            isize::MAX as usize,
            isize::MAX as usize - 4094,
        ] {
            assert!(buf.try_reserve(huge).is_err(), "{huge}");
            assert_eq!((&buf[..], buf.capacity()), (&b"abc"[..], 16));
        }
        assert_eq!(
            buf.try_reserve(usize::MAX - 2),
            Err(AllocError::CapacityOverflow {
                len: 3,
                additional: usize::MAX - 2
            })
        );
        for huge in [
            usize::MAX,
            isize::MAX as usize + 1,
            isize::MAX as usize - 14,
        ] {
            assert!(matches!(
                BufMut::try_with_capacity(huge),
                Err(AllocError::InvalidLayout { .. })
            ));
        }
        let panic = std::panic::catch_unwind(|| BufMut::with_capacity(usize::MAX)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("invalid buffer layout"), "{message}");
    }

    #[test]
    fn bytes_bufmut_grows() {
        let mut buf = BufMut::new();
        for i in 0..1000u32 {
            buf.put_u32_le(i);
        }
        assert_eq!(buf.len(), 4000);
        assert_eq!(&buf[4..8], &1u32.to_le_bytes());
    }
}
