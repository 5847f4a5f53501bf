//! Address ranges Java can reach, unmapped only once Java cannot.
//!
//! A read through a direct `ByteBuffer` cannot be guarded against a
//! `release()` on another thread: the count check and the read are two
//! steps. So the bridge never unmaps an address range while a Java view
//! may still read it. A [`Mapping`] is such a range; it is held by two
//! parties through an `Arc`:
//!
//! - the region's storage ([`MapOwner`], inside every `Buf` of it: the
//!   handle table's and any zero-copy send's). When the last of those goes
//!   the range is **retired**: an anonymous range gets `MADV_DONTNEED`, a
//!   file range is replaced by anonymous memory (`mmap` with `MAP_FIXED`).
//!   Either way its RAM and file pages go back to the OS at once, and a
//!   stale read sees zeros.
//! - the Java root `ByteBuffer`, through a **root id** ([`roots`]): Java
//!   registers a `Cleaner` on the root and calls `Native.unmapRoot(id)`
//!   when it is collected (slices and duplicates of a direct buffer keep
//!   their root reachable).
//!
//! The range is unmapped when both are gone, so neither a pinned send nor
//! a stale Java view ever touches an unmapped page.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{BridgeError, BridgeResult};

/// The system page size.
///
/// ```
/// assert!(zcbuf_jni::mapping::page_size().is_power_of_two());
/// ```
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(1)
}

/// An address range mapped by the bridge; unmapped when dropped.
///
/// ```
/// use zcbuf_jni::mapping::Mapping;
/// let map = Mapping::anon(10_000).unwrap();
/// assert_eq!(map.len(), 12_288); // whole pages
/// ```
pub struct Mapping {
    addr: NonNull<u8>,
    len: usize,
    /// Set once [`retire`](Self::retire) ran: counted in [`retired`] until unmapped.
    retired: AtomicBool,
}

/// Retired ranges still mapped (their roots not collected yet): bytes, ranges.
static RETIRED_BYTES: AtomicU64 = AtomicU64::new(0);
static RETIRED_MAPS: AtomicU64 = AtomicU64::new(0);

/// `(bytes, ranges)` retired (memory back to the OS) but still mapped
/// because Java's root has not been collected yet. They cost address space
/// and a map slot each, no RAM; Java collects garbage when they pile up.
///
/// ```
/// let (bytes, maps) = zcbuf_jni::mapping::retired();
/// assert!(maps > 0 || bytes == 0);
/// ```
pub fn retired() -> (u64, u64) {
    (
        RETIRED_BYTES.load(Ordering::Relaxed),
        RETIRED_MAPS.load(Ordering::Relaxed),
    )
}

// SAFETY: a `Mapping` only owns an address range; nothing about it is tied
// to a thread, and it hands out no references into the memory.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads the address and length; `retire` is a
// system call the kernel serialises against other users of the range.
unsafe impl Sync for Mapping {}

/// How a range is retired when its storage goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// Anonymous memory: `MADV_DONTNEED` (the RAM goes, reads see zeros).
    Anon,
    /// A file: replaced by anonymous read-only memory (`MAP_FIXED`), so
    /// the file's pages go and reads see zeros.
    File,
}

