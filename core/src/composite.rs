//! [`Composite`]: one logical byte sequence stitched from many [`Buf`]s.
//!
//! # Representation
//!
//! Components live in a `VecDeque` of entries, each a [`Buf`] plus the
//! *coordinate* of its first byte. Coordinates grow along the sequence and
//! never change when components come or go at either end; the composite
//! keeps the coordinate of its logical offset 0 (`base`). So consuming
//! from the front pops entries and moves `base` in O(1) — nothing shifts —
//! and pushing at the front gives the new entry the coordinate just below.
//! Coordinates are `u64` compared relative to `base` with wrapping
//! arithmetic, so pushes at the front never run out of room.
//!
//! An offset is found by binary search over the entries (`O(log n)`),
//! after a check of the entry the previous lookup hit and the one after it,
//! which makes sequential access `O(1)`. Empty components are kept (they
//! count in [`component_count`](Composite::component_count)) but are never
//! hit by a lookup and never exported as I/O slices.
//!
//! Nothing here copies bytes except [`Composite::consolidate`],
//! [`Composite::to_buf`] and the explicit `copy_*` reads; a composite never
//! consolidates on its own, however many components it has.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::buf::Buf;
use crate::error::{check_at, check_range, or_panic, RangeError};
use crate::preview::write_preview;

/// One component: a view and the coordinate of its first byte.
#[derive(Clone)]
pub(crate) struct Entry {
    buf: Buf,
    start: u64,
}

/// An ordered sequence of [`Buf`] components read as one byte sequence,
/// by reference.
///
/// ```
/// use zcbuf_core::{Buf, Composite};
///
/// let mut msg = Composite::new();
/// msg.push(Buf::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"));
/// msg.push(Buf::from_static(b"\r\n"));
/// msg.push(Buf::from(b"hello".to_vec()));
/// assert_eq!(msg.len(), 43);
/// assert_eq!(msg.find_slice(b"\r\n\r\n"), Some(34)); // straddles two components
/// assert_eq!(msg.u8_at(38), b'h');
/// ```
pub struct Composite {
    entries: VecDeque<Entry>,
    base: u64,
    len: usize,
    /// Index of the entry the last lookup hit; only a hint.
    last_hit: AtomicUsize,
}

impl Entry {
    /// Offset of the entry's first byte relative to `base`.
    #[inline]
    fn offset(&self, base: u64) -> usize {
        self.start.wrapping_sub(base) as usize
    }

    #[inline]
    fn end(&self, base: u64) -> usize {
        self.offset(base) + self.buf.len()
    }
}

/// Generates the absolute typed reads for one primitive.
macro_rules! read_at {
    ($( $ty:ty => $be:ident, $try_be:ident, $le:ident, $try_le:ident; )*) => {$(
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "` at `offset`, across component boundaries; panics if it does not fit.")]
        ///
        /// ```
        /// # use zcbuf_core::{Buf, Composite};
        /// let c: Composite = [Buf::from_static(&[0; 12]), Buf::from_static(&[0; 12])].into_iter().collect();
        #[doc = concat!("assert_eq!(c.", stringify!($be), "(3), <", stringify!($ty), ">::default());")]
        /// ```
        #[inline]
        #[track_caller]
        pub fn $be(&self, offset: usize) -> $ty {
            or_panic(self.$try_be(offset))
        }

        #[doc = concat!("Reads a big-endian `", stringify!($ty), "` at `offset`, or an error if it does not fit.")]
        ///
        /// ```
        /// # use zcbuf_core::Composite;
        #[doc = concat!("assert!(Composite::new().", stringify!($try_be), "(0).is_err());")]
        /// ```
        #[inline]
        pub fn $try_be(&self, offset: usize) -> Result<$ty, RangeError> {
            self.read_array(offset).map(<$ty>::from_be_bytes)
        }

        #[doc = concat!("Reads a little-endian `", stringify!($ty), "` at `offset`, across component boundaries; panics if it does not fit.")]
        ///
        /// ```
        /// # use zcbuf_core::{Buf, Composite};
        /// let c: Composite = [Buf::from_static(&[0; 12]), Buf::from_static(&[0; 12])].into_iter().collect();
        #[doc = concat!("assert_eq!(c.", stringify!($le), "(3), <", stringify!($ty), ">::default());")]
        /// ```
        #[inline]
        #[track_caller]
        pub fn $le(&self, offset: usize) -> $ty {
            or_panic(self.$try_le(offset))
        }

        #[doc = concat!("Reads a little-endian `", stringify!($ty), "` at `offset`, or an error if it does not fit.")]
        ///
        /// ```
        /// # use zcbuf_core::Composite;
        #[doc = concat!("assert!(Composite::new().", stringify!($try_le), "(0).is_err());")]
        /// ```
        #[inline]
        pub fn $try_le(&self, offset: usize) -> Result<$ty, RangeError> {
            self.read_array(offset).map(<$ty>::from_le_bytes)
        }
    )*};
}

