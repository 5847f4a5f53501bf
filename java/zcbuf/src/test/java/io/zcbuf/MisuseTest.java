package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ReadOnlyBufferException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every misuse gets its own exception, touches no freed memory, and leaks nothing. */
class MisuseTest {
    @TempDir
    Path dir;

    private long handlesBefore;

    @BeforeEach
    void recordHandles() {
        handlesBefore = BufferAllocator.liveNativeHandles();
    }

    @AfterEach
    void nothingLeaked() {
        assertEquals(handlesBefore, BufferAllocator.liveNativeHandles(), "native handles leaked by the test");
    }

    private Path file(String content) throws IOException {
        Path p = dir.resolve("f" + System.nanoTime());
        Files.write(p, content.getBytes(StandardCharsets.US_ASCII));
        return p;
    }

    /** Makes a fresh buffer of the named kind, with 16 readable bytes 0..15. */
    private Buffer make(String kind) throws IOException {
        byte[] bytes = new byte[16];
        for (int i = 0; i < 16; i++) {
            bytes[i] = (byte) i;
        }
        return switch (kind) {
            case "pooled" -> BufferAllocator.pooled().copyOf(bytes);
            case "unpooled" -> BufferAllocator.unpooled().copyOf(bytes);
            case "wrapped" -> BufferAllocator.unpooled().wrap(ByteBuffer.allocateDirect(16).put(bytes).flip());
            case "mapped" -> BufferAllocator.unpooled().mapFile(Files.write(dir.resolve("m" + System.nanoTime()), bytes));
            case "composite" -> BufferAllocator.pooled().composite(
                    BufferAllocator.pooled().copyOf(java.util.Arrays.copyOf(bytes, 5)),
                    BufferAllocator.unpooled().allocate(0),
                    BufferAllocator.unpooled().copyOf(java.util.Arrays.copyOfRange(bytes, 5, 16)));
            default -> throw new IllegalArgumentException(kind);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"pooled", "unpooled", "wrapped", "mapped", "composite"})
    void doubleReleaseAndUseAfterReleaseThrowIllegalReferenceCount(String kind) throws IOException {
        Buffer b = make(kind);
        Buffer slice = b.slice(2, 4);
        Buffer dup = b.duplicate();
        assertEquals(1, b.refCnt());
        assertTrue(b.release());
        assertEquals(0, b.refCnt());
        assertEquals(0, slice.refCnt(), "a slice shares its parent's count");
        for (Buffer x : List.of(b, slice, dup)) {
            List<Executable> uses = List.of(
                    x::release,
                    () -> x.release(1),
                    x::close,
                    x::retain,
                    () -> x.retain(2),
                    () -> x.getByte(0),
                    () -> x.getInt(0),
                    () -> x.getLongLE(0),
                    () -> x.getBytes(0, new byte[1]),
                    () -> x.setByte(0, 1),
                    () -> x.setInt(0, 1),
                    () -> x.setBytes(0, new byte[1]),
                    x::readByte,
                    x::readInt,
                    () -> x.writeByte(1),
                    () -> x.writeLong(1),
                    () -> x.writeBytes(new byte[1]),
                    x::slice,
                    () -> x.slice(0, 1),
                    x::duplicate,
                    x::retainedSlice,
                    x::retainedDuplicate,
                    x::nioBuffers,
                    () -> x.nioBuffers(0, 1),
                    x::nioBuffer,
                    x::nioBufferCount,
                    x::toByteArray,
                    () -> x.indexOf(0, 1, (byte) 0),
                    () -> x.forEachByte(v -> true),
                    () -> x.readerIndex(0),
                    () -> x.writerIndex(0),
                    x::clear,
                    () -> x.skipBytes(0));
            for (Executable use : uses) {
                assertThrows(IllegalReferenceCountException.class, use);
            }
            assertEquals(0, x.refCnt(), "failed calls did not resurrect the count");
        }
        if (b instanceof CompositeBuffer c) {
            assertThrows(IllegalReferenceCountException.class, () -> c.component(0));
            assertThrows(IllegalReferenceCountException.class, () -> c.removeComponent(0));
            assertThrows(IllegalReferenceCountException.class, c::consolidate);
            assertThrows(IllegalReferenceCountException.class, c::discardReadComponents);
            NativeBuffer late = BufferAllocator.pooled().allocate(8);
            assertThrows(IllegalReferenceCountException.class, () -> c.addComponent(late));
            assertEquals(0, late.refCnt(), "a buffer that cannot be added is released, not leaked");
        }
    }

