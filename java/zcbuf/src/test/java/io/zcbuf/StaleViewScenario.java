package io.zcbuf;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Issue 10 class 1, NIO views: views from {@code nioBuffer()},
 * {@code nioBuffers()} and a {@code wrap()} of one, read after the buffer was
 * released, must not crash the JVM. For memory no new owner gets (large
 * unpooled, mapped files) they read the bytes or zeros; the released
 * {@code Buffer} itself throws.
 *
 * <p>Argument: the kind of memory, as {@link ReleaseRaceScenario}.
 */
public final class StaleViewScenario {
    private StaleViewScenario() {}

    /**
     * @param args kind
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        try (ReleaseRaceScenario.Maker maker = new ReleaseRaceScenario.Maker(args[0])) {
            long zeros = 0;
            long stale = 0;
            int rounds = args[0].endsWith("large") ? 8 : 20;
            for (int round = 0; round < rounds; round++) {
                Buffer b = maker.make();
                List<ByteBuffer> views = new ArrayList<>(List.of(b.nioBuffers()));
                views.add(b.nioBuffer());
                views.add(b.nioBuffer(b.capacity() / 2, 64));
                NativeBuffer wrapped = BufferAllocator.unpooled().wrap(b.nioBuffers()[0]);
                views.add(wrapped.nioBuffer());
                if (!b.release()) {
                    throw new AssertionError("release() did not free the buffer");
                }
                try {
                    b.getByte(0);
                    throw new AssertionError("a released Buffer read its memory");
                } catch (IllegalReferenceCountException expected) {
                    // the Buffer object itself is guarded
                }
                // A next owner of the same kind: pooled memory may be reused by now, never-reused memory must not be.
                Buffer next = maker.make(ReleaseRaceScenario.OTHER);
                for (ByteBuffer v : views) {
                    for (int i = 0; i + 8 <= v.capacity(); i += 4096) {
                        long x = v.getLong(i);
                        if (x == 0) {
                            zeros++;
                        } else if (x != ReleaseRaceScenario.FILL_LONG) {
                            stale++;
                            if (maker.neverReused(v)) {
                                throw new AssertionError("a stale view of never-reused memory read "
                                        + Long.toHexString(x));
                            }
                        }
                    }
                }
                // The wrap's own buffer reads the same (stale) memory: no crash either.
                wrapped.getLong(0);
                wrapped.release();
                next.release();
                if (round % 5 == 4) {
                    System.gc(); // lets collected roots give their address ranges back
                }
            }
            ChildJvm.ok(args[0] + ": stale views read " + zeros + " zero longs and " + stale
                    + " other owners' longs, no crash; released Buffers threw");
        }
    }
}
