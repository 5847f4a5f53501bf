//! Model-based property tests of `Composite`: random operation sequences
//! applied to a composite and to a plain `Vec<u8>`, compared after every
//! step — contents, lengths, I/O slice export, reads at every offset,
//! searches, and the error behaviour of every `try_*` form.

use std::io::{IoSlice, Read};

use bytes::Buf as _;
use proptest::prelude::*;
use zcbuf::{Buf, BufMut, Composite};

mod support;
use support::config;

/// Where a component's memory comes from: every kind of storage a
/// composite can be built from.
#[derive(Debug, Clone)]
enum Piece {
    Vec(Vec<u8>),
    Static(usize, usize),
    Shared(usize, usize),
    Empty,
    Frozen(Vec<u8>),
    Bytes(Vec<u8>),
}

static STATIC: &[u8] = b"\r\n\r\nGET / HTTP/1.1\r\nHost: zcbuf\r\n\r\n\x00\xff\x7f\x80abc";

fn shared_body() -> Buf {
    Buf::from((0u8..=255).cycle().take(600).collect::<Vec<u8>>())
}

impl Piece {
    fn make(&self, shared: &Buf) -> Buf {
        match self {
            Piece::Vec(v) => Buf::from(v.clone()),
            Piece::Static(a, n) => {
                let a = a % STATIC.len();
                let n = n % (STATIC.len() - a + 1);
                Buf::from_static(&STATIC[a..a + n])
            }
            Piece::Shared(a, n) => {
                let a = a % shared.len();
                let n = n % (shared.len() - a + 1).min(64);
                shared.slice(a..a + n)
            }
            Piece::Empty => Buf::new(),
            Piece::Frozen(v) => {
                let mut chunk = BufMut::with_capacity(8);
                chunk.extend_from_slice(b"pre");
                chunk.extend_from_slice(v);
                chunk.extend_from_slice(b"post");
                let _prefix = chunk.split_to(3);
                chunk.split_to(v.len())
            }
            Piece::Bytes(v) => Buf::from(bytes::Bytes::from(v.clone())),
        }
    }
}

fn piece() -> impl Strategy<Value = Piece> {
    // Small alphabet so that searches hit often and straddle boundaries.
    let bytes = prop::collection::vec(
        prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), any::<u8>()],
        0..12,
    );
    prop_oneof![
        bytes.clone().prop_map(Piece::Vec),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Piece::Static(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Piece::Shared(a, n)),
        Just(Piece::Empty),
        bytes.clone().prop_map(Piece::Frozen),
        bytes.prop_map(Piece::Bytes),
    ]
}

/// An operation; positions are taken modulo `len + 3`, so a few of them
/// are out of range and exercise the error paths.
#[derive(Debug, Clone)]
enum Op {
    Push(Piece),
    PushFront(Piece),
    Append(Vec<Piece>),
    Slice(usize, usize),
    SplitTo(usize),
    SplitOff(usize),
    Advance(usize),
    Truncate(usize),
    RemoveComponent(usize),
    Consolidate,
    CursorAdvance(usize),
    CopyToBytes(usize),
    Read(usize),
    CloneAndDropOriginal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => piece().prop_map(Op::Push),
        2 => piece().prop_map(Op::PushFront),
        1 => prop::collection::vec(piece(), 0..4).prop_map(Op::Append),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Slice(a, b)),
        1 => any::<usize>().prop_map(Op::SplitTo),
        1 => any::<usize>().prop_map(Op::SplitOff),
        1 => any::<usize>().prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => any::<usize>().prop_map(Op::RemoveComponent),
        1 => Just(Op::Consolidate),
        1 => any::<usize>().prop_map(Op::CursorAdvance),
        1 => any::<usize>().prop_map(Op::CopyToBytes),
        1 => any::<usize>().prop_map(Op::Read),
        1 => Just(Op::CloneAndDropOriginal),
    ]
}

fn pos(x: usize, len: usize) -> usize {
    x % (len + 3)
}

