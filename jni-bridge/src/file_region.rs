//! Which memory handles are files, so that a write sends their pieces with
//! `sendfile` (the kernel moves page-cache pages to the socket) instead of
//! a `writev` that copies a mapping's bytes into it.
//!
//! Two kinds: a mapped file (Java can read its bytes; the map is there for
//! Java only) and a file region, which is never mapped: its handle names an
//! empty `Buf` in the table, so that any path that would read its bytes as
//! memory gets a range error instead of wrong bytes, and only writes use
//! it. Where `sendfile` cannot serve (a datagram), a region's bytes are
//! read with `pread` into a buffer of the write's own.
//!
//! A mapped region registers its open file and the file offset of its
//! first byte under its handle when Java receives it, and unregisters when
//! the handle is released. A handle is never issued twice (generations
//! never wrap), so a key cannot name another region later. Writes without
//! any registered file (the common pool-only case) pay one atomic load.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use zcbuf_core::{Buf, Composite};

use crate::error::{BridgeError, BridgeResult};
use crate::table;

/// A file and the offset, in it, of a region's first byte.
///
/// ```
/// use std::sync::Arc;
/// let file = Arc::new(std::fs::File::open("/proc/self/exe").unwrap());
/// let source = zcbuf_jni::file_region::FileSource { file, offset: 4096, unmapped_len: Some(10) };
/// assert_eq!(source.clone().offset, 4096);
/// ```
#[derive(Clone)]
pub struct FileSource {
    /// The file the region shows; kept open while the region lives.
    pub file: Arc<File>,
    /// The file offset of the region's byte 0.
    pub offset: u64,
    /// The region's length, for regions that are not mapped (`None`: the
    /// table's `Buf` is the map and says it).
    pub unmapped_len: Option<u64>,
}

/// Opens `length` bytes of the regular file at `path` from `offset` as a
/// file region (nothing mapped); `length < 0` means to the end of the file.
/// Anything but a regular file is refused before it could block.
///
/// ```
/// use zcbuf_jni::{error::BridgeError, file_region};
/// let path = std::env::temp_dir().join(format!("zcbuf-jni-doc-region-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let region = file_region::open(path.to_str().unwrap(), 2, -1).unwrap();
/// assert_eq!((region.offset, region.unmapped_len), (2, Some(8)));
/// assert!(matches!(file_region::open(path.to_str().unwrap(), 2, 9), Err(BridgeError::OutOfRange(_))));
/// assert!(matches!(file_region::open("/dev/null", 0, 0), Err(BridgeError::NotRegularFile(_))));
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn open(path: &str, offset: i64, length: i64) -> BridgeResult<FileSource> {
    let (file, start, len) = crate::memory::open_range(path, offset, length, "file regions")?;
    Ok(FileSource {
        file: Arc::new(file),
        offset: start,
        unmapped_len: Some(len),
    })
}

/// Reads `len` bytes of `file` at `offset` into a new buffer (a copy, for
/// sockets `sendfile` cannot serve); a file that ends first is an error.
///
/// ```
/// let path = std::env::temp_dir().join(format!("zcbuf-jni-doc-pread-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let file = std::fs::File::open(&path).unwrap();
/// assert_eq!(&zcbuf_jni::file_region::read(&file, 3, 4).unwrap()[..], b"3456");
/// assert!(zcbuf_jni::file_region::read(&file, 8, 4).is_err());
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn read(file: &File, offset: u64, len: u64) -> BridgeResult<Buf> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset).map_err(|e| {
        BridgeError::Io(std::io::Error::new(
            e.kind(),
            format!("the file ended before the {len} bytes from {offset}: it was truncated ({e})"),
        ))
    })?;
    Ok(Buf::from(bytes))
}

