package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Random operations on native and composite buffers, checked step by step
 * against a plain byte[] with reader and writer indices.
 */
class BufferModelTest {
    private static final long[] SEEDS = {1L, 42L, 0xC0FFEEL, 20240601L, -7L};
    private static final int OPS = 4000;

    // ---- primitive accessors, as (size, order, signedness) over a long ----

    interface Get {
        long get(Buffer b, int index);
    }

    interface Read {
        long read(Buffer b);
    }

    interface Set {
        void set(Buffer b, int index, long value);
    }

    interface Write {
        void write(Buffer b, long value);
    }

    enum Kind {
        SIGNED,
        UNSIGNED,
        BOOLEAN,
        FLOAT,
        DOUBLE
    }

    record Accessor(String name, int size, boolean le, Kind kind, Get get, Read read) {}

    record Mutator(String name, int size, boolean le, Kind kind, Set set, Write write) {}

    static final Accessor[] ACCESSORS = {
        new Accessor("byte", 1, false, Kind.SIGNED, Buffer::getByte, Buffer::readByte),
        new Accessor("ubyte", 1, false, Kind.UNSIGNED, Buffer::getUnsignedByte, Buffer::readUnsignedByte),
        new Accessor("boolean", 1, false, Kind.BOOLEAN, (b, i) -> b.getBoolean(i) ? 1 : 0, b -> b.readBoolean() ? 1 : 0),
        new Accessor("short", 2, false, Kind.SIGNED, Buffer::getShort, Buffer::readShort),
        new Accessor("shortLE", 2, true, Kind.SIGNED, Buffer::getShortLE, Buffer::readShortLE),
        new Accessor("ushort", 2, false, Kind.UNSIGNED, Buffer::getUnsignedShort, Buffer::readUnsignedShort),
        new Accessor("ushortLE", 2, true, Kind.UNSIGNED, Buffer::getUnsignedShortLE, Buffer::readUnsignedShortLE),
        new Accessor("char", 2, false, Kind.UNSIGNED, Buffer::getChar, Buffer::readChar),
        new Accessor("charLE", 2, true, Kind.UNSIGNED, Buffer::getCharLE, Buffer::readCharLE),
        new Accessor("int", 4, false, Kind.SIGNED, Buffer::getInt, Buffer::readInt),
        new Accessor("intLE", 4, true, Kind.SIGNED, Buffer::getIntLE, Buffer::readIntLE),
        new Accessor("uint", 4, false, Kind.UNSIGNED, Buffer::getUnsignedInt, Buffer::readUnsignedInt),
        new Accessor("uintLE", 4, true, Kind.UNSIGNED, Buffer::getUnsignedIntLE, Buffer::readUnsignedIntLE),
        new Accessor("long", 8, false, Kind.SIGNED, Buffer::getLong, Buffer::readLong),
        new Accessor("longLE", 8, true, Kind.SIGNED, Buffer::getLongLE, Buffer::readLongLE),
        new Accessor("float", 4, false, Kind.FLOAT,
                (b, i) -> Float.floatToIntBits(b.getFloat(i)), b -> Float.floatToIntBits(b.readFloat())),
        new Accessor("floatLE", 4, true, Kind.FLOAT,
                (b, i) -> Float.floatToIntBits(b.getFloatLE(i)), b -> Float.floatToIntBits(b.readFloatLE())),
        new Accessor("double", 8, false, Kind.DOUBLE,
                (b, i) -> Double.doubleToLongBits(b.getDouble(i)), b -> Double.doubleToLongBits(b.readDouble())),
        new Accessor("doubleLE", 8, true, Kind.DOUBLE,
                (b, i) -> Double.doubleToLongBits(b.getDoubleLE(i)),
                b -> Double.doubleToLongBits(b.readDoubleLE())),
    };

    static final Mutator[] MUTATORS = {
        new Mutator("byte", 1, false, Kind.SIGNED, (b, i, v) -> b.setByte(i, (int) v), (b, v) -> b.writeByte((int) v)),
        new Mutator("boolean", 1, false, Kind.BOOLEAN,
                (b, i, v) -> b.setBoolean(i, (v & 1) != 0), (b, v) -> b.writeBoolean((v & 1) != 0)),
        new Mutator("short", 2, false, Kind.SIGNED, (b, i, v) -> b.setShort(i, (int) v), (b, v) -> b.writeShort((int) v)),
        new Mutator("shortLE", 2, true, Kind.SIGNED,
                (b, i, v) -> b.setShortLE(i, (int) v), (b, v) -> b.writeShortLE((int) v)),
        new Mutator("char", 2, false, Kind.SIGNED, (b, i, v) -> b.setChar(i, (int) v), (b, v) -> b.writeChar((int) v)),
        new Mutator("charLE", 2, true, Kind.SIGNED, (b, i, v) -> b.setCharLE(i, (int) v), (b, v) -> b.writeCharLE((int) v)),
        new Mutator("int", 4, false, Kind.SIGNED, (b, i, v) -> b.setInt(i, (int) v), (b, v) -> b.writeInt((int) v)),
        new Mutator("intLE", 4, true, Kind.SIGNED, (b, i, v) -> b.setIntLE(i, (int) v), (b, v) -> b.writeIntLE((int) v)),
        new Mutator("long", 8, false, Kind.SIGNED, Buffer::setLong, Buffer::writeLong),
        new Mutator("longLE", 8, true, Kind.SIGNED, Buffer::setLongLE, Buffer::writeLongLE),
        new Mutator("float", 4, false, Kind.FLOAT,
                (b, i, v) -> b.setFloat(i, Float.intBitsToFloat((int) v)),
                (b, v) -> b.writeFloat(Float.intBitsToFloat((int) v))),
        new Mutator("floatLE", 4, true, Kind.FLOAT,
                (b, i, v) -> b.setFloatLE(i, Float.intBitsToFloat((int) v)),
                (b, v) -> b.writeFloatLE(Float.intBitsToFloat((int) v))),
        new Mutator("double", 8, false, Kind.DOUBLE,
                (b, i, v) -> b.setDouble(i, Double.longBitsToDouble(v)),
                (b, v) -> b.writeDouble(Double.longBitsToDouble(v))),
        new Mutator("doubleLE", 8, true, Kind.DOUBLE,
                (b, i, v) -> b.setDoubleLE(i, Double.longBitsToDouble(v)),
                (b, v) -> b.writeDoubleLE(Double.longBitsToDouble(v))),
    };

