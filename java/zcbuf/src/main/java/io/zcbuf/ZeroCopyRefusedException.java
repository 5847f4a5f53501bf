package io.zcbuf;

/**
 * {@link ZeroCopyMode#ALWAYS} was asked for on a socket whose zero-copy
 * completions zcbuf cannot own: {@code SO_ZEROCOPY} was set on it outside
 * zcbuf, so another reader of its error queue could take completions that
 * release memory the kernel still sends. Writers of zcbuf on one socket
 * (duplicated descriptors included) never get this: they share one
 * completion state.
 */
public final class ZeroCopyRefusedException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param message which socket and why */
    public ZeroCopyRefusedException(String message) {
        super(message);
    }
}
