//! The handle table: what Java holds instead of pointers.
//!
//! A handle is a `long`: the slot's generation in the high 32 bits and its
//! index in the low 32. A slot's generation changes every time its object
//! is removed, so a released handle, a handle released twice, or a number
//! Java made up does not name a live object and is refused with
//! [`BridgeError::StaleHandle`]; native memory is never reached through a
//! handle without this check. Generations start at 1, so 0 is never a
//! handle.
//!
//! Generations never wrap: a slot whose generation reached `u32::MAX` is
//! retired (never used again) instead of starting over, so no handle ever
//! issued can name a live object again. A slot lasts 2^32 - 1 uses; the
//! table's index space (2^32 slots) lasts for 2^64 handles in all.

use std::sync::Arc;

use parking_lot::Mutex;
use zcbuf_core::{Buf, Composite};

use crate::error::{BridgeError, BridgeResult};
use crate::writer::Writer;

/// What a handle names.
pub enum Entry {
    /// A region of memory Java reads and writes through a direct
    /// `ByteBuffer`; the `Buf` is the bridge's one reference on it.
    Memory(Buf),
    /// A socket writer; shared so a send runs without the table's lock.
    Writer(Arc<Mutex<Writer>>),
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slots whose generation ran out: empty, and on no free list.
    retired: usize,
}

static TABLE: Mutex<Table> = parking_lot::const_mutex(Table::new());

fn split(handle: i64) -> (u32, usize) {
    let bits = handle as u64;
    ((bits >> 32) as u32, (bits & 0xffff_ffff) as usize)
}

fn stale(handle: i64) -> BridgeError {
    BridgeError::StaleHandle(format!(
        "handle {handle:#x} is not live (released already, or never issued)"
    ))
}

impl Table {
    const fn new() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            retired: 0,
        }
    }

    fn insert(&mut self, entry: Entry) -> i64 {
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize].entry = Some(entry);
                index
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("more than 2^32 handle slots");
                self.slots.push(Slot {
                    generation: 1,
                    entry: Some(entry),
                });
                index
            }
        };
        let generation = self.slots[index as usize].generation;
        ((u64::from(generation) << 32) | u64::from(index)) as i64
    }

    fn take(
        &mut self,
        handle: i64,
        wanted: fn(&Entry) -> Result<(), &'static str>,
    ) -> BridgeResult<Entry> {
        let (generation, index) = split(handle);
        let slot = match self.slots.get_mut(index) {
            Some(slot) if slot.generation == generation => slot,
            _ => return Err(stale(handle)),
        };
        match slot.entry.as_ref().map(wanted) {
            None => return Err(stale(handle)),
            Some(Err(what)) => {
                return Err(BridgeError::StaleHandle(format!(
                    "handle {handle:#x} names {what}"
                )))
            }
            Some(Ok(())) => {}
        }
        let entry = slot.entry.take().expect("checked above");
        match slot.generation.checked_add(1) {
            Some(next) if next != u32::MAX => {
                slot.generation = next;
                self.free.push(index as u32);
            }
            // Reusing the slot would take its generation to u32::MAX and
            // then back to a value an old handle carries: retire it. Its
            // generation stays that of the handle just removed, whose
            // entry is gone, so that handle stays refused too.
            _ => self.retired += 1,
        }
        Ok(entry)
    }

    fn live(&self) -> usize {
        // Every slot is occupied, on the free list, or retired.
        self.slots.len() - self.free.len() - self.retired
    }

    fn get(&self, handle: i64) -> BridgeResult<&Entry> {
        let (generation, index) = split(handle);
        match self.slots.get(index) {
            Some(slot) if slot.generation == generation => {
                slot.entry.as_ref().ok_or_else(|| stale(handle))
            }
            _ => Err(stale(handle)),
        }
    }

    fn memory(&self, handle: i64) -> BridgeResult<&Buf> {
        match self.get(handle)? {
            Entry::Memory(buf) => Ok(buf),
            Entry::Writer(_) => Err(BridgeError::StaleHandle(format!(
                "handle {handle:#x} names a writer, not memory"
            ))),
        }
    }
}

/// Stores `entry` and returns its new handle.
pub fn insert(entry: Entry) -> i64 {
    TABLE.lock().insert(entry)
}

/// Takes the entry out of the table if `wanted` accepts it; the handle is
/// dead from then on. The caller drops the entry after the lock is
/// released (dropping memory wrapped from Java deletes a global reference,
/// a JNI call).
fn take(handle: i64, wanted: fn(&Entry) -> Result<(), &'static str>) -> BridgeResult<Entry> {
    TABLE.lock().take(handle, wanted)
}

/// Removes the memory a handle names and returns the bridge's reference.
pub fn remove_memory(handle: i64) -> BridgeResult<Buf> {
    match take(handle, |e| match e {
        Entry::Memory(_) => Ok(()),
        Entry::Writer(_) => Err("a writer, not memory"),
    })? {
        Entry::Memory(buf) => Ok(buf),
        Entry::Writer(_) => unreachable!("take checked the kind"),
    }
}

/// Removes the writer a handle names.
pub fn remove_writer(handle: i64) -> BridgeResult<Arc<Mutex<Writer>>> {
    match take(handle, |e| match e {
        Entry::Writer(_) => Ok(()),
        Entry::Memory(_) => Err("memory, not a writer"),
    })? {
        Entry::Writer(w) => Ok(w),
        Entry::Memory(_) => unreachable!("take checked the kind"),
    }
}

