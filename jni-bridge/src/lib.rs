//! JNI bridge of zcbuf: the native half of the `io.zcbuf` Java wrapper.
//!
//! This crate is the only JNI code in the project. Java's `io.zcbuf.Native`
//! declares one static native method per entry point below; the wrapper
//! classes build everything else in Java on top of them.
//!
//! - **Handles** ([`table`]): Java holds `long` handles, never pointers.
//!   Every call validates its handles against a generation-checked table,
//!   so a stale, double-released or forged handle throws
//!   `io.zcbuf.StaleHandleException` instead of touching freed memory.
//! - **Memory** ([`memory`]): each region (pool block, map of its own,
//!   wrapped direct `ByteBuffer`, mapped file) is handed to Java once, as a
//!   direct `ByteBuffer`; Java reads and writes bytes through it with no
//!   JNI call.
//! - **Mappings** ([`mapping`]): release never unmaps what a Java view can
//!   reach. Memory goes back to the OS at release (the range is retired to
//!   zeros); the address range is unmapped only when Java reports the
//!   region's root `ByteBuffer` collected and no zero-copy send pins it.
//! - **Writers** ([`writer`]): a gather write crosses JNI once, carrying
//!   every component as `(handle, offset, length)`; zero-copy sends pin
//!   the native references, never Java objects.
//! - **Errors** ([`error`]): every entry point catches panics and turns
//!   every error into a specific Java exception; nothing unwinds into the
//!   JVM.

use std::ptr;
use std::time::Duration;

use jni::objects::{JByteBuffer, JClass, JIntArray, JLongArray, JObject, JString};
use jni::sys::{jboolean, jint, jlong, jlongArray, jobject, jstring, JNI_TRUE};
use jni::JNIEnv;
use parking_lot::Mutex;
use std::sync::Arc;
use zcbuf_core::pool::Pool;

pub mod error;
pub mod file_region;
pub mod mapping;
pub mod memory;
pub mod table;
pub mod writer;

use error::{guard, BridgeError, BridgeResult};
use memory::Region;
use table::Entry;
use writer::Writer;

/// Puts a new region in the table, writes its handle to `handle_out[0]`
/// and its root id to `handle_out[1]` (0 when the region's addresses need
/// no unmapping), and returns the `ByteBuffer` Java sees it through.
fn hand_out(
    env: &mut JNIEnv<'_>,
    region: BridgeResult<Region>,
    handle_out: &JLongArray<'_>,
) -> BridgeResult<jobject> {
    let region = region?;
    if handle_out.is_null() {
        return Err(BridgeError::Null("the handle array"));
    }
    if env.get_array_length(handle_out)? < 2 {
        return Err(BridgeError::IllegalArgument(
            "the handle array needs room for a handle and a root id".into(),
        ));
    }
    let view = region.byte_buffer(env)?;
    let file = region.file;
    let handle = table::insert(Entry::Memory(region.buf));
    if let Some(source) = file {
        file_region::register(handle, source);
    }
    let root = region.root.map_or(0, mapping::roots::insert);
    if let Err(e) = env.set_long_array_region(handle_out, 0, &[handle, root]) {
        // Java cannot learn the handle: take the region back. The view is
        // dropped with this frame's local references, unread.
        drop(table::remove_memory(handle));
        file_region::unregister(handle);
        if root != 0 {
            drop(mapping::roots::remove(root));
        }
        return Err(e.into());
    }
    Ok(view.into_raw())
}

/// `Native.allocate(int capacity, boolean pooled, long[] handleOut)`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_allocate<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    capacity: jint,
    pooled: jboolean,
    handle_out: JLongArray<'local>,
) -> jobject {
    guard(&mut env, ptr::null_mut(), |env| {
        hand_out(
            env,
            memory::allocate(capacity, pooled == JNI_TRUE),
            &handle_out,
        )
    })
}