    // ---- the model ----

    static final class Model {
        byte[] data;
        int r;
        int w;
        /** Component lengths (composites only). */
        final List<Integer> comps = new ArrayList<>();

        Model(byte[] data, int r, int w) {
            this.data = data;
            this.r = r;
            this.w = w;
        }

        int cap() {
            return data.length;
        }

        long raw(int index, int size, boolean le) {
            long v = 0;
            for (int k = 0; k < size; k++) {
                int at = le ? index + size - 1 - k : index + k;
                v = v << 8 | (data[at] & 0xff);
            }
            return v;
        }

        long value(Accessor a, int index) {
            long raw = raw(index, a.size, a.le);
            int bits = a.size * 8;
            return switch (a.kind) {
                case SIGNED -> bits == 64 ? raw : (raw << (64 - bits)) >> (64 - bits);
                case UNSIGNED -> raw;
                case BOOLEAN -> raw != 0 ? 1 : 0;
                case FLOAT -> Float.floatToIntBits(Float.intBitsToFloat((int) raw));
                case DOUBLE -> Double.doubleToLongBits(Double.longBitsToDouble(raw));
            };
        }

        void put(Mutator m, int index, long v) {
            long bits = m.kind == Kind.BOOLEAN ? (v & 1) : v;
            for (int k = 0; k < m.size; k++) {
                int at = m.le ? index + k : index + m.size - 1 - k;
                data[at] = (byte) (bits >>> (8 * k));
            }
        }
    }

    /** Values mutators write: floats and doubles are never NaN, so their bits go through unchanged. */
    static long valueFor(Mutator m, Random rnd) {
        long v = rnd.nextLong();
        if (m.kind == Kind.FLOAT && Float.isNaN(Float.intBitsToFloat((int) v))) {
            v = Float.floatToRawIntBits(-1.5f);
        } else if (m.kind == Kind.DOUBLE && Double.isNaN(Double.longBitsToDouble(v))) {
            v = Double.doubleToRawLongBits(2.25);
        }
        return v;
    }

    // ---- the test ----

    enum Subject {
        POOLED,
        UNPOOLED,
        COMPOSITE
    }

    @ParameterizedTest
    @ValueSource(strings = {"POOLED", "UNPOOLED", "COMPOSITE"})
    void randomOperationsMatchTheModel(String subjectName) {
        Subject subject = Subject.valueOf(subjectName);
        long baseline = BufferAllocator.liveNativeHandles();
        for (long seed : SEEDS) {
            new Run(subject, seed).run();
            assertEquals(baseline, BufferAllocator.liveNativeHandles(), "native handles leaked, seed " + seed);
        }
    }

    static final class Run {
        final Subject subject;
        final long seed;
        final Random rnd;
        Buffer buf;
        Model model;
        int step;
        String op = "setup";

        Run(Subject subject, long seed) {
            this.subject = subject;
            this.seed = seed;
            this.rnd = new Random(seed);
        }

        byte[] randomBytes(int n) {
            byte[] b = new byte[n];
            rnd.nextBytes(b);
            return b;
        }

        String where() {
            return subject + " seed " + seed + " step " + step + " op " + op + " " + buf;
        }

        void run() {
            if (subject == Subject.COMPOSITE) {
                CompositeBuffer c = (rnd.nextBoolean() ? BufferAllocator.pooled() : BufferAllocator.unpooled()).composite();
                model = new Model(new byte[0], 0, 0);
                buf = c;
                int n = 1 + rnd.nextInt(24);
                for (int i = 0; i < n; i++) {
                    addRandomComponent(c);
                }
                c.readerIndex(0);
            } else {
                BufferAllocator alloc = subject == Subject.POOLED ? BufferAllocator.pooled() : BufferAllocator.unpooled();
                int cap = rnd.nextInt(4) == 0 ? rnd.nextInt(16) : 64 + rnd.nextInt(1500);
                NativeBuffer nb = alloc.allocate(cap);
                assertEquals(cap, nb.capacity());
                if (!alloc.isPooled()) {
                    for (int i = 0; i < cap; i++) {
                        assertEquals(0, nb.getByte(i), "unpooled memory is zeroed");
                    }
                }
                byte[] init = randomBytes(cap);
                nb.setBytes(0, init);
                model = new Model(init.clone(), 0, 0);
                buf = nb;
            }
            check();
            try {
                for (step = 0; step < OPS; step++) {
                    oneStep();
                    check();
                    if (step % 97 == 0) {
                        checkByteByByte();
                    }
                }
            } catch (AssertionError | RuntimeException e) {
                throw new AssertionError(where() + ": " + e, e);
            }
            assertEquals(1, buf.refCnt());
            assertTrue(buf.release());
            assertEquals(0, buf.refCnt());
        }

