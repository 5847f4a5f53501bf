//! [`Buf`]: an immutable, reference-counted view of bytes.
//!
//! # Representation
//!
//! A `Buf` is three words: a pointer to its first byte, its length, and an
//! optional counted reference to the storage header that keeps the memory
//! alive (see `storage.rs`: a header of its own on the heap, or the slot
//! the pool keeps for a pooled block, recycled with it). Static memory has no
//! storage (it is never freed); everything else shares one storage per
//! region, whatever the number of views into it. Cloning is one atomic
//! increment, dropping one decrement; slicing, splitting and advancing only
//! move the pointer and length, so they never copy and never allocate.
//!
//! The bytes a `Buf` points at are never written again while any view of
//! them exists: [`BufMut`](crate::BufMut) only hands out regions it will not
//! touch any more, which is what makes `Buf` `Send + Sync` and its
//! `Deref<Target = [u8]>` sound.

use std::any::Any;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, RangeBounds};
use std::ptr::NonNull;
use std::{fmt, slice};

use crate::error::{check_at, check_range, or_panic, RangeError};
use crate::preview::write_preview;
use crate::storage::{Owner, StorageRef};

/// An immutable, cheaply cloneable view of a contiguous run of bytes.
///
/// `Clone` is a retain, `Drop` a release; the memory is given back exactly
/// once, when the last view of it (slice, clone, composite component, or
/// `bytes::Bytes` made from it) is gone.
///
/// ```
/// use zcbuf_core::Buf;
///
/// let mut message = Buf::from(b"HEADERpayload".to_vec());
/// let header = message.split_to(6);
/// assert_eq!(&header[..], b"HEADER");
/// assert_eq!(&message[..], b"payload");
/// assert!(header.same_storage(&message)); // no copy was made
/// ```
pub struct Buf {
    ptr: NonNull<u8>,
    len: usize,
    storage: Option<StorageRef>,
}

// SAFETY: the bytes behind `ptr` are immutable for as long as any view of
// them exists, and the storage that owns them is `Send + Sync` (its owners
// are bounded by `Send + Sync`), so views may move to and be shared between
// threads freely; the reference count is atomic.
unsafe impl Send for Buf {}
// SAFETY: see `Send`: shared access only ever reads immutable bytes.
unsafe impl Sync for Buf {}

// A panic cannot leave a `Buf` half-updated in a way another view could
// observe: its bytes are immutable and the owner is only ever dropped.
impl std::panic::UnwindSafe for Buf {}
impl std::panic::RefUnwindSafe for Buf {}

