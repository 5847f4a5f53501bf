//! `MSG_ZEROCOPY` sends (Linux): the kernel reads the sent bytes where they
//! lie, after `sendmsg` has returned, so every sent [`Buf`](crate::Buf)
//! stays pinned until the kernel says it is done with it.
//!
//! # How completions are tracked
//!
//! `SO_ZEROCOPY` is set on the socket once. The kernel numbers the
//! zero-copy sends of a socket 0, 1, 2, ... (a 32-bit counter that wraps)
//! and later queues, on the socket's error queue, notifications carrying
//! an inclusive range `[ee_info, ee_data]` of finished ids; consecutive
//! notifications may be merged into one range and ranges may arrive out
//! of order. The socket's engine mirrors the counter: the views covering
//! exactly the bytes of send `id` (retained `Buf`s, not copies) sit in a
//! window indexed by `id - front_id`, and are dropped only when a range
//! covering `id` has been read from the error queue.
//!
//! A send that fails may still have used an id (a UDP datagram dropped by
//! a queueing discipline after its id was assigned: `ENOBUFS` with
//! `IP_RECVERR`). After any failed zero-copy call the sender reads the
//! error queue, where the kernel has already queued that id's completion
//! if it used it, and skips the id if so
//! ([`ZeroCopyStats::failed_sends_taking_id`]). A completion for an id
//! that is not outstanding means the mirror is wrong: zero-copy stops on
//! the socket and no pin is ever released again
//! ([`ZeroCopyStats::desynchronised`]); a leak, never an early release.
//!
//! # One owner per socket
//!
//! All senders on one socket in the process (found by `fstat`'s device and
//! inode, the same for every duplicate of the descriptor, so Java writers
//! through the JNI bridge too) share one engine: one id counter, one
//! window. A sender dropped with pins outstanding leaves them with the
//! engine, and a later sender on the socket adopts it and continues its
//! ids; see the `window` module docs for how a reused inode number can
//! never inherit a dead socket's state.
//!
//! # `Auto`
//!
//! A notification with `SO_EE_CODE_ZEROCOPY_COPIED` means the kernel
//! copied after all (always on loopback, or into a local receiving
//! socket). [`ZeroCopyMode::Auto`] knows a local peer (loopback, or an
//! address of this host) from the start and never asks for zero-copy to
//! it ([`AutoDecision::LocalPeer`]); elsewhere the socket's first
//! completion decides (copied: off), and later windows of
//! [`ZeroCopyConfig::auto_window`] completions may still switch it off.
//! It judges by bytes per pinned page, not per call: a call of many small
//! pieces pins a page per piece and goes by copy. Zero-copy is not free
//! either, so `Auto` also times both kinds of send per power-of-two size
//! class and uses the cheaper one; this cost knowledge belongs to the
//! peer address and is shared by every sender in the process
//! ([`ZeroCopySender::auto_sizes`]).
//!
//! `ENOBUFS` from a zero-copy send (the `optmem` or locked-memory limit)
//! makes that one call a plain copying send, counted in
//! [`ZeroCopyStats::enobufs_fallbacks`].
//!
//! # Datagrams
//!
//! A datagram is one message: a composite of more than
//! [`IOV_MAX`](crate::io::IOV_MAX) pieces has its tail copied into one piece
//! and goes whole. A zero-copy datagram may reference at most 17 pieces
//! of memory (pages): the sender counts the pages before the call, copies
//! runs of small pieces into one buffer to get under the limit, and sends
//! by copy only when the large pieces alone exceed it
//! ([`ZeroCopyStats::emsgsize_fallbacks`]).
//!
//! # When completions do not come
//!
//! [`ZeroCopySender::flush`] waits at most the given time; when it runs
//! out it returns a [`TimedOut`](std::io::ErrorKind::TimedOut) error and
//! keeps every pin. Dropping the sender never waits: pins still
//! outstanding are *parked* with the socket's state, which keeps its own
//! duplicate of the socket, and a reaper thread releases them as their
//! completions arrive (when the peer reads, closes or resets);
//! [`parked_pins`] counts them. [`ZeroCopySender::abort`] discards the send
//! queue (a TCP reset) so they come back at once.
//!
//! # UDP GSO
//!
//! [`ZeroCopySender::send_batch`] and [`ZeroCopySender::send_datagrams`]
//! send many datagrams of one size per `sendmsg` (`UDP_SEGMENT`), by
//! reference where it pays; see [`DatagramBatch`] and the `gso` module.
//!
//! The code: `config` (settings, statistics, `Auto`'s per-socket decision),
//! `cost` (the per-route cost table), `engine` (every rule above, as a
//! state machine without I/O), `window` (the window of pins, the registry,
//! parking), `sender` (the blocking driver and the error-queue parsing),
//! `gso` (UDP segmentation offload: batches, planning, fallback).

mod config;
mod cost;
mod engine;
mod gso;
mod sender;
mod uring;
mod window;

pub use config::{AutoDecision, SendBackend, ZeroCopyConfig, ZeroCopyMode, ZeroCopyStats};
pub use cost::AutoSizeChoice;
pub use gso::{DatagramBatch, DatagramBatchBuilder, GsoStats, MAX_SEGMENTS};
pub use sender::ZeroCopySender;
pub use window::parked_pins;