        /** Appends a random component (pooled, unpooled, wrapped direct, slice, composite) to the composite and model. */
        void addRandomComponent(CompositeBuffer c) {
            int kind = rnd.nextInt(6);
            int len = switch (rnd.nextInt(5)) {
                case 0 -> 0;
                case 1 -> 1 + rnd.nextInt(3);
                case 2 -> 4 + rnd.nextInt(12);
                default -> rnd.nextInt(200);
            };
            byte[] content = randomBytes(len);
            Buffer piece;
            switch (kind) {
                case 0, 1 -> {
                    BufferAllocator a = kind == 0 ? BufferAllocator.pooled() : BufferAllocator.unpooled();
                    NativeBuffer nb = a.allocate(len + rnd.nextInt(8));
                    nb.writeBytes(content);
                    piece = nb;
                }
                case 2 -> {
                    int pad = rnd.nextInt(8);
                    ByteBuffer direct = ByteBuffer.allocateDirect(len + 2 * pad);
                    direct.position(pad);
                    direct.put(content);
                    direct.position(pad).limit(pad + len);
                    piece = BufferAllocator.unpooled().wrap(direct);
                }
                case 3 -> {
                    // A retained slice of a bigger buffer: only the slice's bytes are added.
                    NativeBuffer parent = BufferAllocator.pooled().allocate(len + 16);
                    parent.writeBytes(randomBytes(5));
                    parent.writeBytes(content);
                    parent.writeBytes(randomBytes(7));
                    piece = parent.retainedSlice(5, len);
                    parent.release();
                }
                case 4 -> {
                    // A buffer with a reader index: only its readable bytes are added.
                    NativeBuffer nb = BufferAllocator.unpooled().allocate(len + 3);
                    nb.writeBytes(randomBytes(3));
                    nb.writeBytes(content);
                    nb.readerIndex(3);
                    piece = nb;
                }
                default -> {
                    // A composite is flattened into its components.
                    CompositeBuffer inner = BufferAllocator.pooled().composite();
                    int cut = len == 0 ? 0 : rnd.nextInt(len + 1);
                    inner.addComponent(BufferAllocator.pooled().copyOf(Arrays.copyOfRange(content, 0, cut)));
                    inner.addComponent(BufferAllocator.unpooled().copyOf(Arrays.copyOfRange(content, cut, len)));
                    int before = c.numComponents();
                    c.addComponent(inner);
                    assertEquals(0, inner.refCnt(), "the added composite was taken over");
                    int added = c.numComponents() - before;
                    int expect = (cut > 0 ? 1 : 0) + (len - cut > 0 ? 1 : 0);
                    assertEquals(expect, added, "a composite's non-empty components are added");
                    if (cut > 0) {
                        model.comps.add(cut);
                    }
                    if (len - cut > 0) {
                        model.comps.add(len - cut);
                    }
                    appendToModel(content);
                    return;
                }
            }
            c.addComponent(piece);
            model.comps.add(len);
            appendToModel(content);
        }

        void appendToModel(byte[] content) {
            byte[] d = Arrays.copyOf(model.data, model.data.length + content.length);
            System.arraycopy(content, 0, d, model.data.length, content.length);
            model.data = d;
            model.w = d.length; // addComponent moves the writer index to the end
        }

        void check() {
            assertEquals(model.cap(), buf.capacity(), "capacity");
            assertEquals(model.r, buf.readerIndex(), "readerIndex");
            assertEquals(model.w, buf.writerIndex(), "writerIndex");
            byte[] all = new byte[model.cap()];
            buf.getBytes(0, all);
            assertArrayEquals(model.data, all, "contents");
            if (buf instanceof CompositeBuffer c) {
                assertEquals(model.comps.size(), c.numComponents(), "components");
                int at = 0;
                for (int i = 0; i < model.comps.size(); i++) {
                    Buffer comp = c.component(i);
                    assertEquals(model.comps.get(i), comp.capacity(), "component " + i + " length");
                    assertArrayEquals(Arrays.copyOfRange(model.data, at, at + comp.capacity()), comp.toByteArray());
                    at += comp.capacity();
                }
            }
        }

        void checkByteByByte() {
            for (int i = 0; i < model.cap(); i++) {
                assertEquals(model.data[i], buf.getByte(i), "byte " + i);
            }
        }

        /** Asserts {@code action} throws IndexOutOfBoundsException and changed nothing. */
        void expectOutOfRange(Runnable action) {
            assertThrows(IndexOutOfBoundsException.class, action::run, op);
            check();
        }

