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
//! # What a stale view reads
//!
//! Java may read a region through a view after releasing it (a race, or a
//! bug); no check can close the window between its count check and the
//! read. So no address range Java can reach is unmapped while it can:
//!
//! | region | at release | stale read sees |
//! |---|---|---|
//! | pooled, up to 1 MiB | block back to the global pool | the block's later bytes (a new owner's), or zeros once the pool gave an idle block's pages back (`MADV_FREE`: still mapped) |
//! | unpooled, up to 64 KiB | block back to a pool of its own | zeros, or a later unpooled buffer's bytes |
//! | pooled above 1 MiB, unpooled above 64 KiB | `MADV_DONTNEED` (RAM back to the OS) | zeros |
//! | mapped file | replaced by anonymous memory (file pages go) | zeros |
//! | wrapped direct `ByteBuffer` | the bridge's reference goes | the buffer's bytes (Java keeps it alive) |
//!
//! The pools' chunks are never unmapped in a JVM: the bridge never trims
//! them. The bridge's own maps are unmapped when Java's root `ByteBuffer`
//! is collected as well ([`crate::mapping`]).
//!
//! Every byte of a region is initialised before Java sees it: unpooled
//! regions are zeroed, pool blocks come from anonymous maps (zero-filled by
//! the kernel and only ever written with bytes since), wrapped
//! `ByteBuffer`s and mapped files are initialised by their owners.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use jni::objects::{GlobalRef, JByteBuffer};
use jni::JNIEnv;
use zcbuf_core::pool::{Pool, PoolConfig};
use zcbuf_core::Buf;

use crate::error::{BridgeError, BridgeResult};
use crate::mapping::{MapOwner, Mapping, Retire};

/// The largest block of the pool's size classes; bigger pooled requests
/// get a map of the bridge's own, because the pool would unmap its
/// dedicated map at release, under a Java view.
///
/// ```
/// let r = zcbuf_jni::memory::allocate(zcbuf_jni::memory::POOL_CLASS_MAX as i32, true).unwrap();
/// assert!(r.root.is_none()); // a pool block: nothing to unmap later
/// ```
pub const POOL_CLASS_MAX: usize = 1 << 20;

/// Unpooled requests up to this size share a pool of their own (zeroed
/// blocks, never unmapped); bigger ones get their own map, whose RAM goes
/// back to the OS at release.
///
/// ```
/// use zcbuf_jni::memory::{allocate, SMALL_UNPOOLED_MAX};
/// assert!(allocate(SMALL_UNPOOLED_MAX as i32, false).unwrap().root.is_none());
/// assert!(allocate(SMALL_UNPOOLED_MAX as i32 + 1, false).unwrap().root.is_some());
/// ```
pub const SMALL_UNPOOLED_MAX: usize = 64 << 10;

/// A region just made: its `Buf` (for the table), where Java sees it, and
/// the mapping Java's root keeps (for the bridge's own maps).
pub struct Region {
    pub buf: Buf,
    ptr: *mut u8,
    len: usize,
    /// Held for Java's root `ByteBuffer` until it is collected.
    pub root: Option<Arc<Mapping>>,
    /// The file a mapped region shows, so that writes can `sendfile` it.
    pub file: Option<crate::file_region::FileSource>,
}

impl Region {
    fn of(buf: Buf) -> Self {
        let ptr = buf.as_ptr() as *mut u8;
        let len = buf.len();
        Region {
            buf,
            ptr,
            len,
            root: None,
            file: None,
        }
    }

    /// The direct `ByteBuffer` Java reads and writes the region through.
    pub fn byte_buffer<'local>(
        &self,
        env: &mut JNIEnv<'local>,
    ) -> BridgeResult<JByteBuffer<'local>> {
        // SAFETY: `ptr..ptr+len` is the region. It stays mapped for as long
        // as Java's `ByteBuffer` (or any view of it) is reachable: pool
        // chunks are never unmapped in a JVM, and the bridge's own maps
        // are unmapped only after Java reports the root collected (see
        // `crate::mapping`). Its bytes stay initialised: a retired range
        // reads as zeros.
        Ok(unsafe { env.new_direct_byte_buffer(self.ptr, self.len)? })
    }
}

fn capacity(capacity: i32) -> BridgeResult<usize> {
    usize::try_from(capacity)
        .map_err(|_| BridgeError::IllegalArgument(format!("capacity {capacity} is negative")))
}

/// The pool of small unpooled regions: separate from the global pool so
/// that the latter's statistics count only pooled buffers.
fn small_pool() -> &'static Pool {
    static SMALL: OnceLock<Pool> = OnceLock::new();
    SMALL.get_or_init(|| Pool::new(PoolConfig::default()))
}