/// Applies `op` to the composite and the model alike, checking results
/// and error behaviour on the way.
fn apply(c: &mut Composite, model: &mut Vec<u8>, op: &Op, shared: &Buf) {
    let len = model.len();
    match op {
        Op::Push(p) => {
            let b = p.make(shared);
            model.extend_from_slice(&b);
            c.push(b);
        }
        Op::PushFront(p) => {
            let b = p.make(shared);
            model.splice(0..0, b.iter().copied());
            c.push_front(b);
        }
        Op::Append(ps) => {
            let other: Composite = ps.iter().map(|p| p.make(shared)).collect();
            let before = c.component_count();
            model.extend(other.iter());
            let added = other.component_count();
            c.append(other);
            assert_eq!(c.component_count(), before + added, "append flattens");
        }
        Op::Slice(a, b) => {
            let (a, b) = (pos(*a, len), pos(*b, len));
            match c.try_slice(a..b) {
                Ok(s) => {
                    assert!(a <= b && b <= len);
                    assert_eq!(s.to_vec(), model[a..b]);
                    check(&s, &model[a..b]);
                    *c = s;
                    *model = model[a..b].to_vec();
                }
                Err(e) => {
                    assert!(a > b || b > len, "slice {a}..{b} of {len} failed: {e}");
                    assert_eq!(e.len(), len);
                }
            }
        }
        Op::SplitTo(at) => {
            let at = pos(*at, len);
            match c.try_split_to(at) {
                Ok(head) => {
                    assert_eq!(head.to_vec(), model[..at]);
                    check(&head, &model[..at]);
                    model.drain(..at);
                }
                Err(_) => assert!(at > len),
            }
        }
        Op::SplitOff(at) => {
            let at = pos(*at, len);
            match c.try_split_off(at) {
                Ok(tail) => {
                    assert_eq!(tail.to_vec(), model[at..]);
                    check(&tail, &model[at..]);
                    model.truncate(at);
                }
                Err(_) => assert!(at > len),
            }
        }
        Op::Advance(n) => {
            let n = pos(*n, len);
            match c.try_advance(n) {
                Ok(()) => drop(model.drain(..n)),
                Err(_) => assert!(n > len),
            }
        }
        Op::Truncate(n) => {
            let n = pos(*n, len);
            c.truncate(n);
            model.truncate(n);
        }
        Op::RemoveComponent(i) => {
            let i = i % (c.component_count() + 1);
            let start: usize = c.components().take(i).map(|b| b.len()).sum();
            match c.remove_component(i) {
                Some(removed) => {
                    assert_eq!(removed[..], model[start..start + removed.len()]);
                    model.drain(start..start + removed.len());
                }
                None => assert_eq!(i, c.component_count()),
            }
        }
        Op::Consolidate => {
            let non_empty = c.components().filter(|b| !b.is_empty()).count();
            let whole = c.to_buf();
            assert_eq!(whole[..], model[..]);
            if non_empty == 1 {
                let only = c.components().find(|b| !b.is_empty()).unwrap();
                assert!(
                    whole.ptr_eq(only),
                    "one component comes back without a copy"
                );
            }
            c.consolidate();
            assert!(c.component_count() <= 1 || non_empty <= 1);
        }
        Op::CursorAdvance(n) => {
            let n = n % (len + 1);
            assert_eq!(c.remaining(), len);
            if len > 0 {
                assert_eq!(c.chunk()[0], model[0]);
            }
            bytes::Buf::advance(c, n);
            model.drain(..n);
        }
        Op::CopyToBytes(n) => {
            let n = n % (len + 1);
            let got = c.copy_to_bytes(n);
            assert_eq!(got[..], model[..n]);
            model.drain(..n);
        }
        Op::Read(n) => {
            let mut dst = vec![0u8; n % (len + 4)];
            let got = c.read(&mut dst).unwrap();
            assert_eq!(got, dst.len().min(len));
            assert_eq!(dst[..got], model[..got]);
            model.drain(..got);
        }
        Op::CloneAndDropOriginal => {
            let copy = c.clone();
            *c = copy;
        }
    }
}