impl Composite {
    /// An empty composite; allocates nothing.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().is_empty());
    /// ```
    pub const fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            base: 0,
            len: 0,
            last_hit: AtomicUsize::new(0),
        }
    }

    /// An empty composite with room for `components` entries.
    ///
    /// ```
    /// let c = zcbuf_core::Composite::with_capacity(64);
    /// assert_eq!(c.component_count(), 0);
    /// ```
    pub fn with_capacity(components: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(components),
            ..Self::new()
        }
    }

    /// Total number of bytes.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"cde"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.len(), 5);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the composite holds no bytes (it may still hold empty
    /// components).
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::new());
    /// assert!(c.is_empty());
    /// assert_eq!(c.component_count(), 1);
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of components, empty ones included.
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::from_static(b"a"));
    /// c.push(zcbuf_core::Buf::from_static(b"b"));
    /// assert_eq!(c.component_count(), 2);
    /// ```
    #[inline]
    pub fn component_count(&self) -> usize {
        self.entries.len()
    }

    /// The components, in order.
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::from_static(b"ab"));
    /// c.push(zcbuf_core::Buf::from_static(b"c"));
    /// let lens: Vec<usize> = c.components().map(|b| b.len()).collect();
    /// assert_eq!(lens, [2, 1]);
    /// ```
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &Buf> + ExactSizeIterator + '_ {
        self.entries.iter().map(|e| &e.buf)
    }

    /// The component at `index`, if any.
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::from_static(b"ab"));
    /// assert_eq!(c.component(0).unwrap(), b"ab");
    /// assert!(c.component(1).is_none());
    /// ```
    pub fn component(&self, index: usize) -> Option<&Buf> {
        self.entries.get(index).map(|e| &e.buf)
    }

    /// The bytes of each component, in order (empty ones included).
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"c"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.chunks().collect::<Vec<_>>(), [b"ab".as_slice(), b"c"]);
    /// ```
    pub fn chunks(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.entries.iter().map(|e| e.buf.as_slice())
    }

    /// Every byte, in order.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"c"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.iter().collect::<Vec<u8>>(), b"abc");
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.chunks().flat_map(|c| c.iter().copied())
    }

    /// Appends a component.
    ///
    /// Panics if the total length would pass `usize::MAX` (reachable only
    /// by pushing views of the same memory over and over).
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::from_static(b"tail"));
    /// assert_eq!(c, b"tail"[..]);
    /// ```
    #[track_caller]
    pub fn push(&mut self, buf: Buf) {
        let start = self.base.wrapping_add(self.len as u64);
        self.len = self.grown_len(buf.len());
        self.entries.push_back(Entry { buf, start });
    }

    /// The length after adding `more` bytes; panics rather than wrap.
    #[track_caller]
    fn grown_len(&self, more: usize) -> usize {
        match self.len.checked_add(more) {
            Some(len) => len,
            None => panic!(
                "composite length overflow: {} + {more} bytes exceed usize::MAX",
                self.len
            ),
        }
    }

    /// Prepends a component, in O(1): a header in front of a body.
    ///
    /// Panics if the total length would pass `usize::MAX`, as
    /// [`push`](Self::push) does.
    ///
    /// ```
    /// let mut c = zcbuf_core::Composite::new();
    /// c.push(zcbuf_core::Buf::from_static(b"body"));
    /// c.push_front(zcbuf_core::Buf::from_static(b"head:"));
    /// assert_eq!(c, b"head:body"[..]);
    /// ```
    #[track_caller]
    pub fn push_front(&mut self, buf: Buf) {
        self.len = self.grown_len(buf.len());
        self.base = self.base.wrapping_sub(buf.len() as u64);
        self.entries.push_front(Entry {
            buf,
            start: self.base,
        });
        self.bump_hint(1);
    }

    /// Moves every component of `other` to the end of `self`, flattening:
    /// a composite never nests.
    ///
    /// ```
    /// let mut a: zcbuf_core::Composite = [zcbuf_core::Buf::from_static(b"ab")].into_iter().collect();
    /// let b: zcbuf_core::Composite = [zcbuf_core::Buf::from_static(b"c"), zcbuf_core::Buf::from_static(b"d")].into_iter().collect();
    /// a.append(b);
    /// assert_eq!(a.component_count(), 3);
    /// assert_eq!(a, b"abcd"[..]);
    /// ```
    pub fn append(&mut self, other: Composite) {
        self.entries.reserve(other.entries.len());
        for entry in other.entries {
            self.push(entry.buf);
        }
    }

    /// Removes and returns the component at `index`, in O(n) (the later
    /// components' coordinates move); `None` if there is no such component.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"ab".as_slice(), b"XX", b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.remove_component(1).unwrap(), b"XX");
    /// assert_eq!(c, b"abcd"[..]);
    /// ```
    pub fn remove_component(&mut self, index: usize) -> Option<Buf> {
        let removed = self.entries.remove(index)?;
        let shift = removed.buf.len() as u64;
        for entry in self.entries.range_mut(index..) {
            entry.start = entry.start.wrapping_sub(shift);
        }
        self.len -= removed.buf.len();
        Some(removed.buf)
    }

    /// Removes every component.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [zcbuf_core::Buf::from_static(b"ab")].into_iter().collect();
    /// c.clear();
    /// assert_eq!(c.component_count(), 0);
    /// ```
    pub fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
    }

    /// Finds the component holding byte `offset` (`offset < len`): its
    /// index and the offset inside it. Never returns an empty component.
    #[inline]
    fn locate(&self, offset: usize) -> (usize, usize) {
        debug_assert!(offset < self.len);
        // Sequential access hits the last entry again or one of the next
        // few (a few, not one, so that empty components in between do not
        // send every boundary crossing to the binary search).
        const FORWARD_SCAN: usize = 4;
        let hint = self.last_hit.load(Ordering::Relaxed);
        if let Some(entry) = self.entries.get(hint) {
            if offset >= entry.offset(self.base) {
                for (step, entry) in self.entries.range(hint..).take(FORWARD_SCAN).enumerate() {
                    let within = offset - entry.offset(self.base);
                    if within < entry.buf.len() {
                        if step != 0 {
                            self.last_hit.store(hint + step, Ordering::Relaxed);
                        }
                        return (hint + step, within);
                    }
                }
            }
        }
        let index = self.entries.partition_point(|e| e.end(self.base) <= offset);
        self.last_hit.store(index, Ordering::Relaxed);
        (index, offset - self.entries[index].offset(self.base))
    }

    /// Keeps the lookup hint on the same entry after `n` entries were
    /// inserted in front of it.
    fn bump_hint(&self, n: usize) {
        let hint = self.last_hit.load(Ordering::Relaxed);
        self.last_hit.store(hint.wrapping_add(n), Ordering::Relaxed);
    }

    /// Keeps the lookup hint on the same entry after `n` entries were
    /// removed from the front.
    fn drop_hint(&self, n: usize) {
        let hint = self.last_hit.load(Ordering::Relaxed);
        self.last_hit
            .store(hint.saturating_sub(n), Ordering::Relaxed);
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst`; an error
    /// (and `dst` untouched) if they are not all there.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// let mut out = [0u8; 3];
    /// c.copy_at(1, &mut out).unwrap();
    /// assert_eq!(&out, b"bcd");
    /// assert!(c.copy_at(2, &mut out).is_err());
    /// ```
    pub fn copy_at(&self, offset: usize, dst: &mut [u8]) -> Result<(), RangeError> {
        let end = offset
            .checked_add(dst.len())
            .filter(|&end| end <= self.len)
            .ok_or(RangeError::new(
                offset,
                offset.saturating_add(dst.len()),
                self.len,
            ))?;
        if offset == end {
            return Ok(());
        }
        let (index, within) = self.locate(offset);
        self.copy_from(index, within, dst);
        Ok(())
    }

    /// Copies `dst.len()` bytes starting at byte `within` of entry `index`;
    /// the caller checked they are all there.
    fn copy_from(&self, mut index: usize, mut within: usize, dst: &mut [u8]) {
        let mut written = 0;
        while written < dst.len() {
            let src = &self.entries[index].buf[within..];
            let n = src.len().min(dst.len() - written);
            dst[written..written + n].copy_from_slice(&src[..n]);
            written += n;
            index += 1;
            within = 0;
        }
    }

    /// Reads `N` bytes at `offset`, straight from the component when they
    /// all lie in one.
    #[inline]
    fn read_array<const N: usize>(&self, offset: usize) -> Result<[u8; N], RangeError> {
        if offset >= self.len || self.len - offset < N {
            return Err(RangeError::new(offset, offset.saturating_add(N), self.len));
        }
        let (index, within) = self.locate(offset);
        let component = &self.entries[index].buf;
        let mut out = [0u8; N];
        match component.get(within..within + N) {
            Some(bytes) => out.copy_from_slice(bytes),
            None => self.copy_from(index, within, &mut out),
        }
        Ok(out)
    }

    /// Reads the byte at `offset`; panics if `offset >= len()`.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.u8_at(2), b'c');
    /// ```
    #[inline]
    #[track_caller]
    pub fn u8_at(&self, offset: usize) -> u8 {
        or_panic(self.try_u8_at(offset))
    }

    /// Reads the byte at `offset`, or an error if `offset >= len()`.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [zcbuf_core::Buf::from_static(b"a")].into_iter().collect();
    /// assert!(c.try_u8_at(1).is_err());
    /// ```
    #[inline]
    pub fn try_u8_at(&self, offset: usize) -> Result<u8, RangeError> {
        if offset >= self.len {
            return Err(RangeError::new(offset, offset.saturating_add(1), self.len));
        }
        let (index, within) = self.locate(offset);
        Ok(self.entries[index].buf[within])
    }

    /// Reads the signed byte at `offset`; panics if `offset >= len()`.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [zcbuf_core::Buf::from_static(&[0xff])].into_iter().collect();
    /// assert_eq!(c.i8_at(0), -1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn i8_at(&self, offset: usize) -> i8 {
        self.u8_at(offset) as i8
    }

    /// Reads the signed byte at `offset`, or an error if out of range.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().try_i8_at(0).is_err());
    /// ```
    #[inline]
    pub fn try_i8_at(&self, offset: usize) -> Result<i8, RangeError> {
        self.try_u8_at(offset).map(|b| b as i8)
    }

    read_at! {
        u16 => u16_at, try_u16_at, u16_le_at, try_u16_le_at;
        u32 => u32_at, try_u32_at, u32_le_at, try_u32_le_at;
        u64 => u64_at, try_u64_at, u64_le_at, try_u64_le_at;
        u128 => u128_at, try_u128_at, u128_le_at, try_u128_le_at;
        i16 => i16_at, try_i16_at, i16_le_at, try_i16_le_at;
        i32 => i32_at, try_i32_at, i32_le_at, try_i32_le_at;
        i64 => i64_at, try_i64_at, i64_le_at, try_i64_le_at;
        i128 => i128_at, try_i128_at, i128_le_at, try_i128_le_at;
        f32 => f32_at, try_f32_at, f32_le_at, try_f32_le_at;
        f64 => f64_at, try_f64_at, f64_le_at, try_f64_le_at;
    }

    /// Offset of the first `byte`, searching across components.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"c;d"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.find(b';'), Some(3));
    /// assert_eq!(c.find(b'z'), None);
    /// ```
    pub fn find(&self, byte: u8) -> Option<usize> {
        self.entries
            .iter()
            .find_map(|e| memchr::memchr(byte, &e.buf).map(|i| e.offset(self.base) + i))
    }

    /// Offset of the first occurrence of `pattern`, also where it straddles
    /// component boundaries (as `\r\n\r\n` split over two reads does). An
    /// empty pattern is found at 0.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"GET / HTTP/1.1\r\n\r".as_slice(), b"", b"\nbody"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.find_slice(b"\r\n\r\n"), Some(14));
    /// ```
    pub fn find_slice(&self, pattern: &[u8]) -> Option<usize> {
        if pattern.is_empty() {
            return Some(0);
        }
        if pattern.len() > self.len {
            return None;
        }
        let finder = memchr::memmem::Finder::new(pattern);
        for (index, entry) in self.entries.iter().enumerate() {
            let bytes = entry.buf.as_slice();
            let offset = entry.offset(self.base);
            if let Some(i) = finder.find(bytes) {
                return Some(offset + i);
            }
            // Matches that start here and run into the next components start
            // in the last `pattern.len() - 1` bytes, after any match above.
            let first_straddling = bytes.len().saturating_sub(pattern.len() - 1);
            for start in first_straddling..bytes.len() {
                // Past `len - pattern.len()` no match fits (written so that
                // nothing can overflow: `offset + start < len`).
                if pattern.len() > self.len - (offset + start) {
                    return None;
                }
                if self.matches_from(index, start, pattern) {
                    return Some(offset + start);
                }
            }
        }
        None
    }

    /// Whether `pattern` occurs at byte `within` of entry `index` (it may
    /// run on into later entries; the caller checked it fits).
    fn matches_from(&self, index: usize, within: usize, pattern: &[u8]) -> bool {
        let mut rest = pattern;
        let mut within = within;
        for entry in self.entries.range(index..) {
            let bytes = &entry.buf[within..];
            let n = bytes.len().min(rest.len());
            if bytes[..n] != rest[..n] {
                return false;
            }
            rest = &rest[n..];
            if rest.is_empty() {
                return true;
            }
            within = 0;
        }
        false
    }

    /// Calls `visit` on every byte from the front until it returns `false`;
    /// returns the offset where it stopped, like Netty's `forEachByte`.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"c\n"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.for_each_byte(|b| b != b'\n'), Some(3));
    /// assert_eq!(c.for_each_byte(|_| true), None);
    /// ```
    pub fn for_each_byte(&self, mut visit: impl FnMut(u8) -> bool) -> Option<usize> {
        for entry in &self.entries {
            if let Some(i) = entry.buf.iter().position(|&b| !visit(b)) {
                return Some(entry.offset(self.base) + i);
            }
        }
        None
    }

    /// Fills `dst` with the non-empty components from the current position
    /// on, for one `writev`; returns how many slots it filled. Allocates
    /// nothing; stops when `dst` is full.
    ///
    /// ```
    /// use std::io::IoSlice;
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"", b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// let mut slots = [IoSlice::new(&[]); 8];
    /// assert_eq!(c.fill_io_slices(&mut slots), 2);
    /// assert_eq!(&*slots[1], b"cd");
    /// ```
    pub fn fill_io_slices<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for entry in &self.entries {
            if filled == dst.len() {
                break;
            }
            if !entry.buf.is_empty() {
                dst[filled] = IoSlice::new(entry.buf.as_slice());
                filled += 1;
            }
        }
        filled
    }

    /// A composite of the bytes in `range`, sharing the components' memory;
    /// panics if the range is out of bounds.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"abc".as_slice(), b"def"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// let s = c.slice(2..5);
    /// assert_eq!(s, b"cde"[..]);
    /// assert_eq!(s.component_count(), 2);
    /// ```
    #[track_caller]
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Composite {
        or_panic(self.try_slice(range))
    }

    /// Like [`slice`](Self::slice), with an error instead of a panic.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().try_slice(0..1).is_err());
    /// ```
    pub fn try_slice(&self, range: impl RangeBounds<usize>) -> Result<Composite, RangeError> {
        let (start, end) = check_range(range, self.len)?;
        let mut out = Composite::new();
        if start == end {
            return Ok(out);
        }
        let (first, within) = self.locate(start);
        let mut skip = within;
        let mut want = end - start;
        for entry in self.entries.range(first..) {
            if want == 0 {
                break;
            }
            let n = (entry.buf.len() - skip).min(want);
            // SAFETY: `skip + n <= entry.buf.len()` by the `min` above.
            out.push(unsafe { entry.buf.sub(skip, n) });
            want -= n;
            skip = 0;
        }
        Ok(out)
    }

    /// Splits off and returns the first `at` bytes; `self` keeps the rest.
    /// Moves only the components it hands out. Panics if `at > len()`.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"abc".as_slice(), b"def"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// let head = c.split_to(4);
    /// assert_eq!(head, b"abcd"[..]);
    /// assert_eq!(c, b"ef"[..]);
    /// ```
    #[track_caller]
    pub fn split_to(&mut self, at: usize) -> Composite {
        or_panic(self.try_split_to(at))
    }

    /// Like [`split_to`](Self::split_to), with an error instead of a panic.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().try_split_to(1).is_err());
    /// ```
    pub fn try_split_to(&mut self, at: usize) -> Result<Composite, RangeError> {
        check_at(at, self.len)?;
        let mut head = Composite::new();
        let mut want = at;
        let mut popped = 0;
        while want > 0 {
            let front = self.entries.front_mut().expect("length covers the entries");
            if front.buf.len() <= want {
                let entry = self.entries.pop_front().expect("front exists");
                popped += 1;
                want -= entry.buf.len();
                self.base = entry.start.wrapping_add(entry.buf.len() as u64);
                head.push(entry.buf);
            } else {
                head.push(front.buf.split_to(want));
                front.start = front.start.wrapping_add(want as u64);
                self.base = front.start;
                want = 0;
            }
        }
        self.len -= at;
        self.drop_hint(popped);
        Ok(head)
    }

    /// Splits off and returns the bytes from `at` on; `self` keeps the
    /// first `at`. Moves only the components it hands out. Panics if
    /// `at > len()`.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"abc".as_slice(), b"def"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// let tail = c.split_off(2);
    /// assert_eq!(tail, b"cdef"[..]);
    /// assert_eq!(c, b"ab"[..]);
    /// ```
    #[track_caller]
    pub fn split_off(&mut self, at: usize) -> Composite {
        or_panic(self.try_split_off(at))
    }

    /// Like [`split_off`](Self::split_off), with an error instead of a panic.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().try_split_off(1).is_err());
    /// ```
    pub fn try_split_off(&mut self, at: usize) -> Result<Composite, RangeError> {
        check_at(at, self.len)?;
        let mut tail = VecDeque::new();
        let mut want = self.len - at;
        while want > 0 {
            let back = self.entries.back_mut().expect("length covers the entries");
            if back.buf.len() <= want {
                let entry = self.entries.pop_back().expect("back exists");
                want -= entry.buf.len();
                tail.push_front(entry.buf);
            } else {
                let keep = back.buf.len() - want;
                tail.push_front(back.buf.split_off(keep));
                want = 0;
            }
        }
        self.len = at;
        Ok(tail.into_iter().collect())
    }

    /// Shortens the composite to `len` bytes, dropping whole components
    /// from the back; does nothing if it is not longer.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"abc".as_slice(), b"def"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// c.truncate(2);
    /// assert_eq!(c, b"ab"[..]);
    /// assert_eq!(c.component_count(), 1);
    /// ```
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            drop(self.split_off(len));
        }
    }

    /// Consumes `count` bytes from the front, dropping the components it
    /// finishes (O(1) each; nothing shifts). Panics if `count > len()`.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"abc".as_slice(), b"def"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// c.advance(4);
    /// assert_eq!(c, b"ef"[..]);
    /// assert_eq!(c.component_count(), 1);
    /// ```
    #[track_caller]
    pub fn advance(&mut self, count: usize) {
        or_panic(self.try_advance(count))
    }

    /// Like [`advance`](Self::advance), with an error instead of a panic.
    ///
    /// ```
    /// assert!(zcbuf_core::Composite::new().try_advance(1).is_err());
    /// ```
    pub fn try_advance(&mut self, count: usize) -> Result<(), RangeError> {
        check_at(count, self.len)?;
        let mut want = count;
        let mut popped = 0;
        while want > 0 {
            let front = self.entries.front_mut().expect("length covers the entries");
            if front.buf.len() <= want {
                want -= front.buf.len();
                self.entries.pop_front();
                popped += 1;
            } else {
                // SAFETY: `want < front.buf.len()`.
                unsafe { front.buf.advance_unchecked(want) };
                front.start = front.start.wrapping_add(want as u64);
                want = 0;
            }
        }
        self.base = self.base.wrapping_add(count as u64);
        self.len -= count;
        self.drop_hint(popped);
        Ok(())
    }

    /// Copies every byte into one new contiguous component, so that later
    /// reads need no lookup. The only copying operation besides
    /// [`to_buf`](Self::to_buf); nothing calls it implicitly. Does nothing
    /// when there is at most one non-empty component.
    ///
    /// ```
    /// let mut c: zcbuf_core::Composite = [b"ab".as_slice(), b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// c.consolidate();
    /// assert_eq!(c.component_count(), 1);
    /// assert_eq!(c, b"abcd"[..]);
    /// ```
    pub fn consolidate(&mut self) {
        if self.entries.len() <= 1 {
            return;
        }
        let whole = self.to_buf();
        self.clear();
        self.push(whole);
    }

    /// The whole composite as one [`Buf`]: the component itself (no copy)
    /// when there is at most one non-empty component, otherwise a copy.
    ///
    /// ```
    /// let body = zcbuf_core::Buf::from(b"only".to_vec());
    /// let c: zcbuf_core::Composite = [zcbuf_core::Buf::new(), body.clone()].into_iter().collect();
    /// assert!(c.to_buf().ptr_eq(&body)); // no copy
    /// ```
    pub fn to_buf(&self) -> Buf {
        let mut non_empty = self.entries.iter().filter(|e| !e.buf.is_empty());
        match (non_empty.next(), non_empty.next()) {
            (None, _) => Buf::new(),
            (Some(only), None) => only.buf.clone(),
            _ => {
                let mut out = Vec::with_capacity(self.len);
                for chunk in self.chunks() {
                    out.extend_from_slice(chunk);
                }
                Buf::from(out)
            }
        }
    }

    /// Copies every byte into a new `Vec`.
    ///
    /// ```
    /// let c: zcbuf_core::Composite = [b"ab".as_slice(), b"cd"].into_iter().map(zcbuf_core::Buf::from).collect();
    /// assert_eq!(c.to_vec(), b"abcd");
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in self.chunks() {
            out.extend_from_slice(chunk);
        }
        out
    }
}

