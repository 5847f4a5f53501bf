//! Memory for Java: regions Java reads and writes through one direct
//! `ByteBuffer` each, while the bridge keeps a [`Buf`] of the same bytes
//! in the handle table so they can go to the kernel without a copy.
//!
//! # Shared mutable memory
//!
//! A `Buf` promises bytes that nobody writes, but Java writes these
//! regions through its `ByteBuffer` whenever it likes. The bridge keeps
//! that honest by never reading a region's bytes itself: its `Buf`s are
//! only turned into raw `iovec`s for the kernel, exactly as a
//! `MAP_SHARED` mapping written by another process would be. What the
//! kernel sends while Java writes is then the user's race (as with any
//! buffer written while it is being sent), never undefined behaviour here.
//!
//! Every byte of a region is initialised before Java sees it: heap regions
//! are zeroed, pool blocks come from anonymous maps (zero-filled by the
//! kernel and only ever written with bytes since), wrapped `ByteBuffer`s
//! and mapped files are initialised by their owners.

use std::fs::File;

use jni::objects::{GlobalRef, JByteBuffer};
use jni::JNIEnv;
use zcbuf_core::pool::Pool;
use zcbuf_core::{Buf, BufMut};

use crate::error::{BridgeError, BridgeResult};

/// A region just made: its `Buf` (for the table) and where Java sees it.
pub struct Region {
    pub buf: Buf,
    ptr: *mut u8,
    len: usize,
}

impl Region {
    fn of(buf: Buf) -> Self {
        let ptr = buf.as_ptr() as *mut u8;
        let len = buf.len();
        Region { buf, ptr, len }
    }

    /// The direct `ByteBuffer` Java reads and writes the region through.
    pub fn byte_buffer<'local>(
        &self,
        env: &mut JNIEnv<'local>,
    ) -> BridgeResult<JByteBuffer<'local>> {
        // SAFETY: `ptr..ptr+len` is the region, kept alive by `self.buf`
        // which goes into the handle table; Java touches the `ByteBuffer`
        // only while its buffer holds that handle (and the leak cleaner
        // frees the handle only once the `ByteBuffer` is unreachable).
        Ok(unsafe { env.new_direct_byte_buffer(self.ptr, self.len)? })
    }
}

fn capacity(capacity: i32) -> BridgeResult<usize> {
    usize::try_from(capacity)
        .map_err(|_| BridgeError::IllegalArgument(format!("capacity {capacity} is negative")))
}

/// `capacity` zeroed bytes on the heap, or a whole pool block of at least
/// that size (not zeroed: its bytes are whatever the last user left, as
/// with Netty's pooled buffers). Java sees the whole block, so it can
/// reuse a released one for any request of the same size class.
pub fn allocate(cap: i32, pooled: bool) -> BridgeResult<Region> {
    let cap = capacity(cap)?;
    let mut block = if pooled {
        Pool::global().try_alloc(cap)?
    } else {
        BufMut::with_capacity(cap)
    };
    let size = if pooled { block.capacity() } else { cap };
    if !pooled {
        // SAFETY: the buffer has room for `cap` bytes at its pointer.
        unsafe { std::ptr::write_bytes(block.as_mut_ptr(), 0, cap) };
    }
    // SAFETY: heap: the `cap` bytes were just zeroed. Pool: the whole
    // block lies in an anonymous map, zero-filled by the kernel and only
    // ever written with whole bytes since, so every byte is initialised.
    unsafe { block.set_len(size) };
    Ok(Region::of(block.freeze()))
}

