package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.channels.Pipe;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Real socket round trips through the native writer, checked byte for byte. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ZeroCopyWriterTest {
    @TempDir
    Path dir;

    private ServerSocketChannel server;
    private SocketChannel client;
    private SocketChannel peer;
    private long handles;

    @BeforeEach
    void before() {
        handles = BufferAllocator.liveNativeHandles();
    }

    @AfterEach
    void closeAll() throws IOException {
        for (java.io.Closeable c : new java.io.Closeable[] {client, peer, server}) {
            if (c != null) {
                c.close();
            }
        }
        assertEquals(handles, BufferAllocator.liveNativeHandles(), "buffers and writers all released");
    }

    private void connect(int receiveBuffer) throws IOException {
        server = ServerSocketChannel.open();
        if (receiveBuffer > 0) {
            server.setOption(StandardSocketOptions.SO_RCVBUF, receiveBuffer);
        }
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        client = SocketChannel.open(server.getLocalAddress());
        peer = server.accept();
    }

    /** Reads exactly {@code n} bytes from {@code ch} on another thread, optionally slowly. */
    private static CompletableFuture<byte[]> readExactly(ReadableByteChannel ch, long n, boolean slow) {
        return CompletableFuture.supplyAsync(() -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer chunk = ByteBuffer.allocate(slow ? 4096 : 1 << 16);
            long got = 0;
            int reads = 0;
            try {
                while (got < n) {
                    chunk.clear();
                    chunk.limit((int) Math.min(chunk.capacity(), n - got));
                    int r = ch.read(chunk);
                    if (r < 0) {
                        throw new IOException("EOF after " + got + " of " + n + " bytes");
                    }
                    out.write(chunk.array(), 0, r);
                    got += r;
                    if (slow && ++reads % 8 == 0) {
                        Thread.sleep(1);
                    }
                }
            } catch (IOException | InterruptedException e) {
                throw new RuntimeException(e);
            }
            return out.toByteArray();
        });
    }

    private static byte[] random(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    /** A composite of a header, a mapped file, slices and {@code small} tiny components of every kind. */
    private CompositeBuffer bigComposite(Random rnd, int fileBytes, int small) throws IOException {
        Path file = Files.write(dir.resolve("payload" + rnd.nextInt(1 << 20)), random(rnd, fileBytes));
        CompositeBuffer msg = BufferAllocator.pooled().composite();
        msg.addComponent(BufferAllocator.pooled().copyOf("HTTP/1.1 200 OK\r\n\r\n".getBytes()));
        msg.addComponent(BufferAllocator.unpooled().mapFile(file));
        NativeBuffer parent = BufferAllocator.pooled().copyOf(random(rnd, 5000));
        msg.addComponent(parent.retainedSlice(100, 3000));
        msg.addComponent(parent.slice(4000, 1000).retain()); // a slice shares parent's count: retain for the composite
        parent.release();
        for (int i = 0; i < small; i++) {
            byte[] b = random(rnd, rnd.nextInt(12));
            switch (i % 3) {
                case 0 -> msg.addComponent(BufferAllocator.pooled().copyOf(b));
                case 1 -> msg.addComponent(BufferAllocator.unpooled().copyOf(b));
                default -> msg.addComponent(
                        BufferAllocator.unpooled().wrap(ByteBuffer.allocateDirect(b.length).put(b).flip()));
            }
        }
        return msg;
    }

    @Test
    void blockingGatherWriteOfMoreComponentsThanIovMax() throws IOException, Exception {
        connect(0);
        Random rnd = new Random(1);
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client);
                CompositeBuffer msg = bigComposite(rnd, 300_000, 3000)) {
            assertTrue(w.isNative());
            assertTrue(msg.numComponents() > 3000);
            byte[] expected = msg.toByteArray();
            CompletableFuture<byte[]> got = readExactly(peer, expected.length, false);
            msg.readerIndex(0);
            assertEquals(expected.length, w.write(msg));
            assertEquals(msg.writerIndex(), msg.readerIndex(), "readerIndex advanced by the bytes written");
            assertArrayEquals(expected, got.get(30, TimeUnit.SECONDS));
            ZeroCopyStats s = w.stats();
            assertEquals(expected.length, s.bytes());
            assertTrue(s.sends() >= 3, "more than IOV_MAX pieces take several sendmsg calls: " + s);
            // Every piece but the mapped file, which goes by sendfile.
            assertTrue(s.iovecs() >= msg.nioBufferCount() - 1, s.toString());
            assertEquals(300_000, w.fileBytes());
            // A second message on the same writer.
            msg.readerIndex(17);
            CompletableFuture<byte[]> again = readExactly(peer, expected.length - 17, false);
            w.writeAndRelease(msg.retainedDuplicate());
            assertArrayEquals(Arrays.copyOfRange(expected, 17, expected.length), again.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void nonBlockingWritesResumeAtTheRightByte() throws Exception {
        connect(8192);
        client.setOption(StandardSocketOptions.SO_SNDBUF, 8192);
        client.configureBlocking(false);
        Random rnd = new Random(2);
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.NEVER, 0);
                CompositeBuffer msg = bigComposite(rnd, 1_500_000, 2000);
                Selector sel = Selector.open()) {
            assertTrue(w.isNative());
            byte[] expected = msg.toByteArray();
            CompletableFuture<byte[]> got = readExactly(peer, expected.length, true);
            client.register(sel, SelectionKey.OP_WRITE);
            int calls = 0;
            int partial = 0;
            int zero = 0;
            long total = 0;
            while (msg.isReadable()) {
                int before = msg.readerIndex();
                long n = w.write(msg);
                calls++;
                assertEquals(before + n, msg.readerIndex());
                total += n;
                if (n == 0) {
                    zero++;
                    sel.select(1000);
                    sel.selectedKeys().clear();
                } else if (msg.isReadable()) {
                    partial++;
                }
            }
            assertEquals(expected.length, total);
            assertArrayEquals(expected, got.get(30, TimeUnit.SECONDS), "no byte lost or duplicated");
            assertTrue(partial > 10, "many partial writes: " + partial + " of " + calls + " calls, " + zero + " zero");
        }
    }

    @Test
    void msgZeroCopyOnLoopbackCompletesAsCopied() throws Exception {
        connect(0);
        int size = 256 * 1024;
        int count = 24;
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.ALWAYS, 0)) {
            assertTrue(w.isNative(), "SO_ZEROCOPY available: " + w.stats().autoDecision());
            assertEquals(ZeroCopyMode.ALWAYS, w.mode());
            CompletableFuture<byte[]> got = readExactly(peer, (long) size * count, false);
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            Random rnd = new Random(3);
            for (int i = 0; i < count; i++) {
                byte[] b = random(rnd, size);
                expected.write(b);
                try (NativeBuffer buf = BufferAllocator.pooled().copyOf(b)) {
                    assertEquals(size, w.write(buf));
                }
            }
            assertArrayEquals(expected.toByteArray(), got.get(30, TimeUnit.SECONDS));
            w.flush(Duration.ofSeconds(10));
            ZeroCopyStats s = w.stats();
            assertTrue(s.zeroCopySends() > 0, s.toString());
            assertEquals(s.zeroCopySends(), s.completions(), "every zero-copy send completed: " + s);
            assertTrue(s.copiedCompletions() > 0, "loopback copies: " + s);
            assertEquals(0, s.pinnedBytes(), s.toString());
            assertEquals(0, s.pinnedSends(), s.toString());
            assertTrue(s.peakPinnedBytes() > 0, s.toString());
            assertTrue(s.zeroCopyActive(), "ALWAYS never switches itself off");
        }
    }

    @Test
    void autoKeepsZeroCopyOffForALocalPeer() throws Exception {
        connect(0);
        int size = 64 * 1024;
        int count = 300;
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client)) {
            assertEquals(ZeroCopyMode.AUTO, w.mode());
            // The kernel copies into a local receiver anyway: AUTO knows the peer is this host from the start.
            assertFalse(w.stats().zeroCopyActive(), w.stats().toString());
            assertTrue(w.stats().autoDecision().contains("this host"), w.stats().autoDecision());
            CompletableFuture<byte[]> got = readExactly(peer, (long) size * count, false);
            byte[] expected = new byte[size * count];
            new Random(4).nextBytes(expected);
            NativeBuffer all = BufferAllocator.pooled().copyOf(expected);
            try {
                for (int i = 0; i < count; i++) {
                    Buffer piece = all.retainedSlice(i * size, size);
                    w.writeAndRelease(piece);
                }
            } finally {
                all.release();
            }
            assertArrayEquals(expected, got.get(30, TimeUnit.SECONDS));
            w.flush(Duration.ofSeconds(10));
            ZeroCopyStats s = w.stats();
            assertFalse(s.zeroCopyActive(), s.toString());
            assertEquals(0, s.zeroCopySends(), "every large send was plain: " + s);
            assertEquals((long) size * count, s.bytes(), s.toString());
            assertEquals(0, s.pinnedBytes());
        }
    }

    @Test
    void releasingRightAfterWriteWhilePinnedIsSafe() throws Exception {
        connect(0);
        int size = 128 * 1024;
        int count = 40;
        long poolLive = BufferAllocator.poolStats().liveBuffers();
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.ALWAYS, 0)) {
            assertTrue(w.isNative());
            long withWriter = BufferAllocator.liveNativeHandles();
            assertEquals(handles + 1, withWriter, "a native writer holds one handle");
            // The reader starts late, so sends stay pinned while their buffers are released.
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            CompletableFuture<byte[]> got = null;
            for (int i = 0; i < count; i++) {
                byte[] b = new byte[size];
                Arrays.fill(b, (byte) i);
                b[i] = (byte) ~i;
                expected.write(b);
                NativeBuffer buf = BufferAllocator.pooled().copyOf(b);
                CompositeBuffer c = BufferAllocator.pooled().composite(buf.retainedSlice(0, size / 2),
                        buf.retainedSlice(size / 2, size / 2));
                buf.release();
                if (i == 2) {
                    got = readExactly(peer, (long) size * count, true);
                }
                w.writeAndRelease(c); // released right after the send; the kernel may still read it
                // Whoever gets the memory next scribbles over it.
                NativeBuffer scribble = BufferAllocator.pooled().allocate(size);
                scribble.setBytes(0, new byte[size]);
                scribble.release();
                assertEquals(withWriter, BufferAllocator.liveNativeHandles(), "handles go at release, pins stay native");
            }
            assertArrayEquals(expected.toByteArray(), got.get(30, TimeUnit.SECONDS), "bytes arrive right");
            w.flush(Duration.ofSeconds(10));
            assertEquals(0, w.stats().pinnedBytes());
        }
        assertEquals(poolLive, BufferAllocator.poolStats().liveBuffers(), "pinned blocks returned after completion");
    }

    @Test
    void datagramsAreOnePerWriteWithExactBytes() throws Exception {
        try (DatagramSocket receiver = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                DatagramChannel sender = DatagramChannel.open()) {
            receiver.setSoTimeout(5000);
            sender.connect(receiver.getLocalSocketAddress());
            try (ZeroCopyWriter w = ZeroCopyWriter.open(sender)) {
                assertTrue(w.isNative());
                Random rnd = new Random(5);
                for (int i = 0; i < 30; i++) {
                    int n = 1 + rnd.nextInt(1400);
                    byte[] payload = random(rnd, n);
                    int cut = rnd.nextInt(n);
                    CompositeBuffer c = BufferAllocator.pooled().composite(
                            BufferAllocator.pooled().copyOf(Arrays.copyOf(payload, cut)),
                            BufferAllocator.unpooled().copyOf(Arrays.copyOfRange(payload, cut, n)));
                    assertEquals(n, w.write(c));
                    c.release();
                    DatagramPacket p = new DatagramPacket(new byte[2048], 2048);
                    receiver.receive(p);
                    assertArrayEquals(payload, Arrays.copyOf(p.getData(), p.getLength()), "datagram " + i);
                }
                assertEquals(30, w.stats().sends());
            }
        }
    }

    @Test
    void aPeerThatResetsGivesIOException() throws Exception {
        connect(0);
        peer.setOption(StandardSocketOptions.SO_LINGER, 0);
        peer.close(); // RST
        ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.AUTO, 0);
        NativeBuffer big = BufferAllocator.unpooled().allocate(1 << 20);
        big.writerIndex(big.capacity());
        try {
            assertThrows(IOException.class, () -> {
                for (int i = 0; i < 100; i++) {
                    big.readerIndex(0);
                    w.write(big);
                }
            });
            assertTrue(big.refCnt() == 1, "the message is not released by a failed write");
        } finally {
            big.release();
            w.close();
        }
        try (NativeBuffer empty = BufferAllocator.pooled().allocate(0)) {
            assertThrows(ClosedChannelException.class, () -> w.write(empty));
        }
    }

    @Test
    void writeAfterCloseThrowsClosedChannelException() throws Exception {
        connect(0);
        ZeroCopyWriter w = ZeroCopyWriter.open(client);
        w.close();
        w.close(); // idempotent
        try (NativeBuffer b = BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3})) {
            assertThrows(ClosedChannelException.class, () -> w.write(b));
            assertEquals(0, b.readerIndex());
            assertThrows(ClosedChannelException.class, () -> w.flush(Duration.ZERO));
            assertFalse(w.stats().zeroCopyActive());
            // Closing the channel (not the writer) also stops writes.
            try (ZeroCopyWriter w2 = ZeroCopyWriter.open(client)) {
                client.close();
                assertThrows(ClosedChannelException.class, () -> w2.write(b));
            }
            // A writer is never opened on a closed channel: the descriptor number may name anything now.
            ChannelClosedException e = assertThrows(ChannelClosedException.class, () -> ZeroCopyWriter.open(client));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }

    @Test
    void nonSocketChannelsFallBackToGatheringWrites() throws Exception {
        Pipe pipe = Pipe.open();
        try (Pipe.SinkChannel sink = pipe.sink();
                Pipe.SourceChannel source = pipe.source();
                ZeroCopyWriter w = ZeroCopyWriter.open(sink, ZeroCopyMode.ALWAYS, 0)) {
            assertFalse(w.isNative());
            assertTrue(w.stats().autoDecision().contains("fallback"), w.stats().autoDecision());
            Random rnd = new Random(6);
            CompositeBuffer msg = bigComposite(rnd, 200_000, 1500);
            byte[] expected = msg.toByteArray();
            CompletableFuture<byte[]> got = readExactly(source, expected.length, false);
            assertEquals(expected.length, w.write(msg));
            assertFalse(msg.isReadable());
            msg.release();
            assertArrayEquals(expected, got.get(30, TimeUnit.SECONDS));
            ZeroCopyStats s = w.stats();
            assertEquals(expected.length, s.bytes());
            assertEquals(0, s.zeroCopySends());
        }
    }

    @Test
    void forgedComponentsAreRefusedNatively() throws Exception {
        connect(0);
        try (ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.NEVER, 0)) {
            assertTrue(w.isNative());
            // Unpooled: its region is exactly 4 bytes (a pool block is a whole size class).
            NativeBuffer b = BufferAllocator.unpooled().copyOf(new byte[] {1, 2, 3, 4});
            long h = b.memory.handle();
            java.lang.reflect.Field f = ZeroCopyWriter.class.getDeclaredField("handle");
            f.setAccessible(true);
            long wh = f.getLong(w);
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Native.writerWrite(wh, new long[] {h}, new int[] {2}, new int[] {3}, 1, false));
            assertThrows(IndexOutOfBoundsException.class,
                    () -> Native.writerWrite(wh, new long[] {h}, new int[] {0}, new int[] {1}, 2, false));
            assertThrows(StaleHandleException.class,
                    () -> Native.writerWrite(wh, new long[] {h + 1}, new int[] {0}, new int[] {1}, 1, false));
            b.release();
            assertThrows(StaleHandleException.class,
                    () -> Native.writerWrite(wh, new long[] {h}, new int[] {0}, new int[] {1}, 1, false));
            assertThrows(StaleHandleException.class, () -> Native.release(wh), "a writer is not memory");
            assertEquals(0, w.stats().sends(), "nothing was sent");
        }
        if (peer.isOpen()) {
            peer.configureBlocking(false);
            assertEquals(0, peer.read(ByteBuffer.allocate(16)));
        }
    }
}
