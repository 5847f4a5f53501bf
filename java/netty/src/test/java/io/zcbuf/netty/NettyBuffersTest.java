package io.zcbuf.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.buffer.AbstractByteBufAllocator;
import io.netty.util.internal.PlatformDependent;
import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyWriter;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class NettyBuffersTest {
    @TempDir
    Path dir;

    /** Counts the direct buffers Netty allocates: a transport that copied a message would take one. */
    static final class CountingAllocator extends AbstractByteBufAllocator {
        final AtomicInteger direct = new AtomicInteger();

        CountingAllocator() {
            super(true);
        }

        @Override
        protected ByteBuf newHeapBuffer(int initialCapacity, int maxCapacity) {
            return Unpooled.buffer(initialCapacity, maxCapacity);
        }

        @Override
        protected ByteBuf newDirectBuffer(int initialCapacity, int maxCapacity) {
            direct.incrementAndGet();
            return Unpooled.directBuffer(initialCapacity, maxCapacity);
        }

        @Override
        public boolean isDirectBufferPooled() {
            return false;
        }
    }

    private CompositeBuffer zcbufMessage(byte[] header, byte[] body, byte[] file) throws Exception {
        Path p = dir.resolve("file.bin");
        Files.write(p, file);
        BufferAllocator pooled = BufferAllocator.pooled();
        return pooled.composite(
                pooled.copyOf(header), BufferAllocator.unpooled().copyOf(body), pooled.mapFile(p));
    }

    @ParameterizedTest
    @EnumSource(Sockets.Transport.class)
    void nettyWritesZcbufMemoryWhereItLies(Sockets.Transport t) throws Exception {
        if (!Sockets.usable(t)) {
            return;
        }
        byte[] header = Sockets.random(100, 1);
        byte[] body = Sockets.random(300_000, 2);
        byte[] file = Sockets.random(1 << 20, 3);
        byte[] expected = new byte[header.length + body.length + file.length];
        System.arraycopy(header, 0, expected, 0, header.length);
        System.arraycopy(body, 0, expected, header.length, body.length);
        System.arraycopy(file, 0, expected, header.length + body.length, file.length);
        long handlesBefore = BufferAllocator.liveNativeHandles();

        CountingAllocator alloc = new CountingAllocator();
        try (Sockets.Pair pair = new Sockets.Pair(t, alloc, () -> null)) {
            CompositeBuffer msg = zcbufMessage(header, body, file);
            msg.retain(); // the test's own, to watch the view take the caller's
            ByteBuf view = NettyBuffers.toByteBuf(msg, alloc);
            CompositeByteBuf composite = assertInstanceOf(CompositeByteBuf.class, view);
            assertEquals(3, composite.numComponents());
            assertEquals(expected.length, view.readableBytes());
            assertEquals(2, msg.refCnt(), "the view holds the caller's reference");
            ByteBuf first = composite.component(0);
            assertEquals(PlatformDependent.hasUnsafe(), first.hasMemoryAddress());
            assertTrue(composite.component(2).isReadOnly(), "a mapped file stays read-only");

            // The same memory: a byte written through Netty is read by zcbuf.
            view.setByte(0, header[0] ^ 0x5a);
            assertEquals((byte) (header[0] ^ 0x5a), msg.getByte(0));
            view.setByte(0, header[0]);
            msg.release(); // from here only the view holds the memory

            CompletableFuture<byte[]> got = pair.read(expected.length);
            int allocationsBefore = alloc.direct.get();
            pair.channel.writeAndFlush(view).sync();
            Sockets.Pair.assertBytes(expected, got);
            assertEquals(allocationsBefore, alloc.direct.get(), "Netty copied the message into a buffer of its own");
            assertEquals(0, view.refCnt(), "Netty released the view after the write");
            assertEquals(0, msg.refCnt(), "the view's components gave the zcbuf reference back");
        }
        assertEquals(handlesBefore, BufferAllocator.liveNativeHandles(), "the view kept zcbuf regions after its release");
    }

    @Test
    void aComponentNettyKeepsKeepsTheMemory() {
        BufferAllocator pooled = BufferAllocator.pooled();
        CompositeBuffer msg = pooled.composite(pooled.copyOf(new byte[] {1, 2}), pooled.copyOf(new byte[] {3, 4}));
        msg.retain();
        CompositeByteBuf view = (CompositeByteBuf) NettyBuffers.toByteBuf(msg);
        ByteBuf second = view.component(1).retain();
        view.release();
        assertEquals(2, msg.refCnt(), "a component still holds the memory");
        assertEquals(3, second.getByte(0));
        second.release();
        assertEquals(1, msg.refCnt(), "the last component gave the reference back");
        msg.release();
    }

    @Test
    void singleRegionViewHasTheAddressAndIndicesOfItsBuffer() {
        NativeBuffer buf = BufferAllocator.unpooled().allocate(64);
        buf.writeLong(0x0102030405060708L).readerIndex(2);
        buf.retain();
        ByteBuf view = NettyBuffers.toByteBuf(buf);
        assertEquals(64, view.capacity());
        assertEquals(2, view.readerIndex());
        assertEquals(8, view.writerIndex());
        assertEquals(0x0102030405060708L, view.getLong(0));
        if (PlatformDependent.hasUnsafe()) {
            assertEquals(PlatformDependent.directBufferAddress(buf.nioBuffer(0, 64)), view.memoryAddress());
        }
        assertEquals(0x0708, view.getShort(6));
        view.writeIntLE(0x11223344);
        assertEquals(0x44332211, buf.getInt(8));
        assertThrows(IndexOutOfBoundsException.class, () -> view.writeZero(100), "the capacity is fixed");

        // A retained slice outlives the view's own release and keeps the zcbuf memory.
        ByteBuf slice = view.retainedSlice(0, 8);
        view.release();
        assertEquals(2, buf.refCnt());
        assertEquals(0x0102, slice.getShort(0));
        slice.release();
        assertEquals(1, buf.refCnt(), "the last Netty reference gave the zcbuf one back");
        buf.release();
        assertThrows(io.zcbuf.IllegalReferenceCountException.class, () -> NettyBuffers.toByteBuf(buf));
    }

    @Test
    void nettyMemoryAsZcbufComponentHoldsOneNettyReference() throws Exception {
        ByteBufAllocator pooled = PooledByteBufAllocator.DEFAULT;
        byte[] a = Sockets.random(200_000, 4);
        byte[] b = Sockets.random(70_000, 5);
        ByteBuf pooledBuf = pooled.directBuffer(a.length).writeBytes(a);
        ByteBuf unpooledBuf = Unpooled.directBuffer(b.length).writeBytes(b);
        CompositeByteBuf nettyComposite = Unpooled.compositeBuffer()
                .addComponent(true, Unpooled.directBuffer(3).writeBytes(new byte[] {7, 8, 9}))
                .addComponent(true, Unpooled.directBuffer(2).writeBytes(new byte[] {10, 11}));
        pooledBuf.retain();
        unpooledBuf.retain();
        ByteBuf firstPiece = nettyComposite.component(0);

        Buffer fromPooled = NettyBuffers.fromByteBuf(pooledBuf);
        Buffer fromUnpooled = NettyBuffers.fromByteBuf(unpooledBuf);
        Buffer fromComposite = NettyBuffers.fromByteBuf(nettyComposite);
        assertInstanceOf(CompositeBuffer.class, fromComposite);
        assertEquals(2, pooledBuf.refCnt(), "zcbuf holds one Netty reference");
        assertEquals(2, nettyComposite.refCnt(), "each of the two pieces holds one reference, the caller's went");
        // Same memory, both ways.
        pooledBuf.setByte(0, a[0] ^ 1);
        assertEquals((byte) (a[0] ^ 1), fromPooled.getByte(0));
        pooledBuf.setByte(0, a[0]);

        // Unsent: the Netty reference goes back at zcbuf's release, at once.
        assertEquals(1, unpooledBuf.refCnt() - 1);
        fromUnpooled.release();
        assertEquals(1, unpooledBuf.refCnt());
        fromComposite.release();
        assertEquals(0, nettyComposite.refCnt(), "both pieces gave their references back");
        assertEquals(0, firstPiece.refCnt(), "the Netty composite's memory went back");

        // Sent through a zero-copy writer: the reference stays until the kernel is done (and the GC noticed).
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new java.net.InetSocketAddress(
                        java.net.InetAddress.getLoopbackAddress(), 0));
                SocketChannel client = SocketChannel.open(server.getLocalAddress());
                SocketChannel peer = server.accept();
                ZeroCopyWriter writer = ZeroCopyWriter.open(client, ZeroCopyMode.ALWAYS, 0)) {
            NativeBuffer header = BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3});
            CompositeBuffer msg = BufferAllocator.pooled().composite(header, fromPooled);
            CompletableFuture<byte[]> got = CompletableFuture.supplyAsync(() -> readAll(peer, 3 + a.length));
            writer.writeAndRelease(msg);
            byte[] expected = new byte[3 + a.length];
            expected[0] = 1;
            expected[1] = 2;
            expected[2] = 3;
            System.arraycopy(a, 0, expected, 3, a.length);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, got.get(30, java.util.concurrent.TimeUnit.SECONDS));
            writer.flush(Duration.ofSeconds(10));
            assertTrue(writer.stats().zeroCopySends() > 0, "sent with MSG_ZEROCOPY: " + writer.stats());
        }
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (pooledBuf.refCnt() > 1 && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(1, pooledBuf.refCnt(), "zcbuf never gave the sent Netty buffer back");
        pooledBuf.release();
        unpooledBuf.release();
    }

    @Test
    void heapNettyBuffersAreRefusedAndKeepTheirReference() {
        ByteBuf heap = Unpooled.buffer(16).writeLong(1);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> NettyBuffers.fromByteBuf(heap));
        assertTrue(e.getMessage().contains("direct"), e.getMessage());
        assertEquals(1, heap.refCnt());
        heap.release();
    }

    private static byte[] readAll(SocketChannel peer, int n) {
        ByteBuffer into = ByteBuffer.allocate(n);
        try {
            while (into.hasRemaining()) {
                if (peer.read(into) < 0) {
                    throw new AssertionError("EOF after " + into.position());
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return into.array();
    }
}
