package io.zcbuf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Issue 10 class 1, in a child JVM: reader threads read a buffer (getLong,
 * getBytes into a byte[] and into a direct ByteBuffer, and through NIO views
 * taken before) while another thread releases it, round after round. No read
 * may crash the JVM; a Buffer read either returns the buffer's bytes or
 * throws {@link IllegalReferenceCountException}, and every reader sees that
 * exception soon after the release. For memory that is never reused by a new
 * owner (large unpooled, mapped files) a racing read may only see the bytes
 * or zeros.
 *
 * <p>Arguments: the kind of memory ({@code unpooled-small}, {@code unpooled-large}
 * (40 MiB), {@code pooled-small}, {@code pooled-large} (2 MiB), {@code mapfile},
 * {@code composite-mapped}) and the seconds to race.
 */
public final class ReleaseRaceScenario {
    /** Every byte of a live buffer. */
    static final byte FILL = (byte) 0xA5;

    static final long FILL_LONG = 0xA5A5A5A5A5A5A5A5L;
    /** Every byte of the next owner's buffer. */
    static final byte OTHER = (byte) 0x3C;

    private static final int READERS = 3;
    /** The mapped kinds' file. */
    static final int FILE_SIZE = 1 << 20;

    private ReleaseRaceScenario() {}

    /**
     * Makes buffers of one kind, filled with {@link #FILL}, or with
     * {@link #OTHER} for a next owner whose bytes a stale view must not show.
     */
    static final class Maker implements AutoCloseable {
        final String kind;
        private final Path file;
        private final Path otherFile;

        Maker(String kind) throws IOException {
            this.kind = kind;
            if (kind.equals("mapfile") || kind.equals("composite-mapped")) {
                file = file(FILL);
                otherFile = file(OTHER);
            } else {
                file = null;
                otherFile = null;
            }
        }

        private static Path file(byte fill) throws IOException {
            Path f = Files.createTempFile("zcbuf-race", ".bin");
            byte[] all = new byte[FILE_SIZE];
            Arrays.fill(all, fill);
            return Files.write(f, all);
        }

        /** Whether a racing or stale read may show nothing but the bytes or zeros (never a new owner's bytes). */
        boolean neverReused() {
            return kind.equals("unpooled-large") || kind.equals("mapfile") || kind.equals("composite-mapped");
        }

        /**
         * @param view a view of a buffer this maker made
         * @return whether that view shows memory no new owner can get (a
         *     composite's pooled component can go to one; its file cannot)
         */
        boolean neverReused(ByteBuffer view) {
            return neverReused() && (!kind.equals("composite-mapped") || view.capacity() == FILE_SIZE);
        }

        Buffer make() {
            return make(FILL);
        }

        Buffer make(byte fill) {
            Path f = fill == FILL ? file : otherFile;
            return switch (kind) {
                case "unpooled-small" -> fill(BufferAllocator.unpooled().allocate(4096), fill);
                case "unpooled-large" -> fill(BufferAllocator.unpooled().allocate(40 << 20), fill);
                case "pooled-small" -> fill(BufferAllocator.pooled().allocate(4096), fill);
                case "pooled-large" -> fill(BufferAllocator.pooled().allocate(2 << 20), fill);
                case "mapfile" -> BufferAllocator.unpooled().mapFile(f);
                case "composite-mapped" -> BufferAllocator.pooled().composite(
                        BufferAllocator.unpooled().mapFile(f), fill(BufferAllocator.pooled().allocate(4096), fill));
                default -> throw new IllegalArgumentException("unknown kind " + kind);
            };
        }

        private static NativeBuffer fill(NativeBuffer b, byte fill) {
            byte[] chunk = new byte[1 << 16];
            Arrays.fill(chunk, fill);
            while (b.isWritable()) {
                b.writeBytes(chunk, 0, Math.min(chunk.length, b.writableBytes()));
            }
            return b;
        }

        @Override
        public void close() throws IOException {
            if (file != null) {
                Files.delete(file);
                Files.delete(otherFile);
            }
        }
    }

