package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Counting is thread-safe: concurrent retain/release leave exact counts and free memory exactly once. */
class ConcurrencyTest {
    private static final int THREADS = 8;
    private static final int ROUNDS = 20_000;

    @Test
    void concurrentRetainAndReleaseIsExact() throws Exception {
        long handles = BufferAllocator.liveNativeHandles();
        long poolLive = BufferAllocator.poolStats().liveBuffers();
        List<Buffer> roots = new ArrayList<>();
        roots.add(BufferAllocator.pooled().allocate(256));
        roots.add(BufferAllocator.unpooled().allocate(256));
        roots.add(BufferAllocator.pooled().composite(
                BufferAllocator.pooled().allocate(100).writerIndex(100),
                BufferAllocator.unpooled().allocate(100).writerIndex(100)));
        List<Buffer> targets = new ArrayList<>(roots);
        for (Buffer r : roots) {
            targets.add(r.retainedSlice(10, 150));
            targets.add(r.slice(5, 20)); // shares the root's count
        }
        for (int i = 0; i < roots.size(); i++) {
            roots.get(i).setLong(20, 0x0102030405060708L);
        }
        // What each target shows at its index 4 now: the race below must keep seeing it.
        java.util.Map<Buffer, Long> shown = new java.util.IdentityHashMap<>();
        for (Buffer t : targets) {
            shown.put(t, t.getLong(4));
        }
        assertEquals(handles + 4, BufferAllocator.liveNativeHandles(), "retained slices take no handle");
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CyclicBarrier start = new CyclicBarrier(THREADS);
        AtomicInteger derived = new AtomicInteger();
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                long seed = t;
                futures.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    start.await();
                    for (int i = 0; i < ROUNDS; i++) {
                        Buffer b = targets.get(rnd.nextInt(targets.size()));
                        int n = 1 + rnd.nextInt(3);
                        b.retain(n);
                        // Reads while others count: the memory must stay readable.
                        long seen = b.getLong(4);
                        if (seen != shown.get(b)) {
                            throw new AssertionError("a buffer with a positive count read " + Long.toHexString(seen)
                                    + " instead of " + Long.toHexString(shown.get(b)) + ": " + b);
                        }
                        if (rnd.nextInt(16) == 0) {
                            Buffer rs = b.retainedSlice(0, 8);
                            rs.retain();
                            rs.release();
                            assertTrue(rs.release());
                            derived.incrementAndGet();
                        }
                        for (int k = 0; k < n; k++) {
                            b.release();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertTrue(derived.get() > 0);
        for (Buffer b : targets) {
            assertEquals(1, b.refCnt(), "count exact after concurrent retain/release: " + b);
        }
        assertEquals(handles + 4, BufferAllocator.liveNativeHandles(), "retained slices take no handle");
        assertEquals(0x0102030405060708L, roots.get(0).getLong(20));
        // Release everything, each release racing with the others.
        List<Buffer> toRelease = new ArrayList<>();
        for (Buffer r : roots) {
            r.retain(THREADS - 1); // the root and its slices: THREADS references in all
            for (int i = 0; i < THREADS; i++) {
                toRelease.add(r);
            }
        }
        for (Buffer t : targets) {
            if (!roots.contains(t) && t.refCnt() == 1 && t.capacity() == 150) {
                t.retain(THREADS - 1);
                for (int i = 0; i < THREADS; i++) {
                    toRelease.add(t);
                }
            }
        }
        ExecutorService pool2 = Executors.newFixedThreadPool(THREADS);
        AtomicInteger zeros = new AtomicInteger();
        try {
            List<Future<?>> fs = new ArrayList<>();
            int per = toRelease.size() / THREADS;
            java.util.Collections.shuffle(toRelease, new Random(7));
            CyclicBarrier go = new CyclicBarrier(THREADS);
            for (int t = 0; t < THREADS; t++) {
                List<Buffer> mine = toRelease.subList(t * per, (t + 1) * per);
                fs.add(pool2.submit(() -> {
                    go.await();
                    for (Buffer b : mine) {
                        if (b.release()) {
                            zeros.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool2.shutdownNow();
        }
        assertEquals(6, zeros.get(), "each of the 3 roots and 3 retained slices reached zero exactly once");
        for (Buffer b : targets) {
            assertEquals(0, b.refCnt());
        }
        assertEquals(handles, BufferAllocator.liveNativeHandles(), "every region freed");
        assertEquals(poolLive, BufferAllocator.poolStats().liveBuffers(), "every pool block back");
    }

    /**
     * Issue 10 class 4: a hostile {@code release(n)} with {@code n} above the
     * count throws and leaves the count, while correct threads retain and
     * release around it and never throw.
     */
    @Test
    void overReleaseNeverDisturbsConcurrentCorrectReleases() throws Exception {
        long handles = BufferAllocator.liveNativeHandles();
        int correct = 3;
        for (Buffer b : List.of(BufferAllocator.pooled().allocate(64), BufferAllocator.unpooled().allocate(64),
                BufferAllocator.pooled().composite(BufferAllocator.pooled().allocate(64)))) {
            b.retain(); // 2; each correct thread adds at most 1, so 2 + correct + 1 is always too many
            int tooMany = 2 + correct + 1;
            java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
            AtomicInteger refused = new AtomicInteger();
            AtomicInteger pairs = new AtomicInteger();
            ExecutorService pool = Executors.newFixedThreadPool(correct + 1);
            try {
                List<Future<?>> fs = new ArrayList<>();
                fs.add(pool.submit(() -> {
                    while (!stop.get()) {
                        try {
                            b.release(tooMany);
                            throw new AssertionError("release(" + tooMany + ") succeeded on " + b);
                        } catch (IllegalReferenceCountException expected) {
                            refused.incrementAndGet();
                        }
                    }
                    return null;
                }));
                for (int t = 0; t < correct; t++) {
                    fs.add(pool.submit(() -> {
                        while (!stop.get()) {
                            b.retain();
                            b.release(); // throws if the hostile call lowered the count under it
                            pairs.incrementAndGet();
                        }
                        return null;
                    }));
                }
                Thread.sleep(300);
                stop.set(true);
                for (Future<?> f : fs) {
                    f.get(30, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            assertTrue(refused.get() > 0 && pairs.get() > 0, refused + " refused, " + pairs + " pairs");
            assertEquals(2, b.refCnt(), "over-releases changed the count: " + b);
            assertThrows(IllegalReferenceCountException.class, () -> b.release(3));
            assertEquals(2, b.refCnt(), "release(3) on a count of 2 leaves 2");
            assertTrue(b.release(2));
        }
        assertEquals(handles, BufferAllocator.liveNativeHandles());
    }

    @Test
    void concurrentAllocationAndReleaseAcrossThreads() throws Exception {
        long handles = BufferAllocator.liveNativeHandles();
        long poolLive = BufferAllocator.poolStats().liveBuffers();
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        java.util.concurrent.ConcurrentLinkedQueue<Buffer> handoff = new java.util.concurrent.ConcurrentLinkedQueue<>();
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                long seed = 100 + t;
                fs.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    for (int i = 0; i < 3000; i++) {
                        NativeBuffer b = (rnd.nextBoolean() ? BufferAllocator.pooled() : BufferAllocator.unpooled())
                                .allocate(1 + rnd.nextInt(5000));
                        b.setByte(0, 42);
                        if (rnd.nextBoolean()) {
                            handoff.add(b);
                        } else {
                            handoff.add(b.retainedSlice(0, 1));
                            b.release(); // the slice alone keeps the memory now
                        }
                        Buffer other = handoff.poll();
                        if (other != null) {
                            assertEquals(42, other.getByte(0));
                            other.release(); // freed on another thread than it was allocated on
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        Buffer b;
        while ((b = handoff.poll()) != null) {
            b.release();
        }
        assertEquals(handles, BufferAllocator.liveNativeHandles());
        assertEquals(poolLive, BufferAllocator.poolStats().liveBuffers());
    }
}
