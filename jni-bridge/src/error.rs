//! Errors of the bridge and the Java exception each one becomes.
//!
//! Every entry point runs inside [`guard`]: a Rust error is thrown as a
//! specific Java exception, a panic as `io.zcbuf.NativePanicException`, and
//! nothing unwinds across the JNI boundary.

use std::any::Any;
use std::fmt;
use std::io::{self, ErrorKind};
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::JNIEnv;
use zcbuf_core::pool::PoolError;
use zcbuf_core::RangeError;

/// Why a native call failed; [`java_class`](BridgeError::java_class) names
/// the exception it raises in Java.
#[derive(Debug)]
pub enum BridgeError {
    /// A handle that is not live: released already, never issued, or of
    /// the wrong kind.
    StaleHandle(String),
    /// An offset or length outside a region.
    OutOfRange(String),
    /// An argument that can never be valid (a heap `ByteBuffer` to wrap, a
    /// negative size).
    IllegalArgument(String),
    /// A `null` where an object is required.
    Null(&'static str),
    /// The pool or the OS refused memory.
    Allocation(String),
    /// A zero-copy flush ran out of time; every pin is kept.
    Timeout(String),
    /// A path to map names something other than a regular file (a FIFO,
    /// a device, a directory): refused before anything could block on it.
    NotRegularFile(String),
    /// `MSG_ZEROCOPY` was asked for (`Always`) on a socket whose
    /// completions zcbuf cannot own (`SO_ZEROCOPY` set outside zcbuf).
    ZeroCopyRefused(String),
    /// The channel a writer was to use is closed.
    ClosedChannel(String),
    /// A system call failed.
    Io(io::Error),
    /// A JNI call failed; a Java exception may already be pending.
    Jni(jni::errors::Error),
}

impl BridgeError {
    /// The Java exception class (binary name) this error is thrown as.
    pub fn java_class(&self) -> &'static str {
        match self {
            BridgeError::StaleHandle(_) => "io/zcbuf/StaleHandleException",
            BridgeError::OutOfRange(_) => "java/lang/IndexOutOfBoundsException",
            BridgeError::IllegalArgument(_) => "java/lang/IllegalArgumentException",
            BridgeError::Null(_) => "java/lang/NullPointerException",
            BridgeError::Allocation(_) => "io/zcbuf/BufferAllocationException",
            BridgeError::Timeout(_) => "java/net/SocketTimeoutException",
            BridgeError::NotRegularFile(_) => "io/zcbuf/NotRegularFileException",
            BridgeError::ZeroCopyRefused(_) => "io/zcbuf/ZeroCopyRefusedException",
            BridgeError::ClosedChannel(_) => "io/zcbuf/ChannelClosedException",
            BridgeError::Io(_) => "java/io/IOException",
            BridgeError::Jni(_) => "java/lang/IllegalStateException",
        }
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::StaleHandle(m)
            | BridgeError::OutOfRange(m)
            | BridgeError::IllegalArgument(m)
            | BridgeError::Allocation(m)
            | BridgeError::Timeout(m)
            | BridgeError::NotRegularFile(m)
            | BridgeError::ClosedChannel(m)
            | BridgeError::ZeroCopyRefused(m) => f.write_str(m),
            BridgeError::Null(what) => write!(f, "{what} must not be null"),
            BridgeError::Io(e) => write!(f, "{e}"),
            BridgeError::Jni(e) => write!(f, "JNI call failed: {e}"),
        }
    }
}

impl From<io::Error> for BridgeError {
    fn from(e: io::Error) -> Self {
        if e.kind() == ErrorKind::TimedOut {
            BridgeError::Timeout(e.to_string())
        } else {
            BridgeError::Io(e)
        }
    }
}

impl From<jni::errors::Error> for BridgeError {
    fn from(e: jni::errors::Error) -> Self {
        BridgeError::Jni(e)
    }
}

impl From<RangeError> for BridgeError {
    fn from(e: RangeError) -> Self {
        BridgeError::OutOfRange(e.to_string())
    }
}

impl From<PoolError> for BridgeError {
    fn from(e: PoolError) -> Self {
        BridgeError::Allocation(e.to_string())
    }
}

/// Result of a bridge operation.
pub type BridgeResult<T> = Result<T, BridgeError>;

/// Runs one entry point's body: returns its value, or throws the matching
/// Java exception and returns `fallback` (which Java never sees, because
/// the exception is pending when the native method returns).
pub fn guard<'local, T>(
    env: &mut JNIEnv<'local>,
    fallback: T,
    body: impl FnOnce(&mut JNIEnv<'local>) -> BridgeResult<T>,
) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *env)));
    let (class, message) = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => (err.java_class(), err.to_string()),
        Err(panic) => (
            "io/zcbuf/NativePanicException",
            format!("zcbuf native code panicked: {}", panic_message(&*panic)),
        ),
    };
    // A failed JNI call usually left its own exception (OutOfMemoryError,
    // a constructor's exception): that one says more than ours would.
    if !env.exception_check().unwrap_or(false) {
        // If even throwing fails, the JVM is out of memory and has an
        // OutOfMemoryError pending already; nothing better can be done.
        let _ = env.throw_new(class, message);
    }
    fallback
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
