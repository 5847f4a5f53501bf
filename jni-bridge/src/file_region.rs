//! Which memory handles are mapped files, so that a write sends their
//! pieces with `sendfile` (the kernel moves page-cache pages to the socket)
//! instead of a `writev` that copies the mapping's bytes into it.
//!
//! A mapped region registers its open file and the file offset of its
//! first byte under its handle when Java receives it, and unregisters when
//! the handle is released. A handle is never issued twice (generations
//! never wrap), so a key cannot name another region later. Writes without
//! any registered file (the common pool-only case) pay one atomic load.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use zcbuf_core::Composite;

use crate::error::BridgeResult;
use crate::table;

/// A file and the offset, in it, of a region's first byte.
#[derive(Clone)]
pub struct FileSource {
    /// The file the region maps; kept open while the region lives.
    pub file: Arc<File>,
    /// The file offset of the region's byte 0.
    pub offset: u64,
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
/// file_region::register(-7, FileSource { file, offset: 0 });
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
pub enum Piece {
    /// Memory pieces, sent in one gather `sendmsg`.
    Memory(Composite),
    /// A mapped file's piece, sent with `sendfile`; `mapped` is the same
    /// bytes through the map, for sockets `sendfile` cannot serve.
    File {
        /// The open file.
        file: Arc<File>,
        /// Where the piece starts in the file.
        offset: u64,
        /// The piece's length in bytes.
        len: u64,
        /// The piece through the region's mapping.
        mapped: Composite,
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
        // Checks the range against the region, as for memory.
        let mapped = table::gather(&handles[i..=i], &offsets[i..=i], &lengths[i..=i])?;
        // Both are non-negative: gather refused anything else.
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