/// Pooled buffers above [`POOL_CLASS_MAX`], counted with the pool's own
/// statistics: `(bytes, buffers)` in use.
static BIG_POOLED_BYTES: AtomicU64 = AtomicU64::new(0);
static BIG_POOLED_LIVE: AtomicU64 = AtomicU64::new(0);

fn big_pooled_retired(len: usize) {
    BIG_POOLED_BYTES.fetch_sub(len as u64, Ordering::Relaxed);
    BIG_POOLED_LIVE.fetch_sub(1, Ordering::Relaxed);
}

/// `(bytes, buffers)` of pooled requests above [`POOL_CLASS_MAX`] still in use.
///
/// ```
/// let (bytes, buffers) = zcbuf_jni::memory::big_pooled();
/// assert!(buffers > 0 || bytes == 0);
/// ```
pub fn big_pooled() -> (u64, u64) {
    (
        BIG_POOLED_BYTES.load(Ordering::Relaxed),
        BIG_POOLED_LIVE.load(Ordering::Relaxed),
    )
}

/// A region of `cap` bytes: a whole pool block of at least that size (not
/// zeroed: its bytes are whatever the last user left, as with Netty's
/// pooled buffers; Java sees the whole block, so it can reuse a released
/// one for any request of the same size class), else exactly `cap` zeroed
/// bytes. See the module docs for where each size comes from.
///
/// ```
/// let r = zcbuf_jni::memory::allocate(100_000, false).unwrap();
/// assert_eq!(r.buf.len(), 100_000);
/// assert!(r.buf.iter().all(|&b| b == 0));
/// ```
pub fn allocate(cap: i32, pooled: bool) -> BridgeResult<Region> {
    allocate_in(Pool::global(), small_pool(), cap, pooled)
}

fn allocate_in(global: &Pool, small: &Pool, cap: i32, pooled: bool) -> BridgeResult<Region> {
    let cap = capacity(cap)?;
    if pooled && cap <= POOL_CLASS_MAX {
        // A power of two: the Java side's per-thread block cache
        // (`RegionCache`) keeps blocks of the power-of-two classes only.
        let mut block = global.try_alloc(cap.next_power_of_two())?;
        let size = block.capacity();
        // SAFETY: the whole block lies in an anonymous map, zero-filled by
        // the kernel and only ever written with whole bytes since, so every
        // byte is initialised.
        unsafe { block.set_len(size) };
        return Ok(Region::of(block.freeze()));
    }
    if !pooled && cap <= SMALL_UNPOOLED_MAX {
        let mut block = small.try_alloc(cap)?;
        // SAFETY: the block has room for at least `cap` bytes at its pointer.
        unsafe { std::ptr::write_bytes(block.as_mut_ptr(), 0, cap) };
        // SAFETY: the `cap` bytes were just zeroed.
        unsafe { block.set_len(cap) };
        return Ok(Region::of(block.freeze()));
    }
    let map = Arc::new(Mapping::anon(cap)?);
    let ptr = map.as_ptr();
    let on_retire = if pooled {
        BIG_POOLED_BYTES.fetch_add(map.len() as u64, Ordering::Relaxed);
        BIG_POOLED_LIVE.fetch_add(1, Ordering::Relaxed);
        Some(big_pooled_retired as fn(usize))
    } else {
        None
    };
    let owner = MapOwner::new(Arc::clone(&map), Retire::Anon, on_retire);
    // SAFETY: `ptr..ptr+cap` lies in the map (at least `cap` bytes), fresh
    // anonymous memory the kernel zeroed; `owner` keeps it mapped while the
    // `Buf` lives, and the bridge never reads it (module docs).
    let buf = unsafe { Buf::from_raw_parts(ptr, cap, owner) };
    let mut region = Region::of(buf);
    region.root = Some(map);
    Ok(region)
}

/// The bytes `[offset, offset + length)` of a direct `ByteBuffer`, kept
/// alive by a global reference to it for as long as the handle (or a
/// pinned zero-copy send) needs them. Java reads them through a slice of
/// its own buffer, which keeps that buffer reachable for as long as any
/// view is: a stale read sees the buffer's bytes, never freed memory.
pub fn wrap(
    env: &mut JNIEnv<'_>,
    direct: &JByteBuffer<'_>,
    offset: i32,
    length: i32,
) -> BridgeResult<Buf> {
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
    Ok(unsafe { Buf::from_raw_parts(ptr, len, owner) })
}