static FILES: Mutex<BTreeMap<i64, FileSource>> = parking_lot::const_mutex(BTreeMap::new());
/// Entries in [`FILES`]: zero lets a write skip the lock.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// Records that `handle` maps `source`.
///
/// ```
/// use std::sync::Arc;
/// use zcbuf_jni::file_region::{self, FileSource};
/// let file = Arc::new(std::fs::File::open("/proc/self/exe").unwrap());
/// file_region::register(-7, FileSource { file, offset: 0, unmapped_len: Some(0) });
/// assert!(file_region::source(-7).is_some());
/// file_region::unregister(-7);
/// assert!(file_region::source(-7).is_none());
/// ```
pub fn register(handle: i64, source: FileSource) {
    if FILES.lock().insert(handle, source).is_none() {
        REGISTERED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forgets `handle` (released); nothing when it was no file.
///
/// ```
/// zcbuf_jni::file_region::unregister(-8); // never registered: nothing happens
/// ```
pub fn unregister(handle: i64) {
    if REGISTERED.load(Ordering::Relaxed) == 0 {
        return;
    }
    if FILES.lock().remove(&handle).is_some() {
        REGISTERED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The file `handle` maps, if it is a registered file region.
///
/// ```
/// assert!(zcbuf_jni::file_region::source(-9).is_none());
/// ```
pub fn source(handle: i64) -> Option<FileSource> {
    if REGISTERED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    FILES.lock().get(&handle).cloned()
}

/// One part of a write, in order.
///
/// ```
/// use zcbuf_jni::file_region::Piece;
/// let piece = Piece::Memory(zcbuf_core::Composite::default());
/// assert!(matches!(piece, Piece::Memory(m) if m.is_empty()));
/// ```
pub enum Piece {
    /// Memory pieces, sent in one gather `sendmsg`.
    Memory(Composite),
    /// A file's piece, sent with `sendfile`; `mapped` is the same bytes
    /// through the map (none for a file region), for sockets `sendfile`
    /// cannot serve.
    File {
        /// The open file.
        file: Arc<File>,
        /// Where the piece starts in the file.
        offset: u64,
        /// The piece's length in bytes.
        len: u64,
        /// The piece through the region's mapping, if it has one.
        mapped: Option<Composite>,
    },
}

/// Splits a gather write of `(handle, offset, length)` pieces into runs of
/// memory and single file pieces; `None` when no piece is a registered file
/// (the caller then sends the lot in one gather write). Every range is
/// checked as [`table::gather`] checks it.
///
/// ```
/// use zcbuf_jni::{file_region, memory, table};
/// let path = std::env::temp_dir().join(format!("zcbuf-jni-doc-split-{}", std::process::id()));
/// std::fs::write(&path, b"0123456789").unwrap();
/// let region = memory::map(path.to_str().unwrap(), 2, 6).unwrap();
/// let source = region.file.clone().unwrap();
/// assert_eq!(source.offset, 2);
/// let h = table::insert(table::Entry::Memory(region.buf));
/// file_region::register(h, source);
/// let pieces = file_region::split(&[h], &[1], &[3]).unwrap().unwrap();
/// assert!(matches!(&pieces[0], file_region::Piece::File { offset: 3, len: 3, .. }));
/// file_region::unregister(h);
/// assert!(file_region::split(&[h], &[1], &[3]).unwrap().is_none());
/// table::remove_memory(h).unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn split(
    handles: &[i64],
    offsets: &[i32],
    lengths: &[i32],
) -> BridgeResult<Option<Vec<Piece>>> {
    if REGISTERED.load(Ordering::Relaxed) == 0 {
        return Ok(None);
    }
    let sources: Vec<Option<FileSource>> = {
        let files = FILES.lock();
        handles.iter().map(|h| files.get(h).cloned()).collect()
    };
    if sources.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut pieces = Vec::new();
    let mut run = 0;
    for (i, source) in sources.into_iter().enumerate() {
        let Some(source) = source else { continue };
        if run < i {
            pieces.push(Piece::Memory(table::gather(
                &handles[run..i],
                &offsets[run..i],
                &lengths[run..i],
            )?));
        }
        let mapped = match source.unmapped_len {
            // Checks the range against the map, as for memory.
            None => Some(table::gather(
                &handles[i..=i],
                &offsets[i..=i],
                &lengths[i..=i],
            )?),
            Some(region_len) => {
                let (Ok(start), Ok(len)) = (u64::try_from(offsets[i]), u64::try_from(lengths[i]))
                else {
                    return Err(BridgeError::OutOfRange(format!(
                        "negative offset {} or length {}",
                        offsets[i], lengths[i]
                    )));
                };
                if start + len > region_len {
                    return Err(BridgeError::OutOfRange(format!(
                        "{start}..{} outside a file region of {region_len} bytes",
                        start + len
                    )));
                }
                None
            }
        };
        // Both are non-negative: checked above.
        pieces.push(Piece::File {
            file: source.file,
            offset: source.offset + offsets[i] as u64,
            len: lengths[i] as u64,
            mapped,
        });
        run = i + 1;
    }
    if run < handles.len() {
        pieces.push(Piece::Memory(table::gather(
            &handles[run..],
            &offsets[run..],
            &lengths[run..],
        )?));
    }
    Ok(Some(pieces))
}
