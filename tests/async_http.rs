//! The example HTTP/1.1 file server (examples/http_file_server.rs) under a
//! real HTTP client: hyper, 200 concurrent keep-alive connections, every
//! byte of every file checked.

#[allow(dead_code)]
#[path = "../examples/http_file_server.rs"]
mod server;

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Sizes around the mapping limit and the interesting edges.
const SIZES: [usize; 6] = [0, 1, 1000, 70_000, 256 * 1024, 600_000];

fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (j % 251) as u8 ^ (i as u8 * 17)).collect()
}

#[test]
fn two_hundred_connections_get_every_byte() {
    let dir = std::env::temp_dir().join(format!("zcbuf-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, &len) in SIZES.iter().enumerate() {
        std::fs::write(dir.join(format!("f{i}")), content(i, len)).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fetched = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(server::Files::new(dir.clone()));
        tokio::spawn(server::serve(listener, files));
        let mut clients = Vec::new();
        for c in 0..200usize {
            clients.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let mut bytes = 0usize;
                // Each connection fetches every file (keep-alive), from a
                // different starting file, then a missing one.
                for k in 0..SIZES.len() {
                    let i = (c + k) % SIZES.len();
                    let req = hyper::Request::get(format!("/f{i}"))
                        .header("host", "test")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = send.send_request(req).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    assert!(
                        body[..] == content(i, SIZES[i])[..],
                        "file {i} on connection {c}"
                    );
                    bytes += body.len();
                }
                let req = hyper::Request::get("/../etc/passwd")
                    .header("host", "test")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                assert_eq!(send.send_request(req).await.unwrap().status(), 404);
                bytes
            }));
        }
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        total
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(fetched, 200 * SIZES.iter().sum::<usize>());
}

#[test]
fn pipelined_requests_and_bad_ones_get_answers_in_order() {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("zcbuf-http-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a"), b"alpha").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(server::serve(
        listener,
        Arc::new(server::Files::new(dir.clone())),
    ));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    let statuses: Vec<&str> = all.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
    assert_eq!(statuses, ["200", "405", "200", "200"], "{all}");
    assert_eq!(all.matches("alpha").count(), 2, "HEAD has no body: {all}");
    assert!(all.ends_with("alpha"));
    std::fs::remove_dir_all(&dir).unwrap();
}