    @Test
    void releaseMoreThanRetainedThrowsAndKeepsTheCount() {
        NativeBuffer b = BufferAllocator.unpooled().allocate(8);
        b.retain(2);
        assertEquals(3, b.refCnt());
        assertThrows(IllegalReferenceCountException.class, () -> b.release(4));
        assertEquals(3, b.refCnt());
        assertThrows(IllegalArgumentException.class, () -> b.release(0));
        assertThrows(IllegalArgumentException.class, () -> b.retain(0));
        assertThrows(IllegalArgumentException.class, () -> b.retain(-1));
        assertThrows(IllegalReferenceCountException.class, () -> b.retain(Integer.MAX_VALUE));
        assertEquals(3, b.refCnt());
        assertFalse(b.release(2));
        assertTrue(b.release());
        assertThrows(IllegalReferenceCountException.class, b::release);
    }

    @Test
    void outOfRangeAndNegativeArgumentsThrowIndexOutOfBounds() {
        try (NativeBuffer b = BufferAllocator.pooled().allocate(16)) {
            List<Executable> bad = List.of(
                    () -> b.getByte(-1),
                    () -> b.getByte(16),
                    () -> b.getShort(15),
                    () -> b.getInt(13),
                    () -> b.getLong(9),
                    () -> b.getLong(Integer.MAX_VALUE),
                    () -> b.getInt(Integer.MIN_VALUE),
                    () -> b.setLong(-8, 0),
                    () -> b.setInt(13, 0),
                    () -> b.getBytes(0, new byte[17]),
                    () -> b.getBytes(-1, new byte[1]),
                    () -> b.getBytes(0, new byte[4], 2, 3),
                    () -> b.getBytes(0, new byte[4], -1, 2),
                    () -> b.getBytes(0, new byte[4], 0, -1),
                    () -> b.setBytes(10, new byte[7]),
                    () -> b.setBytes(0, ByteBuffer.allocate(17)),
                    () -> b.readByte(),
                    () -> b.readBytes(new byte[1]),
                    () -> b.readBytes(new byte[1], 0, -1),
                    () -> b.skipBytes(-1),
                    () -> b.skipBytes(1),
                    () -> b.readerIndex(-1),
                    () -> b.readerIndex(1),
                    () -> b.writerIndex(17),
                    () -> b.setIndex(2, 1),
                    () -> b.slice(8, 9),
                    () -> b.slice(-1, 1),
                    () -> b.slice(1, -1),
                    () -> b.retainedSlice(0, 17),
                    () -> b.nioBuffers(0, 17),
                    () -> b.nioBuffer(17, 0),
                    () -> b.indexOf(0, 17, (byte) 0),
                    () -> b.indexOf(5, 4, (byte) 0),
                    () -> b.forEachByte(-1, 2, v -> true),
                    () -> b.forEachByte(0, Integer.MAX_VALUE, v -> true),
                    () -> b.writeBytes(new byte[17]),
                    () -> b.writeBytes(new byte[4], 3, 2));
            for (Executable e : bad) {
                assertThrows(IndexOutOfBoundsException.class, e);
            }
            assertEquals(0, b.readerIndex());
            assertEquals(0, b.writerIndex());
            b.writerIndex(16);
            assertThrows(IndexOutOfBoundsException.class, () -> b.writeByte(1));
            assertEquals(1, b.refCnt());
        }
        try (CompositeBuffer c = BufferAllocator.unpooled().composite(BufferAllocator.unpooled().allocate(4))) {
            assertThrows(IndexOutOfBoundsException.class, () -> c.component(1));
            assertThrows(IndexOutOfBoundsException.class, () -> c.component(-1));
            assertThrows(IndexOutOfBoundsException.class, () -> c.removeComponent(1));
            assertThrows(IndexOutOfBoundsException.class, () -> c.getInt(1));
            assertEquals(1, c.numComponents());
        }
    }