        /** An index where {@code size} bytes do not fit. */
        int badIndex(int size) {
            int cap = model.cap();
            return switch (rnd.nextInt(5)) {
                case 0 -> -1 - rnd.nextInt(8);
                case 1 -> cap - size + 1 + rnd.nextInt(8);
                case 2 -> Integer.MAX_VALUE - rnd.nextInt(4);
                case 3 -> Integer.MIN_VALUE + rnd.nextInt(4);
                default -> cap + rnd.nextInt(3);
            } ;
        }

        boolean fits(int index, int size) {
            return index >= 0 && size >= 0 && (long) index + size <= model.cap();
        }

        /** A valid index for {@code size} bytes, or -1 when they do not fit. */
        int goodIndex(int size) {
            int cap = model.cap();
            if (size > cap) {
                return -1;
            }
            return rnd.nextInt(cap - size + 1);
        }

        /** A valid (index, length) range, biased towards short ones. */
        int[] goodRange() {
            int cap = model.cap();
            int len = rnd.nextInt(3) == 0 ? rnd.nextInt(cap + 1) : Math.min(cap, rnd.nextInt(40));
            int index = rnd.nextInt(cap - len + 1);
            return new int[] {index, len};
        }

        /** An (index, length) range that is out of bounds. */
        int[] badRange() {
            int cap = model.cap();
            return switch (rnd.nextInt(5)) {
                case 0 -> new int[] {-1 - rnd.nextInt(4), rnd.nextInt(4)};
                case 1 -> new int[] {rnd.nextInt(cap + 1), -1 - rnd.nextInt(4)};
                case 2 -> new int[] {rnd.nextInt(cap + 1), cap + 1 + rnd.nextInt(4)};
                case 3 -> new int[] {cap + 1 + rnd.nextInt(4), 0};
                default -> new int[] {1 + rnd.nextInt(Math.max(1, cap + 1)), Integer.MAX_VALUE};
            };
        }

        void oneStep() {
            int choice = rnd.nextInt(buf instanceof CompositeBuffer ? 30 : 26);
            boolean bad = rnd.nextInt(8) == 0;
            switch (choice) {
                case 0, 1, 2 -> absoluteGet(bad);
                case 3, 4, 5 -> absoluteSet(bad);
                case 6, 7 -> relativeRead(bad);
                case 8, 9 -> relativeWrite(bad);
                case 10 -> bulkArray(bad);
                case 11 -> bulkByteBuffer(bad);
                case 12 -> relativeBulk(bad);
                case 13 -> indexOf(bad);
                case 14 -> forEachByte(bad);
                case 15 -> slices(bad);
                case 16 -> duplicates();
                case 17 -> nioBuffers(bad);
                case 18 -> {
                    op = "toByteArray";
                    assertArrayEquals(Arrays.copyOfRange(model.data, model.r, model.w), buf.toByteArray());
                    assertEquals(model.w - model.r, buf.readableBytes());
                    assertEquals(model.cap() - model.w, buf.writableBytes());
                }
                case 19, 20 -> indices(bad);
                case 21 -> {
                    op = "skipBytes";
                    int n = rnd.nextInt(model.w - model.r + 1);
                    if (bad) {
                        int tooMany = rnd.nextBoolean() ? model.w - model.r + 1 + rnd.nextInt(3) : -1 - rnd.nextInt(3);
                        expectOutOfRange(() -> buf.skipBytes(tooMany));
                    } else {
                        buf.skipBytes(n);
                        model.r += n;
                    }
                }
                case 22 -> {
                    op = "clear";
                    if (rnd.nextInt(4) == 0) {
                        buf.clear();
                        model.r = 0;
                        model.w = 0;
                    }
                }
                case 23 -> writeBytesFromBuffer(bad);
                case 24 -> {
                    op = "retainedSlice write-through";
                    int[] rg = goodRange();
                    Buffer s = buf.retainedSlice(rg[0], rg[1]);
                    try {
                        if (rg[1] > 0) {
                            int at = rnd.nextInt(rg[1]);
                            byte v = (byte) rnd.nextInt();
                            s.setByte(at, v);
                            model.data[rg[0] + at] = v;
                        }
                    } finally {
                        assertTrue(s.release());
                    }
                }
                case 25 -> {
                    op = "readBytes(ByteBuffer)";
                    int n = rnd.nextInt(model.w - model.r + 1);
                    ByteBuffer dst = rnd.nextBoolean() ? ByteBuffer.allocate(n) : ByteBuffer.allocateDirect(n);
                    if (bad) {
                        ByteBuffer big = ByteBuffer.allocate(model.w - model.r + 1 + rnd.nextInt(4));
                        expectOutOfRange(() -> buf.readBytes(big));
                        assertEquals(0, big.position());
                    } else {
                        buf.readBytes(dst);
                        assertEquals(n, dst.position());
                        byte[] got = new byte[n];
                        dst.flip().get(got);
                        assertArrayEquals(Arrays.copyOfRange(model.data, model.r, model.r + n), got);
                        model.r += n;
                    }
                }
                case 26 -> discardReadComponents();
                case 27 -> removeComponent(bad);
                case 28 -> consolidate();
                default -> {
                    op = "addComponent";
                    if (model.comps.size() < 60) {
                        addRandomComponent((CompositeBuffer) buf);
                    }
                }
            }
        }

