package io.zcbuf;

/**
 * The native side was given a handle that names nothing live: released
 * already, released twice, or never issued. Native memory is never touched
 * through such a handle.
 */
public final class StaleHandleException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param message which handle and why it was refused */
    public StaleHandleException(String message) {
        super(message);
    }
}