    /**
     * @param args kind, seconds
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        String kind = args[0];
        long nanos = (long) (Double.parseDouble(args.length > 1 ? args[1] : "2") * 1e9);
        try (Maker maker = new Maker(kind)) {
            race(maker, nanos);
        }
    }

    private static void race(Maker maker, long nanos) throws Exception {
        AtomicReference<Buffer> current = new AtomicReference<>();
        AtomicReference<ByteBuffer[]> views = new AtomicReference<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicLong refused = new AtomicLong();
        AtomicLong staleValues = new AtomicLong();
        AtomicLong reads = new AtomicLong();
        CyclicBarrier go = new CyclicBarrier(READERS + 1);
        CyclicBarrier done = new CyclicBarrier(READERS + 1);
        boolean strict = maker.neverReused();
        Thread[] readers = new Thread[READERS];
        for (int t = 0; t < READERS; t++) {
            int mode = t;
            readers[t] = new Thread(() -> {
                try {
                    byte[] bytes = new byte[64];
                    ByteBuffer direct = ByteBuffer.allocateDirect(64);
                    while (true) {
                        go.await();
                        Buffer b = current.get();
                        if (b == null) {
                            return;
                        }
                        ByteBuffer[] vs = views.get();
                        ThreadLocalRandom rnd = ThreadLocalRandom.current();
                        int cap = b.capacity();
                        long n = 0;
                        // Until the release is seen: then the view readers go on a little, racing the unmap.
                        long viewReadsAfter = -1;
                        read:
                        while (true) {
                            int index = rnd.nextInt(cap - 64);
                            // Once a read was refused, mostly NIO views (which race the unmap), and a
                            // Buffer read now and then (each refusal builds an exception: costly).
                            int m = viewReadsAfter >= 0 && n % 64 != 0 ? 3 : (mode + (int) n) % 4;
                            n++;
                            try {
                                switch (m) {
                                    case 0 -> check(b.getLong(index), strict, staleValues);
                                    case 1 -> {
                                        b.getBytes(index, bytes);
                                        check(bytes, strict, staleValues);
                                    }
                                    case 2 -> {
                                        direct.clear();
                                        b.getBytes(index, direct);
                                        for (int i = 0; i < 64; i += 8) {
                                            check(direct.getLong(i), strict, staleValues);
                                        }
                                    }
                                    default -> {
                                        // NIO views are never checked: they may be read whenever, and
                                        // must only never crash (zeros, or a new owner's bytes if pooled).
                                        ByteBuffer v = vs[rnd.nextInt(vs.length)];
                                        long x = v.getLong(rnd.nextInt(v.capacity() - 8));
                                        if (strict && !bytesOrZeros(x)) {
                                            staleValues.incrementAndGet();
                                            throw new AssertionError("an NIO view of never-reused memory read "
                                                    + Long.toHexString(x));
                                        }
                                        if (viewReadsAfter >= 0 && ++viewReadsAfter > 2000) {
                                            break read;
                                        }
                                        continue;
                                    }
                                }
                            } catch (IllegalReferenceCountException released) {
                                refused.incrementAndGet();
                                if (viewReadsAfter < 0) {
                                    viewReadsAfter = 0;
                                }
                                continue;
                            }
                            if (viewReadsAfter >= 0) {
                                // A Buffer read succeeded after one was refused: the count went back up?
                                throw new AssertionError("a Buffer read succeeded after a read was refused");
                            }
                        }
                        reads.addAndGet(n);
                        done.await();
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                    ChildJvm.failScenario("reader failed: " + e);
                }
            }, "reader-" + t);
            readers[t].setDaemon(true);
            readers[t].start();
        }
        long end = System.nanoTime() + nanos;
        int rounds = 0;
        while (System.nanoTime() < end || rounds < 3) {
            Buffer b = maker.make();
            ByteBuffer[] vs = b.nioBuffers();
            ByteBuffer[] all = Arrays.copyOf(vs, vs.length + 1);
            all[vs.length] = b.nioBuffer(); // a copy when it spans components: reading it stays safe anyway
            current.set(b);
            views.set(all);
            go.await(10, TimeUnit.SECONDS);
            // Let the readers get going, then release under them.
            long spin = ThreadLocalRandom.current().nextLong(200_000);
            for (long t0 = System.nanoTime(); System.nanoTime() - t0 < spin; ) {
                Thread.onSpinWait();
            }
            if (!b.release()) {
                throw new AssertionError("release() of the only reference did not free the buffer");
            }
            try {
                b.getLong(0);
                throw new AssertionError("the releasing thread read its released buffer");
            } catch (IllegalReferenceCountException expected) {
                // The same thread sees its own release at once.
            }
            done.await(30, TimeUnit.SECONDS);
            rounds++;
        }
        current.set(null);
        go.await(10, TimeUnit.SECONDS);
        if (failure.get() != null) {
            throw new AssertionError("a reader failed", failure.get());
        }
        if (refused.get() < READERS * rounds / 2) {
            throw new AssertionError("too few refused reads (" + refused.get() + " in " + rounds + " rounds)");
        }
        ChildJvm.ok(maker.kind + ": " + rounds + " rounds, " + reads.get() + " reads, " + refused.get()
                + " refused after release, " + staleValues.get() + " stale values, no crash");
    }

    private static void check(long value, boolean strict, AtomicLong stale) {
        if (value != FILL_LONG) {
            stale.incrementAndGet();
            if (strict && !bytesOrZeros(value)) {
                throw new AssertionError("read " + Long.toHexString(value) + ": bytes neither the buffer's nor zeros");
            }
        }
    }

    /**
     * Whether each byte of {@code value} is {@link #FILL} or 0: a read that
     * straddles two pages may see one already zeroed and the other not yet.
     */
    static boolean bytesOrZeros(long value) {
        for (int shift = 0; shift < 64; shift += 8) {
            byte b = (byte) (value >>> shift);
            if (b != FILL && b != 0) {
                return false;
            }
        }
        return true;
    }

    private static void check(byte[] bytes, boolean strict, AtomicLong stale) {
        for (byte x : bytes) {
            if (x != FILL) {
                stale.incrementAndGet();
                if (strict && x != 0) {
                    throw new AssertionError("read " + x + ": neither the bytes nor zeros");
                }
                return;
            }
        }
    }
}
