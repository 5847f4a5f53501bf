package io.zcbuf;

/**
 * A snapshot of the process-wide native pool.
 *
 * @param reservedBytes bytes mapped from the OS
 * @param inUseBytes bytes of blocks handed out and not yet returned
 * @param liveBuffers pooled blocks handed out and not yet returned
 */
public record PoolStats(long reservedBytes, long inUseBytes, long liveBuffers) {}
