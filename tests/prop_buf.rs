//! Model-based property tests of `Buf` and `BufMut`: random operation
//! sequences compared after every step with a plain `Vec<u8>`.

use bytes::{Buf as _, BufMut as _};
use proptest::prelude::*;
use zcbuf::{AllocError, Buf, BufMut};

mod support;
use support::config;

#[derive(Debug, Clone)]
enum BufOp {
    Slice(usize, usize),
    SplitTo(usize),
    SplitOff(usize),
    Advance(usize),
    Truncate(usize),
    CloneDropOriginal,
    ThroughBytes,
    CursorCopyToBytes(usize),
    SliceRef(usize, usize),
}

fn buf_op() -> impl Strategy<Value = BufOp> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| BufOp::Slice(a, b)),
        any::<usize>().prop_map(BufOp::SplitTo),
        any::<usize>().prop_map(BufOp::SplitOff),
        any::<usize>().prop_map(BufOp::Advance),
        any::<usize>().prop_map(BufOp::Truncate),
        Just(BufOp::CloneDropOriginal),
        Just(BufOp::ThroughBytes),
        any::<usize>().prop_map(BufOp::CursorCopyToBytes),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| BufOp::SliceRef(a, b)),
    ]
}

/// Bytes and operations in `buf_matches_vec_model`: fewer under Miri,
/// where generating and checking each costs about a thousand times more.
const MAX_DATA: usize = if cfg!(miri) { 40 } else { 300 };
const MAX_OPS: usize = if cfg!(miri) { 12 } else { 40 };

/// A position modulo `len + 3`: sometimes out of range.
fn pos(x: usize, len: usize) -> usize {
    x % (len + 3)
}

