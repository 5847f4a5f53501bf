//! Lifetime invariants: memory behind any view is freed exactly once, and
//! never while any view of it — clone, slice, composite component, frozen
//! prefix, `bytes::Bytes` — is alive, also when views are dropped from
//! several threads at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use zcbuf::{Buf, BufMut, Composite};

mod support;
use support::config;

/// An owner that counts its drops and poisons its bytes when dropped, so
/// a view outliving it would read poison (and valgrind would see it).
struct CountedOwner {
    bytes: Vec<u8>,
    drops: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for CountedOwner {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for CountedOwner {
    fn drop(&mut self) {
        self.bytes.iter_mut().for_each(|b| *b = 0xdd);
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted(len: usize) -> (Buf, Vec<u8>, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let owner = CountedOwner {
        bytes: bytes.clone(),
        drops: Arc::clone(&drops),
    };
    (Buf::from_owner(owner), bytes, drops)
}

/// A live view and the bytes it must still show.
enum View {
    Buf(Buf, Vec<u8>),
    Composite(Composite, Vec<u8>),
    Bytes(bytes::Bytes, Vec<u8>),
}

impl View {
    fn check(&self) {
        match self {
            View::Buf(b, want) => assert_eq!(&b[..], &want[..]),
            View::Composite(c, want) => assert_eq!(c.to_vec(), *want),
            View::Bytes(b, want) => assert_eq!(&b[..], &want[..]),
        }
    }
}

fn make_view(root: &Buf, model: &[u8], kind: u8, a: usize, b: usize) -> View {
    let len = model.len();
    let (a, b) = (a % (len + 1), b % (len + 1));
    let (a, b) = (a.min(b), a.max(b));
    match kind % 5 {
        0 => View::Buf(root.clone(), model.to_vec()),
        1 => View::Buf(root.slice(a..b), model[a..b].to_vec()),
        2 => {
            let mut c = Composite::new();
            c.push(root.slice(..a));
            c.push(Buf::from_static(b"--"));
            c.push(root.slice(b..));
            let mut want = model[..a].to_vec();
            want.extend_from_slice(b"--");
            want.extend_from_slice(&model[b..]);
            View::Composite(c, want)
        }
        3 => View::Bytes(bytes::Bytes::from(root.slice(a..b)), model[a..b].to_vec()),
        _ => {
            let c: Composite = [root.slice(a..b), root.clone()].into_iter().collect();
            let sliced = c.slice(..(b - a) / 2 + 1);
            let mut want = model[a..b].to_vec();
            want.extend_from_slice(model);
            want.truncate((b - a) / 2 + 1);
            View::Composite(sliced, want)
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn freed_once_and_only_after_the_last_view(
        len in 1usize..400,
        specs in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..20),
        order in prop::collection::vec(any::<prop::sample::Index>(), 20),
    ) {
        let (root, model, drops) = counted(len);
        let mut views: Vec<View> = specs
            .iter()
            .map(|&(kind, a, b)| make_view(&root, &model, kind, a, b))
            .collect();
        drop(root);
        for idx in &order {
            if views.is_empty() {
                break;
            }
            let gone = views.swap_remove(idx.index(views.len()));
            drop(gone);
            if !views.is_empty() {
                prop_assert_eq!(drops.load(Ordering::SeqCst), 0, "freed while views are alive");
                views.iter().for_each(View::check);
            }
        }
        drop(views);
        prop_assert_eq!(drops.load(Ordering::SeqCst), 1, "freed exactly once");
    }

    #[test]
    fn frozen_prefixes_keep_the_chunk_alive(
        frames in prop::collection::vec(1usize..50, 1..10),
    ) {
        let mut chunk = BufMut::with_capacity(16);
        let mut out = Vec::new();
        for (i, &n) in frames.iter().enumerate() {
            chunk.extend_from_slice(&vec![i as u8; n]);
            out.push((chunk.split_to(n), vec![i as u8; n]));
        }
        drop(chunk);
        for (view, want) in &out {
            prop_assert_eq!(&view[..], &want[..]);
        }
    }
}

/// Rounds of the threaded tests, and views per thread: fewer under Miri,
/// which runs them about a thousand times slower and checks every access
/// for undefined behaviour (its thread schedules vary with the seed).
const ROUNDS: usize = if cfg!(miri) { 4 } else { 50 };
const VIEWS_PER_THREAD: usize = if cfg!(miri) { 12 } else { 64 };

#[test]
fn concurrent_drops_free_exactly_once() {
    for round in 0..ROUNDS {
        let (root, model, drops) = counted(1000 + round);
        let root_ref = &root;
        let model_ref = &model;
        std::thread::scope(|scope| {
            for t in 0..4usize {
                let views: Vec<View> = (0..VIEWS_PER_THREAD)
                    .map(|i| make_view(root_ref, model_ref, (i + t) as u8, i * 7 + t, i * 13))
                    .collect();
                scope.spawn(move || {
                    for view in &views {
                        view.check();
                    }
                    // Interleave clones and drops with the other threads.
                    let mut views = views;
                    while let Some(view) = views.pop() {
                        if let View::Buf(b, want) = &view {
                            let again = b.clone();
                            assert_eq!(&again[..], &want[..]);
                        }
                        drop(view);
                    }
                });
            }
            assert_eq!(drops.load(Ordering::SeqCst), 0, "root still alive");
        });
        assert_eq!(drops.load(Ordering::SeqCst), 0, "root still alive");
        assert_eq!(root.ref_count(), Some(1));
        drop(root);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn views_outlive_their_root_across_threads() {
    let (root, model, drops) = counted(4096);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let view = root.slice(t * 1000..t * 1000 + 96);
            let want = model[t * 1000..t * 1000 + 96].to_vec();
            std::thread::spawn(move || {
                std::thread::yield_now();
                assert_eq!(&view[..], &want[..]);
            })
        })
        .collect();
    drop(root);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
