//! Feature `http-body`: a Composite as a hyper response body reaches the
//! socket as iovecs pointing into its own components (no copy in user
//! space), and the client gets every byte.

use std::convert::Infallible;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use zcbuf::{Buf, Composite};

/// The server's transport: records the address range of every slice
/// handed to a write.
struct Recording {
    inner: TokioIo<tokio::net::TcpStream>,
    seen: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl hyper::rt::Read for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.seen
            .lock()
            .unwrap()
            .push((buf.as_ptr() as usize, buf.len()));
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.seen
            .lock()
            .unwrap()
            .extend(bufs.iter().map(|b| (b.as_ptr() as usize, b.len())));
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[test]
fn a_composite_body_goes_out_as_iovecs_of_its_components() {
    let big = Buf::from(
        (0..1_000_000u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>(),
    );
    let small = Buf::from(b"tail".to_vec());
    let mut body = Composite::new();
    body.push(Buf::from_static(b"head:"));
    body.push(big.slice(1000..900_000));
    body.push(small.clone());
    let expect = body.to_vec();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let got = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen2 = Arc::clone(&seen);
        let served = body.clone();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let io = Recording {
                inner: TokioIo::new(s),
                seen: seen2,
            };
            let svc = hyper::service::service_fn(move |_req| {
                let b = served.clone();
                async move { Ok::<_, Infallible>(hyper::Response::new(b)) }
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
                .unwrap();
        });
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/")
            .header("host", "t")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(
            resp.headers()["content-length"],
            expect.len().to_string().as_str()
        );
        resp.into_body().collect().await.unwrap().to_bytes()
    });
    assert!(got[..] == expect[..], "every byte");
    let seen = seen.lock().unwrap();
    let within = |b: &Buf| {
        let (lo, hi) = (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
        seen.iter()
            .filter(|&&(p, n)| p >= lo && p + n <= hi)
            .map(|&(_, n)| n)
            .sum::<usize>()
    };
    // Every byte of the large slice was written from where it lies (a
    // partial write re-offers the rest, so count at least once).
    assert!(within(&big) >= 899_000, "the 1 MB piece went by reference");
    assert!(within(&small) >= 4, "the small piece went by reference");
}
