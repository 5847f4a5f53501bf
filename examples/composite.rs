//! Builds an HTTP-style message as a composite — a header written into a
//! `BufMut`, slices of one shared body, an empty component, and a
//! `bytes::Bytes` — and prints what it holds: components, reference
//! counts, a search that straddles two components, and the I/O slices one
//! `writev` would get. Nothing is copied until the explicit `to_buf()`.
//!
//! ```sh
//! cargo run --example composite
//! ```

use std::io::IoSlice;

use zcbuf::{Buf, BufMut, Composite};

fn main() {
    let body = Buf::from(b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(4));

    let mut header = BufMut::with_capacity(128);
    header.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r");
    let status_and_type = header.split_to(header.len()); // frozen, no copy
    header.extend_from_slice(b"\n\r\n"); // the blank line starts in the previous component

    let mut message = Composite::new();
    message.push(status_and_type);
    message.push(header.freeze());
    message.push(body.slice(..36));
    message.push(Buf::new());
    message.push(body.slice(100..));
    message.push(Buf::from(bytes::Bytes::from_static(
        b"\r\n-- trailer --\r\n",
    )));

    println!("{message:?}");
    println!(
        "{} bytes in {} components; the body's memory is shared by {} views",
        message.len(),
        message.component_count(),
        body.ref_count().unwrap_or(0)
    );
    for (i, component) in message.components().enumerate() {
        println!("  component {i}: {component:?}");
    }

    let blank_line = message.find_slice(b"\r\n\r\n").expect("the header ends");
    println!("header ends at offset {blank_line} (the pattern straddles components 0 and 1)");
    println!(
        "u32 at the boundary of components 2 and 4: {:#010x}",
        message.u32_at(blank_line + 4 + 34)
    );

    let mut slots = [IoSlice::new(&[]); 16];
    let used = message.fill_io_slices(&mut slots);
    let lens: Vec<usize> = slots[..used].iter().map(|s| s.len()).collect();
    println!(
        "one writev would get {used} iovecs of {lens:?} bytes (the empty component is skipped)"
    );

    let body_only = message.slice(blank_line + 4..);
    println!(
        "the body alone, sliced without copying: {} bytes in {} components",
        body_only.len(),
        body_only.component_count()
    );

    let flat = message.to_buf(); // the one explicit copy
    assert_eq!(flat.len(), message.len());
    assert!(message == flat[..]);
    println!(
        "to_buf() copied {} bytes into one buffer, byte for byte equal",
        flat.len()
    );
}