impl Buf {
    /// An empty buffer; allocates nothing.
    ///
    /// ```
    /// assert!(zcbuf_core::Buf::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self::from_static(&[])
    }

    /// A view of static memory: no allocation, no reference count.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from_static(b"HTTP/1.1 200 OK\r\n");
    /// assert_eq!(buf.len(), 17);
    /// assert_eq!(buf.ref_count(), None);
    /// ```
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        // SAFETY: a slice's pointer is never null (it is dangling-but-aligned
        // when empty), and `'static` memory outlives every view.
        let ptr = unsafe { NonNull::new_unchecked(bytes.as_ptr() as *mut u8) };
        Self {
            ptr,
            len: bytes.len(),
            storage: None,
        }
    }

    /// Copies `bytes` into a new buffer of its own.
    ///
    /// ```
    /// let mut scratch = *b"abc";
    /// let buf = zcbuf_core::Buf::copy_from_slice(&scratch);
    /// scratch[0] = b'z';
    /// assert_eq!(&buf[..], b"abc");
    /// ```
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self::from(bytes.to_vec())
    }

    /// Wraps any owner of bytes without copying them.
    ///
    /// The owner is moved to the heap once, into the buffer's shared
    /// storage; its `as_ref()` is called once, there, and the owner is
    /// dropped when the last view of it goes. The owner must keep returning
    /// the same bytes from `as_ref()` while it lives (every ordinary
    /// container does). Owners that hold their bytes inline (an array) work
    /// too: the pointer is taken from the owner where it finally lives.
    ///
    /// ```
    /// let text = String::from("owned elsewhere");
    /// let buf = zcbuf_core::Buf::from_owner(text);
    /// assert_eq!(&buf[..5], b"owned");
    ///
    /// let inline = zcbuf_core::Buf::from_owner([9u8; 32]);
    /// assert_eq!(inline[31], 9);
    /// ```
    pub fn from_owner<T>(owner: T) -> Self
    where
        T: AsRef<[u8]> + Send + Sync + 'static,
    {
        let storage = StorageRef::new(Owner::Foreign(Box::new(owner)));
        // The owner does not move again: it stays inside the storage until
        // that is dropped. Taking the pointer before the last move would be
        // wrong for owners that hold their bytes inline (moving a `Box`
        // asserts unique access to its contents, invalidating it).
        let owner: &T = storage
            .foreign::<T>()
            .expect("the storage owns the owner just put in it");
        let bytes: &[u8] = owner.as_ref();
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        // `ptr..ptr+len` is memory reached through a shared borrow of the
        // owner in the storage, which lives (and is never borrowed mutably)
        // until the last view's count is gone.
        Self::from_storage(ptr, len, storage)
    }

    /// Makes a view of `len` bytes at `ptr`, kept alive by `owner`.
    ///
    /// This is how memory maps, pool chunks and memory handed in from other
    /// runtimes become `Buf`s without copying.
    ///
    /// # Safety
    ///
    /// `ptr` must be non-null and `ptr..ptr + len` must be readable, and not
    /// written by anyone, for as long as `owner` is alive; dropping `owner`
    /// may free it. `owner` is moved into the buffer after `ptr` was taken,
    /// so `ptr` must stay valid across that move: memory that `owner`
    /// reaches through a raw pointer (a `Vec`, a memory map, foreign
    /// memory) does; memory inside `owner` itself or inside a `Box` it
    /// holds does not (moving a `Box` asserts unique access to its
    /// contents). For such owners use [`from_owner`](Self::from_owner).
    ///
    /// ```
    /// let backing: Vec<u8> = vec![1, 2, 3];
    /// let (ptr, len) = (backing.as_ptr(), backing.len());
    /// // SAFETY: the vector's heap buffer holds those bytes, does not move
    /// // when the vector moves, and nobody writes it while the vector lives.
    /// let buf = unsafe { zcbuf_core::Buf::from_raw_parts(ptr, len, backing) };
    /// assert_eq!(&buf[..], &[1, 2, 3]);
    /// ```
    pub unsafe fn from_raw_parts(
        ptr: *const u8,
        len: usize,
        owner: impl Any + Send + Sync,
    ) -> Self {
        let storage = StorageRef::new(Owner::Foreign(Box::new(owner)));
        Self::from_storage(ptr, len, storage)
    }

    /// Makes a view over memory that `storage` keeps alive.
    ///
    /// Callers guarantee that `ptr..ptr+len` is inside the storage's region
    /// and is never written again.
    pub(crate) fn from_storage(ptr: *const u8, len: usize, storage: StorageRef) -> Self {
        let ptr = NonNull::new(ptr as *mut u8).expect("buffer pointer must not be null");
        Self {
            ptr,
            len,
            storage: Some(storage),
        }
    }

    /// Number of bytes in the view.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::Buf::from_static(b"four").len(), 4);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view has no bytes.
    ///
    /// ```
    /// assert!(zcbuf_core::Buf::from_static(b"").is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of the view.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from(vec![7u8; 3]);
    /// assert_eq!(buf.as_slice(), &[7, 7, 7]);
    /// ```
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is readable and immutable while `self` (and
        // thus its storage, or the static memory) is alive.
        unsafe { slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// How many views share this buffer's memory, or `None` for static
    /// memory, which is not counted.
    ///
    /// ```
    /// let a = zcbuf_core::Buf::from(vec![0u8; 8]);
    /// let b = a.slice(2..4);
    /// assert_eq!(a.ref_count(), Some(2));
    /// drop(b);
    /// assert_eq!(a.ref_count(), Some(1));
    /// ```
    pub fn ref_count(&self) -> Option<usize> {
        self.storage.as_ref().map(StorageRef::count)
    }

    /// Whether both views start at the same address and have the same
    /// length: the same bytes, not merely equal ones.
    ///
    /// ```
    /// let a = zcbuf_core::Buf::from(b"same".to_vec());
    /// assert!(a.ptr_eq(&a.clone()));
    /// assert!(!a.ptr_eq(&zcbuf_core::Buf::copy_from_slice(b"same")));
    /// ```
    pub fn ptr_eq(&self, other: &Buf) -> bool {
        self.ptr == other.ptr && self.len == other.len
    }

    /// Whether both views share one storage (one allocation, one count).
    ///
    /// ```
    /// let a = zcbuf_core::Buf::from(b"abcdef".to_vec());
    /// assert!(a.slice(..2).same_storage(&a.slice(4..)));
    /// ```
    pub fn same_storage(&self, other: &Buf) -> bool {
        match (&self.storage, &other.storage) {
            (Some(a), Some(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// A view of `range` of this buffer, sharing its memory; panics if the
    /// range is out of bounds.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from_static(b"0123456789");
    /// assert_eq!(&buf.slice(2..5)[..], b"234");
    /// assert_eq!(&buf.slice(8..)[..], b"89");
    /// ```
    #[track_caller]
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Buf {
        or_panic(self.try_slice(range))
    }

    /// A view of `range` of this buffer, or an error if it is out of bounds.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from_static(b"abc");
    /// assert!(buf.try_slice(1..3).is_ok());
    /// assert!(buf.try_slice(1..4).is_err());
    /// ```
    pub fn try_slice(&self, range: impl RangeBounds<usize>) -> Result<Buf, RangeError> {
        let (start, end) = check_range(range, self.len)?;
        // SAFETY: `start <= end <= len`, so the result stays inside this view.
        Ok(unsafe { self.sub(start, end - start) })
    }

    /// A view of `subset`, which must lie inside this buffer's bytes (as a
    /// parser's `&[u8]` result does); panics otherwise.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from(b"key=value".to_vec());
    /// let value = &buf[4..];
    /// assert_eq!(&buf.slice_ref(value)[..], b"value");
    /// ```
    #[track_caller]
    pub fn slice_ref(&self, subset: &[u8]) -> Buf {
        or_panic(self.try_slice_ref(subset))
    }

    /// A view of `subset`, or an error if it does not lie inside this buffer.
    ///
    /// ```
    /// let buf = zcbuf_core::Buf::from(b"abc".to_vec());
    /// assert!(buf.try_slice_ref(b"elsewhere").is_err());
    /// ```
    pub fn try_slice_ref(&self, subset: &[u8]) -> Result<Buf, RangeError> {
        if subset.is_empty() {
            return Ok(Buf::new());
        }
        let base = self.ptr.as_ptr() as usize;
        let start = (subset.as_ptr() as usize).wrapping_sub(base);
        let end = start.wrapping_add(subset.len());
        if (subset.as_ptr() as usize) < base || end > self.len {
            return Err(RangeError::new(start, end, self.len));
        }
        self.try_slice(start..end)
    }

    /// Splits off and returns the first `at` bytes; `self` keeps the rest.
    /// Panics if `at > len`.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"head|tail");
    /// assert_eq!(&buf.split_to(5)[..], b"head|");
    /// assert_eq!(&buf[..], b"tail");
    /// ```
    #[track_caller]
    pub fn split_to(&mut self, at: usize) -> Buf {
        or_panic(self.try_split_to(at))
    }

    /// Like [`split_to`](Self::split_to), with an error instead of a panic.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"ab");
    /// assert!(buf.try_split_to(3).is_err());
    /// assert_eq!(buf.len(), 2); // unchanged on error
    /// ```
    pub fn try_split_to(&mut self, at: usize) -> Result<Buf, RangeError> {
        check_at(at, self.len)?;
        // SAFETY: `at <= len`.
        let head = unsafe { self.sub(0, at) };
        // SAFETY: `at <= len`.
        unsafe { self.advance_unchecked(at) };
        Ok(head)
    }

    /// Splits off and returns the bytes from `at` on; `self` keeps the
    /// first `at`. Panics if `at > len`.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"head|tail");
    /// assert_eq!(&buf.split_off(5)[..], b"tail");
    /// assert_eq!(&buf[..], b"head|");
    /// ```
    #[track_caller]
    pub fn split_off(&mut self, at: usize) -> Buf {
        or_panic(self.try_split_off(at))
    }

    /// Like [`split_off`](Self::split_off), with an error instead of a panic.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"ab");
    /// assert!(buf.try_split_off(3).is_err());
    /// ```
    pub fn try_split_off(&mut self, at: usize) -> Result<Buf, RangeError> {
        check_at(at, self.len)?;
        // SAFETY: `at <= len`.
        let tail = unsafe { self.sub(at, self.len - at) };
        self.len = at;
        Ok(tail)
    }

    /// Shortens the view to `len` bytes; does nothing if it is not longer.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"abcdef");
    /// buf.truncate(2);
    /// assert_eq!(&buf[..], b"ab");
    /// buf.truncate(10);
    /// assert_eq!(&buf[..], b"ab");
    /// ```
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Empties the view (the memory stays shared with other views).
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"abc");
    /// buf.clear();
    /// assert!(buf.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Drops the first `count` bytes from the view. Panics if `count > len`.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"abcdef");
    /// buf.advance(4);
    /// assert_eq!(&buf[..], b"ef");
    /// ```
    #[track_caller]
    pub fn advance(&mut self, count: usize) {
        or_panic(self.try_advance(count))
    }

    /// Like [`advance`](Self::advance), with an error instead of a panic.
    ///
    /// ```
    /// let mut buf = zcbuf_core::Buf::from_static(b"abc");
    /// assert!(buf.try_advance(4).is_err());
    /// ```
    pub fn try_advance(&mut self, count: usize) -> Result<(), RangeError> {
        check_at(count, self.len)?;
        // SAFETY: `count <= len`.
        unsafe { self.advance_unchecked(count) };
        Ok(())
    }

    /// A new view of `len` bytes starting `offset` bytes into this one.
    ///
    /// # Safety
    ///
    /// `offset + len <= self.len`.
    #[inline]
    pub(crate) unsafe fn sub(&self, offset: usize, len: usize) -> Buf {
        debug_assert!(offset + len <= self.len);
        Buf {
            // SAFETY: `offset <= self.len`, so the pointer stays inside (or
            // one past the end of) this view's memory, which is non-null.
            ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(offset)) },
            len,
            storage: self.storage.clone(),
        }
    }

    /// # Safety
    ///
    /// `count <= self.len`.
    #[inline]
    pub(crate) unsafe fn advance_unchecked(&mut self, count: usize) {
        debug_assert!(count <= self.len);
        // SAFETY: `count <= len` keeps the pointer inside or one past the end.
        self.ptr = unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(count)) };
        self.len -= count;
    }
}

