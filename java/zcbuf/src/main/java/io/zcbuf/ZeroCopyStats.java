package io.zcbuf;

/**
 * Counters of a {@link ZeroCopyWriter}.
 *
 * @param sends successful send calls
 * @param zeroCopySends of which with {@code MSG_ZEROCOPY}
 * @param bytes bytes sent in all
 * @param zeroCopyBytes bytes sent with {@code MSG_ZEROCOPY}
 * @param iovecs iovecs passed over all calls
 * @param completions zero-copy sends whose completion was read
 * @param copiedCompletions of which the kernel reported it copied anyway
 * @param enobufsFallbacks zero-copy sends refused with {@code ENOBUFS} and redone as plain sends
 * @param emsgsizeFallbacks zero-copy datagrams refused with {@code EMSGSIZE} and redone as plain sends
 * @param pinnedSends sends on this socket still waiting for their completion (all writers sharing it)
 * @param pinnedBytes bytes those sends keep alive
 * @param peakPinnedBytes most bytes pinned at once on this socket
 * @param zeroCopyActive whether the next large send asks for zero-copy
 * @param autoDecision what {@link ZeroCopyMode#AUTO} decided, in words
 * @param notifications error-queue notifications read (one may cover many sends)
 * @param unknownCompletions completions for ids no writer of this socket used (should stay 0)
 * @param failedSendsTakingId failed zero-copy sends whose id the kernel used anyway (skipped)
 * @param desynchronised whether completions could no longer be matched (zero-copy stopped; pins kept, never
 *     released early)
 * @param socketUsers writers and senders sharing this socket's completion state, this one included (0 without
 *     zero-copy)
 */
public record ZeroCopyStats(
        long sends,
        long zeroCopySends,
        long bytes,
        long zeroCopyBytes,
        long iovecs,
        long completions,
        long copiedCompletions,
        long enobufsFallbacks,
        long emsgsizeFallbacks,
        long pinnedSends,
        long pinnedBytes,
        long peakPinnedBytes,
        boolean zeroCopyActive,
        String autoDecision,
        long notifications,
        long unknownCompletions,
        long failedSendsTakingId,
        boolean desynchronised,
        long socketUsers) {

    static ZeroCopyStats fromNative(long[] s, String autoDecision) {
        return new ZeroCopyStats(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10], s[11],
                s[12] != 0, autoDecision, s[13], s[14], s[15], s[16] != 0, s[17]);
    }

    /** @return the share of completions the kernel copied, 0 when there were none */
    public double copiedShare() {
        return completions == 0 ? 0.0 : (double) copiedCompletions / completions;
    }
}
