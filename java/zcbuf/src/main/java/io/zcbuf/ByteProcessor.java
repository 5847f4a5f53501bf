package io.zcbuf;

/** Visits bytes in order; returning {@code false} stops the visit at that byte. */
@FunctionalInterface
public interface ByteProcessor {
    /**
     * @param value the byte visited
     * @return {@code true} to go on to the next byte, {@code false} to stop here
     */
    boolean process(byte value);
}