/// Number of live handles (memory and writers).
pub fn live() -> usize {
    TABLE.lock().live()
}

/// The writer a handle names.
pub fn writer(handle: i64) -> BridgeResult<Arc<Mutex<Writer>>> {
    match TABLE.lock().get(handle)? {
        Entry::Writer(w) => Ok(Arc::clone(w)),
        Entry::Memory(_) => Err(BridgeError::StaleHandle(format!(
            "handle {handle:#x} names memory, not a writer"
        ))),
    }
}

/// Builds one composite of `(handle, offset, length)` pieces of memory,
/// looking every handle up under one lock. The composite holds its own
/// references, so the memory outlives a concurrent release.
pub fn gather(handles: &[i64], offsets: &[i32], lengths: &[i32]) -> BridgeResult<Composite> {
    let table = TABLE.lock();
    let mut msg = Composite::with_capacity(handles.len());
    for ((&handle, &offset), &length) in handles.iter().zip(offsets).zip(lengths) {
        let region = table.memory(handle)?;
        let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(length)) else {
            return Err(BridgeError::OutOfRange(format!(
                "negative offset {offset} or length {length}"
            )));
        };
        let end = start.checked_add(len).ok_or_else(|| {
            BridgeError::OutOfRange(format!("offset {offset} + length {length} overflows"))
        })?;
        msg.push(region.try_slice(start..end)?);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_and_forged_handles_are_refused() {
        let h = insert(Entry::Memory(Buf::from_static(b"abc")));
        assert!(gather(&[h], &[0], &[3]).is_ok());
        assert!(remove_memory(h).is_ok());
        assert!(matches!(remove_memory(h), Err(BridgeError::StaleHandle(_))));
        assert!(matches!(
            gather(&[h], &[0], &[1]),
            Err(BridgeError::StaleHandle(_))
        ));
        // The slot is reused with a new generation: the old handle stays dead.
        let h2 = insert(Entry::Memory(Buf::from_static(b"xyz")));
        assert_ne!(h, h2);
        assert!(matches!(remove_memory(h), Err(BridgeError::StaleHandle(_))));
        for forged in [0, -1, 1, i64::MAX, h2 + (1 << 32), h2 + 1] {
            assert!(
                matches!(remove_memory(forged), Err(BridgeError::StaleHandle(_))),
                "{forged:#x}"
            );
        }
        assert!(matches!(writer(h2), Err(BridgeError::StaleHandle(_))));
        assert!(matches!(
            remove_writer(h2),
            Err(BridgeError::StaleHandle(_))
        ));
        assert!(remove_memory(h2).is_ok());
    }

    #[test]
    fn generations_never_wrap_into_validity() {
        fn memory(_: &Entry) -> Result<(), &'static str> {
            Ok(())
        }
        // A table of its own, so that the global one's count is untouched.
        let mut table = Table::new();
        let first = table.insert(Entry::Memory(Buf::new()));
        let (_, index) = split(first);
        // Force the slot to the edge: the next use is its last.
        table.slots[index].generation = u32::MAX - 2;
        assert!(table.take(first, memory).is_err(), "`first` is stale now");
        let handle = ((u64::from(u32::MAX - 2) << 32) | index as u64) as i64;
        assert!(table.take(handle, memory).is_ok());
        let last = table.insert(Entry::Memory(Buf::new()));
        assert_eq!(
            split(last),
            (u32::MAX - 1, index),
            "the slot's last generation"
        );
        assert!(table.take(last, memory).is_ok());
        assert_eq!(table.live(), 0);
        assert!(table.free.is_empty(), "the slot is retired, not free");
        // Every handle the slot ever carried stays dead, as do forged ones.
        for generation in [0, 1, 2, u32::MAX - 2, u32::MAX - 1, u32::MAX] {
            let h = ((u64::from(generation) << 32) | index as u64) as i64;
            assert!(matches!(
                table.take(h, memory),
                Err(BridgeError::StaleHandle(_))
            ));
            assert!(table.get(h).is_err());
        }
        // New entries get a new slot.
        let next = table.insert(Entry::Memory(Buf::new()));
        assert_ne!(split(next).1, index);
        assert_eq!(split(next).0, 1);
        assert_eq!(table.live(), 1);
    }

    #[test]
    fn gather_checks_every_range() {
        let h = insert(Entry::Memory(Buf::from_static(b"0123456789")));
        let msg = gather(&[h, h], &[2, 0], &[3, 1]).unwrap();
        assert_eq!(msg.to_vec(), b"2340");
        assert!(matches!(
            gather(&[h], &[8], &[3]),
            Err(BridgeError::OutOfRange(_))
        ));
        assert!(matches!(
            gather(&[h], &[-1], &[1]),
            Err(BridgeError::OutOfRange(_))
        ));
        assert!(matches!(
            gather(&[h], &[0], &[-1]),
            Err(BridgeError::OutOfRange(_))
        ));
        assert!(matches!(
            gather(&[h], &[i32::MAX], &[i32::MAX]),
            Err(BridgeError::OutOfRange(_))
        ));
        remove_memory(h).unwrap();
    }
}
