package io.zcbuf;

/**
 * A buffer was used, retained or released after its reference count reached
 * zero, or released more times than it was retained.
 */
public final class IllegalReferenceCountException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param message what was attempted and the count at the time */
    public IllegalReferenceCountException(String message) {
        super(message);
    }
}
