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

    @Test
    void disabledDetectionTracksNothing() throws InterruptedException {
        LeakDetector.setLevel(LeakDetector.Level.DISABLED);
        long leaksBefore = LeakDetector.leaksReported();
        NativeBuffer kept = BufferAllocator.unpooled().allocate(6000);
        assertEquals(LeakDetector.Level.DISABLED, LeakDetector.level());
        kept.release();
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(10);
        }
        assertTrue(reports.stream().noneMatch(r -> r.contains(" 6000 bytes")));
        assertTrue(LeakDetector.leaksReported() >= leaksBefore);
    }
}