    @Test
    void nullArgumentsThrowNullPointer() throws IOException {
        BufferAllocator alloc = BufferAllocator.pooled();
        try (NativeBuffer b = alloc.allocate(16); CompositeBuffer c = alloc.composite()) {
            List<Executable> nulls = List.of(
                    () -> b.getBytes(0, (byte[]) null),
                    () -> b.getBytes(0, (byte[]) null, 0, 0),
                    () -> b.getBytes(0, (ByteBuffer) null),
                    () -> b.setBytes(0, (byte[]) null),
                    () -> b.setBytes(0, (ByteBuffer) null),
                    () -> b.readBytes((byte[]) null),
                    () -> b.readBytes((ByteBuffer) null),
                    () -> b.writeBytes((byte[]) null),
                    () -> b.writeBytes((ByteBuffer) null),
                    () -> b.writeBytes((Buffer) null),
                    () -> b.forEachByte(null),
                    () -> b.forEachByte(0, 1, null),
                    () -> b.toString(null),
                    () -> c.addComponent(null),
                    () -> c.addComponents((Buffer[]) null),
                    () -> c.addComponents((Iterable<Buffer>) null),
                    () -> alloc.copyOf(null),
                    () -> alloc.wrap(null),
                    () -> alloc.mapFile(null),
                    () -> alloc.mapFile(null, 0, 1),
                    () -> ZeroCopyWriter.open((java.nio.channels.SocketChannel) null),
                    () -> ZeroCopyWriter.open((java.nio.channels.DatagramChannel) null),
                    () -> ZeroCopyWriter.open(java.nio.channels.Pipe.open().sink(), null, 0),
                    () -> LeakDetector.setLevel(null),
                    () -> LeakDetector.setReporter(null));
            for (Executable e : nulls) {
                assertThrows(NullPointerException.class, e);
            }
            assertEquals(0, c.numComponents());
        }
        // The native side refuses nulls too, as NullPointerException, not a crash.
        assertThrows(NullPointerException.class, () -> Native.allocate(8, false, null));
        assertThrows(NullPointerException.class, () -> Native.mapFile(null, 0, 1, new long[1]));
        assertThrows(NullPointerException.class, () -> Native.wrap(null, 0, 0, new long[1]));
        assertThrows(NullPointerException.class, () -> Native.writerWrite(1, null, null, null, 0, false));
    }

    @Test
    void badSizesAndHeapBuffersThrowIllegalArgument() {
        assertThrows(IllegalArgumentException.class, () -> BufferAllocator.pooled().allocate(-1));
        assertThrows(IllegalArgumentException.class, () -> BufferAllocator.unpooled().allocate(Integer.MIN_VALUE));
        assertThrows(IllegalArgumentException.class, () -> BufferAllocator.unpooled().wrap(ByteBuffer.allocate(8)));
        assertThrows(IllegalArgumentException.class,
                () -> BufferAllocator.unpooled().wrap(ByteBuffer.allocate(8).asReadOnlyBuffer()));
        assertThrows(IllegalArgumentException.class, () -> Native.wrap(ByteBuffer.allocate(8), 0, 8, new long[1]));
        // The native side checks ranges of a direct buffer itself.
        assertThrows(IndexOutOfBoundsException.class,
                () -> Native.wrap(ByteBuffer.allocateDirect(8), 4, 5, new long[1]));
        assertThrows(IndexOutOfBoundsException.class,
                () -> Native.wrap(ByteBuffer.allocateDirect(8), -1, 1, new long[1]));
        assertThrows(IllegalArgumentException.class,
                () -> ZeroCopyWriter.open(java.nio.channels.Pipe.open().sink(), ZeroCopyMode.AUTO, -1));
        try (NativeBuffer empty = BufferAllocator.pooled().allocate(0)) {
            assertEquals(0, empty.capacity());
            assertEquals(0, empty.nioBuffers().length);
        }
    }

