package io.zcbuf;

/**
 * A snapshot of the process-wide native pool. Pooled buffers above 1 MiB
 * (memory of their own, given back to the OS at release) are counted in all
 * three figures while they are in use.
 *
 * @param reservedBytes bytes mapped from the OS
 * @param inUseBytes bytes of blocks handed out and not yet returned
 * @param liveBuffers pooled blocks handed out and not yet returned
 */
public record PoolStats(long reservedBytes, long inUseBytes, long liveBuffers) {}
