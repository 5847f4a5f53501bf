//! Receiving into reusable chunks and cutting frames out of them by
//! reference.
//!
//! # Representation
//!
//! A [`FrameDecoder`] reads into the spare capacity of its current chunk,
//! a [`BufMut`] from a [`ChunkSource`]. The chunk's written bytes are input
//! not yet decoded. A complete frame inside the chunk leaves it as a
//! frozen prefix ([`BufMut::split_to`]): a [`Buf`] sharing the chunk's
//! memory, no copy. When a chunk is full, its undecoded tail is frozen
//! into `partial`, a [`Composite`], and a fresh chunk is taken; a frame
//! that started in an earlier chunk then comes out as a `Composite` of
//! pieces of several chunks, still without copying. A chunk's memory goes
//! back to its source (heap or pool) when the last frame cut from it is
//! dropped.
//!
//! The wire format of the worked example: a 4-byte big-endian length, then
//! that many bytes of payload.
//!
//! To stay sound with any [`Read`] (which may look at the buffer it is
//! given), spare capacity is zeroed once before its first read; a
//! per-chunk watermark keeps that to once per byte of each chunk.

use std::io::{self, ErrorKind, Read};

use crate::pool::PoolChunks;
use crate::{Buf, BufMut, Composite};

/// Where a [`FrameDecoder`] gets its chunks from: the heap today, a pool
/// tomorrow.
///
/// ```
/// use zcbuf_core::{io::ChunkSource, BufMut};
/// struct Small;
/// impl ChunkSource for Small {
///     fn next_chunk(&mut self) -> BufMut {
///         BufMut::with_capacity(128)
///     }
/// }
/// assert_eq!(Small.next_chunk().capacity(), 128);
/// ```
pub trait ChunkSource {
    /// A fresh, empty, writable chunk (capacity at least 1).
    fn next_chunk(&mut self) -> BufMut;
}

/// Heap chunks of a fixed size.
///
/// ```
/// use zcbuf_core::io::{ChunkSource, HeapChunks};
/// assert_eq!(HeapChunks::new(4096).next_chunk().capacity(), 4096);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeapChunks {
    size: usize,
}

impl HeapChunks {
    /// Chunks of `size` bytes (at least 1).
    ///
    /// ```
    /// let _ = zcbuf_core::io::HeapChunks::new(1 << 16);
    /// ```
    pub fn new(size: usize) -> Self {
        Self { size: size.max(1) }
    }
}

impl Default for HeapChunks {
    /// 64 KiB chunks.
    fn default() -> Self {
        Self::new(64 * 1024)
    }
}

impl ChunkSource for HeapChunks {
    fn next_chunk(&mut self) -> BufMut {
        BufMut::with_capacity(self.size)
    }
}

/// One decoded frame's payload.
///
/// ```
/// use zcbuf_core::{io::Frame, Buf};
/// let f = Frame::Contiguous(Buf::from_static(b"abc"));
/// assert_eq!(f.len(), 3);
/// assert_eq!(f.to_vec(), b"abc");
/// ```
#[derive(Debug, Clone)]
pub enum Frame {
    /// The payload lies in one chunk.
    Contiguous(Buf),
    /// The payload spans chunks; its components are pieces of them.
    Spanning(Composite),
}

impl Frame {
    /// Payload length in bytes.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::Frame::Contiguous(zcbuf_core::Buf::new()).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        match self {
            Frame::Contiguous(b) => b.len(),
            Frame::Spanning(c) => c.len(),
        }
    }

    /// Whether the payload is empty.
    ///
    /// ```
    /// assert!(zcbuf_core::io::Frame::Contiguous(zcbuf_core::Buf::new()).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload as a composite (one component if contiguous); no copy.
    ///
    /// ```
    /// let f = zcbuf_core::io::Frame::Contiguous(zcbuf_core::Buf::from_static(b"x"));
    /// assert_eq!(f.into_composite().component_count(), 1);
    /// ```
    pub fn into_composite(self) -> Composite {
        match self {
            Frame::Contiguous(b) => Composite::from(b),
            Frame::Spanning(c) => c,
        }
    }

    /// A copy of the payload (for tests and logging).
    ///
    /// ```
    /// let f = zcbuf_core::io::Frame::Contiguous(zcbuf_core::Buf::from_static(b"x"));
    /// assert_eq!(f.to_vec(), b"x");
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Frame::Contiguous(b) => b.to_vec(),
            Frame::Spanning(c) => c.to_vec(),
        }
    }
}

