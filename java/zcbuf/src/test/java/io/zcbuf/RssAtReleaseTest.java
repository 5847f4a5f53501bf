package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Memory goes back to the OS at {@code release()}, not when the garbage
 * collector finds the buffer: resident memory (RSS, {@code /proc/self/statm})
 * falls at release for a 40 MiB unpooled buffer and a 40 MiB mapped file,
 * while the buffer object (and its root {@code ByteBuffer}) stays strongly
 * reachable. The address range stays mapped until the root is collected:
 * virtual size (VmSize) falls only after a GC. Each case runs in a child JVM
 * of its own, so no other test's memory moves the figures.
 */
class RssAtReleaseTest {
    static final long MIB = 1 << 20;

    @Test
    void unpooled40MiBGoesBackAtRelease() {
        check("unpooled");
    }

    @Test
    void mapped40MiBFileGoesBackAtRelease() {
        check("mapfile");
    }

    @Test
    void pooled2MiBGoesBackAtRelease() {
        check("pooled-large");
    }

    private static void check(String kind) {
        ChildJvm.Result r = ChildJvm.run(Measure.class, Duration.ofSeconds(60), List.of("-Xmx64m"), kind).assertOk();
        Map<String, Long> f = new HashMap<>();
        for (String kv : r.okLines().get(0).split(" ")) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                f.put(kv.substring(0, eq), Long.parseLong(kv.substring(eq + 1)));
            }
        }
        System.out.println("RSS at release, " + kind + " (KiB): " + f);
        long size = f.get("size");
        // Touching every byte made it resident...
        assertTrue(f.get("rssTouched") - f.get("rssBefore") >= size * 9 / 10 / 1024, f.toString());
        // ...release gave it back at once, with the buffer still reachable (no GC involved)...
        assertTrue(f.get("rssTouched") - f.get("rssReleased") >= size * 9 / 10 / 1024, f.toString());
        // ...while the addresses stayed mapped until the root was collected.
        assertTrue(f.get("vmReleased") - f.get("vmBefore") >= size / 1024, f.toString());
        assertTrue(f.get("vmReleased") - f.get("vmCollected") >= size / 1024, f.toString());
        assertTrue(f.get("rootsCollected") < f.get("rootsReleased"), f.toString());
    }

    /** The child: {@code Measure <unpooled|mapfile|pooled-large>}. */
    public static final class Measure {
        private Measure() {}

        /** {@code field} (kB) of /proc/self/status: VmRSS, VmSize. */
        static long status(String field) throws IOException {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.substring(field.length() + 1).replace("kB", "").trim());
                }
            }
            throw new IllegalStateException("no " + field + " in /proc/self/status");
        }

        public static void main(String[] args) throws Exception {
            String kind = args[0];
            int size = kind.equals("pooled-large") ? 2 << 20 : 40 << 20;
            Path file = null;
            String figures;
            if (kind.equals("mapfile")) {
                file = Files.createTempFile("zcbuf-rss", ".bin");
                Files.write(file, new byte[size]);
            }
            try {
                System.gc();
                long rssBefore = status("VmRSS");
                long vmBefore = status("VmSize");
                NativeBuffer buf = switch (kind) {
                    case "unpooled" -> BufferAllocator.unpooled().allocate(size);
                    case "pooled-large" -> BufferAllocator.pooled().allocate(size);
                    case "mapfile" -> BufferAllocator.pooled().mapFile(file);
                    default -> throw new IllegalArgumentException(kind);
                };
                long sum = 0;
                if (buf.isReadOnly()) {
                    for (int i = 0; i < size; i += 4096) {
                        sum += buf.getByte(i); // fault every page in
                    }
                } else {
                    for (int i = 0; i < size; i += 4096) {
                        buf.setByte(i, 1);
                    }
                }
                long rssTouched = status("VmRSS");
                long rootsReleased = Native.liveRoots();
                buf.release();
                long rssReleased = status("VmRSS");
                long vmReleased = status("VmSize");
                // `buf` is still reachable here: what left was given back by release(), not by a GC.
                if (buf.refCnt() != 0) {
                    ChildJvm.failScenario("not released");
                }
                buf = null;
                long rootsCollected = rootsReleased;
                for (int i = 0; i < 100 && rootsCollected >= rootsReleased; i++) {
                    System.gc();
                    Thread.sleep(20);
                    rootsCollected = Native.liveRoots();
                }
                long vmCollected = status("VmSize");
                figures = ("size=" + size + " rssBefore=" + rssBefore + " rssTouched="
                        + rssTouched + " rssReleased=" + rssReleased + " vmBefore=" + vmBefore + " vmReleased="
                        + vmReleased + " vmCollected=" + vmCollected + " rootsReleased=" + rootsReleased
                        + " rootsCollected=" + rootsCollected + " sum=" + sum);
            } finally {
                if (file != null) {
                    Files.deleteIfExists(file);
                }
            }
            ChildJvm.ok(figures);
        }
    }
}