fn check(buf: &Buf, model: &[u8]) {
    assert_eq!(buf.len(), model.len());
    assert_eq!(&buf[..], model);
    assert_eq!(buf.remaining(), model.len());
    assert_eq!(*buf, Buf::copy_from_slice(model));
    assert_eq!(
        buf.cmp(&Buf::copy_from_slice(model)),
        std::cmp::Ordering::Equal
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn buf_matches_vec_model(
        data in prop::collection::vec(any::<u8>(), 0..MAX_DATA),
        ops in prop::collection::vec(buf_op(), 1..MAX_OPS),
    ) {
        let mut buf = Buf::from(data.clone());
        let mut model = data;
        let origin = buf.clone();
        for op in &ops {
            let len = model.len();
            match op {
                BufOp::Slice(a, b) => {
                    let (a, b) = (pos(*a, len), pos(*b, len));
                    match buf.try_slice(a..b) {
                        Ok(s) => {
                            prop_assert!(a <= b && b <= len);
                            check(&s, &model[a..b]);
                            buf = s;
                            model = model[a..b].to_vec();
                        }
                        Err(e) => {
                            prop_assert!(a > b || b > len);
                            prop_assert_eq!((e.start(), e.end(), e.len()), (a, b, len));
                        }
                    }
                }
                BufOp::SplitTo(at) => {
                    let at = pos(*at, len);
                    match buf.try_split_to(at) {
                        Ok(head) => {
                            check(&head, &model[..at]);
                            model.drain(..at);
                        }
                        Err(_) => prop_assert!(at > len),
                    }
                }
                BufOp::SplitOff(at) => {
                    let at = pos(*at, len);
                    match buf.try_split_off(at) {
                        Ok(tail) => {
                            check(&tail, &model[at..]);
                            model.truncate(at);
                        }
                        Err(_) => prop_assert!(at > len),
                    }
                }
                BufOp::Advance(n) => {
                    let n = pos(*n, len);
                    match buf.try_advance(n) {
                        Ok(()) => drop(model.drain(..n)),
                        Err(_) => prop_assert!(n > len),
                    }
                }
                BufOp::Truncate(n) => {
                    let n = pos(*n, len);
                    buf.truncate(n);
                    model.truncate(n);
                }
                BufOp::CloneDropOriginal => {
                    let copy = buf.clone();
                    prop_assert!(copy.ptr_eq(&buf));
                    buf = copy;
                }
                BufOp::ThroughBytes => {
                    let ptr = buf.as_ptr();
                    let bytes = bytes::Bytes::from(buf.clone());
                    prop_assert_eq!(&bytes[..], &model[..]);
                    let back = Buf::from(bytes);
                    prop_assert!(back.is_empty() || back.as_ptr() == ptr, "no copy either way");
                    buf = back;
                }
                BufOp::CursorCopyToBytes(n) => {
                    let n = n % (len + 1);
                    let got = buf.copy_to_bytes(n);
                    prop_assert_eq!(&got[..], &model[..n]);
                    model.drain(..n);
                }
                BufOp::SliceRef(a, b) => {
                    let (a, b) = (a % (len + 1), b % (len + 1));
                    let (a, b) = (a.min(b), a.max(b));
                    let sub = buf.slice_ref(&buf[a..b]);
                    check(&sub, &model[a..b]);
                }
            }
            check(&buf, &model);
            if !buf.is_empty() {
                // Still a view into the original memory: nothing was copied.
                let base = origin.as_ptr() as usize;
                let at = buf.as_ptr() as usize;
                prop_assert!(at >= base && at + buf.len() <= base + origin.len());
            }
        }
    }

    #[test]
    fn buf_mut_matches_vec_model(
        align_shift in 0u32..13,
        cap in 0usize..200,
        writes in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..80), any::<usize>(), any::<u8>()), 1..30),
    ) {
        let align = 1usize << align_shift;
        let mut buf = BufMut::with_capacity_aligned(cap, align);
        prop_assert_eq!(buf.as_ptr() as usize % align, 0);
        let mut model: Vec<u8> = Vec::new();
        let mut frozen: Vec<(Buf, Vec<u8>)> = Vec::new();
        for (bytes, at, kind) in &writes {
            match kind % 6 {
                0 => {
                    buf.put_slice(bytes);
                    model.extend_from_slice(bytes);
                }
                1 => {
                    std::io::Write::write_all(&mut buf, bytes).unwrap();
                    model.extend_from_slice(bytes);
                }
                2 => {
                    let at = pos(*at, model.len());
                    match buf.try_split_to(at) {
                        Ok(head) => {
                            prop_assert_eq!(&head[..], &model[..at]);
                            frozen.push((head, model.drain(..at).collect()));
                        }
                        Err(_) => prop_assert!(at > model.len()),
                    }
                }
                3 => {
                    let before = buf.as_ptr();
                    buf.reserve(*at % 300);
                    prop_assert!(buf.capacity() - buf.len() >= *at % 300);
                    if buf.as_ptr() != before {
                        // Regrown or reclaimed: at the start of a region,
                        // which has the alignment the buffer was made with.
                        prop_assert_eq!(buf.as_ptr() as usize % align, 0);
                    }
                }
                4 => {
                    // Sizes no allocation can have: an error, nothing changes.
                    let huge = [usize::MAX, isize::MAX as usize + 1, isize::MAX as usize - buf.len() + 1][at % 3]
                        .max(*at);
                    let (ptr, cap) = (buf.as_ptr(), buf.capacity());
                    prop_assert!(buf.try_reserve(huge).is_err());
                    prop_assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, cap));
                }
                _ => {
                    for &b in bytes.iter().take(9) {
                        buf.put_u8(b);
                        model.push(b);
                    }
                    if !model.is_empty() {
                        let i = at % model.len();
                        buf[i] ^= 0x5a;
                        model[i] ^= 0x5a;
                    }
                }
            }
            prop_assert_eq!(&buf[..], &model[..]);
            // Frozen prefixes never change, whatever the writer does next.
            for (view, expected) in &frozen {
                prop_assert_eq!(&view[..], &expected[..]);
            }
        }
        let whole = buf.freeze();
        prop_assert_eq!(&whole[..], &model[..]);
    }
}

