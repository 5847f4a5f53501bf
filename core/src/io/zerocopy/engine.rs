//! The send engine: every rule of zero-copy sending, as a state machine
//! that does no I/O. A driver (the blocking [`ZeroCopySender`], later an
//! async one) asks it what to do, makes the system calls, and tells it
//! what happened:
//!
//! - ids: each successful `MSG_ZEROCOPY` call takes the next 32-bit id
//!   (wrapping); its pieces are pinned under that id ([`Engine::pin`]);
//! - a failed zero-copy call may have taken an id (a UDP datagram dropped
//!   after the id was assigned): the driver calls
//!   [`Engine::begin_failed_send`], reads the error queue, then
//!   [`Engine::end_failed_send`], which learns from the completions read
//!   whether the id was used ([`Engine::on_completion`]);
//! - completions release exactly the pins they cover; one that covers an
//!   id not outstanding means the ids no longer match the kernel's, and
//!   the engine stops zero-copy on the socket and never releases a pin
//!   again (a leak, never an early release);
//! - `Auto` decides per socket from the first completion (config.rs);
//! - datagrams: [`pages_spanned`] counts the packet fragments a zero-copy
//!   datagram needs, before the call; [`coalesce_small_pieces`] brings a
//!   scattered one under the limit by copying only its small pieces.
//!
//! [`ZeroCopySender`]: super::ZeroCopySender

use std::os::fd::OwnedFd;

use super::config::{AutoState, ZeroCopyConfig, ZeroCopyMode, ZeroCopyStats};
use super::window::{Pinned, Pins};
use crate::{Buf, Composite};

/// Fragments one packet can reference (`MAX_SKB_FRAGS`, 17 unless the
/// kernel was built otherwise); a zero-copy datagram needing more is
/// refused with `EMSGSIZE`.
pub(crate) const MAX_FRAGS: usize = 17;
/// The unit the kernel pins; 4 KiB over-counts on larger pages, which
/// errs on the safe side.
pub(crate) const PAGE: usize = 4096;

/// Most bytes `Auto` sends by reference in one call on a stream before
/// the socket's first completion has told it whether the kernel copies:
/// a peer that turns out to be local (seen only through the completions)
/// then costs one such call, not a whole large message sent at the pace
/// of a receive buffer filled with pinned pages.
pub(crate) const PROBE_BYTES: usize = 64 * 1024;

/// Pages (so, at most, packet fragments) the pieces span.
pub(crate) fn pages_spanned<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> usize {
    pieces
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            let start = p.as_ptr() as usize;
            (start + p.len() - 1) / PAGE - start / PAGE + 1
        })
        .sum()
}

/// Whether zero-copy can pay for a call of `bytes` spanning `pages`:
/// pinning costs per page, so at least half of each pinned page must be
/// payload (100-byte pieces would pin a page each).
pub(crate) fn worth_pinning(bytes: usize, pages: usize) -> bool {
    bytes >= pages.saturating_mul(PAGE / 2)
}

/// Copies every run of consecutive pieces smaller than a page into one
/// new buffer, so a datagram of many small scattered pieces needs few
/// fragments; large pieces stay by reference.
pub(crate) fn coalesce_small_pieces(msg: &mut Composite) {
    let mut out = Composite::with_capacity(msg.component_count());
    let mut run: Vec<u8> = Vec::new();
    let mut run_start: Option<Buf> = None;
    let flush = |out: &mut Composite, run: &mut Vec<u8>, run_start: &mut Option<Buf>| {
        if let Some(first) = run_start.take() {
            if run.is_empty() {
                out.push(first);
            } else {
                let mut all = Vec::with_capacity(first.len() + run.len());
                all.extend_from_slice(&first);
                all.append(run);
                out.push(Buf::from(all));
            }
        }
    };
    for buf in msg.components().filter(|b| !b.is_empty()) {
        if buf.len() < PAGE {
            if run_start.is_none() {
                run_start = Some(buf.clone());
            } else {
                run.extend_from_slice(buf);
            }
        } else {
            flush(&mut out, &mut run, &mut run_start);
            out.push(buf.clone());
        }
    }
    flush(&mut out, &mut run, &mut run_start);
    *msg = out;
}

