package io.zcbuf;

/** When a {@link ZeroCopyWriter} asks the kernel for {@code MSG_ZEROCOPY}. */
public enum ZeroCopyMode {
    /**
     * Zero-copy for sends at or above the threshold, until the socket's
     * completions show that the kernel copies anyway (always so on loopback).
     */
    AUTO,
    /** Zero-copy for every send at or above the threshold. */
    ALWAYS,
    /** Plain gather writes only (still no copy in user space). */
    NEVER
}