proptest! {
    #![proptest_config(config())]

    /// Every size a caller can pass: capacities and reservations either
    /// succeed with at least that room or fail with an error; none wraps.
    /// (Large sizes start at 2^45 bytes, which no test machine has, so an
    /// error is the only right answer for them. Miri stops the program on
    /// an allocation larger than the host's memory instead of failing it,
    /// so under Miri they start where no layout is valid.)
    #[test]
    fn buf_mut_sizes_are_checked(
        cap in prop_oneof![0usize..4096, LARGE..=usize::MAX, EDGE..=usize::MAX],
        align_shift in 0u32..16,
        additional in prop_oneof![0usize..4096, LARGE..=usize::MAX, EDGE..=usize::MAX],
    ) {
        let align = 1usize << align_shift;
        match BufMut::try_with_capacity_aligned(cap, align) {
            Ok(mut buf) => {
                prop_assert!(cap < 4096);
                prop_assert_eq!(buf.capacity(), cap);
                prop_assert_eq!(buf.as_ptr() as usize % align, 0);
                buf.put_bytes(1, cap);
                match buf.try_reserve(additional) {
                    Ok(()) => {
                        prop_assert!(additional < 4096);
                        prop_assert!(buf.capacity() - buf.len() >= additional);
                        prop_assert_eq!(buf.as_ptr() as usize % align, 0);
                    }
                    Err(AllocError::CapacityOverflow { len, additional: a }) => {
                        prop_assert_eq!((len, a), (cap, additional));
                        prop_assert!(cap.checked_add(additional).is_none());
                    }
                    Err(AllocError::InvalidLayout { size, .. }) => {
                        prop_assert!(size >= cap + additional);
                        prop_assert!(size > isize::MAX as usize - (align - 1));
                    }
                    Err(_) => prop_assert!(additional >= 1 << 45),
                }
                prop_assert_eq!(&buf[..], &vec![1u8; cap][..]);
            }
            Err(AllocError::InvalidLayout { size, align: a }) => {
                prop_assert_eq!((size, a), (cap, align));
                prop_assert!(cap > isize::MAX as usize - (align - 1));
            }
            Err(_) => prop_assert!(cap >= 1 << 45),
        }
    }
}

/// Where `buf_mut_sizes_are_checked`'s large sizes start, and its sizes
/// around the largest layout.
const LARGE: usize = if cfg!(miri) {
    isize::MAX as usize + 1
} else {
    1 << 45
};
const EDGE: usize = if cfg!(miri) {
    isize::MAX as usize + 1
} else {
    isize::MAX as usize - 8192
};

#[test]
fn buf_mut_alignment_survives_growth_and_splits() {
    for shift in 0..=12u32 {
        let align = 1usize << shift;
        let mut buf = BufMut::with_capacity_aligned(align.max(8), align);
        let mut held = Vec::new();
        for round in 0..6u8 {
            buf.put_bytes(round, buf.capacity() - buf.len() + 3); // forces growth
            assert_eq!(
                buf.as_ptr() as usize % align,
                0,
                "align {align}, round {round}"
            );
            held.push(buf.split_to(1)); // a live view: the next growth copies
        }
        assert_eq!(buf.as_ptr() as usize % align, 1 % align);
    }
}