impl Clone for Buf {
    fn clone(&self) -> Self {
        Self {
            ptr: self.ptr,
            len: self.len,
            storage: self.storage.clone(),
        }
    }
}

impl Default for Buf {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Buf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Buf {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buf(len={}, ", self.len)?;
        write_preview(f, self.iter().copied(), self.len)?;
        f.write_str(")")
    }
}

impl PartialEq for Buf {
    fn eq(&self, other: &Buf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buf {}

impl PartialOrd for Buf {
    fn partial_cmp(&self, other: &Buf) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Buf {
    fn cmp(&self, other: &Buf) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Buf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialEq<[u8]> for Buf {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Buf {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Buf {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Buf {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for Buf {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl From<Vec<u8>> for Buf {
    /// Takes the vector's allocation without copying.
    fn from(vec: Vec<u8>) -> Self {
        if vec.is_empty() {
            return Buf::new();
        }
        let (ptr, len) = (vec.as_ptr(), vec.len());
        let storage = StorageRef::new(Owner::Vec(vec));
        // SAFETY-relevant: a `Vec`'s heap buffer does not move when the `Vec`
        // value moves into the storage, and nothing writes it afterwards.
        Buf::from_storage(ptr, len, storage)
    }
}

impl From<Box<[u8]>> for Buf {
    /// Takes the box's allocation without copying.
    fn from(boxed: Box<[u8]>) -> Self {
        Buf::from(Vec::from(boxed))
    }
}

impl From<String> for Buf {
    /// Takes the string's allocation without copying.
    fn from(s: String) -> Self {
        Buf::from(s.into_bytes())
    }
}

impl From<&'static [u8]> for Buf {
    fn from(bytes: &'static [u8]) -> Self {
        Buf::from_static(bytes)
    }
}

impl From<&'static str> for Buf {
    fn from(s: &'static str) -> Self {
        Buf::from_static(s.as_bytes())
    }
}

impl From<bytes::Bytes> for Buf {
    /// Wraps the `Bytes` without copying: the `Bytes` becomes the owner.
    fn from(bytes: bytes::Bytes) -> Self {
        if bytes.is_empty() {
            return Buf::new();
        }
        Buf::from_owner(bytes)
    }
}

impl From<Buf> for bytes::Bytes {
    /// Hands the view to `Bytes` without copying; the memory lives until
    /// both the `Bytes` (and its clones) and every other view are gone.
    fn from(buf: Buf) -> Self {
        match buf.storage {
            None => bytes::Bytes::from_static(
                // SAFETY: a `Buf` without storage views `'static` memory.
                unsafe { slice::from_raw_parts(buf.ptr.as_ptr(), buf.len) },
            ),
            Some(_) => bytes::Bytes::from_owner(buf),
        }
    }
}

impl bytes::Buf for Buf {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.as_slice()
    }

    #[track_caller]
    fn advance(&mut self, count: usize) {
        Buf::advance(self, count)
    }

    fn copy_to_bytes(&mut self, len: usize) -> bytes::Bytes {
        bytes::Bytes::from(self.split_to(len))
    }
}

impl<'a> IntoIterator for &'a Buf {
    type Item = &'a u8;
    type IntoIter = slice::Iter<'a, u8>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_words() {
        assert_eq!(std::mem::size_of::<Buf>(), 3 * std::mem::size_of::<usize>());
    }

    #[test]
    fn debug_preview_escapes_and_elides() {
        let buf = Buf::from(b"GET /\r\n\x00\xff\"".to_vec());
        assert_eq!(format!("{buf:?}"), r#"Buf(len=10, b"GET /\r\n\x00\xff\"")"#);
        let long = Buf::from(vec![b'a'; 40]);
        assert!(format!("{long:?}").ends_with("aaaa\"...)"));
    }

    #[test]
    fn bytes_round_trip_shares_memory() {
        let buf = Buf::from(b"shared bytes".to_vec());
        let ptr = buf.as_ptr();
        let bytes = bytes::Bytes::from(buf.clone());
        assert_eq!(bytes.as_ptr(), ptr);
        assert_eq!(buf.ref_count(), Some(2));
        let back = Buf::from(bytes);
        assert_eq!(back.as_ptr(), ptr);
        drop(back);
        assert_eq!(buf.ref_count(), Some(1));
    }

    /// Issue 11 item 10: an owner holding its bytes inline used to be
    /// reported as undefined behaviour by Miri (the pointer was taken
    /// before the owner's last move).
    #[test]
    fn from_owner_with_inline_bytes_is_sound() {
        let buf = Buf::from_owner([9u8; 32]);
        assert_eq!(buf[0], 9);
        let tail = buf.slice(30..);
        drop(buf);
        assert_eq!(&tail[..], &[9, 9]);

        struct Inline {
            bytes: [u8; 5],
        }
        impl AsRef<[u8]> for Inline {
            fn as_ref(&self) -> &[u8] {
                &self.bytes
            }
        }
        let buf = Buf::from_owner(Inline { bytes: *b"hello" });
        let copy = buf.clone();
        assert_eq!(&copy[..], b"hello");
        assert_eq!(bytes::Bytes::from(buf), &b"hello"[..]);
    }

    #[test]
    fn from_raw_parts_with_a_vec_owner_is_sound() {
        let backing: Vec<u8> = vec![1, 2, 3];
        let (ptr, len) = (backing.as_ptr(), backing.len());
        // SAFETY: the vector's heap buffer holds the bytes and does not
        // move when the vector moves into the storage.
        let buf = unsafe { Buf::from_raw_parts(ptr, len, backing) };
        assert_eq!(&buf[..], &[1, 2, 3]);
    }

    #[test]
    fn slice_ref_rejects_outside_memory() {
        let buf = Buf::from(b"abcdef".to_vec());
        let other = [0u8; 3];
        assert!(buf.try_slice_ref(&other).is_err());
        let inner = &buf[1..3];
        assert_eq!(buf.slice_ref(inner), b"bc");
    }
}