        void absoluteGet(boolean bad) {
            Accessor a = ACCESSORS[rnd.nextInt(ACCESSORS.length)];
            op = "get " + a.name;
            int index = bad ? badIndex(a.size) : goodIndex(a.size);
            if (bad || index < 0) {
                int at = index < 0 && !bad ? badIndex(a.size) : index;
                expectOutOfRange(() -> a.get.get(buf, at));
                return;
            }
            assertEquals(model.value(a, index), a.get.get(buf, index), op + " at " + index);
        }

        void absoluteSet(boolean bad) {
            Mutator m = MUTATORS[rnd.nextInt(MUTATORS.length)];
            op = "set " + m.name;
            long v = valueFor(m, rnd);
            int index = bad ? badIndex(m.size) : goodIndex(m.size);
            if (bad || index < 0) {
                int at = index < 0 && !bad ? badIndex(m.size) : index;
                expectOutOfRange(() -> m.set.set(buf, at, v));
                return;
            }
            m.set.set(buf, index, v);
            model.put(m, index, v);
        }

        void relativeRead(boolean bad) {
            Accessor a = ACCESSORS[rnd.nextInt(ACCESSORS.length)];
            op = "read " + a.name;
            if (model.w - model.r < a.size) {
                expectOutOfRange(() -> a.read.read(buf));
                return;
            }
            if (bad) {
                // Move the writer index so that fewer bytes than needed are readable.
                int w = model.r + rnd.nextInt(a.size);
                buf.writerIndex(w);
                model.w = w;
                expectOutOfRange(() -> a.read.read(buf));
                return;
            }
            long expected = model.value(a, model.r);
            assertEquals(expected, a.read.read(buf), op + " at " + model.r);
            model.r += a.size;
        }

        void relativeWrite(boolean bad) {
            Mutator m = MUTATORS[rnd.nextInt(MUTATORS.length)];
            op = "write " + m.name;
            long v = valueFor(m, rnd);
            if (model.cap() - model.w < m.size || bad) {
                if (model.cap() - model.w >= m.size) {
                    // Move the writer index close to the end.
                    int w = Math.max(model.r, model.cap() - m.size + 1);
                    buf.writerIndex(w);
                    model.w = w;
                    if (model.cap() - model.w >= m.size) {
                        return; // the reader index is too far on: nothing to provoke
                    }
                }
                expectOutOfRange(() -> m.write.write(buf, v));
                return;
            }
            m.write.write(buf, v);
            model.put(m, model.w, v);
            model.w += m.size;
        }

        void bulkArray(boolean bad) {
            boolean get = rnd.nextBoolean();
            op = get ? "getBytes(byte[])" : "setBytes(byte[])";
            int[] rg = bad ? badRange() : goodRange();
            int pad = rnd.nextInt(5);
            int arrayLength = Math.max(0, rg[1]) + pad + rnd.nextInt(5);
            if (bad && rg[1] > 1_000_000) {
                arrayLength = 8;
            }
            byte[] array = randomBytes(arrayLength);
            byte[] before = array.clone();
            int offset = pad;
            if (bad) {
                byte[] arr = array;
                if (get) {
                    expectOutOfRange(() -> buf.getBytes(rg[0], arr, offset, rg[1]));
                    assertArrayEquals(before, arr, "destination untouched");
                } else {
                    expectOutOfRange(() -> buf.setBytes(rg[0], arr, offset, rg[1]));
                }
                return;
            }
            if (rnd.nextInt(6) == 0) {
                // A bad array range with a good buffer range.
                int badOffset = rnd.nextBoolean() ? -1 : arrayLength - rg[1] + 1;
                if (get) {
                    expectOutOfRange(() -> buf.getBytes(rg[0], array, badOffset, rg[1]));
                    assertArrayEquals(before, array);
                } else {
                    expectOutOfRange(() -> buf.setBytes(rg[0], array, badOffset, rg[1]));
                }
                return;
            }
            if (get) {
                buf.getBytes(rg[0], array, offset, rg[1]);
                byte[] expected = before.clone();
                System.arraycopy(model.data, rg[0], expected, offset, rg[1]);
                assertArrayEquals(expected, array, op);
            } else {
                buf.setBytes(rg[0], array, offset, rg[1]);
                System.arraycopy(array, offset, model.data, rg[0], rg[1]);
            }
        }

        void bulkByteBuffer(boolean bad) {
            boolean get = rnd.nextBoolean();
            boolean direct = rnd.nextBoolean();
            op = (get ? "getBytes" : "setBytes") + (direct ? "(direct ByteBuffer)" : "(heap ByteBuffer)");
            int[] rg = goodRange();
            int len = rg[1];
            int index = rg[0];
            if (bad) {
                index = rnd.nextBoolean() ? -1 - rnd.nextInt(3) : model.cap() - len + 1 + rnd.nextInt(3);
            }
            int pad = rnd.nextInt(6);
            ByteBuffer bb = direct ? ByteBuffer.allocateDirect(len + 2 * pad) : ByteBuffer.allocate(len + 2 * pad);
            byte[] content = randomBytes(len + 2 * pad);
            bb.put(content).clear();
            bb.position(pad).limit(pad + len);
            if (bad) {
                int at = index;
                if (get) {
                    expectOutOfRange(() -> buf.getBytes(at, bb));
                } else {
                    expectOutOfRange(() -> buf.setBytes(at, bb));
                }
                assertEquals(pad, bb.position(), "position untouched");
                return;
            }
            if (get) {
                buf.getBytes(index, bb);
                byte[] expected = content.clone();
                System.arraycopy(model.data, index, expected, pad, len);
                byte[] got = new byte[content.length];
                bb.duplicate().clear().get(0, got);
                assertArrayEquals(expected, got, op);
            } else {
                buf.setBytes(index, bb);
                System.arraycopy(content, pad, model.data, index, len);
            }
            assertEquals(pad + len, bb.position(), "position advanced");
            assertEquals(pad + len, bb.limit(), "limit kept");
        }

