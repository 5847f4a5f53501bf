//! zcbuf: zero-copy, reference-counted buffers and composite buffers for
//! scatter-gather I/O.
//!
//! This facade re-exports [`zcbuf_core`]; see there for the types.
//!
//! ```
//! use zcbuf::{Buf, Composite};
//!
//! let mut message = Composite::new();
//! message.push(Buf::from_static(b"header:"));
//! message.push(Buf::from(b"payload".to_vec()));
//! assert_eq!(message.to_vec(), b"header:payload");
//! ```

#![deny(missing_docs)]

pub use zcbuf_core::*;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