impl Clone for Composite {
    /// Clones every component view (a retain each); copies no bytes.
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            base: self.base,
            len: self.len,
            last_hit: AtomicUsize::new(self.last_hit.load(Ordering::Relaxed)),
        }
    }
}

impl Default for Composite {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Composite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Composite(len={}, components={}, ",
            self.len,
            self.entries.len()
        )?;
        write_preview(f, self.iter(), self.len)?;
        f.write_str(")")
    }
}

impl PartialEq<[u8]> for Composite {
    fn eq(&self, other: &[u8]) -> bool {
        if self.len != other.len() {
            return false;
        }
        let mut rest = other;
        self.chunks().all(|chunk| {
            let (head, tail) = rest.split_at(chunk.len());
            rest = tail;
            head == chunk
        })
    }
}

impl PartialEq<&[u8]> for Composite {
    fn eq(&self, other: &&[u8]) -> bool {
        *self == **other
    }
}

impl PartialEq<Vec<u8>> for Composite {
    fn eq(&self, other: &Vec<u8>) -> bool {
        *self == other[..]
    }
}

impl PartialEq for Composite {
    /// Byte-wise equality, whatever the component boundaries.
    fn eq(&self, other: &Composite) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Composite {}

impl From<Buf> for Composite {
    fn from(buf: Buf) -> Self {
        let mut c = Composite::new();
        c.push(buf);
        c
    }
}

impl FromIterator<Buf> for Composite {
    fn from_iter<I: IntoIterator<Item = Buf>>(iter: I) -> Self {
        let mut c = Composite::new();
        c.extend(iter);
        c
    }
}

impl Extend<Buf> for Composite {
    fn extend<I: IntoIterator<Item = Buf>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.entries.reserve(iter.size_hint().0);
        for buf in iter {
            self.push(buf);
        }
    }
}