/// Opens `path` for reading and checks `[offset, offset + length)` against
/// it (`length < 0`: to the end of the file): the file, the range's start
/// and its length (at most `i32::MAX`, one Java buffer). Anything but a
/// regular file is refused before it could block; `use_` says what the
/// file was for in that error.
pub(crate) fn open_range(
    path: &str,
    offset: i64,
    length: i64,
    use_: &str,
) -> BridgeResult<(std::fs::File, u64, u64)> {
    let start = u64::try_from(offset)
        .map_err(|_| BridgeError::OutOfRange(format!("negative file offset {offset}")))?;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer, forever; it changes nothing for the regular files we keep.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(BridgeError::NotRegularFile(format!(
            "{path} is {what}: only regular files can be {use_}"
        )));
    }
    let file_len = meta.len();
    let end = match u64::try_from(length) {
        Ok(len) => start.checked_add(len).ok_or_else(|| {
            BridgeError::OutOfRange(format!("offset {offset} + length {length} overflows"))
        })?,
        Err(_) => file_len,
    };
    if start > end || end > file_len {
        return Err(BridgeError::OutOfRange(format!(
            "range {start}..{end} out of bounds for a file of {file_len} bytes"
        )));
    }
    let len = end - start;
    if len > i32::MAX as u64 {
        return Err(BridgeError::IllegalArgument(format!(
            "{len} bytes cannot be one Java buffer (at most 2^31 - 1)"
        )));
    }
    Ok((file, start, len))
}