#[test]
fn buf_panicking_forms_name_the_range() {
    let buf = Buf::from_static(b"abc");
    let err = std::panic::catch_unwind(|| buf.slice(1..7)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert_eq!(msg, "range 1..7 out of bounds for length 3");
    #[allow(clippy::reversed_empty_ranges)]
    let err = std::panic::catch_unwind(|| buf.slice(2..1)).unwrap_err();
    assert!(err
        .downcast_ref::<String>()
        .unwrap()
        .contains("greater than its end"));
    let mut b = buf.clone();
    assert!(std::panic::catch_unwind(move || b.split_to(4)).is_err());
    let mut b = buf.clone();
    assert!(std::panic::catch_unwind(move || b.advance(4)).is_err());
}

/// Positions and ranges a hostile caller might pass: at the edges, past
/// them, at `usize::MAX`, with inclusive and exclusive bounds that would
/// overflow. Every `try_*` answers with an error and leaves the view as it
/// was; nothing wraps, nothing panics.
#[test]
fn hostile_positions_are_errors() {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let buf = Buf::from(b"0123456789".to_vec());
    let bad_ranges: [(std::ops::Bound<usize>, std::ops::Bound<usize>); 8] = [
        (Excluded(usize::MAX), Unbounded),
        (Included(0), Included(usize::MAX)),
        (Included(usize::MAX), Excluded(usize::MAX)),
        (Excluded(9), Excluded(9)),
        (Included(11), Unbounded),
        (Included(5), Included(10)),
        (Included(usize::MAX - 1), Included(usize::MAX - 1)),
        (Excluded(10), Unbounded),
    ];
    for range in bad_ranges {
        assert!(buf.try_slice(range).is_err(), "{range:?}");
    }
    assert_eq!(&buf.slice((Excluded(9), Unbounded))[..], b"");
    assert_eq!(&buf.slice((Excluded(8), Included(9)))[..], b"9");
    assert_eq!(&buf.slice(10..)[..], b"");
    for at in [11, usize::MAX, isize::MAX as usize + 1] {
        let mut b = buf.clone();
        assert!(b.try_split_to(at).is_err());
        assert!(b.try_split_off(at).is_err());
        assert!(b.try_advance(at).is_err());
        assert!(b.ptr_eq(&buf), "unchanged after errors");
    }
    // At the very edges: everything or nothing, as a view.
    let mut b = buf.clone();
    assert_eq!(b.split_off(10).len(), 0);
    assert_eq!(b.split_to(0).len(), 0);
    assert_eq!(b.split_to(10), buf);
    assert!(b.is_empty());
    b.advance(0);
    assert!(b.try_advance(1).is_err());
    // A subset that starts inside but runs past the end, or lies just
    // before the start: errors, even though the addresses are close.
    let inner = &buf[..];
    let past = inner.as_ptr().wrapping_add(5);
    let outside = Buf::from(vec![0u8; 32]);
    assert!(buf.try_slice_ref(&outside[..]).is_err());
    assert!(buf.slice(5..).try_slice_ref(inner).is_err());
    assert!(buf.slice(..5).try_slice_ref(&buf[3..7]).is_err());
    assert_eq!(buf.slice(2..).slice_ref(&buf[5..7]), b"56"[..]);
    assert!(!past.is_null());

    let mut w = BufMut::with_capacity(4);
    w.extend_from_slice(b"abcd");
    for at in [5, usize::MAX] {
        assert!(w.try_split_to(at).is_err());
    }
    assert_eq!(&w.split_to(4)[..], b"abcd");
    assert_eq!((w.len(), w.capacity()), (0, 0));
    w.extend_from_slice(b"e"); // regrows after the split used everything
    assert_eq!(&w[..], b"e");
}

/// Frames cut from one chunk go to other threads while the writer keeps
/// writing after them in the same allocation: each thread sees exactly its
/// frame (Miri checks there is no data race between writer and readers).
#[test]
fn frames_cut_while_the_writer_goes_on_are_stable_across_threads() {
    let frames = if cfg!(miri) { 6 } else { 200 };
    let mut chunk = BufMut::with_capacity(64);
    let (tx, rx) = std::sync::mpsc::channel::<(Buf, u8)>();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        for (frame, tag) in rx {
            assert!(frame.iter().all(|&b| b == tag), "frame {tag} changed");
            seen += 1;
        }
        seen
    });
    for i in 0..frames {
        let tag = i as u8;
        chunk.put_bytes(tag, 7 + i % 13);
        let frame = chunk.split_to(chunk.len());
        // Written right after the frame, in the same region, then dropped:
        // the next frame's bytes overwrite it.
        chunk.put_u8(0xee);
        chunk.truncate(0);
        tx.send((frame, tag)).unwrap();
    }
    drop(tx);
    assert_eq!(reader.join().unwrap(), frames);
}