/// Everything observable about `c` agrees with `model`.
fn check(c: &Composite, model: &[u8]) {
    let len = model.len();
    assert_eq!(c.len(), len);
    assert_eq!(c.is_empty(), len == 0);
    assert_eq!(c.to_vec(), model);
    assert!(*c == *model);
    assert_eq!(c.components().map(|b| b.len()).sum::<usize>(), len);
    assert_eq!(c.iter().collect::<Vec<u8>>(), model);

    // I/O slice export: everything with enough slots, a prefix of whole
    // non-empty components with too few.
    let mut slots = vec![IoSlice::new(&[]); c.component_count() + 1];
    let n = c.fill_io_slices(&mut slots);
    assert_eq!(n, c.components().filter(|b| !b.is_empty()).count());
    assert_eq!(
        slots[..n]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect::<Vec<u8>>(),
        model
    );
    let mut few = [IoSlice::new(&[]); 2];
    let k = c.fill_io_slices(&mut few);
    let prefix: Vec<u8> = few[..k].iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(prefix[..], model[..prefix.len()]);
    assert!(k == 2 || prefix.len() == len);

    // Reads at every offset, in both byte orders, and their errors.
    for off in 0..len + 2 {
        let at = |n: usize| model.get(off..off + n);
        assert_eq!(c.try_u8_at(off).ok(), model.get(off).copied());
        assert_eq!(c.try_i8_at(off).ok(), model.get(off).map(|&b| b as i8));
        let be16 = at(2).map(|s| u16::from_be_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_u16_at(off).ok(), be16);
        let le32 = at(4).map(|s| u32::from_le_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_u32_le_at(off).ok(), le32);
        let be32 = at(4).map(|s| i32::from_be_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_i32_at(off).ok(), be32);
        let be64 = at(8).map(|s| u64::from_be_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_u64_at(off).ok(), be64);
        let le64 = at(8).map(|s| i64::from_le_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_i64_le_at(off).ok(), le64);
        let f64be = at(8).map(|s| u64::from_be_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_f64_at(off).ok().map(f64::to_bits), f64be);
        let f32le = at(4).map(|s| u32::from_le_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_f32_le_at(off).ok().map(f32::to_bits), f32le);
        let u128be = at(16).map(|s| u128::from_be_bytes(s.try_into().unwrap()));
        assert_eq!(c.try_u128_at(off).ok(), u128be);
        if off < len {
            assert_eq!(c.u8_at(off), model[off]);
            let mut dst = vec![0u8; (len - off).min(7)];
            c.copy_at(off, &mut dst).unwrap();
            assert_eq!(dst[..], model[off..off + dst.len()]);
        }
        let mut too_long = vec![0u8; len - off.min(len) + 1];
        assert!(c.copy_at(off.min(len), &mut too_long).is_err());
    }

    // Searches: every byte value present, one absent, and windows of the
    // model itself (so they are found, often across components).
    for byte in [b'\r', b'\n', b'a', 0, 0xff, 7] {
        assert_eq!(c.find(byte), model.iter().position(|&b| b == byte));
    }
    for (i, w) in [1usize, 2, 3, 4, 7].into_iter().enumerate() {
        if w <= len {
            let start = (i * 13) % (len - w + 1);
            let pattern = &model[start..start + w];
            assert_eq!(c.find_slice(pattern), naive_find(model, pattern));
        }
    }
    assert_eq!(c.find_slice(b"\r\n\r\n"), naive_find(model, b"\r\n\r\n"));
    assert_eq!(c.find_slice(b""), Some(0));
    assert_eq!(
        c.for_each_byte(|b| b != b'\n'),
        model.iter().position(|&b| b == b'\n')
    );
}

/// Operations per sequence: fewer under Miri, where every check of every
/// offset after every step costs about a thousand times more.
const MAX_OPS: usize = if cfg!(miri) { 6 } else { 40 };