/// One socket's zero-copy state, shared by every sender on the socket.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) pins: Pins,
    pub(crate) auto: AutoState,
    completions: u64,
    copied_completions: u64,
    notifications: u64,
    unknown_completions: u64,
    failed_sends_taking_id: u64,
    peak_pinned_bytes: usize,
    /// Ids no longer match the kernel's: no zero-copy, no release.
    pub(crate) desynced: bool,
    /// Senders using the socket now.
    pub(crate) users: usize,
    /// The engine's own duplicate of the socket while no sender holds it
    /// but pins are outstanding: keeps the socket (and so its identity in
    /// the registry) alive and its error queue readable.
    pub(crate) parked_fd: Option<OwnedFd>,
    /// Id of a failed send whose fate is being learnt.
    ghost: Option<u32>,
}

impl Engine {
    pub(crate) fn new(next_id: u32, config: &ZeroCopyConfig) -> Self {
        Self {
            pins: Pins::starting_at(next_id),
            auto: AutoState::new(config),
            completions: 0,
            copied_completions: 0,
            notifications: 0,
            unknown_completions: 0,
            failed_sends_taking_id: 0,
            peak_pinned_bytes: 0,
            desynced: false,
            users: 0,
            parked_fd: None,
            ghost: None,
        }
    }

    /// The id the kernel gives the next zero-copy send.
    pub(crate) fn next_id(&self) -> u32 {
        self.pins.next_id()
    }

    /// Whether a sender in `mode` may ask for zero-copy now (the size
    /// rules are the driver's).
    pub(crate) fn zerocopy_allowed(&self, mode: ZeroCopyMode) -> bool {
        !self.desynced
            && match mode {
                ZeroCopyMode::Always => true,
                ZeroCopyMode::Auto => self.auto.on,
                ZeroCopyMode::Never => false,
            }
    }

    /// Whether the driver should read the error queue before its next
    /// send: a batch is due, or zero-copy is off for `mode` and pins are
    /// still waiting (they go back as their completions come, not at
    /// flush or drop), or `Auto` waits for its first completion.
    pub(crate) fn poll_due(&self, mode: ZeroCopyMode, poll_every: usize) -> bool {
        let waiting = self.pins.outstanding();
        waiting >= poll_every.max(1)
            || (waiting > 0 && !self.zerocopy_allowed(mode))
            || (waiting > 0 && mode == ZeroCopyMode::Auto && self.auto.probing())
    }

    /// Pins the pieces of a successful zero-copy send under the next id.
    pub(crate) fn pin(&mut self, sent: impl Into<Pinned>) -> u32 {
        let id = self.pins.push(sent.into());
        self.peak_pinned_bytes = self.peak_pinned_bytes.max(self.pins.bytes());
        id
    }

    /// A zero-copy call failed: the id it may have taken waits in the
    /// window as an empty pin while the driver reads the error queue.
    pub(crate) fn begin_failed_send(&mut self) {
        debug_assert!(self.ghost.is_none());
        self.ghost = Some(self.pins.push(Pinned::Many(Composite::new())));
    }

    /// After the error queue was read: whether the failed call's id was
    /// used (its completion came). On the paths that fail after taking an
    /// id the kernel queues that completion before `sendmsg` returns;
    /// otherwise it gave the id back, and the empty pin is removed.
    pub(crate) fn end_failed_send(&mut self) -> bool {
        let Some(id) = self.ghost.take() else {
            return false;
        };
        if self.desynced {
            return false;
        }
        let taken = !self.pins.remove_last_if_pending(id);
        if taken {
            self.failed_sends_taking_id += 1;
        }
        taken
    }

    /// The driver could not learn a failed call's fate: stop trusting ids.
    pub(crate) fn desync(&mut self) {
        self.ghost = None;
        self.desynced = true;
        self.auto.on = false;
    }

    /// A notification `[lo, hi]` (inclusive, wrapping) read from the error
    /// queue; returns the sends released.
    pub(crate) fn on_completion(&mut self, lo: u32, hi: u32, copied: bool) -> u64 {
        self.notifications += 1;
        if self.desynced {
            self.unknown_completions += u64::from(hi.wrapping_sub(lo)) + 1;
            return 0;
        }
        match self.pins.complete(lo, hi) {
            Ok(released) => {
                self.completions += released;
                if copied {
                    self.copied_completions += released;
                }
                self.auto.on_completions(released, copied);
                released
            }
            Err(unknown) => {
                self.unknown_completions += unknown;
                self.desync();
                0
            }
        }
    }

