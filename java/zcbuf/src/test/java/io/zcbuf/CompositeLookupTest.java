package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Random reads of composites with many components (past the size where the lookup builds its block index,
 * empty and one-byte components among them) agree with a byte-array model, also after components are
 * appended, removed and discarded: the cached component and the block index must never describe an earlier
 * layout.
 */
class CompositeLookupTest {
    private static final BufferAllocator ALLOC = BufferAllocator.unpooled();

    @Test
    void randomReadsMatchTheModelThroughChanges() {
        Random random = new Random(42);
        for (int round = 0; round < 20; round++) {
            try (CompositeBuffer c = ALLOC.composite()) {
                Model model = new Model();
                int components = 64 + random.nextInt(600);
                for (int i = 0; i < components; i++) {
                    add(c, model, random);
                }
                for (int step = 0; step < 40; step++) {
                    check(c, model, random, 3000);
                    switch (random.nextInt(4)) {
                        case 0 -> add(c, model, random);
                        case 1 -> {
                            if (c.numComponents() == 0) {
                                add(c, model, random);
                                continue;
                            }
                            int k = random.nextInt(c.numComponents());
                            c.removeComponent(k);
                            model.remove(k);
                        }
                        case 2 -> {
                            int r = random.nextInt(c.writerIndex() + 1);
                            c.readerIndex(r);
                            c.discardReadComponents();
                            model.discard(r);
                            c.readerIndex(0);
                        }
                        default -> {
                            // no change: the second pass reads with the index built
                        }
                    }
                }
                check(c, model, random, 3000);
            }
        }
    }

    /**
     * Absolute reads change no index, so threads may read one composite at the same time: each must get its
     * own bytes, never one component's range applied to another's memory (an exception or wrong bytes).
     */
    @Test
    void concurrentReadersSeeTheirBytes() throws Exception {
        Random random = new Random(7);
        try (CompositeBuffer c = ALLOC.composite()) {
            Model model = new Model();
            for (int i = 0; i < 400; i++) {
                add(c, model, random);
            }
            byte[] expected = java.util.Arrays.copyOf(model.bytes, model.size);
            ByteBuffer ref = ByteBuffer.wrap(expected);
            int threads = 4;
            java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
            java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
            Thread[] readers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                long seed = t;
                readers[t] = new Thread(() -> {
                    Random r = new Random(seed);
                    try {
                        start.await();
                        for (int i = 0; i < 300_000 && failure.get() == null; i++) {
                            // Near neighbours and far jumps, so that threads keep replacing the cached component.
                            int at = r.nextInt(expected.length - 8);
                            long got = c.getLong(at);
                            if (got != ref.getLong(at)) {
                                throw new AssertionError("long at " + at + ": " + Long.toHexString(got) + ", expected "
                                        + Long.toHexString(ref.getLong(at)));
                            }
                            byte b = c.getByte(at);
                            if (b != expected[at]) {
                                throw new AssertionError("byte at " + at + ": " + b + ", expected " + expected[at]);
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                readers[t].start();
            }
            start.countDown();
            for (Thread t : readers) {
                t.join();
            }
            if (failure.get() != null) {
                throw new AssertionError("a concurrent reader failed", failure.get());
            }
        }
    }

    private static void add(CompositeBuffer c, Model model, Random random) {
        int len = random.nextInt(4) == 0 ? 0 : 1 + random.nextInt(random.nextBoolean() ? 9 : 1500);
        byte[] bytes = new byte[len];
        random.nextBytes(bytes);
        NativeBuffer b = ALLOC.allocate(len);
        b.writeBytes(bytes);
        c.addComponent(b);
        model.add(bytes);
    }

    private static void check(CompositeBuffer c, Model model, Random random, int reads) {
        assertEquals(model.size, c.capacity(), "capacity");
        assertEquals(model.size, c.readableBytes(), "readable");
        if (model.size == 0) {
            return;
        }
        ByteBuffer expected = ByteBuffer.wrap(model.bytes, 0, model.size);
        for (int i = 0; i < reads; i++) {
            int at = random.nextInt(model.size);
            assertEquals(expected.get(at), c.getByte(at), "byte at " + at);
            if (at + 8 <= model.size) {
                assertEquals(expected.getLong(at), c.getLong(at), "long at " + at);
            }
            if (at + 4 <= model.size) {
                assertEquals(expected.getInt(at), c.getInt(at), "int at " + at);
            }
        }
        for (int at = 0; at < model.size; at++) {
            assertEquals(expected.get(at), c.getByte(at), "sequential byte at " + at);
        }
        byte target = model.bytes[random.nextInt(model.size)];
        int first = 0;
        while (model.bytes[first] != target) {
            first++;
        }
        assertEquals(first, c.forEachByte(v -> v != target), "forEachByte stop");
    }

    /** The composite's bytes, and each component's length, as a plain array. */
    private static final class Model {
        byte[] bytes = new byte[1 << 16];
        int size;
        int[] lengths = new int[64];
        int count;

        void add(byte[] b) {
            while (size + b.length > bytes.length) {
                bytes = java.util.Arrays.copyOf(bytes, bytes.length * 2);
            }
            System.arraycopy(b, 0, bytes, size, b.length);
            size += b.length;
            if (count == lengths.length) {
                lengths = java.util.Arrays.copyOf(lengths, count * 2);
            }
            lengths[count++] = b.length;
        }

        void remove(int k) {
            int start = 0;
            for (int i = 0; i < k; i++) {
                start += lengths[i];
            }
            int len = lengths[k];
            System.arraycopy(bytes, start + len, bytes, start, size - start - len);
            size -= len;
            System.arraycopy(lengths, k + 1, lengths, k, count - k - 1);
            count--;
        }

        /** discardReadComponents with readerIndex r: the components wholly before r go. */
        void discard(int r) {
            int k = 0;
            int end = 0;
            while (k < count && end + lengths[k] <= r) {
                end += lengths[k];
                k++;
            }
            System.arraycopy(bytes, end, bytes, 0, size - end);
            size -= end;
            System.arraycopy(lengths, k, lengths, 0, count - k);
            count -= k;
        }
    }
}