        void relativeBulk(boolean bad) {
            boolean read = rnd.nextBoolean();
            if (read) {
                op = "readBytes(byte[])";
                int readable = model.w - model.r;
                int n = bad ? readable + 1 + rnd.nextInt(3) : rnd.nextInt(readable + 1);
                byte[] dst = new byte[n + 2];
                if (bad) {
                    expectOutOfRange(() -> buf.readBytes(dst, 1, n));
                    assertArrayEquals(new byte[n + 2], dst);
                    return;
                }
                buf.readBytes(dst, 1, n);
                assertArrayEquals(Arrays.copyOfRange(model.data, model.r, model.r + n), Arrays.copyOfRange(dst, 1, n + 1));
                model.r += n;
            } else {
                boolean direct = rnd.nextBoolean();
                op = rnd.nextBoolean() ? "writeBytes(byte[])" : "writeBytes(ByteBuffer)";
                int writable = model.cap() - model.w;
                int n = bad ? writable + 1 + rnd.nextInt(3) : rnd.nextInt(Math.min(writable, 300) + 1);
                byte[] src = randomBytes(n);
                if (op.equals("writeBytes(byte[])")) {
                    if (bad) {
                        expectOutOfRange(() -> buf.writeBytes(src));
                        return;
                    }
                    buf.writeBytes(src);
                } else {
                    ByteBuffer bb = direct ? ByteBuffer.allocateDirect(n) : ByteBuffer.allocate(n);
                    bb.put(src).flip();
                    if (bad) {
                        expectOutOfRange(() -> buf.writeBytes(bb));
                        assertEquals(0, bb.position());
                        return;
                    }
                    buf.writeBytes(bb);
                    assertEquals(n, bb.position());
                }
                System.arraycopy(src, 0, model.data, model.w, n);
                model.w += n;
            }
        }

        void writeBytesFromBuffer(boolean bad) {
            op = "writeBytes(Buffer)";
            int writable = model.cap() - model.w;
            int n = bad ? writable + 1 + rnd.nextInt(3) : rnd.nextInt(Math.min(writable, 100) + 1);
            byte[] content = randomBytes(n);
            Buffer src;
            if (rnd.nextBoolean() || n < 2) {
                src = BufferAllocator.pooled().copyOf(content);
            } else {
                int cut = rnd.nextInt(n);
                src = BufferAllocator.unpooled().composite(
                        BufferAllocator.pooled().copyOf(Arrays.copyOf(content, cut)),
                        BufferAllocator.unpooled().allocate(0),
                        BufferAllocator.unpooled().copyOf(Arrays.copyOfRange(content, cut, n)));
            }
            try {
                if (bad) {
                    expectOutOfRange(() -> buf.writeBytes(src));
                    assertEquals(0, src.readerIndex(), "source untouched");
                    return;
                }
                buf.writeBytes(src);
                assertEquals(src.writerIndex(), src.readerIndex(), "source consumed");
                System.arraycopy(content, 0, model.data, model.w, n);
                model.w += n;
            } finally {
                assertTrue(src.release());
            }
        }

        void indexOf(boolean bad) {
            op = "indexOf";
            int[] rg = goodRange();
            int from = rg[0];
            int to = rg[0] + rg[1];
            byte value = rnd.nextBoolean() && model.cap() > 0
                    ? model.data[rnd.nextInt(model.cap())]
                    : (byte) rnd.nextInt();
            if (bad) {
                int f;
                int t;
                switch (rnd.nextInt(3)) {
                    case 0 -> {
                        f = -1 - rnd.nextInt(3);
                        t = to;
                    }
                    case 1 -> {
                        f = from;
                        t = model.cap() + 1 + rnd.nextInt(3);
                    }
                    default -> {
                        f = to + 1;
                        t = to; // from > to
                    }
                }
                expectOutOfRange(() -> buf.indexOf(f, t, value));
                return;
            }
            int expected = -1;
            for (int i = from; i < to; i++) {
                if (model.data[i] == value) {
                    expected = i;
                    break;
                }
            }
            assertEquals(expected, buf.indexOf(from, to, value), "indexOf(" + from + ", " + to + ", " + value + ")");
        }

        void forEachByte(boolean bad) {
            op = "forEachByte";
            boolean readable = rnd.nextInt(4) == 0;
            int[] rg = readable ? new int[] {model.r, model.w - model.r} : goodRange();
            int stopAfter = rnd.nextInt(rg[1] + 2); // may never stop
            List<Byte> seen = new ArrayList<>();
            ByteProcessor p = v -> {
                seen.add(v);
                return seen.size() <= stopAfter;
            };
            if (bad && !readable) {
                int[] b = badRange();
                expectOutOfRange(() -> buf.forEachByte(b[0], b[1], p));
                assertTrue(seen.isEmpty(), "no byte visited");
                return;
            }
            int result = readable ? buf.forEachByte(p) : buf.forEachByte(rg[0], rg[1], p);
            int visited = Math.min(rg[1], stopAfter + 1);
            int expectedResult = stopAfter < rg[1] ? rg[0] + stopAfter : -1;
            assertEquals(expectedResult, result, op + " stopping after " + stopAfter + " of " + rg[1]);
            assertEquals(visited, seen.size(), "bytes visited");
            for (int i = 0; i < visited; i++) {
                assertEquals(model.data[rg[0] + i], seen.get(i).byteValue(), "visited byte " + i);
            }
        }