/// The 4-byte big-endian length prefix a [`FrameDecoder`] expects.
///
/// ```
/// assert_eq!(zcbuf_core::io::recv::frame_header(258), [0, 0, 1, 2]);
/// ```
pub fn frame_header(len: u32) -> [u8; 4] {
    len.to_be_bytes()
}

const HEADER: usize = 4;

/// Decodes length-prefixed frames (4-byte big-endian length, then the
/// payload) from a byte stream, handing payloads out without copying.
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
/// use zcbuf_core::io::{recv::frame_header, FrameDecoder};
///
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// a.write_all(&frame_header(5)).unwrap();
/// a.write_all(b"hello").unwrap();
/// drop(a);
/// let mut dec = FrameDecoder::new();
/// let frame = dec.read_frame(&mut b).unwrap().unwrap();
/// assert_eq!(frame.to_vec(), b"hello");
/// assert!(dec.read_frame(&mut b).unwrap().is_none()); // clean end of stream
/// ```
pub struct FrameDecoder<C: ChunkSource = PoolChunks> {
    source: C,
    chunk: BufMut,
    /// Bytes from the chunk's pointer known to be initialised.
    init: usize,
    partial: Composite,
    max_frame: usize,
    reads: u64,
    chunks: u64,
}

impl FrameDecoder<PoolChunks> {
    /// A decoder over 64 KiB chunks from the process-wide pool, frames up
    /// to 16 MiB.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::FrameDecoder::new().buffered(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_source(PoolChunks::default())
    }
}

impl Default for FrameDecoder<PoolChunks> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: ChunkSource> FrameDecoder<C> {
    /// A decoder taking its chunks from `source`, frames up to 16 MiB.
    ///
    /// ```
    /// use zcbuf_core::io::{FrameDecoder, HeapChunks};
    /// let dec = FrameDecoder::with_source(HeapChunks::new(256));
    /// assert_eq!(dec.chunks_used(), 0);
    /// ```
    pub fn with_source(source: C) -> Self {
        Self {
            source,
            chunk: BufMut::new(),
            init: 0,
            partial: Composite::new(),
            max_frame: 16 << 20,
            reads: 0,
            chunks: 0,
        }
    }

