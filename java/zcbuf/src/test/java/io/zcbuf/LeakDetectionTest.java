package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Buffers collected without release() are reported with their allocation site, and their memory is freed. */
class LeakDetectionTest {
    private final ConcurrentLinkedQueue<String> reports = new ConcurrentLinkedQueue<>();
    private LeakDetector.Level oldLevel;

    @BeforeEach
    void paranoid() {
        oldLevel = LeakDetector.level();
        LeakDetector.setLevel(LeakDetector.Level.PARANOID);
        LeakDetector.setReporter(reports::add);
    }

    @AfterEach
    void restore() {
        LeakDetector.setLevel(oldLevel);
        System.Logger log = System.getLogger("io.zcbuf.LeakDetector");
        LeakDetector.setReporter(m -> log.log(System.Logger.Level.WARNING, m));
    }

    /** Allocates and drops, without release, four regions: pooled, unpooled, in a composite, under a retained slice. */
    private static void dropWithoutRelease() {
        NativeBuffer pooled = BufferAllocator.pooled().allocate(1000);
        pooled.writeLong(1);
        NativeBuffer unpooled = BufferAllocator.unpooled().allocate(2000);
        unpooled.writeLong(2);
        CompositeBuffer c = BufferAllocator.pooled().composite(BufferAllocator.unpooled().allocate(3000).writerIndex(3000));
        c.getByte(0);
        NativeBuffer parent = BufferAllocator.pooled().allocate(4000);
        Buffer rs = parent.retainedSlice(0, 10);
        parent.release(); // released properly; the retained slice is the leak
        rs.getByte(0);
    }

    @Test
    void leakedBuffersAreReportedWithTheirAllocationSite() throws InterruptedException {
        String me = "leakedBuffersAreReportedWithTheirAllocationSite";
        long handles = BufferAllocator.liveNativeHandles();
        long leaksBefore = LeakDetector.leaksReported();
        // A buffer released properly is never reported.
        BufferAllocator.pooled().allocate(5000).release();
        dropWithoutRelease();
        assertEquals(handles + 4, BufferAllocator.liveNativeHandles());
        long deadline = System.nanoTime() + 30_000_000_000L;
        List<String> mine = List.of();
        while (System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
            mine = reports.stream().filter(r -> r.contains(me)).collect(Collectors.toList());
            if (mine.size() >= 4 && BufferAllocator.liveNativeHandles() == handles) {
                break;
            }
        }
        assertEquals(4, mine.size(), "one report per leaked region: " + reports);
        for (String r : mine) {
            assertTrue(r.contains("LEAK"), r);
            assertTrue(r.contains("dropWithoutRelease"), "the allocating method is named: " + r);
            assertTrue(r.contains("LeakDetectionTest.java"), r);
        }
        for (String size : List.of(" 1000 bytes", " 2000 bytes", " 3000 bytes", " 4000 bytes")) {
            assertTrue(mine.stream().anyMatch(r -> r.contains(size)), size + " reported: " + mine);
        }
        assertTrue(reports.stream().noneMatch(r -> r.contains(" 5000 bytes")), "a released buffer is not a leak");
        assertEquals(handles, BufferAllocator.liveNativeHandles(), "the leaked memory was given back");
        assertTrue(LeakDetector.leaksReported() >= leaksBefore + 4);
    }

    /** Allocates, untracked, a buffer of {@code capacity} bytes and drops it without release. */
    private static void dropUntracked(int capacity) {
        LeakDetector.setLevel(LeakDetector.Level.DISABLED);
        BufferAllocator.unpooled().allocate(capacity).writeLong(6);
        LeakDetector.setLevel(LeakDetector.Level.PARANOID);
    }

    @Test
    void disabledDetectionTracksNothing() throws InterruptedException {
        // Dropped without release while detection is off: never reported (its memory stays leaked, as in Netty).
        dropUntracked(6000);
        // A tracked leak dropped at the same time: once it is reported, the collector and the
        // cleaner have run, and the untracked one would have been reported by then too.
        BufferAllocator.unpooled().allocate(6001).writeLong(7);
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (reports.stream().noneMatch(r -> r.contains(" 6001 bytes")) && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertTrue(reports.stream().anyMatch(r -> r.contains(" 6001 bytes")), "the tracked leak is reported: "
                + reports);
        assertTrue(reports.stream().noneMatch(r -> r.contains(" 6000 bytes")), "the untracked one is not: " + reports);
    }
}