/// `length` bytes of the file at `path` from `offset`, mapped read-only;
/// `length < 0` maps to the end of the file. Anything but a regular file
/// (a FIFO, a device, a directory) is refused before it could block.
///
/// ```
/// use zcbuf_jni::error::BridgeError;
/// let path = std::env::temp_dir().join(format!("zcbuf-jni-doc-map-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// assert_eq!(&zcbuf_jni::memory::map(path.to_str().unwrap(), 2, 3).unwrap().buf[..], b"234");
/// assert!(matches!(zcbuf_jni::memory::map("/dev/null", 0, -1), Err(BridgeError::NotRegularFile(_))));
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn map(path: &str, offset: i64, length: i64) -> BridgeResult<Region> {
    let (file, start, len) = open_range(path, offset, length, "mapped")?;
    let len = len as usize;
    if len == 0 {
        return Ok(Region::of(Buf::new()));
    }
    let (map, at) = Mapping::file(&file, start, len)?;
    let map = Arc::new(map);
    // SAFETY: `at + len <= map.len()` by construction.
    let ptr = unsafe { map.as_ptr().add(at) };
    let owner = MapOwner::new(Arc::clone(&map), Retire::File, None);
    // SAFETY: `ptr..ptr+len` lies in the map, which `owner` keeps mapped
    // while the `Buf` lives. The Java API documents that a mapped file must
    // not be truncated or written while its buffers live (as with
    // `FileChannel.map`); the map is read-only on our side.
    let buf = unsafe { Buf::from_raw_parts(ptr, len, owner) };
    let mut region = Region::of(buf);
    region.root = Some(map);
    region.file = Some(crate::file_region::FileSource {
        file: Arc::new(file),
        offset: start,
        unmapped_len: None,
    });
    Ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of the test's own: other tests running in parallel allocate
    /// from the global one, so its counts say nothing about this test.
    fn pools() -> (Pool, Pool) {
        (
            Pool::new(PoolConfig::default()),
            Pool::new(PoolConfig::default()),
        )
    }

    #[test]
    fn unpooled_regions_are_zeroed_and_exact() {
        let (global, small) = pools();
        for cap in [
            0,
            1,
            1000,
            SMALL_UNPOOLED_MAX,
            SMALL_UNPOOLED_MAX + 1,
            3 << 20,
        ] {
            // Dirty the small pool's blocks first: a reused block is zeroed.
            drop(small.alloc(cap.min(SMALL_UNPOOLED_MAX)).freeze());
            let r = allocate_in(&global, &small, cap as i32, false).unwrap();
            assert_eq!(
                (r.buf.len(), r.len),
                (cap, cap),
                "exactly the capacity asked for"
            );
            assert!(r.buf.iter().all(|&b| b == 0));
            assert_eq!(r.root.is_some(), cap > SMALL_UNPOOLED_MAX, "{cap}: own map");
        }
        assert_eq!(
            global.stats().live_buffers,
            0,
            "unpooled never takes pooled blocks"
        );
        assert!(matches!(
            allocate_in(&global, &small, -1, false),
            Err(BridgeError::IllegalArgument(_))
        ));
    }

    #[test]
    fn pooled_regions_are_whole_blocks_that_return_to_their_pool() {
        let (global, small) = pools();
        let r = allocate_in(&global, &small, 5000, true).unwrap();
        assert_eq!(r.len, 8192, "the whole block of the 8 KiB class");
        assert!(r.root.is_none(), "pool chunks are never unmapped");
        assert_eq!(global.stats().live_buffers, 1);
        drop(r);
        assert_eq!(global.stats().live_buffers, 0);
        let r = allocate_in(&global, &small, 0, true).unwrap();
        assert_eq!(r.len, 256, "the smallest pool block");
        let r = allocate_in(&global, &small, POOL_CLASS_MAX as i32, true).unwrap();
        assert_eq!(r.len, POOL_CLASS_MAX);
        assert!(
            global
                .stats()
                .classes
                .iter()
                .any(|c| c.block_size == POOL_CLASS_MAX),
            "POOL_CLASS_MAX is a class of the pool, not a dedicated map"
        );
        assert!(global
            .stats()
            .classes
            .iter()
            .all(|c| c.block_size <= POOL_CLASS_MAX));
    }

    #[test]
    fn big_pooled_regions_are_exact_own_maps_counted_until_release() {
        let (global, small) = pools();
        let cap = 2 << 20;
        let r = allocate_in(&global, &small, cap as i32 + 1, true).unwrap();
        assert_eq!(
            r.len,
            cap + 1,
            "exactly the capacity asked for, not a block"
        );
        let map = r.root.clone().expect("an own map");
        assert_eq!(global.stats().live_buffers, 0);
        let (bytes, live) = big_pooled();
        // Other tests may hold big pooled maps at once: ours is counted.
        assert!(bytes >= map.len() as u64 && live >= 1, "{bytes} {live}");
        drop(r);
        assert_eq!(
            std::sync::Arc::strong_count(&map),
            1,
            "only the root keeps it"
        );
    }

    #[test]
    fn a_pinned_own_map_is_retired_only_when_the_pin_goes() {
        let (global, small) = pools();
        let r = allocate_in(&global, &small, 1 << 20, false).unwrap();
        let map = r.root.clone().expect("an own map");
        // SAFETY: the region is 1 MiB of writable memory nobody else uses.
        unsafe { r.ptr.write_bytes(0x77, 1 << 20) };
        let pin = r.buf.clone(); // what a zero-copy send holds until its completion
        drop(r); // Java's release: the table's reference goes
        assert!(
            pin.iter().all(|&b| b == 0x77),
            "the kernel still reads the bytes"
        );
        drop(pin); // the completion came
                   // SAFETY: the root keeps the range mapped; retired, it reads zeros.
        let after = unsafe { std::slice::from_raw_parts(map.as_ptr(), 1 << 20) };
        assert!(
            after.iter().all(|&b| b == 0),
            "the RAM went back once nothing pinned it"
        );
    }

    #[test]
    fn huge_requests_are_allocation_errors_or_exact() {
        let (global, small) = pools();
        match allocate_in(&global, &small, i32::MAX, true) {
            Ok(r) => assert_eq!(r.len, i32::MAX as usize),
            Err(e) => assert!(matches!(e, BridgeError::Allocation(_)), "{e:?}"),
        }
    }

    #[test]
    fn mapping_checks_its_range() {
        let path = std::env::temp_dir().join(format!("zcbuf-jni-map-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(&map(p, 2, 3).unwrap().buf[..], b"234");
        assert_eq!(&map(p, 4, -1).unwrap().buf[..], b"456789");
        assert!(map(p, 4, -1).unwrap().root.is_some());
        assert_eq!(map(p, 10, 0).unwrap().buf.len(), 0);
        assert!(matches!(map(p, 8, 5), Err(BridgeError::OutOfRange(_))));
        assert!(matches!(map(p, 11, -1), Err(BridgeError::OutOfRange(_))));
        assert!(matches!(map(p, -1, 5), Err(BridgeError::OutOfRange(_))));
        assert!(matches!(
            map("/nonexistent/zcbuf", 0, 1),
            Err(BridgeError::Io(_))
        ));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn non_regular_files_are_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("zcbuf-jni-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open waits for a writer forever.
        let err = map(fifo.to_str().unwrap(), 0, -1).err().expect("refused");
        assert!(
            matches!(&err, BridgeError::NotRegularFile(m) if m.contains("FIFO")),
            "{err:?}"
        );
        let err = map(dir.to_str().unwrap(), 0, -1).err().expect("refused");
        assert!(matches!(err, BridgeError::NotRegularFile(_)), "{err:?}");
        assert!(matches!(
            map("/dev/null", 0, -1),
            Err(BridgeError::NotRegularFile(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