/// `Native.wrap(ByteBuffer direct, int offset, int length, long[] handleOut)`:
/// the handle of the bytes `[offset, offset + length)` of a direct buffer
/// goes to `handleOut[0]`; Java reads them through a slice of its own
/// buffer, which keeps that buffer's memory alive for every view.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_wrap<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    direct: JByteBuffer<'local>,
    offset: jint,
    length: jint,
    handle_out: JLongArray<'local>,
) {
    guard(&mut env, (), |env| {
        let buf = memory::wrap(env, &direct, offset, length)?;
        if handle_out.is_null() {
            return Err(BridgeError::Null("the handle array"));
        }
        let handle = table::insert(Entry::Memory(buf));
        if let Err(e) = env.set_long_array_region(&handle_out, 0, &[handle]) {
            drop(table::remove_memory(handle));
            return Err(e.into());
        }
        Ok(())
    })
}

/// `Native.mapFile(String path, long offset, long length, long[] handleOut)`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_mapFile<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
    offset: jlong,
    length: jlong,
    handle_out: JLongArray<'local>,
) -> jobject {
    guard(&mut env, ptr::null_mut(), |env| {
        if path.is_null() {
            return Err(BridgeError::Null("the path"));
        }
        let path: String = env.get_string(&path)?.into();
        hand_out(env, memory::map(&path, offset, length), &handle_out)
    })
}

/// `Native.fileRegion(String path, long offset, long length)`: a handle on
/// `length` bytes of the file from `offset` (`length < 0`: to its end),
/// nothing mapped; writes send it with `sendfile`. Released with
/// `Native.release`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_fileRegion<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
    offset: jlong,
    length: jlong,
) -> jlong {
    guard(&mut env, 0, |env| {
        if path.is_null() {
            return Err(BridgeError::Null("the path"));
        }
        let path: String = env.get_string(&path)?.into();
        let source = file_region::open(&path, offset, length)?;
        // An empty `Buf`: reading the region as memory is a range error, never the file's bytes by another way.
        let handle = table::insert(Entry::Memory(zcbuf_core::Buf::new()));
        file_region::register(handle, source);
        Ok(handle)
    })
}

/// `Native.fileRegionLength(long handle)`: the length of a file region, or
/// -1 when the handle is no file region.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_fileRegionLength<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> jlong {
    guard(&mut env, -1, |_| {
        Ok(file_region::source(handle)
            .and_then(|s| s.unmapped_len)
            .map_or(-1, |l| l as jlong))
    })
}

/// `Native.release(long handle)`: the bridge's reference on the memory
/// goes; the memory itself goes when no zero-copy send pins it either.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_release<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    guard(&mut env, (), |_| {
        table::remove_memory(handle)?;
        file_region::unregister(handle);
        Ok(())
    })
}

/// `Native.unmapRoot(long root)`: Java's root `ByteBuffer` of a region was
/// collected; its address range is unmapped once no storage holds it.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_unmapRoot<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    root: jlong,
) {
    guard(&mut env, (), |_| mapping::roots::remove(root))
}

/// `Native.liveRoots()`: root `ByteBuffer`s not yet reported collected.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_liveRoots<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jlong {
    guard(&mut env, 0, |_| Ok(mapping::roots::live() as jlong))
}

/// `Native.retiredMaps()`: `{bytes, ranges}` given back to the OS at
/// release but still mapped until Java collects their roots.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_retiredMaps<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jlongArray {
    guard(&mut env, ptr::null_mut(), |env| {
        let (bytes, maps) = mapping::retired();
        long_array(env, &[bytes as i64, maps as i64])
    })
}

/// `Native.liveHandles()`: memory regions and writers not yet released.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_liveHandles<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jlong {
    guard(&mut env, 0, |_| Ok(table::live() as jlong))
}

fn long_array(env: &mut JNIEnv<'_>, values: &[i64]) -> BridgeResult<jlongArray> {
    let array = env.new_long_array(values.len() as i32)?;
    env.set_long_array_region(&array, 0, values)?;
    Ok(array.into_raw())
}

