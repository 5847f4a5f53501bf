//! Error types shared by the buffer types.

use std::fmt;

/// A byte range that does not fit inside a buffer.
///
/// Returned by every `try_*` method of [`Buf`](crate::Buf),
/// [`BufMut`](crate::BufMut) and [`Composite`](crate::Composite) when the
/// requested range (or offset, or count) is out of bounds. The panicking
/// forms of the same methods panic with this error's message.
///
/// ```
/// use zcbuf_core::{Buf, RangeError};
///
/// let buf = Buf::from_static(b"hello");
/// let err = buf.try_slice(2..9).unwrap_err();
/// assert_eq!(err, RangeError::new(2, 9, 5));
/// assert_eq!(err.to_string(), "range 2..9 out of bounds for length 5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RangeError {
    start: usize,
    end: usize,
    len: usize,
}

impl RangeError {
    /// Creates the error for the range `start..end` on a buffer of `len` bytes.
    ///
    /// ```
    /// let err = zcbuf_core::RangeError::new(0, 4, 3);
    /// assert_eq!(err.end(), 4);
    /// ```
    pub const fn new(start: usize, end: usize, len: usize) -> Self {
        Self { start, end, len }
    }

    /// First byte of the rejected range.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::RangeError::new(7, 9, 3).start(), 7);
    /// ```
    pub const fn start(&self) -> usize {
        self.start
    }

    /// One past the last byte of the rejected range.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::RangeError::new(7, 9, 3).end(), 9);
    /// ```
    pub const fn end(&self) -> usize {
        self.end
    }

    /// Length of the buffer the range was checked against.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::RangeError::new(7, 9, 3).len(), 3);
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> usize {
        self.len
    }
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start > self.end {
            write!(
                f,
                "range start {} is greater than its end {} (length {})",
                self.start, self.end, self.len
            )
        } else {
            write!(
                f,
                "range {}..{} out of bounds for length {}",
                self.start, self.end, self.len
            )
        }
    }
}

impl std::error::Error for RangeError {}

impl From<RangeError> for std::io::Error {
    fn from(err: RangeError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, err)
    }
}

/// Why a [`BufMut`](crate::BufMut) could not get the memory it asked for.
///
/// Returned by [`BufMut::try_with_capacity`](crate::BufMut::try_with_capacity),
/// [`BufMut::try_with_capacity_aligned`](crate::BufMut::try_with_capacity_aligned)
/// and [`BufMut::try_reserve`](crate::BufMut::try_reserve); the panicking
/// forms panic with its message (or, when the allocator itself fails, abort
/// as `Vec` does).
///
/// ```
/// use zcbuf_core::{AllocError, BufMut};
///
/// let err = BufMut::try_with_capacity(usize::MAX).unwrap_err();
/// assert!(matches!(err, AllocError::InvalidLayout { size: usize::MAX, align: 16 }));
/// let err = BufMut::try_with_capacity_aligned(64, 3).unwrap_err();
/// assert!(err.to_string().contains("power of two"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocError {
    /// The bytes already written plus the bytes asked for overflow `usize`.
    CapacityOverflow {
        /// Bytes written.
        len: usize,
        /// Further bytes asked for.
        additional: usize,
    },
    /// No allocation can have this shape: `align` is not a power of two,
    /// or `size` rounded up to `align` exceeds `isize::MAX`.
    InvalidLayout {
        /// Bytes asked for.
        size: usize,
        /// Alignment asked for.
        align: usize,
    },
    /// The allocator had no memory for a valid request.
    OutOfMemory {
        /// Bytes asked for.
        size: usize,
        /// Alignment asked for.
        align: usize,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AllocError::CapacityOverflow { len, additional } => write!(
                f,
                "buffer capacity overflow: {len} bytes written plus {additional} more exceed usize"
            ),
            AllocError::InvalidLayout { size, align } => write!(
                f,
                "invalid buffer layout: {size} bytes aligned to {align} (the alignment must be a power of two and the size at most isize::MAX)"
            ),
            AllocError::OutOfMemory { size, align } => write!(
                f,
                "out of memory allocating {size} bytes aligned to {align}"
            ),
        }
    }
}

impl std::error::Error for AllocError {}

impl From<AllocError> for std::io::Error {
    fn from(err: AllocError) -> Self {
        let kind = match err {
            AllocError::OutOfMemory { .. } => std::io::ErrorKind::OutOfMemory,
            _ => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, err)
    }
}

/// Resolves any `RangeBounds<usize>` against a length, checking it.
pub(crate) fn check_range(
    range: impl std::ops::RangeBounds<usize>,
    len: usize,
) -> Result<(usize, usize), RangeError> {
    use std::ops::Bound;
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s
            .checked_add(1)
            .ok_or(RangeError::new(usize::MAX, len, len))?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e
            .checked_add(1)
            .ok_or(RangeError::new(start, usize::MAX, len))?,
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    if start > end || end > len {
        return Err(RangeError::new(start, end, len));
    }
    Ok((start, end))
}

/// Checks that `at <= len` for a split or advance position.
pub(crate) fn check_at(at: usize, len: usize) -> Result<usize, RangeError> {
    if at > len {
        Err(RangeError::new(0, at, len))
    } else {
        Ok(at)
    }
}

/// Unwraps a range result with the error's message, for the panicking forms.
#[track_caller]
pub(crate) fn or_panic<T>(result: Result<T, RangeError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