    @Test
    void mappedFilesAreReadOnly() throws IOException {
        Path p = file("0123456789");
        try (NativeBuffer m = BufferAllocator.pooled().mapFile(p)) {
            assertTrue(m.isReadOnly());
            assertEquals("0123456789", m.toString(StandardCharsets.US_ASCII));
            List<Executable> writes = List.of(
                    () -> m.setByte(0, 1),
                    () -> m.setInt(0, 1),
                    () -> m.setLongLE(2, 1),
                    () -> m.setBytes(0, new byte[2]),
                    () -> m.setBytes(0, ByteBuffer.allocate(2)),
                    () -> m.duplicate().setByte(0, 1),
                    () -> m.slice(1, 3).setShort(0, 1));
            for (Executable e : writes) {
                assertThrows(ReadOnlyBufferException.class, e);
            }
            m.writerIndex(5);
            assertThrows(ReadOnlyBufferException.class, () -> m.writeByte(1));
            assertThrows(ReadOnlyBufferException.class, () -> m.writeBytes(new byte[1]));
            ByteBuffer view = m.nioBuffers()[0];
            assertTrue(view.isReadOnly(), "NIO views of a mapped file are read-only too");
            assertThrows(ReadOnlyBufferException.class, () -> view.put(0, (byte) 1));
            assertEquals("0123456789", new String(Files.readAllBytes(p), StandardCharsets.US_ASCII));
            assertEquals('0', m.getByte(0));
        }
        try (NativeBuffer part = BufferAllocator.unpooled().mapFile(p, 2, 3)) {
            assertEquals("234", part.toString(StandardCharsets.US_ASCII));
        }
        try (NativeBuffer tail = BufferAllocator.unpooled().mapFile(p, 4, -1)) {
            assertEquals("456789", tail.toString(StandardCharsets.US_ASCII));
        }
        // A composite with a mapped component refuses writes.
        try (CompositeBuffer c = BufferAllocator.pooled().composite(
                BufferAllocator.pooled().copyOf(new byte[4]), BufferAllocator.pooled().mapFile(p))) {
            assertTrue(c.isReadOnly());
            assertThrows(ReadOnlyBufferException.class, () -> c.setByte(0, 1));
            assertThrows(ReadOnlyBufferException.class, () -> c.setByte(6, 1));
            assertEquals('6', c.getByte(10));
            c.removeComponent(1);
            assertFalse(c.isReadOnly(), "read-only no more once the mapped component is gone");
            c.setByte(0, 7);
            assertEquals(7, c.getByte(0));
        }
        // Read-only direct buffers give read-only wraps.
        try (NativeBuffer ro = BufferAllocator.unpooled().wrap(ByteBuffer.allocateDirect(4).asReadOnlyBuffer())) {
            assertTrue(ro.isReadOnly());
            assertThrows(ReadOnlyBufferException.class, () -> ro.setByte(0, 1));
        }
    }

    @Test
    void mapFileRangesOutsideTheFileThrowIndexOutOfBounds() throws IOException {
        Path p = file("0123456789");
        BufferAllocator a = BufferAllocator.unpooled();
        assertThrows(IndexOutOfBoundsException.class, () -> a.mapFile(p, 8, 5));
        assertThrows(IndexOutOfBoundsException.class, () -> a.mapFile(p, -1, 5));
        assertThrows(IndexOutOfBoundsException.class, () -> a.mapFile(p, 0, 11));
        assertThrows(IndexOutOfBoundsException.class, () -> a.mapFile(p, 11, -1));
        assertThrows(IndexOutOfBoundsException.class, () -> a.mapFile(p, Long.MAX_VALUE, 2));
        try (NativeBuffer whole = a.mapFile(p, 0, 10)) {
            assertEquals(10, whole.capacity());
        }
        try (NativeBuffer none = a.mapFile(p, 10, 0)) {
            assertEquals(0, none.capacity());
        }
    }

    @Test
    void aMissingFileThrowsUncheckedIOExceptionNamingThePath() {
        Path missing = dir.resolve("does-not-exist");
        UncheckedIOException e =
                assertThrows(UncheckedIOException.class, () -> BufferAllocator.pooled().mapFile(missing));
        assertInstanceOf(IOException.class, e.getCause());
        assertTrue(e.getMessage().contains("does-not-exist"), e.getMessage());
        // A directory is not a mappable file either.
        assertThrows(UncheckedIOException.class, () -> BufferAllocator.pooled().mapFile(dir));
    }