    /// Sets the largest payload accepted; a longer length prefix is an
    /// [`ErrorKind::InvalidData`] error.
    ///
    /// ```
    /// let dec = zcbuf_core::io::FrameDecoder::new().max_frame(1024);
    /// # let _ = dec;
    /// ```
    pub fn max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Bytes received but not yet handed out as frames.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::FrameDecoder::new().buffered(), 0);
    /// ```
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.chunk.len()
    }

    /// Successful `read` calls made so far.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::FrameDecoder::new().reads(), 0);
    /// ```
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Chunks taken from the source so far.
    ///
    /// ```
    /// assert_eq!(zcbuf_core::io::FrameDecoder::new().chunks_used(), 0);
    /// ```
    pub fn chunks_used(&self) -> u64 {
        self.chunks
    }

    /// One `read` from `src` into the current chunk (a new one if it is
    /// full); returns the bytes read, 0 at end of stream. `Interrupted` is
    /// retried; `WouldBlock` is returned with nothing lost.
    ///
    /// ```
    /// let mut dec = zcbuf_core::io::FrameDecoder::new();
    /// let mut src: &[u8] = &[0, 0, 0, 1, b'z'];
    /// assert_eq!(dec.read_from(&mut src).unwrap(), 5);
    /// assert_eq!(dec.decode().unwrap().unwrap().to_vec(), b"z");
    /// ```
    pub fn read_from(&mut self, src: &mut impl Read) -> io::Result<usize> {
        if self.chunk.len() == self.chunk.capacity() {
            if !self.chunk.is_empty() {
                self.partial.push(self.chunk.split());
            }
            self.chunk = self.source.next_chunk();
            self.init = 0;
            self.chunks += 1;
            if self.chunk.capacity() == 0 {
                return Err(io::Error::other(
                    "chunk source gave a chunk without capacity",
                ));
            }
        }
        let len = self.chunk.len();
        let cap = self.chunk.capacity();
        if self.init < cap {
            let from = self.init.max(len) - len;
            for b in &mut self.chunk.spare_capacity_mut()[from..] {
                b.write(0);
            }
            self.init = cap;
        }
        let spare = self.chunk.spare_capacity_mut();
        // SAFETY: every byte of the spare capacity was initialised above
        // (now or on an earlier call; the chunk never un-initialises bytes).
        let spare: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), spare.len()) };
        let n = loop {
            match src.read(spare) {
                Ok(n) => break n.min(spare.len()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        // SAFETY: `len + n <= cap` and those bytes are initialised.
        unsafe { self.chunk.set_len(len + n) };
        if n > 0 {
            self.reads += 1;
        }
        Ok(n)
    }

    /// The next complete frame from the bytes already read, if any.
    /// A length prefix above the maximum is an [`ErrorKind::InvalidData`]
    /// error.
    ///
    /// ```
    /// let mut dec = zcbuf_core::io::FrameDecoder::new();
    /// let mut src: &[u8] = &[0, 0, 0, 2, b'a'];
    /// dec.read_from(&mut src).unwrap();
    /// assert!(dec.decode().unwrap().is_none()); // one byte short
    /// ```
    pub fn decode(&mut self) -> io::Result<Option<Frame>> {
        let total = self.buffered();
        if total < HEADER {
            return Ok(None);
        }
        let mut header = [0u8; HEADER];
        let from_partial = self.partial.len().min(HEADER);
        self.partial
            .copy_at(0, &mut header[..from_partial])
            .map_err(io::Error::other)?;
        header[from_partial..].copy_from_slice(&self.chunk[..HEADER - from_partial]);
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max_frame {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the maximum of {}",
                    self.max_frame
                ),
            ));
        }
        let need = HEADER + len;
        if total < need {
            return Ok(None);
        }
        if self.partial.is_empty() {
            drop(self.chunk.split_to(HEADER));
            return Ok(Some(Frame::Contiguous(self.chunk.split_to(len))));
        }
        let mut frame = if self.partial.len() >= need {
            self.partial.split_to(need)
        } else {
            let mut head = std::mem::take(&mut self.partial);
            let rest = need - head.len();
            head.push(self.chunk.split_to(rest));
            head
        };
        frame.advance(HEADER);
        let single = {
            let mut pieces = frame.components().filter(|b| !b.is_empty());
            match (pieces.next(), pieces.next()) {
                (Some(b), None) => Some(b.clone()),
                (None, _) => Some(Buf::new()),
                _ => None,
            }
        };
        Ok(Some(match single {
            Some(b) => Frame::Contiguous(b),
            None => Frame::Spanning(frame),
        }))
    }

    /// Reads from `src` until a whole frame is there and returns it;
    /// `Ok(None)` at a clean end of stream, [`ErrorKind::UnexpectedEof`]
    /// if the stream ends inside a frame.
    ///
    /// ```
    /// let mut dec = zcbuf_core::io::FrameDecoder::new();
    /// let mut src: &[u8] = &[0, 0, 0, 1, b'q', 0, 0];
    /// assert_eq!(dec.read_frame(&mut src).unwrap().unwrap().to_vec(), b"q");
    /// assert!(dec.read_frame(&mut src).is_err()); // ends in a header
    /// ```
    pub fn read_frame(&mut self, src: &mut impl Read) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.decode()? {
                return Ok(Some(frame));
            }
            if self.read_from(src)? == 0 {
                return if self.buffered() == 0 {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "stream ended inside a frame",
                    ))
                };
            }
        }
    }
}