    /// The socket-wide part of the statistics.
    pub(crate) fn fill_stats(&self, s: &mut ZeroCopyStats) {
        s.completions = self.completions;
        s.copied_completions = self.copied_completions;
        s.notifications = self.notifications;
        s.unknown_completions = self.unknown_completions;
        s.failed_sends_taking_id = self.failed_sends_taking_id;
        s.desynchronised = self.desynced;
        s.socket_users = self.users;
        s.pinned_sends = self.pins.outstanding();
        s.pinned_bytes = self.pins.bytes();
        s.peak_pinned_bytes = self.peak_pinned_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(n: usize) -> Composite {
        Composite::from(Buf::from(vec![0u8; n]))
    }

    fn engine(next: u32) -> Engine {
        Engine::new(next, &ZeroCopyConfig::default())
    }

    #[test]
    fn a_failed_send_whose_completion_came_skips_its_id() {
        let mut e = engine(u32::MAX);
        assert_eq!(e.pin(sent(10)), u32::MAX);
        e.begin_failed_send(); // takes id 0 in the kernel
                               // The kernel merged the two completions into one range.
        assert_eq!(e.on_completion(u32::MAX, 0, false), 2);
        assert!(e.end_failed_send());
        assert_eq!(e.pin(sent(10)), 1, "the next send is id 1");
        assert_eq!(e.on_completion(1, 1, false), 1);
        assert!(!e.desynced);
    }

    #[test]
    fn a_failed_send_without_completion_gave_its_id_back() {
        let mut e = engine(5);
        e.pin(sent(10));
        e.begin_failed_send();
        assert!(!e.end_failed_send());
        assert_eq!(e.pin(sent(10)), 6);
        assert_eq!(e.on_completion(5, 6, false), 2);
        assert_eq!(e.pins.outstanding(), 0);
    }

    #[test]
    fn a_completion_outside_the_window_stops_and_releases_nothing() {
        let mut e = engine(0);
        let a = Buf::from(vec![1u8; 10]);
        e.pin(Composite::from(a.clone()));
        e.pin(sent(10));
        assert_eq!(e.on_completion(1, 2, false), 0, "id 2 was never used");
        assert!(e.desynced);
        assert!(!e.zerocopy_allowed(ZeroCopyMode::Always));
        assert_eq!(e.on_completion(0, 0, false), 0, "nothing released after");
        assert_eq!(a.ref_count(), Some(2), "the pin still holds the bytes");
        let mut s = ZeroCopyStats::default();
        e.fill_stats(&mut s);
        assert!(s.desynchronised && s.unknown_completions >= 2);
    }

    #[test]
    fn pins_left_after_auto_switches_off_are_read_before_each_send() {
        let mut e = engine(0);
        e.pin(sent(10));
        e.pin(sent(10));
        // Probing: the first completion is awaited before each send.
        assert!(e.poll_due(ZeroCopyMode::Auto, 16));
        assert_eq!(e.on_completion(0, 0, true), 1);
        assert!(!e.zerocopy_allowed(ZeroCopyMode::Auto));
        // Switched off with a pin left: read before every send, not only
        // once 16 are outstanding.
        assert!(e.poll_due(ZeroCopyMode::Auto, 16));
        assert_eq!(e.on_completion(1, 1, true), 1);
        assert!(!e.poll_due(ZeroCopyMode::Auto, 16));
        // Always keeps batching.
        let mut a = engine(0);
        a.pin(sent(1));
        assert!(!a.poll_due(ZeroCopyMode::Always, 16));
    }

    #[test]
    fn datagram_planning_counts_pages_and_coalesces_only_small_pieces() {
        let big = Buf::from(vec![7u8; 3 * PAGE]);
        let shared = Buf::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let mut msg: Composite = (0..40)
            .map(|i| shared.slice(i * 4999..i * 4999 + 1000))
            .collect();
        msg.push(big.clone());
        let expect = msg.to_vec();
        assert!(pages_spanned(msg.chunks()) > MAX_FRAGS);
        coalesce_small_pieces(&mut msg);
        assert_eq!(msg.to_vec(), expect);
        assert_eq!(msg.component_count(), 2);
        assert!(
            msg.component(1).unwrap().ptr_eq(&big),
            "large pieces stay by reference"
        );
        assert!(pages_spanned(msg.chunks()) <= MAX_FRAGS);
        assert!(!worth_pinning(100 * 100, 100));
        assert!(worth_pinning(64 * 1024, 17));
    }
}
