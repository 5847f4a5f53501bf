package io.zcbuf;

import static io.zcbuf.FileRegionSendfileTest.concat;
import static io.zcbuf.FileRegionSendfileTest.read;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.channels.Pipe;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** File regions (never mapped) in composites with headers, through real sockets, every byte checked. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FileRegionTest {
    @TempDir
    Path dir;

    private final Random rnd = new Random(1515);
    private final BufferAllocator alloc = BufferAllocator.pooled();
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
        assertEquals(handles, BufferAllocator.liveNativeHandles(), "regions and writers all released");
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

    private byte[] random(int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    @Test
    void aRegionWithHeaderAndTrailerGoesBySendfileByteForByte() throws Exception {
        connect(0);
        byte[] content = random(1 << 20);
        Path path = Files.write(dir.resolve("f"), content);
        byte[] header = random(77);
        byte[] trailer = random(5);
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client)) {
            CompositeBuffer msg = alloc.composite(
                    alloc.copyOf(header), alloc.fileRegion(path, 12345, 600_000), alloc.copyOf(trailer));
            assertEquals(77 + 600_000 + 5, msg.readableBytes());
            CompletableFuture<byte[]> got = read(peer, msg.readableBytes(), false);
            writer.writeAndRelease(msg);
            assertArrayEquals(concat(header, Arrays.copyOfRange(content, 12345, 612345), trailer), got.get());
            assertEquals(600_000, writer.fileBytes());
        }
    }

    @Test
    void partialWritesOfRegionsResumeAtTheExactByte() throws Exception {
        connect(4096);
        client.setOption(StandardSocketOptions.SO_SNDBUF, 4096);
        client.configureBlocking(false);
        byte[] a = random(250_000);
        byte[] b = random(3);
        Path pa = Files.write(dir.resolve("a"), a);
        Path pb = Files.write(dir.resolve("b"), b);
        byte[] h = random(1000);
        CompositeBuffer msg = alloc.composite(alloc.copyOf(h), alloc.fileRegion(pa), alloc.fileRegion(pb, 1, 2),
                alloc.mapFile(pa, 100, 50_000), alloc.fileRegion(pa, 0, 0), alloc.copyOf(h));
        // A slice of the message starting inside the first region: offsets into a region are file offsets too.
        Buffer part = msg.retainedSlice(1000 + 17, msg.readableBytes() - 1000 - 17);
        msg.release();
        byte[] expected = concat(Arrays.copyOfRange(a, 17, a.length), Arrays.copyOfRange(b, 1, 3),
                Arrays.copyOfRange(a, 100, 50_100), h);
        assertEquals(expected.length, part.readableBytes());
        CompletableFuture<byte[]> got = read(peer, expected.length, true);
        int partial = 0;
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client);
                Selector selector = Selector.open()) {
            client.register(selector, SelectionKey.OP_WRITE);
            while (part.isReadable()) {
                int before = part.readerIndex();
                long n = writer.write(part);
                assertEquals(before + n, part.readerIndex());
                if (part.isReadable()) {
                    partial++;
                    selector.select(1000);
                    selector.selectedKeys().clear();
                }
            }
            assertArrayEquals(expected, got.get());
            assertTrue(partial > 10, partial + " partial writes");
            assertEquals(a.length - 17 + 2 + 50_000, writer.fileBytes());
        } finally {
            part.release();
        }
    }

    @Test
    void aTruncatedRegionIsAnIOExceptionAfterExactlyTheBytesThatExist() throws Exception {
        connect(0);
        byte[] content = random(100_000);
        Path path = Files.write(dir.resolve("t"), content);
        byte[] header = random(10);
        CompositeBuffer msg = alloc.composite(alloc.copyOf(header), alloc.fileRegion(path));
        try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
            raf.setLength(30_000);
        }
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client)) {
            IOException e = assertThrows(IOException.class, () -> writer.write(msg));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            assertEquals(10 + 30_000, msg.readerIndex());
            client.shutdownOutput();
            assertArrayEquals(concat(header, Arrays.copyOf(content, 30_000)), read(peer, Long.MAX_VALUE, false).get());
        } finally {
            msg.release();
        }
    }

    @Test
    void readingARegionFromJavaThrowsAndNeverCrashes() throws Exception {
        Path path = Files.write(dir.resolve("r"), random(10_000));
        NativeBuffer region = alloc.fileRegion(path, 10, 9000);
        try {
            assertEquals(9000, region.readableBytes());
            assertTrue(region.isReadOnly());
            assertThrows(IndexOutOfBoundsException.class, () -> region.getByte(0));
            assertThrows(IndexOutOfBoundsException.class, () -> region.getLong(8000));
            assertThrows(IndexOutOfBoundsException.class, () -> region.getBytes(0, new byte[100]));
            assertThrows(IndexOutOfBoundsException.class, region::nioBuffer);
            assertThrows(IndexOutOfBoundsException.class, () -> region.getByte(9000), "past the region as ever");
            Buffer slice = region.slice(100, 200);
            assertEquals(200, slice.readableBytes());
            assertThrows(IndexOutOfBoundsException.class, () -> slice.getInt(0));
            CompositeBuffer msg = alloc.composite(alloc.copyOf(new byte[] {1, 2}), region.retain());
            try {
                assertEquals(2, msg.getByte(1));
                assertThrows(IndexOutOfBoundsException.class, () -> msg.getByte(2));
                assertThrows(IndexOutOfBoundsException.class, () -> msg.getBytes(0, new byte[10]));
                msg.addComponent(alloc.copyOf(new byte[] {3}));
                // The copy it would allocate is released (the handle count is checked after each test).
                assertThrows(IndexOutOfBoundsException.class, msg::consolidate);
                assertEquals(3, msg.numComponents(), "unchanged");
                assertEquals(3, msg.getByte(9002));
            } finally {
                msg.release();
            }
        } finally {
            region.release();
        }
    }

    @Test
    void badRegionsAreRefusedClearly() throws Exception {
        Path path = Files.write(dir.resolve("s"), random(100));
        assertThrows(IndexOutOfBoundsException.class, () -> alloc.fileRegion(path, 50, 51));
        assertThrows(IndexOutOfBoundsException.class, () -> alloc.fileRegion(path, -1, 5));
        assertThrows(IndexOutOfBoundsException.class, () -> alloc.fileRegion(path, 101, -1));
        UncheckedIOException missing =
                assertThrows(UncheckedIOException.class, () -> alloc.fileRegion(dir.resolve("none")));
        assertTrue(missing.getMessage().contains("none"), missing.getMessage());
        UncheckedIOException notFile = assertThrows(UncheckedIOException.class, () -> alloc.fileRegion(dir));
        assertInstanceOf(NotRegularFileException.class, notFile.getCause());
        Path fifo = dir.resolve("fifo");
        Process mkfifo = new ProcessBuilder("mkfifo", fifo.toString()).start();
        if (mkfifo.waitFor() == 0) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> alloc.fileRegion(fifo));
            assertInstanceOf(NotRegularFileException.class, e.getCause());
        } else if ("true".equals(System.getenv("CI"))) {
            throw new AssertionError("mkfifo failed: the FIFO case could not run");
        } else {
            System.err.println("SKIPPED the FIFO case: mkfifo failed");
        }
        NativeBuffer empty = alloc.fileRegion(path, 100, -1);
        assertEquals(0, empty.readableBytes());
        empty.release();
    }

    @Test
    void aDatagramReadsTheRegionIntoTheOneDatagram() throws Exception {
        byte[] content = random(5000);
        Path path = Files.write(dir.resolve("d"), content);
        byte[] header = random(30);
        try (DatagramChannel rx = DatagramChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                DatagramChannel tx = DatagramChannel.open().connect(rx.getLocalAddress());
                ZeroCopyWriter writer = ZeroCopyWriter.open(tx)) {
            writer.writeAndRelease(alloc.composite(alloc.copyOf(header), alloc.fileRegion(path, 1, 4000)));
            ByteBuffer dst = ByteBuffer.allocate(1 << 16);
            rx.receive(dst);
            dst.flip();
            byte[] got = new byte[dst.remaining()];
            dst.get(got);
            assertArrayEquals(concat(header, Arrays.copyOfRange(content, 1, 4001)), got);
            assertEquals(0, writer.fileBytes());
        }
    }

    @Test
    void theFallbackWriterRefusesARegionAndSendsNothing() throws Exception {
        Path path = Files.write(dir.resolve("p"), random(100));
        Pipe pipe = Pipe.open();
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(pipe.sink(), ZeroCopyMode.AUTO, 0)) {
            assertTrue(!writer.isNative());
            CompositeBuffer msg = alloc.composite(alloc.copyOf(new byte[] {9}), alloc.fileRegion(path));
            try {
                assertThrows(UnsupportedOperationException.class, () -> writer.write(msg));
                assertEquals(0, msg.readerIndex());
            } finally {
                msg.release();
            }
        } finally {
            pipe.sink().close();
            pipe.source().close();
        }
    }
}
