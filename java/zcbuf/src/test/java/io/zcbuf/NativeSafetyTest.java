package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What a hostile or careless caller gets from the native side: mapFile of a
 * FIFO or any non-regular file is refused at once (it used to hang forever
 * in open()); huge requests get exactly their capacity or zcbuf's own
 * exception (a pooled Integer.MAX_VALUE used to fail inside the JDK with
 * "capacity < 0"); a stale view of a wrapped buffer reads its bytes, never
 * memory the JDK freed; forged root ids are refused.
 */
class NativeSafetyTest {

    @Test
    void mapFileOfANonRegularFileIsRefusedAtOnce() {
        // In a child JVM: before the fix the FIFO case blocked in open() forever, which only a kill ends.
        System.out.println(ChildJvm.run(NonRegular.class, Duration.ofSeconds(30)).assertOk("refused").okLines());
    }

    /** The child: maps a FIFO (no writer), a directory and a device. */
    public static final class NonRegular {
        private NonRegular() {}

        public static void main(String[] args) throws Exception {
            Path dir = Files.createTempDirectory("zcbuf-fifo");
            Path fifo = dir.resolve("fifo");
            Process mk = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
            if (mk.waitFor() != 0) {
                ChildJvm.failScenario("mkfifo failed");
            }
            StringBuilder seen = new StringBuilder();
            try {
                for (Path p : List.of(fifo, dir, Path.of("/dev/zero"))) {
                    long start = System.nanoTime();
                    try {
                        BufferAllocator.pooled().mapFile(p).release();
                        ChildJvm.failScenario(p + " was mapped");
                    } catch (UncheckedIOException e) {
                        if (!(e.getCause() instanceof NotRegularFileException)) {
                            ChildJvm.failScenario(p + ": " + e.getCause());
                        }
                        seen.append(e.getCause().getMessage()).append("; ");
                    }
                    long ms = (System.nanoTime() - start) / 1_000_000;
                    if (ms > 1000) {
                        ChildJvm.failScenario(p + " took " + ms + " ms to refuse");
                    }
                }
                if (!seen.toString().contains("a FIFO")) {
                    ChildJvm.failScenario("unclear message: " + seen);
                }
            } finally {
                Files.delete(fifo);
                Files.delete(dir);
            }
            ChildJvm.ok("refused: " + seen);
        }
    }

    @Test
    void hugeRequestsGetExactlyTheirCapacityOrZcbufsException() {
        // In a child JVM: a 2 GiB address range is the point, and this JVM's address space is not the test's.
        System.out.println(ChildJvm.run(Huge.class, Duration.ofSeconds(60)).assertOk("huge").okLines());
    }

    /** The child: pooled and unpooled requests up to Integer.MAX_VALUE. */
    public static final class Huge {
        private Huge() {}

        public static void main(String[] args) {
            StringBuilder seen = new StringBuilder();
            for (BufferAllocator alloc : List.of(BufferAllocator.pooled(), BufferAllocator.unpooled())) {
                for (int cap : new int[] {Integer.MAX_VALUE, Integer.MAX_VALUE - 1, (1 << 30) + 1, (1 << 20) + 1,
                        1 << 20, (64 << 10) + 1}) {
                    NativeBuffer buf;
                    try {
                        buf = alloc.allocate(cap);
                    } catch (BufferAllocationException e) {
                        // What the OS may say to 2 GiB: zcbuf's own exception, naming the size.
                        if (!e.getMessage().contains(Integer.toString(cap))) {
                            ChildJvm.failScenario("unclear: " + e.getMessage());
                        }
                        seen.append(cap).append(" refused; ");
                        continue;
                    }
                    if (buf.capacity() != cap || buf.writableBytes() != cap) {
                        ChildJvm.failScenario("asked " + cap + ", got " + buf.capacity());
                    }
                    buf.setByte(cap - 1, 42);
                    ByteBuffer tail = buf.nioBuffer(cap - 16, 16);
                    if (buf.getByte(cap - 1) != 42 || tail.capacity() != 16 || tail.get(15) != 42) {
                        ChildJvm.failScenario("the last byte of " + cap + " is wrong");
                    }
                    try {
                        buf.setByte(cap, 1);
                        ChildJvm.failScenario("wrote past " + cap);
                    } catch (IndexOutOfBoundsException expected) {
                        // the capacity is exact
                    }
                    buf.release();
                    seen.append(cap).append(" exact; ");
                }
            }
            ChildJvm.ok("huge " + seen);
        }
    }