        void slices(boolean bad) {
            int kind = rnd.nextInt(3);
            op = switch (kind) {
                case 0 -> "slice";
                case 1 -> "retainedSlice";
                default -> "slice()";
            };
            if (bad && kind < 2) {
                int[] b = badRange();
                expectOutOfRange(() -> {
                    if (kind == 0) {
                        buf.slice(b[0], b[1]);
                    } else {
                        buf.retainedSlice(b[0], b[1]);
                    }
                });
                return;
            }
            int[] rg = kind == 2 ? new int[] {model.r, model.w - model.r} : goodRange();
            Buffer s = switch (kind) {
                case 0 -> buf.slice(rg[0], rg[1]);
                case 1 -> buf.retainedSlice(rg[0], rg[1]);
                default -> buf.slice();
            };
            try {
                assertEquals(rg[1], s.capacity());
                assertEquals(0, s.readerIndex());
                assertEquals(rg[1], s.writerIndex());
                assertArrayEquals(Arrays.copyOfRange(model.data, rg[0], rg[0] + rg[1]), s.toByteArray(), op);
                if (kind == 1) {
                    assertEquals(1, s.refCnt(), "a retained slice has its own count");
                } else {
                    assertEquals(buf.refCnt(), s.refCnt(), "a slice shares the count");
                }
                // Reads at random offsets of the slice (crossing components of a composite).
                for (int k = 0; k < 4 && rg[1] > 0; k++) {
                    Accessor a = ACCESSORS[rnd.nextInt(ACCESSORS.length)];
                    if (a.size <= rg[1]) {
                        int at = rnd.nextInt(rg[1] - a.size + 1);
                        assertEquals(model.value(a, rg[0] + at), a.get.get(s, at), "slice " + a.name);
                    }
                    assertThrows(IndexOutOfBoundsException.class, () -> a.get.get(s, rg[1] - a.size + 1));
                }
                // Writes through a slice land in the parent.
                if (rg[1] >= 8) {
                    Mutator m = MUTATORS[rnd.nextInt(MUTATORS.length)];
                    long v = valueFor(m, rnd);
                    int at = rnd.nextInt(rg[1] - m.size + 1);
                    m.set.set(s, at, v);
                    model.put(m, rg[0] + at, v);
                }
                // A slice of the slice.
                if (rg[1] > 0) {
                    int i2 = rnd.nextInt(rg[1]);
                    int l2 = rnd.nextInt(rg[1] - i2 + 1);
                    Buffer s2 = s.slice(i2, l2);
                    assertArrayEquals(Arrays.copyOfRange(model.data, rg[0] + i2, rg[0] + i2 + l2), s2.toByteArray());
                }
            } finally {
                if (kind == 1) {
                    assertTrue(s.release());
                    assertEquals(1, buf.refCnt(), "releasing a retained slice leaves the parent's count alone");
                }
            }
        }

        void duplicates() {
            boolean retained = rnd.nextBoolean();
            op = retained ? "retainedDuplicate" : "duplicate";
            Buffer d = retained ? buf.retainedDuplicate() : buf.duplicate();
            try {
                assertEquals(model.cap(), d.capacity());
                assertEquals(model.r, d.readerIndex());
                assertEquals(model.w, d.writerIndex());
                byte[] all = new byte[model.cap()];
                d.getBytes(0, all);
                assertArrayEquals(model.data, all);
                // Indices are the duplicate's own.
                d.setIndex(0, 0);
                assertEquals(model.r, buf.readerIndex());
                assertEquals(model.w, buf.writerIndex());
                if (model.cap() >= 4) {
                    int at = rnd.nextInt(model.cap() - 3);
                    int v = rnd.nextInt();
                    d.setIntLE(at, v);
                    model.put(MUTATORS[7], at, v);
                }
            } finally {
                if (retained) {
                    assertTrue(d.release());
                }
            }
        }

