package io.zcbuf;

/** Native memory could not be allocated: the pool's cap, or the OS refused. */
public final class BufferAllocationException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param message how much was asked for and why it was refused */
    public BufferAllocationException(String message) {
        super(message);
    }
}
