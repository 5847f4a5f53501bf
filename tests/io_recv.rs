//! The length-prefixed frame decoder against real sockets, with the stream
//! split at every possible read boundary and chunks of many sizes.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

use zcbuf::io::recv::frame_header;
use zcbuf::io::{ChunkSource, Frame, FrameDecoder, HeapChunks};

fn payloads() -> Vec<Vec<u8>> {
    [0usize, 1, 5, 17, 40, 3, 0, 100, 9]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect()
}

fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for f in frames {
        s.extend_from_slice(&frame_header(f.len() as u32));
        s.extend_from_slice(f);
    }
    s
}

/// Reads everything available without blocking, decoding as it goes.
fn pump<C: ChunkSource>(dec: &mut FrameDecoder<C>, rx: &mut UnixStream, out: &mut Vec<Frame>) {
    loop {
        match dec.read_from(rx) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        while let Some(f) = dec.decode().unwrap() {
            out.push(f);
        }
    }
}

fn run_split(stream: &[u8], cuts: &[usize], chunk: usize) -> Vec<Frame> {
    let (mut tx, mut rx) = UnixStream::pair().unwrap();
    rx.set_nonblocking(true).unwrap();
    let mut dec = FrameDecoder::with_source(HeapChunks::new(chunk));
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        tx.write_all(&stream[at..cut]).unwrap();
        at = cut;
        pump(&mut dec, &mut rx, &mut out);
    }
    drop(tx);
    pump(&mut dec, &mut rx, &mut out);
    assert_eq!(dec.buffered(), 0, "bytes left over");
    out
}

fn check(frames: &[Frame], expect: &[Vec<u8>], what: &str) {
    assert_eq!(frames.len(), expect.len(), "{what}: frame count");
    for (i, (f, e)) in frames.iter().zip(expect).enumerate() {
        assert_eq!(&f.to_vec(), e, "{what}: frame {i}");
    }
}

#[test]
fn every_single_read_boundary_and_chunk_size() {
    let expect = payloads();
    let stream = encode(&expect);
    for chunk in [1, 3, 7, 16, 64, 4096] {
        for cut in 0..=stream.len() {
            let frames = run_split(&stream, &[cut], chunk);
            check(&frames, &expect, &format!("chunk {chunk}, cut {cut}"));
        }
    }
}

#[test]
fn every_pair_of_read_boundaries() {
    let expect = payloads();
    let stream = encode(&expect);
    for chunk in [5, 64] {
        for a in 0..=stream.len() {
            for b in (a..=stream.len()).step_by(3) {
                let frames = run_split(&stream, &[a, b], chunk);
                check(&frames, &expect, &format!("chunk {chunk}, cuts {a},{b}"));
            }
        }
    }
}

#[test]
fn frames_inside_one_chunk_are_contiguous_views_of_it() {
    let expect = payloads();
    let stream = encode(&expect);
    let frames = run_split(&stream, &[], 4096);
    check(&frames, &expect, "one chunk");
    assert!(frames.iter().all(|f| matches!(f, Frame::Contiguous(_))));
    // Non-empty frames share the chunk's storage: no copies were made.
    let bufs: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Contiguous(b) if !b.is_empty() => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert!(bufs.windows(2).all(|w| w[0].same_storage(&w[1])));
}

#[test]
fn frames_across_chunks_are_composites_of_their_pieces() {
    let expect = payloads();
    let stream = encode(&expect);
    let frames = run_split(&stream, &[], 16);
    check(&frames, &expect, "16-byte chunks");
    let spanning: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Spanning(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!spanning.is_empty());
    // The 100-byte frame needs at least 7 pieces of 16-byte chunks.
    assert!(spanning
        .iter()
        .any(|c| c.len() == 100 && c.component_count() >= 7));
}

#[test]
fn tcp_stream_of_many_frames_byte_for_byte() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut tx = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut rx, _) = l.accept().unwrap();
    let expect: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| (0..(i * 37 % 5000)).map(|j| (i ^ j) as u8).collect())
        .collect();
    let stream = encode(&expect);
    let writer = std::thread::spawn(move || {
        for piece in stream.chunks(1234) {
            tx.write_all(piece).unwrap();
        }
    });
    let mut dec = FrameDecoder::with_source(HeapChunks::new(8192));
    let mut got = Vec::new();
    while let Some(f) = dec.read_frame(&mut rx).unwrap() {
        got.push(f);
    }
    writer.join().unwrap();
    check(&got, &expect, "tcp");
    assert!(dec.reads() > 1 && dec.chunks_used() > 1);
}

#[test]
fn oversized_length_is_an_error_and_truncated_stream_is_eof() {
    let (mut tx, mut rx) = UnixStream::pair().unwrap();
    tx.write_all(&frame_header(1_000_000)).unwrap();
    let mut dec = FrameDecoder::new().max_frame(1000);
    let err = dec.read_frame(&mut rx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);

    let (mut tx, mut rx) = UnixStream::pair().unwrap();
    tx.write_all(&frame_header(10)).unwrap();
    tx.write_all(b"12345").unwrap();
    drop(tx);
    let mut dec = FrameDecoder::new();
    let err = dec.read_frame(&mut rx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    let mut rest = Vec::new();
    rx.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// Frames decoded from pooled chunks hold their blocks: the pool's
/// in-use count drops back to zero only when the last frame is gone.
#[test]
fn pooled_chunks_return_when_the_last_frame_is_dropped() {
    use zcbuf::pool::{Pool, PoolChunks};
    let pool = Pool::new(Default::default());
    let mut dec = FrameDecoder::with_source(PoolChunks::new(pool.clone(), 4096));
    let (mut tx, mut rx) = UnixStream::pair().unwrap();
    let mut wire = Vec::new();
    for i in 0..200u32 {
        let payload = vec![i as u8; (i as usize * 37) % 3000];
        wire.extend_from_slice(&frame_header(payload.len() as u32));
        wire.extend_from_slice(&payload);
    }
    // The wire is larger than the socket buffer: write it from a thread.
    let writer = std::thread::spawn(move || tx.write_all(&wire).unwrap());
    let mut frames = Vec::new();
    while let Some(frame) = dec.read_frame(&mut rx).unwrap() {
        frames.push(frame);
    }
    writer.join().unwrap();
    assert_eq!(frames.len(), 200);
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.to_vec(), vec![i as u8; (i * 37) % 3000]);
    }
    drop(dec);
    assert!(pool.stats().live_buffers > 0, "frames hold their chunks");
    drop(frames);
    assert_eq!(pool.stats().live_buffers, 0);
    assert_eq!(pool.stats().in_use_bytes, 0);
}