    @Test
    void forgedAndStaleHandlesThrowStaleHandleException() {
        for (long forged : new long[] {0L, -1L, 1L, 0x7fff_ffff_0000_0000L, Long.MIN_VALUE, 0x0000_0001_00ff_ffffL}) {
            assertThrows(StaleHandleException.class, () -> Native.release(forged), Long.toHexString(forged));
            assertThrows(StaleHandleException.class, () -> Native.writerStats(forged));
            assertThrows(StaleHandleException.class, () -> Native.writerAutoDecision(forged));
            assertThrows(StaleHandleException.class, () -> Native.writerFlush(forged, 0));
            assertThrows(StaleHandleException.class, () -> Native.writerClose(forged));
            assertThrows(StaleHandleException.class,
                    () -> Native.writerWrite(forged, new long[0], new int[0], new int[0], 0, false));
        }
        // Unpooled: a released pool block stays live in the thread's cache for reuse.
        NativeBuffer b = BufferAllocator.unpooled().allocate(32);
        long h = b.memory.handle();
        // A memory handle is not a writer.
        assertThrows(StaleHandleException.class, () -> Native.writerStats(h));
        assertThrows(StaleHandleException.class, () -> Native.writerClose(h));
        // Handles of another generation or slot are refused.
        assertThrows(StaleHandleException.class, () -> Native.release(h + (1L << 32)));
        assertThrows(StaleHandleException.class, () -> Native.release(h ^ 0x8000_0000L));
        b.setLong(0, 42);
        assertTrue(b.release());
        assertThrows(StaleHandleException.class, () -> Native.release(h), "released already");
        // The slot's next occupant has a new handle; the old one stays dead.
        try (NativeBuffer next = BufferAllocator.unpooled().allocate(32)) {
            assertThrows(StaleHandleException.class, () -> Native.release(h));
            assertEquals(1, next.refCnt());
            next.setLong(0, 7);
            assertEquals(7, next.getLong(0));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"pooled", "unpooled", "wrapped", "composite"})
    void slicesShareTheCountAndRetainedSlicesKeepTheMemory(String kind) throws IOException {
        long poolBefore = BufferAllocator.poolStats().liveBuffers();
        Buffer b = make(kind);
        Buffer slice = b.slice(1, 10);
        Buffer dup = b.duplicate();
        Buffer rs = b.retainedSlice(3, 10);
        Buffer rd = b.retainedDuplicate();
        assertEquals(1, b.refCnt());
        assertEquals(1, rs.refCnt());
        assertEquals(1, rd.refCnt());
        slice.retain();
        assertEquals(2, b.refCnt(), "retaining a slice retains the parent");
        assertFalse(b.release());
        assertEquals(1, dup.refCnt());
        assertTrue(dup.release(), "releasing a duplicate releases the parent");
        assertThrows(IllegalReferenceCountException.class, () -> slice.getByte(0));
        assertThrows(IllegalReferenceCountException.class, () -> b.getByte(0));
        // The retained views still read the right bytes, also after the pool handed the
        // block to someone else if it had been freed.
        try (NativeBuffer other = BufferAllocator.pooled().allocate(16);
                NativeBuffer other2 = BufferAllocator.unpooled().allocate(16)) {
            other.setBytes(0, new byte[16]);
            other2.setBytes(0, new byte[16]);
            for (int i = 0; i < 10; i++) {
                assertEquals(3 + i, rs.getByte(i));
            }
            for (int i = 0; i < 16; i++) {
                assertEquals(i, rd.getByte(i));
            }
        }
        Buffer rsOfRs = rs.retainedSlice(2, 2);
        assertTrue(rs.release());
        assertThrows(IllegalReferenceCountException.class, () -> rs.getByte(0));
        rd.setByte(15, 99);
        assertEquals(5, rsOfRs.getByte(0));
        assertTrue(rd.release());
        assertEquals(6, rsOfRs.getByte(1));
        assertTrue(rsOfRs.release());
        assertEquals(poolBefore, BufferAllocator.poolStats().liveBuffers(), "pool blocks returned");
    }

