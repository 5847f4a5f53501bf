package io.zcbuf;

/**
 * The native library hit a bug (a Rust panic). It was caught at the JNI
 * boundary; the JVM and the library's state are intact.
 */
public final class NativePanicException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message the panic's message */
    public NativePanicException(String message) {
        super(message);
    }
}
