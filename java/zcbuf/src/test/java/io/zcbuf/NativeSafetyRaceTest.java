package io.zcbuf;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Release races, each kind of memory in its own child JVM: reader threads
 * hammer a buffer (getLong, getBytes into arrays and direct buffers, bulk
 * reads of an NIO view taken before the release) while another thread
 * releases it. Before the fix a release unmapped large, mapped and
 * composite memory under the readers and the JVM died with SIGSEGV in the
 * first round; now a crash fails the case naming its hs_err file.
 *
 * <p>What the readers may see is checked too: every byte of a buffer is
 * {@link #PATTERN} until the release and 0 after it for memory that is not
 * reused (unpooled, own maps, mapped files), so any other byte is a silent
 * corruption; pooled memory may show a later owner's bytes (documented) and
 * is only checked for not crashing. After the readers stop, a stale view of
 * non-reused memory must read all zeros: its RAM and file pages went back
 * at release.
 */
class NativeSafetyRaceTest {
    static final byte PATTERN = 0x5A;
    static final long PATTERN_LONG = 0x5A5A5A5A5A5A5A5AL;
    static final Duration TIMEOUT = Duration.ofSeconds(90);

    @ParameterizedTest
    @ValueSource(strings = {"unpooled-small", "unpooled-large", "pooled-small", "pooled-large", "mapfile",
            "composite-mapped"})
    void releaseRacingReadersNeverCrashesNorCorrupts(String kind) {
        ChildJvm.Result r = ChildJvm.run(Race.class, TIMEOUT, List.of("-Xmx128m"), kind, "2");
        r.assertOk(kind);
        System.out.println(r.okLines());
    }

    /** The child: {@code Race <kind> <seconds>}. */
    public static final class Race {
        private Race() {}

        static Path file;

        public static void main(String[] args) throws Exception {
            String kind = args[0];
            long until = System.nanoTime() + Long.parseLong(args[1]) * 1_000_000_000L;
            boolean reused = kind.startsWith("pooled-small");
            int rounds = 0;
            AtomicLong refused = new AtomicLong();
            AtomicLong reads = new AtomicLong();
            AtomicLong zeroReads = new AtomicLong();
            AtomicReference<String> corrupt = new AtomicReference<>();
            if (kind.startsWith("mapfile") || kind.startsWith("composite")) {
                file = Files.createTempFile("zcbuf-race", ".bin");
                byte[] content = new byte[4 << 20];
                Arrays.fill(content, PATTERN);
                Files.write(file, content);
            }
            try {
                while (System.nanoTime() < until) {
                    Buffer buf = make(kind);
                    int cap = buf.readableBytes();
                    ByteBuffer[] views = buf.nioBuffers(0, cap);
                    ByteBuffer single = buf.nioBuffer(0, Math.min(cap, views[0].remaining()));
                    volatileDone = false;
                    List<Thread> readers = new ArrayList<>();
                    for (int t = 0; t < 3; t++) {
                        final int which = t;
                        Thread th = new Thread(() -> read(buf, cap, views, single, which, reused, refused, reads,
                                zeroReads, corrupt));
                        readers.add(th);
                        th.start();
                    }
                    Thread.sleep(ThreadLocalRandom.current().nextInt(3));
                    buf.release();
                    Thread.sleep(2); // readers keep going on released memory
                    volatileDone = true;
                    for (Thread th : readers) {
                        th.join();
                    }
                    if (corrupt.get() != null) {
                        ChildJvm.failScenario(kind + ": " + corrupt.get());
                    }
                    if (!reused && !kind.equals("unpooled-small")) {
                        // Not reused and given back to the OS: a stale view reads zeros, all of it.
                        for (ByteBuffer v : views) {
                            if (!kind.startsWith("composite") || v.isReadOnly()) {
                                checkAllZero(kind, v);
                            }
                        }
                    }
                    rounds++;
                    if (rounds % 16 == 0) {
                        System.gc(); // collected roots are unmapped meanwhile: exercise that path too
                    }
                }
            } finally {
                if (file != null) {
                    Files.deleteIfExists(file);
                }
            }
            if (rounds < 3) {
                ChildJvm.failScenario(kind + ": only " + rounds + " rounds");
            }
            ChildJvm.ok(kind + " rounds=" + rounds + " reads=" + reads + " refused=" + refused + " zeroReads="
                    + zeroReads);
        }

        static volatile boolean volatileDone;

        static Buffer make(String kind) {
            BufferAllocator pooled = BufferAllocator.pooled();
            BufferAllocator unpooled = BufferAllocator.unpooled();
            Buffer b = switch (kind) {
                case "unpooled-small" -> unpooled.allocate(4096);
                case "unpooled-large" -> unpooled.allocate(40 << 20);
                case "pooled-small" -> pooled.allocate(4096);
                case "pooled-large" -> pooled.allocate(2 << 20);
                case "mapfile" -> pooled.mapFile(file);
                case "composite-mapped" -> {
                    NativeBuffer header = pooled.allocate(4096);
                    fill(header);
                    yield pooled.composite(header, pooled.mapFile(file));
                }
                default -> throw new IllegalArgumentException(kind);
            };
            if (!b.isReadOnly()) {
                fill(b);
            }
            return b;
        }

        static void fill(Buffer b) {
            byte[] chunk = new byte[1 << 16];
            Arrays.fill(chunk, PATTERN);
            b.clear();
            while (b.writableBytes() > 0) {
                b.writeBytes(chunk, 0, Math.min(chunk.length, b.writableBytes()));
            }
        }

        /** Each byte of {@code v} must be the pattern or 0 (unless the memory may be reused). */
        static void check(boolean reused, long v, AtomicReference<String> corrupt, AtomicLong zeroReads,
                String where) {
            if (reused) {
                return;
            }
            if ((v & ~PATTERN_LONG) != 0) {
                corrupt.compareAndSet(null, where + " read " + Long.toHexString(v));
            } else if (v != PATTERN_LONG) {
                zeroReads.incrementAndGet();
            }
        }

        static void read(Buffer buf, int cap, ByteBuffer[] views, ByteBuffer single, int which, boolean reused,
                AtomicLong refused, AtomicLong reads, AtomicLong zeroReads, AtomicReference<String> corrupt) {
            ThreadLocalRandom rnd = ThreadLocalRandom.current();
            byte[] arr = new byte[8192];
            ByteBuffer direct = ByteBuffer.allocateDirect(8192);
            long n = 0;
            while (!volatileDone) {
                int at = rnd.nextInt(Math.max(1, cap - 8192));
                try {
                    switch (which) {
                        case 0 -> check(reused, buf.getLong(at), corrupt, zeroReads, "getLong");
                        case 1 -> {
                            buf.getBytes(at, arr, 0, Math.min(arr.length, cap - at));
                            check(reused, ByteBuffer.wrap(arr).getLong(0), corrupt, zeroReads, "getBytes[]");
                        }
                        default -> {
                            direct.clear().limit(Math.min(8192, cap - at));
                            buf.getBytes(at, direct);
                            check(reused, direct.getLong(0), corrupt, zeroReads, "getBytes(ByteBuffer)");
                        }
                    }
                } catch (IllegalReferenceCountException released) {
                    refused.incrementAndGet(); // the count check saw the release: what stale Buffers get
                }
                // NIO views taken before the release: nothing can refuse these reads, they must stay safe.
                ByteBuffer v = views[rnd.nextInt(views.length)];
                if (v.capacity() >= 8) {
                    int i = rnd.nextInt(v.capacity() - 7);
                    check(reused, v.getLong(i), corrupt, zeroReads, "nioBuffers view getLong");
                    int len = Math.min(arr.length, v.capacity() - i);
                    v.get(i, arr, 0, len);
                }
                if (single.capacity() >= 8) {
                    check(reused, single.getLong(single.capacity() - 8), corrupt, zeroReads, "nioBuffer view");
                }
                n++;
            }
            reads.addAndGet(n);
        }

        static void checkAllZero(String kind, ByteBuffer v) {
            byte[] arr = new byte[1 << 16];
            for (int at = 0; at < v.capacity(); at += arr.length) {
                int len = Math.min(arr.length, v.capacity() - at);
                v.get(at, arr, 0, len);
                for (int i = 0; i < len; i++) {
                    if (arr[i] != 0) {
                        ChildJvm.failScenario(kind + ": a stale view read " + arr[i] + " at " + (at + i)
                                + " after release: the memory was not given back to the OS");
                    }
                }
            }
        }
    }
}