/// `Native.poolStats()`: `{reserved, inUse, liveBuffers}` of the process-wide pool.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_poolStats<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jlongArray {
    guard(&mut env, ptr::null_mut(), |env| {
        let s = Pool::global().stats();
        // Pooled requests above the largest class are maps of the bridge's
        // own (see `memory`); they count as the pool's, as they did when
        // the pool mapped them.
        let (big_bytes, big_live) = memory::big_pooled();
        long_array(
            env,
            &[
                (s.reserved_bytes as u64 + big_bytes) as i64,
                (s.in_use_bytes as u64 + big_bytes) as i64,
                (s.live_buffers as u64 + big_live) as i64,
            ],
        )
    })
}

/// `Native.writerOpen(Object channel, int mode, int threshold)`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerOpen<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    channel: JObject<'local>,
    mode: jint,
    threshold: jint,
) -> jlong {
    guard(&mut env, 0, |env| {
        let writer = Writer::open(env, &channel, mode, threshold)?;
        Ok(table::insert(Entry::Writer(Arc::new(Mutex::new(writer)))))
    })
}

/// `Native.writerWrite(long writer, long[] handles, int[] offsets, int[] lengths, int count, boolean blocking)`:
/// one gather write of `count` pieces; returns the bytes sent (on a blocking stream socket, what went before
/// it stayed full for 100 ms).
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerWrite<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
    handles: JLongArray<'local>,
    offsets: JIntArray<'local>,
    lengths: JIntArray<'local>,
    count: jint,
    blocking: jboolean,
) -> jlong {
    guard(&mut env, 0, |env| {
        if handles.is_null() || offsets.is_null() || lengths.is_null() {
            return Err(BridgeError::Null("the component arrays"));
        }
        let n = usize::try_from(count)
            .map_err(|_| BridgeError::IllegalArgument(format!("negative count {count}")))?;
        let available = env
            .get_array_length(&handles)?
            .min(env.get_array_length(&offsets)?)
            .min(env.get_array_length(&lengths)?);
        if n > available as usize {
            return Err(BridgeError::OutOfRange(format!(
                "count {n} exceeds the arrays' length {available}"
            )));
        }
        let mut h = vec![0i64; n];
        let mut o = vec![0i32; n];
        let mut l = vec![0i32; n];
        env.get_long_array_region(&handles, 0, &mut h)?;
        env.get_int_array_region(&offsets, 0, &mut o)?;
        env.get_int_array_region(&lengths, 0, &mut l)?;
        let writer = table::writer(writer)?;
        let msg = writer::Message::gather(&h, &o, &l)?;
        let mut writer = writer.lock();
        writer.write(msg, blocking != 0)
    })
}

/// `Native.writerFlush(long writer, long timeoutMillis)`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerFlush<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
    timeout_millis: jlong,
) {
    guard(&mut env, (), |_| {
        let timeout = Duration::from_millis(u64::try_from(timeout_millis).unwrap_or(0));
        let writer = table::writer(writer)?;
        let mut writer = writer.lock();
        writer.flush(timeout)
    })
}

/// `Native.writerStats(long writer)`: see [`writer::stats_array`].
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerStats<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) -> jlongArray {
    guard(&mut env, ptr::null_mut(), |env| {
        let stats = table::writer(writer)?.lock().stats();
        long_array(env, &writer::stats_array(&stats))
    })
}

/// `Native.writerFileBytes(long writer)`: bytes the writer sent with `sendfile`.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerFileBytes<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) -> jlong {
    guard(&mut env, 0, |_| {
        Ok(table::writer(writer)?.lock().file_bytes() as jlong)
    })
}

/// `Native.writerAutoDecision(long writer)`: what `Auto` decided, in words.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerAutoDecision<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) -> jstring {
    guard(&mut env, ptr::null_mut(), |env| {
        let decision = table::writer(writer)?.lock().stats().auto.to_string();
        Ok(env.new_string(decision)?.into_raw())
    })
}

/// `Native.writerClose(long writer)`: the handle dies now; the sender is
/// dropped once no call is using it, waiting (bounded) for completions and
/// parking whatever is still pinned, never freeing it early.
#[no_mangle]
pub extern "system" fn Java_io_zcbuf_Native_writerClose<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) {
    guard(&mut env, (), |_| {
        drop(table::remove_writer(writer)?);
        Ok(())
    })
}
