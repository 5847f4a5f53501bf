package io.zcbuf;

/**
 * A {@link ZeroCopyWriter} was asked to open on a channel that is closed (or
 * was closed while it opened). The writer never uses whatever descriptor now
 * has the closed channel's number.
 */
public final class ChannelClosedException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param message which channel and when it was found closed */
    public ChannelClosedException(String message) {
        super(message);
    }
}
