package io.zcbuf;

import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Per-thread stacks of released pool blocks, so that allocating and
 * releasing pooled buffers costs no JNI call in the common case: the native
 * block, its handle and its direct {@code ByteBuffer} are reused as they are.
 *
 * <p>Only blocks that never went to the native writer are kept (a zero-copy
 * send may still pin those; they go back through the native side, which
 * waits for the completion). A thread keeps a bounded number per size class
 * (about 256 KiB of each class at most); the rest go back to the native pool
 * at once, and a thread's blocks go back when the thread is gone. Blocks held
 * here count as free in {@link BufferAllocator#poolStats()} and
 * {@link BufferAllocator#liveNativeHandles()}.
 */
final class RegionCache {
    /** Block sizes 256 B (class 0) to 64 KiB (class 8), as the native pool's classes. */
    static final int CLASSES = 9;
    private static final int MIN_SHIFT = 8;
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong CACHED = new AtomicLong();
    private static final AtomicLong CACHED_BYTES = new AtomicLong();
    private static final ThreadLocal<Holder> CACHES = ThreadLocal.withInitial(Holder::new);

    private RegionCache() {}

    /** The class of a request of {@code capacity} bytes, or -1 above the largest. */
    static int classOf(int capacity) {
        int shift = capacity <= 1 << MIN_SHIFT ? MIN_SHIFT : 32 - Integer.numberOfLeadingZeros(capacity - 1);
        int c = shift - MIN_SHIFT;
        return c < CLASSES ? c : -1;
    }

    /** The class of a native block of exactly {@code size} bytes, or -1 if it is not one. */
    static int classOfBlock(int size) {
        int c = classOf(size);
        return c >= 0 && size == 1 << (c + MIN_SHIFT) ? c : -1;
    }

    static Memory take(int capacity) {
        int c = classOf(capacity);
        if (c < 0) {
            return null;
        }
        Stacks stacks = CACHES.get().stacks;
        int n = stacks.sizes[c];
        if (n == 0) {
            return null;
        }
        Memory m = stacks.blocks[c][--n];
        stacks.blocks[c][n] = null;
        stacks.sizes[c] = n;
        CACHED.decrementAndGet();
        CACHED_BYTES.addAndGet(-(1L << (c + MIN_SHIFT)));
        return m;
    }

    /** @return whether the block was kept (else the caller frees it) */
    static boolean give(Memory m) {
        int c = m.sizeClass;
        Stacks stacks = CACHES.get().stacks;
        int n = stacks.sizes[c];
        if (n == stacks.blocks[c].length) {
            return false;
        }
        stacks.blocks[c][n] = m;
        stacks.sizes[c] = n + 1;
        CACHED.incrementAndGet();
        CACHED_BYTES.addAndGet(1L << (c + MIN_SHIFT));
        return true;
    }

    /** Blocks held by all threads' caches now. */
    static long cachedBlocks() {
        return CACHED.get();
    }

    /** Bytes of those blocks. */
    static long cachedBytes() {
        return CACHED_BYTES.get();
    }

    /** What the thread-local refers to; when the thread is gone, it becomes unreachable. */
    private static final class Holder {
        final Stacks stacks = new Stacks();

        Holder() {
            CLEANER.register(this, stacks);
        }
    }

    /** The stacks themselves, also the action that frees them after the thread. */
    private static final class Stacks implements Runnable {
        final Memory[][] blocks = new Memory[CLASSES][];
        final int[] sizes = new int[CLASSES];

        Stacks() {
            for (int c = 0; c < CLASSES; c++) {
                // 64 blocks of the small classes, fewer of the large: at most 256 KiB each.
                blocks[c] = new Memory[Math.max(4, Math.min(64, (256 << 10) >> (c + MIN_SHIFT)))];
            }
        }

        @Override
        public void run() {
            for (int c = 0; c < CLASSES; c++) {
                for (int i = 0; i < sizes[c]; i++) {
                    CACHED.decrementAndGet();
                    CACHED_BYTES.addAndGet(-(1L << (c + MIN_SHIFT)));
                    blocks[c][i].free();
                    blocks[c][i] = null;
                }
                sizes[c] = 0;
            }
        }
    }
}