    @Test
    void aStaleViewOfAWrappedBufferReadsItsBytes() throws Exception {
        ByteBuffer direct = ByteBuffer.allocateDirect(1 << 20);
        for (int i = 0; i < direct.capacity(); i += 8) {
            direct.putLong(i, 0x0102030405060708L);
        }
        NativeBuffer buf = BufferAllocator.unpooled().wrap(direct);
        ByteBuffer view = buf.nioBuffer(4096, 4096);
        buf.release();
        direct = null; // only the view keeps the memory now
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(10);
        }
        assertEquals(0x0102030405060708L, view.getLong(0), "the view keeps the wrapped memory alive");
        assertEquals(0x0102030405060708L, view.getLong(4088));
    }

    @Test
    void releasedUnpooledMemoryReadsZerosThroughAStaleView() {
        NativeBuffer buf = BufferAllocator.unpooled().allocate(1 << 20);
        byte[] ones = new byte[1 << 20];
        java.util.Arrays.fill(ones, (byte) 1);
        buf.writeBytes(ones);
        ByteBuffer view = buf.nioBuffer(0, 1 << 20);
        buf.release();
        byte[] seen = new byte[1 << 20];
        view.get(0, seen);
        assertArrayEquals(new byte[1 << 20], seen, "given back to the OS at release: zeros, not a crash");
        assertThrows(IllegalReferenceCountException.class, () -> buf.getByte(0));
    }

    @Test
    void ownMapsBeginWhereTheNativeSideSaysTheyDo() {
        // Memory's GC heuristic for retired maps copies the bridge's thresholds: they must agree.
        long roots = Native.liveRoots();
        NativeBuffer small = BufferAllocator.unpooled().allocate(Memory.SMALL_UNPOOLED_MAX);
        NativeBuffer block = BufferAllocator.pooled().allocate(Memory.POOL_CLASS_MAX);
        assertEquals(roots, Native.liveRoots(), "pool blocks have no root to unmap");
        NativeBuffer big = BufferAllocator.unpooled().allocate(Memory.SMALL_UNPOOLED_MAX + 1);
        NativeBuffer bigPooled = BufferAllocator.pooled().allocate(Memory.POOL_CLASS_MAX + 1);
        assertEquals(roots + 2, Native.liveRoots(), "maps of their own");
        for (NativeBuffer b : List.of(small, block, big, bigPooled)) {
            b.release();
        }
    }

    @Test
    void retiredMapsPilingUpMakeTheNextLargeAllocationCollect() {
        // A young generation no allocation here fills: without the trigger no GC would run at all.
        List<String> jvm = List.of("-Xmx512m", "-Xmn400m");
        ChildJvm.Result low = ChildJvm.run(PileUp.class, Duration.ofSeconds(60),
                List.of("-Xmx512m", "-Xmn400m", "-Dio.zcbuf.retiredGcMaps=16"), "300").assertOk("max");
        ChildJvm.Result none = ChildJvm.run(PileUp.class, Duration.ofSeconds(60), jvm, "300").assertOk("max");
        long withTrigger = Long.parseLong(low.okLines().get(0).replaceAll(".*max=(\\d+).*", "$1"));
        long without = Long.parseLong(none.okLines().get(0).replaceAll(".*max=(\\d+).*", "$1"));
        System.out.println("retired maps at most: " + withTrigger + " with a trigger at 16, " + without
                + " with the default trigger (no GC ran)");
        assertTrue(withTrigger < 40, low.okLines().toString());
        assertTrue(without > 250, "the scenario piles maps up when nothing collects: " + none.okLines());
    }

    /** The child: {@code PileUp <n>} large unpooled buffers allocated and released, the most retired maps seen. */
    public static final class PileUp {
        private PileUp() {}

        public static void main(String[] args) {
            long max = 0;
            for (int i = 0; i < Integer.parseInt(args[0]); i++) {
                BufferAllocator.unpooled().allocate(256 << 10).release();
                max = Math.max(max, Native.retiredMaps()[1]);
            }
            ChildJvm.ok("max=" + max);
        }
    }

    @Test
    void anAllocationRefusedForAddressSpaceIsRetriedAfterAGc() throws Exception {
        // A child JVM under `ulimit -v` (about 1.9 GiB): 100 released 40 MiB buffers whose roots nothing
        // collects would need 4 GB of addresses. When the OS refuses one, a GC unmaps the retired ones and the
        // allocation is retried; without that the scenario dies with BufferAllocationException.
        Path dir = Files.createTempDirectory("zcbuf-ulimit");
        Path out = dir.resolve("out.txt");
        List<String> cmd = new java.util.ArrayList<>(List.of("sh", "-c", "ulimit -v 2000000 && exec \"$@\"", "sh",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"), "-XX:-CreateCoredumpOnCrash", "-XX:+UseSerialGC",
                "-Xmx64m", "-XX:ReservedCodeCacheSize=32m", "-XX:CompressedClassSpaceSize=32m",
                "-XX:MaxMetaspaceSize=64m", "-Xss512k", "-cp", System.getProperty("java.class.path"),
                "-Djava.library.path=" + System.getProperty("java.library.path"), AddressSpace.class.getName()));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile());
        pb.environment().put("MALLOC_ARENA_MAX", "2"); // glibc reserves 64 MiB of addresses per arena otherwise
        Process p = pb.start();
        boolean exited = p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS);
        if (!exited) {
            p.destroyForcibly();
        }
        String output = Files.readString(out);
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
        System.out.println(output.trim());
        assertTrue(exited, "hung: " + output);
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains(ChildJvm.OK + " address space"), output);
    }

    /** The child, under an address-space limit. */
    public static final class AddressSpace {
        private AddressSpace() {}

        public static void main(String[] args) {
            long maxRetired = 0;
            int collections = 0;
            long last = 0;
            for (int i = 0; i < 100; i++) {
                NativeBuffer b = BufferAllocator.unpooled().allocate(40 << 20);
                b.setByte(b.capacity() - 1, 1);
                b.release();
                long retired = Native.retiredMaps()[1];
                if (retired < last) {
                    collections++;
                }
                last = retired;
                maxRetired = Math.max(maxRetired, retired);
            }
            if (collections == 0) {
                ChildJvm.failScenario("the limit was never reached (" + maxRetired + " retired maps at most)");
            }
            ChildJvm.ok("address space: 100 x 40 MiB under a 1.9 GiB limit, " + collections
                    + " collections after refusals, at most " + maxRetired + " retired maps");
        }
    }

    @Test
    void forgedRootIdsAreRefused() {
        for (long forged : new long[] {0, -1, Long.MAX_VALUE, Long.MIN_VALUE}) {
            assertThrows(StaleHandleException.class, () -> Native.unmapRoot(forged));
        }
        assertTrue(Native.liveRoots() >= 0);
    }
}