        void nioBuffers(boolean bad) {
            op = "nioBuffers";
            if (bad) {
                int[] b = badRange();
                expectOutOfRange(() -> buf.nioBuffers(b[0], b[1]));
                return;
            }
            boolean readable = rnd.nextBoolean();
            int[] rg = readable ? new int[] {model.r, model.w - model.r} : goodRange();
            ByteBuffer[] pieces = readable ? buf.nioBuffers() : buf.nioBuffers(rg[0], rg[1]);
            if (readable) {
                assertEquals(pieces.length, buf.nioBufferCount());
            }
            byte[] joined = new byte[rg[1]];
            int at = 0;
            for (ByteBuffer p : pieces) {
                assertTrue(p.isDirect(), "views are direct");
                assertTrue(p.hasRemaining(), "no empty views");
                int n = p.remaining();
                p.duplicate().get(joined, at, n);
                at += n;
            }
            assertEquals(rg[1], at, "views cover the range");
            assertArrayEquals(Arrays.copyOfRange(model.data, rg[0], rg[0] + rg[1]), joined, op);
            if (buf instanceof NativeBuffer) {
                assertEquals(rg[1] == 0 ? 0 : 1, pieces.length);
            } else {
                // One view per non-empty component touched.
                int expected = 0;
                int start = 0;
                for (int len : model.comps) {
                    int end = start + len;
                    if (len > 0 && rg[1] > 0 && end > rg[0] && start < rg[0] + rg[1]) {
                        expected++;
                    }
                    start = end;
                }
                assertEquals(expected, pieces.length, "one view per component");
            }
            ByteBuffer one = buf.nioBuffer(rg[0], rg[1]);
            byte[] single = new byte[one.remaining()];
            one.duplicate().get(single);
            assertArrayEquals(Arrays.copyOfRange(model.data, rg[0], rg[0] + rg[1]), single, "nioBuffer");
            // Views write through (for one component).
            if (pieces.length == 1 && rg[1] > 0) {
                byte v = (byte) rnd.nextInt();
                pieces[0].put(pieces[0].position(), v);
                model.data[rg[0]] = v; // the only view starts at the range's first byte
            }
        }

        void indices(boolean bad) {
            int cap = model.cap();
            switch (rnd.nextInt(3)) {
                case 0 -> {
                    op = "readerIndex";
                    if (bad) {
                        int i = rnd.nextBoolean() ? -1 : model.w + 1 + rnd.nextInt(3);
                        expectOutOfRange(() -> buf.readerIndex(i));
                    } else {
                        int i = rnd.nextInt(model.w + 1);
                        buf.readerIndex(i);
                        model.r = i;
                    }
                }
                case 1 -> {
                    op = "writerIndex";
                    if (bad) {
                        int i = rnd.nextBoolean() && model.r > 0 ? model.r - 1 : cap + 1 + rnd.nextInt(3);
                        expectOutOfRange(() -> buf.writerIndex(i));
                    } else {
                        int i = model.r + rnd.nextInt(cap - model.r + 1);
                        buf.writerIndex(i);
                        model.w = i;
                    }
                }
                default -> {
                    op = "setIndex";
                    if (bad) {
                        int[][] cases = {{-1, 0}, {1, 0}, {0, cap + 1}, {cap + 1, cap + 1}};
                        int[] c = cases[rnd.nextInt(cases.length)];
                        if (c[0] == 1 && cap == 0) {
                            c = cases[0];
                        }
                        int[] cc = c;
                        expectOutOfRange(() -> buf.setIndex(cc[0], cc[1]));
                    } else {
                        int w = rnd.nextInt(cap + 1);
                        int r = rnd.nextInt(w + 1);
                        buf.setIndex(r, w);
                        model.r = r;
                        model.w = w;
                    }
                }
            }
        }

        // ---- composite structure ----

        void discardReadComponents() {
            op = "discardReadComponents";
            CompositeBuffer c = (CompositeBuffer) buf;
            if (rnd.nextBoolean() && model.w > 0) {
                int r = rnd.nextInt(model.w + 1);
                buf.readerIndex(r);
                model.r = r;
            }
            c.discardReadComponents();
            int k = 0;
            int shift = 0;
            int end = 0;
            for (int len : model.comps) {
                end += len;
                if (end > model.r) {
                    break;
                }
                k++;
                shift = end;
            }
            model.comps.subList(0, k).clear();
            model.data = Arrays.copyOfRange(model.data, shift, model.data.length);
            model.r -= shift;
            model.w -= shift;
            if (model.comps.isEmpty()) {
                addRandomComponent(c);
                model.r = 0;
                buf.readerIndex(0);
            }
        }

        void removeComponent(boolean bad) {
            op = "removeComponent";
            CompositeBuffer c = (CompositeBuffer) buf;
            int n = model.comps.size();
            if (bad) {
                int i = rnd.nextBoolean() ? -1 : n + rnd.nextInt(3);
                expectOutOfRange(() -> c.removeComponent(i));
                return;
            }
            if (n <= 1) {
                addRandomComponent(c);
                return;
            }
            int i = rnd.nextInt(n);
            int start = 0;
            for (int k = 0; k < i; k++) {
                start += model.comps.get(k);
            }
            int len = model.comps.remove(i);
            c.removeComponent(i);
            byte[] d = new byte[model.data.length - len];
            System.arraycopy(model.data, 0, d, 0, start);
            System.arraycopy(model.data, start + len, d, start, d.length - start);
            model.data = d;
            model.r = shiftDown(model.r, start, len);
            model.w = shiftDown(model.w, start, len);
        }

        static int shiftDown(int index, int start, int length) {
            if (index <= start) {
                return index;
            }
            return index >= start + length ? index - length : start;
        }

        void consolidate() {
            op = "consolidate";
            CompositeBuffer c = (CompositeBuffer) buf;
            if (rnd.nextInt(3) != 0) {
                return; // keep components around most of the time
            }
            c.consolidate();
            if (model.comps.size() > 1) {
                model.comps.clear();
                model.comps.add(model.cap());
            }
            assertEquals(Math.min(1, model.comps.size()), Math.min(1, c.numComponents()));
        }
    }
}
