//! `http_body::Body` for [`Composite`] and [`Buf`] (feature `http-body`):
//! hand a composite to hyper (or anything built on `http-body`) as a
//! response or request body, and its components reach the socket as
//! iovecs of a vectored write, by reference, without a copy in user
//! space.
//!
//! The whole composite is one data frame whose `Data` is the composite
//! itself: hyper queues it behind the head and writes it with
//! [`bytes::Buf::chunks_vectored`], which hands out one `IoSlice` per
//! component. The length is exact, so hyper sends a `Content-Length`
//! instead of chunked encoding.
//!
//! ```
//! use http_body::Body;
//! use zcbuf_core::{Buf, Composite};
//!
//! let mut body = Composite::new();
//! body.push(Buf::from_static(b"hello "));
//! body.push(Buf::from(b"world".to_vec()));
//! assert_eq!(body.size_hint().exact(), Some(11));
//! assert!(!body.is_end_stream());
//! ```

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

use crate::{Buf, Composite};

/// Implements `Body` for a type that is its own single data frame: the
/// value is taken whole (its views, no copy) and the body ends.
macro_rules! body_of_one_frame {
    ($ty:ty, $(#[$doc:meta])*) => {
        impl Body for $ty {
            type Data = $ty;
            type Error = Infallible;

            $(#[$doc])*
            fn poll_frame(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<$ty>, Infallible>>> {
                let this = self.get_mut();
                if this.is_empty() {
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(Frame::data(std::mem::take(this)))))
            }

            fn is_end_stream(&self) -> bool {
                self.is_empty()
            }

            fn size_hint(&self) -> SizeHint {
                SizeHint::with_exact(self.len() as u64)
            }
        }
    };
}

body_of_one_frame!(
    Composite,
    /// The whole composite as one data frame (its views, no copy), then
    /// the end.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use http_body::Body;
    /// use std::pin::Pin;
    /// let mut body = zcbuf_core::Composite::from(zcbuf_core::Buf::from_static(b"abc"));
    /// let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    /// assert_eq!(frame.unwrap().unwrap().into_data().unwrap().to_vec(), b"abc");
    /// assert!(body.is_end_stream());
    /// # }
    /// ```
);

body_of_one_frame!(
    Buf,
    /// The buffer as one data frame (a view, no copy), then the end.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use http_body::Body;
    /// use std::pin::Pin;
    /// let mut body = zcbuf_core::Buf::from_static(b"abc");
    /// assert_eq!(body.size_hint().exact(), Some(3));
    /// let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    /// assert_eq!(&frame.unwrap().unwrap().into_data().unwrap()[..], b"abc");
    /// assert!(body.is_end_stream());
    /// # }
    /// ```
);