/// The bytes `[offset, offset + length)` of a direct `ByteBuffer`, kept
/// alive by a global reference to it for as long as any view (or pinned
/// zero-copy send) needs them.
pub fn wrap(
    env: &mut JNIEnv<'_>,
    direct: &JByteBuffer<'_>,
    offset: i32,
    length: i32,
) -> BridgeResult<Region> {
    if direct.is_null() {
        return Err(BridgeError::Null("the ByteBuffer"));
    }
    let address = env.get_direct_buffer_address(direct).map_err(|_| {
        BridgeError::IllegalArgument(
            "only direct ByteBuffers can be wrapped without copying".into(),
        )
    })?;
    let total = env.get_direct_buffer_capacity(direct)?;
    let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(length)) else {
        return Err(BridgeError::OutOfRange(format!(
            "negative offset {offset} or length {length}"
        )));
    };
    if start.checked_add(len).map_or(true, |end| end > total) {
        return Err(BridgeError::OutOfRange(format!(
            "range {start}+{len} out of bounds for a ByteBuffer of capacity {total}"
        )));
    }
    let owner: GlobalRef = env.new_global_ref(direct)?;
    let ptr = if len == 0 {
        address
    } else {
        address.wrapping_add(start)
    };
    // SAFETY: `ptr..ptr+len` lies inside the direct buffer's memory, which
    // the JVM frees only after the buffer object is collected; the global
    // reference owned by the storage keeps the object reachable until the
    // last view is gone. The bytes are initialised (Java zeroes direct
    // buffers; foreign memory is initialised by its owner).
    let buf = unsafe { Buf::from_raw_parts(ptr, len, owner) };
    Ok(Region::of(buf))
}

/// `length` bytes of the file at `path` from `offset`, mapped read-only;
/// `length < 0` maps to the end of the file.
pub fn map(path: &str, offset: i64, length: i64) -> BridgeResult<Region> {
    let start = u64::try_from(offset)
        .map_err(|_| BridgeError::OutOfRange(format!("negative file offset {offset}")))?;
    let file = File::open(path)?;
    let end = match u64::try_from(length) {
        Ok(len) => start.checked_add(len).ok_or_else(|| {
            BridgeError::OutOfRange(format!("offset {offset} + length {length} overflows"))
        })?,
        Err(_) => file.metadata()?.len(),
    };
    if end - start.min(end) > i32::MAX as u64 {
        return Err(BridgeError::IllegalArgument(format!(
            "{} bytes cannot be one Java buffer (at most 2^31 - 1)",
            end - start
        )));
    }
    // SAFETY: the Java API documents that a mapped file must not be
    // truncated or written while its buffers live (as with
    // `FileChannel.map`); the map is read-only on our side.
    let buf = unsafe { zcbuf_core::io::map_file(&file, start..end) }.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            BridgeError::OutOfRange(e.to_string())
        } else {
            BridgeError::Io(e)
        }
    })?;
    Ok(Region::of(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_regions_are_zeroed_and_exact() {
        let r = allocate(1000, false).unwrap();
        assert_eq!(r.buf.len(), 1000);
        assert!(r.buf.iter().all(|&b| b == 0));
        assert!(matches!(
            allocate(-1, false),
            Err(BridgeError::IllegalArgument(_))
        ));
        assert_eq!(
            allocate(0, true).unwrap().buf.len(),
            256,
            "the smallest pool block"
        );
    }

    #[test]
    fn pooled_regions_have_the_asked_length_and_return_to_the_pool() {
        let before = Pool::global().stats().live_buffers;
        let r = allocate(5000, true).unwrap();
        assert_eq!(r.len, 8192, "the whole block of the 8 KiB class");
        assert_eq!(Pool::global().stats().live_buffers, before + 1);
        drop(r);
        assert_eq!(Pool::global().stats().live_buffers, before);
    }

    #[test]
    fn mapping_checks_its_range() {
        let path = std::env::temp_dir().join(format!("zcbuf-jni-map-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(&map(p, 2, 3).unwrap().buf[..], b"234");
        assert_eq!(&map(p, 4, -1).unwrap().buf[..], b"456789");
        assert!(matches!(map(p, 8, 5), Err(BridgeError::OutOfRange(_))));
        assert!(matches!(map(p, -1, 5), Err(BridgeError::OutOfRange(_))));
        assert!(matches!(
            map("/nonexistent/zcbuf", 0, 1),
            Err(BridgeError::Io(_))
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