    @Test
    void compositeTakesOverItsComponents() {
        NativeBuffer a = BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3});
        NativeBuffer b = BufferAllocator.unpooled().copyOf(new byte[] {4, 5});
        NativeBuffer parent = BufferAllocator.pooled().copyOf(new byte[] {6, 7, 8, 9});
        Buffer s = parent.retainedSlice(1, 2);
        parent.release();
        CompositeBuffer c = BufferAllocator.pooled().composite(a, b);
        c.addComponent(s);
        assertEquals(1, a.refCnt(), "addComponent does not retain");
        assertEquals(1, b.refCnt());
        assertEquals(1, s.refCnt());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 7, 8}, c.toByteArray());
        Buffer view = c.component(0);
        assertEquals(c.refCnt(), view.refCnt(), "component views share the composite's count");
        c.retain();
        assertFalse(c.release());
        assertEquals(1, a.refCnt());
        c.removeComponent(1);
        assertEquals(1, b.refCnt(), "a view sharing the composite's count is out: the removed component waits for it");
        long handles = BufferAllocator.liveNativeHandles();
        Buffer kept = c.retainedSlice(0, 4);
        assertEquals(1, c.refCnt(), "a retained slice has its own count, also of a composite");
        assertTrue(c.release());
        assertEquals(0, a.refCnt(), "releasing the composite released its components");
        assertEquals(0, b.refCnt(), "and the component removed while a shared view was out");
        assertEquals(0, s.refCnt());
        assertEquals(handles - 1, BufferAllocator.liveNativeHandles(), "the retained slice keeps the memory it shows");
        assertArrayEquals(new byte[] {1, 2, 3, 7}, kept.toByteArray());
        assertTrue(kept.release());
        assertEquals(handles - 3, BufferAllocator.liveNativeHandles());
        assertThrows(IllegalReferenceCountException.class, () -> view.getByte(0));
        // Releasing a component behind the composite's back is reported when the composite goes.
        NativeBuffer x = BufferAllocator.pooled().allocate(4);
        NativeBuffer y = BufferAllocator.pooled().allocate(4);
        CompositeBuffer c2 = BufferAllocator.unpooled().composite(x, y);
        x.release();
        assertThrows(IllegalReferenceCountException.class, c2::release);
        assertEquals(0, y.refCnt(), "the other components are released anyway");
    }

    @Test
    void retainedSliceOfACompositeSurvivesStructuralChanges() {
        // A retained slice holds a reference on the memory it shows: removing, discarding
        // or consolidating the composite's components must not free it under the slice.
        for (int round = 0; round < 3; round++) {
            CompositeBuffer c = BufferAllocator.pooled().composite(
                    BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3, 4}),
                    BufferAllocator.unpooled().copyOf(new byte[] {5, 6, 7, 8}));
            Buffer rs = c.retainedSlice(2, 4);
            Buffer rd = c.retainedDuplicate();
            switch (round) {
                case 0 -> c.removeComponent(0);
                case 1 -> {
                    c.readerIndex(4);
                    c.discardReadComponents();
                }
                default -> c.consolidate();
            }
            // Someone else gets (and overwrites) whatever memory was let go.
            List<NativeBuffer> others = new java.util.ArrayList<>();
            for (int i = 0; i < 8; i++) {
                NativeBuffer o = BufferAllocator.pooled().allocate(4);
                o.setInt(0, -1);
                others.add(o);
            }
            assertArrayEquals(new byte[] {3, 4, 5, 6}, rs.toByteArray(), "round " + round);
            assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, rd.toByteArray(), "round " + round);
            others.forEach(Buffer::release);
            assertTrue(c.release());
            assertArrayEquals(new byte[] {3, 4, 5, 6}, rs.toByteArray());
            assertTrue(rs.release());
            assertTrue(rd.release());
        }
    }

    @Test
    void liveHandlesReturnToTheirStartingValue() throws IOException {
        long start = BufferAllocator.liveNativeHandles();
        Supplier<List<Buffer>> many = () -> {
            List<Buffer> list = new java.util.ArrayList<>();
            for (int i = 0; i < 50; i++) {
                list.add(i % 2 == 0 ? BufferAllocator.pooled().allocate(i * 100) : BufferAllocator.unpooled().allocate(i));
            }
            return list;
        };
        List<Buffer> list = many.get();
        assertEquals(start + 50, BufferAllocator.liveNativeHandles());
        Buffer rs = list.get(3).retainedSlice(0, 1);
        assertEquals(start + 50, BufferAllocator.liveNativeHandles(), "a retained slice takes no new handle");
        Consumer<Buffer> release = Buffer::release;
        list.forEach(release);
        assertEquals(start + 1, BufferAllocator.liveNativeHandles(), "the retained slice keeps its region");
        rs.release();
        try (CompositeBuffer c = BufferAllocator.pooled().composite(make("pooled"), make("mapped"), make("wrapped"))) {
            assertEquals(start + 3, BufferAllocator.liveNativeHandles());
            c.consolidate();
            assertEquals(start + 1, BufferAllocator.liveNativeHandles());
        }
        assertEquals(start, BufferAllocator.liveNativeHandles());
    }

    @Test
    void takenOutComponentsGoAtOnceUnlessASharedViewMayShowThem() {
        long baseline = BufferAllocator.liveNativeHandles();
        NativeBuffer a = BufferAllocator.unpooled().copyOf(new byte[] {1, 2});
        NativeBuffer b = BufferAllocator.unpooled().copyOf(new byte[] {3, 4});
        CompositeBuffer c = BufferAllocator.unpooled().composite(a, b);
        c.removeComponent(0);
        assertEquals(0, a.refCnt(), "no shared view was handed out: released at once");

        NativeBuffer d = BufferAllocator.unpooled().copyOf(new byte[] {5, 6});
        c.addComponent(d);
        Buffer view = c.slice(0, 4); // shares c's count and shows b and d
        c.readerIndex(2);
        c.discardReadComponents();
        c.addComponent(BufferAllocator.unpooled().copyOf(new byte[] {7}));
        c.consolidate(); // copies d and the new component into one region
        assertEquals(1, c.numComponents());
        assertEquals(1, b.refCnt(), "discarded while a shared view shows it: kept");
        assertEquals(1, d.refCnt(), "consolidated away while a shared view shows it: kept");
        assertArrayEquals(new byte[] {3, 4, 5, 6}, view.toByteArray(), "the view still reads its bytes");
        assertTrue(c.release());
        assertEquals(0, b.refCnt());
        assertEquals(0, d.refCnt());
        assertThrows(IllegalReferenceCountException.class, () -> view.getByte(0));
        assertEquals(baseline, BufferAllocator.liveNativeHandles());
    }

    @Test
    void nioViewsOfACompositeKeepTakenOutComponentsAsSlicesDo() {
        NativeBuffer a = BufferAllocator.pooled().copyOf(new byte[] {1, 2});
        NativeBuffer b = BufferAllocator.pooled().copyOf(new byte[] {3, 4});
        CompositeBuffer c = BufferAllocator.pooled().composite(a, b);
        ByteBuffer[] views = c.nioBuffers();
        c.removeComponent(0);
        assertEquals(1, a.refCnt(), "taken out while an NIO view shows it: kept");
        assertEquals(1, views[0].get(0));
        c.readerIndex(2);
        c.discardReadComponents();
        assertEquals(1, b.refCnt());
        assertEquals(4, views[1].get(1));
        assertTrue(c.release());
        assertEquals(0, a.refCnt());
        assertEquals(0, b.refCnt());
    }

    @Test
    void aCompositeRefusesItselfAndWhatSharesItsCount() {
        CompositeBuffer c = BufferAllocator.pooled().composite(BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3}),
                BufferAllocator.unpooled().copyOf(new byte[] {4}));
        for (Buffer self : List.of(c, c.slice(1, 3), c.duplicate(), c.component(0), c.slice(0, 1))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.addComponent(self));
            assertTrue(e.getMessage().contains("itself"), e.getMessage());
            assertEquals(1, c.refCnt(), "nothing released");
            assertEquals(4, c.capacity());
        }
        // Its own memory under another count is fine: composites flatten, nothing cycles.
        c.addComponent(c.retainedSlice(0, 4));
        assertArrayEquals(new byte[] {1, 2, 3, 4, 1, 2, 3, 4}, c.toByteArray());
        assertTrue(c.release());
    }
}
