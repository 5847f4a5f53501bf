//! File regions to sockets by sendfile, splice and a mapped Buf inside a
//! composite, checked byte for byte.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;

use zcbuf::io::{map_file, sendfile_all, splice_all, write_all};
use zcbuf::{Buf, Composite};

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> (TempFile, File) {
    let path = std::env::temp_dir().join(format!("zcbuf-{name}-{}", std::process::id()));
    File::create(&path).unwrap().write_all(bytes).unwrap();
    let file = File::open(&path).unwrap();
    (TempFile(path), file)
}

fn contents(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

/// Connects a pair and reads everything the sender side sends until closed.
fn with_receiver(send: impl FnOnce(&TcpStream)) -> Vec<u8> {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        got
    });
    send(&a);
    drop(a);
    reader.join().unwrap()
}

#[test]
fn sendfile_region_byte_for_byte() {
    let data = contents(3 << 20);
    let (_t, file) = temp_file("sendfile", &data);
    let got = with_receiver(|s| {
        sendfile_all(s, &file, 12_345, 2_000_000).unwrap();
    });
    assert!(got == data[12_345..2_012_345], "bytes differ");
}

#[test]
fn splice_region_byte_for_byte() {
    let data = contents(1 << 20);
    let (_t, file) = temp_file("splice", &data);
    let got = with_receiver(|s| {
        let calls = splice_all(s, &file, 777, 900_000).unwrap();
        assert!(calls >= 2);
    });
    assert!(got == data[777..900_777], "bytes differ");
}

#[test]
fn regions_past_the_end_are_errors() {
    let data = contents(1000);
    let (_t, file) = temp_file("short", &data);
    let got = with_receiver(|s| {
        let err = sendfile_all(s, &file, 900, 200).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        // The peer has the first 100 bytes: the error says so.
        assert!(
            err.to_string().contains("100 of the region's 200 bytes"),
            "{err}"
        );
        let err = splice_all(s, &file, 990, 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(
            err.to_string().contains("10 of the region's 20 bytes"),
            "{err}"
        );
        let err = splice_all(s, &file, 5000, 1).unwrap_err();
        assert!(
            err.to_string().contains("0 of the region's 1 bytes"),
            "{err}"
        );
    });
    assert!(
        got[..100] == data[900..] && got[100..] == data[990..],
        "bytes differ"
    );
    // SAFETY: the file is not modified while mapped.
    let err = unsafe { map_file(&file, 500..1001) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // SAFETY: as above.
    assert!(unsafe { map_file(&file, 10..10) }.unwrap().is_empty());
}

#[test]
fn header_plus_mapped_file_goes_out_as_one_composite() {
    let data = contents(5 << 20);
    let (_t, file) = temp_file("mapped", &data);
    // SAFETY: the file is not modified while mapped.
    let body = unsafe { map_file(&file, 4097..) }.unwrap();
    assert!(body[..] == data[4097..]);
    let header = Buf::from(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let mut msg = Composite::new();
    msg.push(header.clone());
    msg.push(body.slice(..1000));
    msg.push(Buf::from_static(b"--middle--"));
    msg.push(body.slice(1000..));
    let mut expect = header.to_vec();
    expect.extend_from_slice(&data[4097..5097]);
    expect.extend_from_slice(b"--middle--");
    expect.extend_from_slice(&data[5097..]);
    let got = with_receiver(|s| {
        write_all(s, &msg).unwrap();
    });
    assert!(got == expect, "bytes differ");
    drop(msg);
    // The map lives exactly as long as its views.
    assert_eq!(body.ref_count(), Some(1));
}

#[test]
fn splice_sends_the_last_bytes_at_once() {
    // SPLICE_F_MORE on the last chunk made TCP hold back a short segment
    // for ~200 ms: 100 bytes must arrive without that wait.
    let bytes = contents(100);
    let (_tmp, file) = temp_file("splice-last", &bytes);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    let mut got = [0u8; 100];
    for _ in 0..3 {
        let started = std::time::Instant::now();
        splice_all(&a, &file, 0, 100).unwrap();
        b.read_exact(&mut got).unwrap();
        let took = started.elapsed();
        assert!(got[..] == bytes[..]);
        // The held-back segment waits ~200 ms; under valgrind
        // (scripts/valgrind.sh sets ZCBUF_VALGRIND) everything is slower.
        let bound = if std::env::var_os("ZCBUF_VALGRIND").is_some() {
            150
        } else {
            50
        };
        assert!(
            took < std::time::Duration::from_millis(bound),
            "100 B took {took:?} to arrive"
        );
    }
}