impl bytes::Buf for Composite {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.entries
            .iter()
            .map(|e| e.buf.as_slice())
            .find(|c| !c.is_empty())
            .unwrap_or(&[])
    }

    #[track_caller]
    fn advance(&mut self, count: usize) {
        Composite::advance(self, count)
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.fill_io_slices(dst)
    }

    /// Zero-copy when the bytes lie in one component; copies otherwise.
    fn copy_to_bytes(&mut self, len: usize) -> bytes::Bytes {
        let head = self.split_to(len);
        bytes::Bytes::from(head.to_buf())
    }
}

impl io::Read for Composite {
    /// Copies from the front and consumes what it copied.
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let n = dst.len().min(self.len);
        self.copy_at(0, &mut dst[..n])?;
        self.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_entry_is_at_most_40_bytes() {
        assert!(std::mem::size_of::<Entry>() <= 40);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn push_front_after_advance_keeps_offsets() {
        let mut c: Composite = [b"abc".as_slice(), b"def"]
            .into_iter()
            .map(Buf::from)
            .collect();
        c.advance(4);
        c.push_front(Buf::from_static(b"XY"));
        c.push_front(Buf::from_static(b""));
        c.push_front(Buf::from_static(b"W"));
        assert_eq!(c, b"WXYef"[..]);
        for (i, b) in b"WXYef".iter().enumerate() {
            assert_eq!(c.u8_at(i), *b);
        }
        assert_eq!(c.find(b'e'), Some(3));
    }

    #[test]
    fn reads_straddling_components() {
        let c: Composite = [
            &[0x01u8][..],
            &[0x02, 0x03],
            &[],
            &[0x04, 0x05, 0x06, 0x07, 0x08],
        ]
        .into_iter()
        .map(Buf::from_static)
        .collect();
        assert_eq!(c.u32_at(0), 0x0102_0304);
        assert_eq!(c.u32_le_at(0), 0x0403_0201);
        assert_eq!(c.u64_at(0), 0x0102_0304_0506_0708);
        assert!(c.try_u64_at(1).is_err());
        assert_eq!(c.u16_at(6), 0x0708);
    }
}