impl Mapping {
    /// `len` bytes (rounded up to whole pages) of zeroed, private, writable
    /// anonymous memory.
    ///
    /// ```
    /// let map = zcbuf_jni::mapping::Mapping::anon(1).unwrap();
    /// assert_eq!(map.len(), zcbuf_jni::mapping::page_size());
    /// ```
    pub fn anon(len: usize) -> BridgeResult<Self> {
        let page = page_size();
        let map_len = len
            .checked_add(page - 1)
            .map(|l| l / page * page)
            .filter(|&l| l > 0 && l <= isize::MAX as usize)
            .ok_or_else(|| BridgeError::Allocation(format!("cannot map {len} bytes")))?;
        // SAFETY: a new private anonymous mapping at an address the kernel
        // chooses touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(BridgeError::Allocation(format!(
                "the OS refused to map {len} bytes: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(Mapping {
            addr: NonNull::new(addr.cast()).expect("mmap never returns null on success"),
            len: map_len,
            retired: AtomicBool::new(false),
        })
    }

    /// `len > 0` bytes of `file` from `offset`, read-only; returns the
    /// mapping (from `offset` rounded down to a page) and where the
    /// requested bytes start in it.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("zcbuf-jni-doc-{}", std::process::id()));
    /// std::fs::write(&path, b"0123456789").unwrap();
    /// let file = std::fs::File::open(&path).unwrap();
    /// let (map, at) = zcbuf_jni::mapping::Mapping::file(&file, 3, 4).unwrap();
    /// assert_eq!(at, 3);
    /// assert!(map.len() >= 7);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn file(file: &File, offset: u64, len: usize) -> BridgeResult<(Self, usize)> {
        let page = page_size() as u64;
        let base = offset / page * page;
        let delta = (offset - base) as usize;
        let map_len = len
            .checked_add(delta)
            .filter(|&l| l > 0 && l <= isize::MAX as usize)
            .ok_or_else(|| BridgeError::OutOfRange(format!("cannot map {len} bytes")))?;
        let file_offset = libc::off_t::try_from(base)
            .map_err(|_| BridgeError::OutOfRange(format!("file offset {offset} too large")))?;
        // SAFETY: a new shared read-only mapping of an open file at an
        // address the kernel chooses touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                file_offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(BridgeError::Io(io::Error::last_os_error()));
        }
        let map = Mapping {
            addr: NonNull::new(addr.cast()).expect("mmap never returns null on success"),
            len: map_len,
            retired: AtomicBool::new(false),
        };
        Ok((map, delta))
    }

    /// First byte of the range.
    ///
    /// ```
    /// let map = zcbuf_jni::mapping::Mapping::anon(100).unwrap();
    /// assert!(!map.as_ptr().is_null());
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// Bytes in the range (whole pages).
    ///
    /// ```
    /// let map = zcbuf_jni::mapping::Mapping::anon(100).unwrap();
    /// assert!(!map.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one page.
    ///
    /// ```
    /// assert!(!zcbuf_jni::mapping::Mapping::anon(1).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives the range's memory back to the OS while keeping the addresses
    /// mapped: reads see zeros afterwards, and never fault.
    ///
    /// ```
    /// use zcbuf_jni::mapping::{Mapping, Retire};
    /// let map = Mapping::anon(4096).unwrap();
    /// // SAFETY: nothing holds a reference into the map.
    /// unsafe { map.as_ptr().write(7) };
    /// map.retire(Retire::Anon);
    /// // SAFETY: the range is still mapped, now zero-filled.
    /// assert_eq!(unsafe { map.as_ptr().read() }, 0);
    /// ```
    pub fn retire(&self, how: Retire) {
        if !self.retired.swap(true, Ordering::Relaxed) {
            RETIRED_BYTES.fetch_add(self.len as u64, Ordering::Relaxed);
            RETIRED_MAPS.fetch_add(1, Ordering::Relaxed);
        }
        let addr = self.addr.as_ptr().cast::<libc::c_void>();
        if how == Retire::File {
            // SAFETY: the range is exactly this mapping, which the bridge
            // owns; MAP_FIXED replaces it in one step (no moment where the
            // addresses are unmapped) with zero-filled read-only memory,
            // which is all a read-only Java view can do with it.
            let replaced = unsafe {
                libc::mmap(
                    addr,
                    self.len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if replaced != libc::MAP_FAILED {
                return;
            }
            // Out of map slots: the file stays mapped until the root is
            // collected, but its pages still leave this process at once.
        }
        // SAFETY: the range is exactly this mapping, which the bridge owns.
        // MADV_DONTNEED only drops its pages: a private anonymous range
        // reads as zeros afterwards, a file range re-reads the file.
        unsafe { libc::madvise(addr, self.len, libc::MADV_DONTNEED) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is exactly this mapping; the last `Arc` holder
        // is gone, so neither a `Buf` (storage or pin) nor a Java root can
        // reach it any more.
        unsafe { libc::munmap(self.addr.as_ptr().cast(), self.len) };
        if *self.retired.get_mut() {
            RETIRED_BYTES.fetch_sub(self.len as u64, Ordering::Relaxed);
            RETIRED_MAPS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The owner of a region's storage: retires the range when the last `Buf`
/// of the region (the handle table's, a zero-copy send's) is gone.
pub struct MapOwner {
    map: Arc<Mapping>,
    how: Retire,
    on_retire: Option<fn(usize)>,
}

impl MapOwner {
    /// An owner that retires `map` as `how` says, then calls `on_retire`
    /// with its length (the bridge counts pooled maps with it).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use zcbuf_jni::mapping::{MapOwner, Mapping, Retire};
    /// let map = Arc::new(Mapping::anon(4096).unwrap());
    /// drop(MapOwner::new(Arc::clone(&map), Retire::Anon, None));
    /// assert_eq!(Arc::strong_count(&map), 1); // still mapped for Java
    /// ```
    pub fn new(map: Arc<Mapping>, how: Retire, on_retire: Option<fn(usize)>) -> Self {
        MapOwner {
            map,
            how,
            on_retire,
        }
    }
}

impl Drop for MapOwner {
    fn drop(&mut self) {
        self.map.retire(self.how);
        if let Some(f) = self.on_retire {
            f(self.map.len());
        }
    }
}

/// Java roots: ids naming the mappings that root `ByteBuffer`s still show.
///
/// Ids count up from 1 and are never reused, so a stale or forged id names
/// nothing.
pub mod roots {
    use super::*;

    static NEXT: AtomicU64 = AtomicU64::new(1);

    fn table() -> &'static Mutex<HashMap<u64, Arc<Mapping>>> {
        static ROOTS: std::sync::OnceLock<Mutex<HashMap<u64, Arc<Mapping>>>> =
            std::sync::OnceLock::new();
        ROOTS.get_or_init(|| Mutex::new(HashMap::new()))
    }

    /// Keeps `map` mapped until [`remove`] is called with the returned id.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use zcbuf_jni::mapping::{roots, Mapping};
    /// let id = roots::insert(Arc::new(Mapping::anon(1).unwrap()));
    /// assert!(roots::remove(id).is_ok());
    /// assert!(roots::remove(id).is_err());
    /// ```
    pub fn insert(map: Arc<Mapping>) -> i64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        table().lock().insert(id, map);
        id as i64
    }

    /// The Java root of `id` was collected: its hold on the range goes
    /// (the range is unmapped if no storage holds it either).
    ///
    /// ```
    /// assert!(zcbuf_jni::mapping::roots::remove(0).is_err());
    /// ```
    pub fn remove(id: i64) -> BridgeResult<()> {
        let map = u64::try_from(id)
            .ok()
            .and_then(|id| table().lock().remove(&id));
        match map {
            // Unmapped (if it is the last holder) outside the lock.
            Some(map) => {
                drop(map);
                Ok(())
            }
            None => Err(BridgeError::StaleHandle(format!(
                "root {id} is not live (unmapped already, or never issued)"
            ))),
        }
    }

    /// Roots whose `ByteBuffer` has not been collected yet.
    ///
    /// ```
    /// let _ = zcbuf_jni::mapping::roots::live();
    /// ```
    pub fn live() -> usize {
        table().lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `addr` is mapped in this process (`mincore` fails with
    /// ENOMEM on an unmapped page).
    fn is_mapped(addr: *mut u8) -> bool {
        let page = page_size();
        let mut vec = 0u8;
        let base = (addr as usize) / page * page;
        // SAFETY: mincore only reports on the page; it never touches it.
        unsafe { libc::mincore(base as *mut libc::c_void, page, &mut vec) == 0 }
    }

    #[test]
    fn a_range_is_unmapped_only_when_storage_and_root_are_both_gone() {
        for storage_first in [true, false] {
            let map = Arc::new(Mapping::anon(1 << 16).unwrap());
            let ptr = map.as_ptr();
            // SAFETY: the map is private to this test and mapped.
            unsafe { ptr.write_bytes(0xab, 1 << 16) };
            let owner = MapOwner::new(Arc::clone(&map), Retire::Anon, None);
            let root = roots::insert(map);
            if storage_first {
                drop(owner);
                assert!(is_mapped(ptr));
                // SAFETY: still mapped (checked), retired to zeros.
                assert_eq!(unsafe { ptr.add(100).read() }, 0, "retired memory reads 0");
                roots::remove(root).unwrap();
            } else {
                roots::remove(root).unwrap();
                assert!(is_mapped(ptr), "the storage still holds it");
                // SAFETY: still mapped (checked), not yet retired.
                assert_eq!(unsafe { ptr.add(100).read() }, 0xab);
                drop(owner);
            }
            assert!(!is_mapped(ptr), "unmapped once both are gone");
        }
    }

    #[test]
    fn a_retired_file_range_reads_zeros() {
        let path = std::env::temp_dir().join(format!("zcbuf-jni-retire-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let file = File::open(&path).unwrap();
        let (map, at) = Mapping::file(&file, 5000, 100).unwrap();
        assert_eq!(at, 5000 % page_size());
        // SAFETY: the map covers `at..at + 100`.
        assert_eq!(unsafe { map.as_ptr().add(at).read() }, 7);
        map.retire(Retire::File);
        // SAFETY: retiring keeps the range mapped, now anonymous.
        assert_eq!(unsafe { map.as_ptr().add(at).read() }, 0);
        drop(map);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn impossible_sizes_are_allocation_errors() {
        assert!(matches!(
            Mapping::anon(usize::MAX),
            Err(BridgeError::Allocation(_))
        ));
        assert!(matches!(
            Mapping::anon(isize::MAX as usize),
            Err(BridgeError::Allocation(_))
        ));
        assert!(roots::remove(-5).is_err());
    }
}
