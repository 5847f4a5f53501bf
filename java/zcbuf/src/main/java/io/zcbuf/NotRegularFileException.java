package io.zcbuf;

import java.io.IOException;

/**
 * {@link BufferAllocator#mapFile} was given something other than a regular
 * file (a FIFO, a device, a directory, a socket). It is refused at once,
 * without waiting on it: only regular files have bytes that can be mapped.
 */
public final class NotRegularFileException extends IOException {
    private static final long serialVersionUID = 1L;

    /** @param message which path and what it is */
    public NotRegularFileException(String message) {
        super(message);
    }
}
