//! Core of zcbuf: reference-counted buffers, slice views and composite
//! buffers that reach the kernel without being copied in user space.
//!
//! - [`Buf`]: an immutable view `(ptr, len, storage)`; cloning is a retain,
//!   slicing and splitting never copy.
//! - [`BufMut`]: a unique writable buffer that freezes into `Buf`s, also a
//!   prefix at a time, without copying.
//! - [`Composite`]: many `Buf`s read as one byte sequence, sliced and
//!   consumed without copying, exported as `IoSlice`s for one `writev`.
//! - [`pool`]: size-classed, page-aligned pooled memory handing out
//!   `BufMut`s whose blocks return only when the last view is gone.
//!
//! ```
//! use zcbuf_core::{Buf, BufMut, Composite};
//!
//! let mut header = BufMut::with_capacity(64);
//! header.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
//! let body = Buf::from(vec![b'x'; 1000]);
//!
//! let mut response = Composite::new();
//! response.push(header.freeze());
//! response.push(body.slice(..100));
//! assert_eq!(response.len(), 119);
//! ```

#![deny(missing_docs)]

mod buf;
mod buf_mut;
mod composite;
mod error;
#[cfg(unix)]
pub mod io;
#[cfg(unix)]
pub mod pool;
mod preview;
mod storage;

pub use buf::Buf;
pub use buf_mut::{BufMut, DEFAULT_ALIGN, MAX_INFERRED_ALIGN};
pub use composite::Composite;
pub use error::{AllocError, RangeError};