fn naive_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn composite_matches_vec_model(ops in prop::collection::vec(op(), 1..MAX_OPS)) {
        let shared = shared_body();
        let mut c = Composite::new();
        let mut model = Vec::new();
        for op in &ops {
            apply(&mut c, &mut model, op, &shared);
            check(&c, &model);
        }
    }

    #[test]
    fn panicking_forms_panic_on_bad_input(pieces in prop::collection::vec(piece(), 0..6), extra in 1usize..10) {
        let shared = shared_body();
        let c: Composite = pieces.iter().map(|p| p.make(&shared)).collect();
        let len = c.len();
        let bad = len + extra;
        let panics = |f: &dyn Fn(&mut Composite)| {
            let mut copy = c.clone();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut copy))).is_err()
        };
        prop_assert!(panics(&|c| drop(c.slice(..bad))));
        prop_assert!(panics(&|c| drop(c.split_to(bad))));
        prop_assert!(panics(&|c| drop(c.split_off(bad))));
        prop_assert!(panics(&|c| c.advance(bad)));
        let read_past_end = |c: &mut Composite| {
            c.u8_at(len);
        };
        prop_assert!(panics(&read_past_end));
        let wide_read_past_end = |c: &mut Composite| {
            c.u64_at(len.saturating_sub(7));
        };
        prop_assert!(panics(&wide_read_past_end));
        // try forms leave the composite unchanged.
        let mut copy = c.clone();
        prop_assert!(copy.try_split_to(bad).is_err());
        prop_assert!(copy.try_split_off(bad).is_err());
        prop_assert!(copy.try_advance(bad).is_err());
        prop_assert_eq!(copy.to_vec(), c.to_vec());
        prop_assert_eq!(copy.component_count(), c.component_count());
    }
}

/// Offsets, ranges and counts a hostile caller might pass to a composite:
/// past the end, at `usize::MAX`, overflowing when a width is added. Every
/// `try_*` is an error and changes nothing.
#[test]
fn hostile_offsets_are_errors() {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let c: Composite = [&b"ab"[..], b"", b"cdef", b"g"]
        .into_iter()
        .map(Buf::from_static)
        .collect();
    let huge = [
        7,
        8,
        usize::MAX,
        usize::MAX - 1,
        usize::MAX - 7,
        isize::MAX as usize + 1,
    ];
    for at in huge {
        assert!(c.try_u8_at(at).is_err());
        assert!(c.try_u64_at(at).is_err());
        assert!(c.try_u128_le_at(at).is_err());
        assert!(c.copy_at(at, &mut [0u8; 4]).is_err());
        if at == c.len() {
            continue; // a valid split position, only reads fail there
        }
        let mut d = c.clone();
        assert!(d.try_split_to(at).is_err());
        assert!(d.try_split_off(at).is_err());
        assert!(d.try_advance(at).is_err());
        assert_eq!(d, c);
        assert_eq!(d.component_count(), 4);
    }
    assert!(c.try_u16_at(6).is_err(), "one byte short");
    assert!(c.copy_at(5, &mut [0u8; 3]).is_err());
    assert!(c.copy_at(7, &mut []).is_ok(), "an empty read at the end");
    for range in [
        (Excluded(usize::MAX), Unbounded),
        (Included(0), Included(usize::MAX)),
        (Included(3), Included(7)),
        (Excluded(6), Excluded(6)),
        (Included(8), Unbounded),
    ] {
        assert!(c.try_slice(range).is_err(), "{range:?}");
    }
    assert_eq!(c.slice((Excluded(1), Included(3))), b"cd"[..]);
    assert_eq!(
        c.find_slice(b"efgh"),
        None,
        "a match may not run past the end"
    );
    assert_eq!(c.find_slice(b"fg"), Some(5));
    // Edges: all or nothing, and an empty composite.
    let mut d = c.clone();
    assert!(d.split_off(7).is_empty());
    assert!(d.split_to(0).is_empty());
    assert_eq!(d.split_to(7), c);
    assert!(d.is_empty() && d.try_u8_at(0).is_err());
    d.advance(0);
    d.truncate(usize::MAX);
    assert!(Composite::new().try_slice(..).unwrap().is_empty());
}
