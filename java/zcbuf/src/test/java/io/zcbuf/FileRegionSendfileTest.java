package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
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

/**
 * Mapped-file pieces of a message go out with {@code sendfile}: real sockets, every byte checked, partial writes
 * on a full non-blocking socket, a file truncated under the writer, and the sockets {@code sendfile} cannot serve.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class FileRegionSendfileTest {
    @TempDir
    Path dir;

    private final Random rnd = new Random(15);
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

    private byte[] random(int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    private Path file(String name, byte[] content) throws IOException {
        return Files.write(dir.resolve(name), content);
    }

    /** Reads until {@code n} bytes or EOF on another thread, slowly when asked (a peer that keeps the socket full). */
    static CompletableFuture<byte[]> read(ReadableByteChannel ch, long n, boolean slow) {
        return CompletableFuture.supplyAsync(() -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer chunk = ByteBuffer.allocate(slow ? 2048 : 1 << 16);
            long got = 0;
            int reads = 0;
            try {
                while (got < n) {
                    chunk.clear();
                    chunk.limit((int) Math.min(chunk.capacity(), n - got));
                    int r = ch.read(chunk);
                    if (r < 0) {
                        break;
                    }
                    out.write(chunk.array(), 0, r);
                    got += r;
                    if (slow && ++reads % 16 == 0) {
                        Thread.sleep(1);
                    }
                }
            } catch (IOException | InterruptedException e) {
                throw new RuntimeException(e);
            }
            return out.toByteArray();
        });
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    @Test
    void headerFileAndTrailerArriveInOrderAndTheFileWentBySendfile() throws Exception {
        connect(0);
        byte[] header = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        byte[] content = random(1 << 20);
        byte[] trailer = random(333);
        Path path = file("body", content);
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client)) {
            assertTrue(writer.isNative(), writer.stats().autoDecision());
            CompositeBuffer msg = BufferAllocator.pooled().composite(
                    BufferAllocator.pooled().copyOf(header),
                    BufferAllocator.unpooled().mapFile(path, 1000, content.length - 1000),
                    BufferAllocator.pooled().copyOf(trailer));
            int total = msg.readableBytes();
            CompletableFuture<byte[]> got = read(peer, total, false);
            assertEquals(total, writer.write(msg));
            assertEquals(total, msg.readerIndex());
            msg.release();
            assertArrayEquals(concat(header, Arrays.copyOfRange(content, 1000, content.length), trailer), got.get());
            assertEquals(content.length - 1000, writer.fileBytes(), "the file's bytes went by sendfile, no others");
        }
    }

    /**
     * A full non-blocking socket with small buffers: every write sends what fits and stops at the exact byte,
     * inside a header, inside a file piece or between them; resuming from readerIndex delivers each byte once.
     */
    @Test
    void partialWritesOnAFullNonBlockingSocketResumeAtTheExactByte() throws Exception {
        connect(4096);
        client.setOption(StandardSocketOptions.SO_SNDBUF, 4096);
        client.configureBlocking(false);
        byte[] a = random(300_000);
        byte[] b = random(70_001);
        Path pa = file("a", a);
        Path pb = file("b", b);
        byte[] h1 = random(17);
        byte[] h2 = random(5000);
        byte[] tail = random(9);
        CompositeBuffer msg = BufferAllocator.pooled().composite(
                BufferAllocator.pooled().copyOf(h1),
                BufferAllocator.unpooled().mapFile(pa),
                BufferAllocator.pooled().copyOf(h2),
                BufferAllocator.unpooled().mapFile(pb, 1, b.length - 1),
                BufferAllocator.unpooled().mapFile(pa, 7, 1000),
                BufferAllocator.pooled().copyOf(tail));
        byte[] expected = concat(h1, a, h2, Arrays.copyOfRange(b, 1, b.length), Arrays.copyOfRange(a, 7, 1007), tail);
        assertEquals(expected.length, msg.readableBytes());
        CompletableFuture<byte[]> got = read(peer, expected.length, true);
        int writes = 0;
        int partial = 0;
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client);
                Selector selector = Selector.open()) {
            client.register(selector, SelectionKey.OP_WRITE);
            while (msg.isReadable()) {
                int before = msg.readerIndex();
                long n = writer.write(msg);
                assertEquals(before + n, msg.readerIndex(), "readerIndex moves by exactly what went");
                writes++;
                if (msg.isReadable()) {
                    partial++;
                    selector.select(1000);
                    selector.selectedKeys().clear();
                }
            }
            assertArrayEquals(expected, got.get());
            assertTrue(partial > 10, "the socket was full often: " + partial + " partial writes of " + writes);
            assertEquals(a.length + b.length - 1 + 1000, writer.fileBytes());
        } finally {
            msg.release();
        }
    }

    /** Blocking: the file shrinks after it was mapped; the header goes, then an IOException, readerIndex exact. */
    @Test
    void aFileTruncatedBeforeTheWriteIsAnIOExceptionAfterTheBytesThatExist() throws Exception {
        connect(0);
        byte[] content = random(200_000);
        Path path = file("shrinks", content);
        byte[] header = random(100);
        CompositeBuffer msg = BufferAllocator.pooled().composite(
                BufferAllocator.pooled().copyOf(header), BufferAllocator.unpooled().mapFile(path));
        try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
            raf.setLength(50_000);
        }
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client)) {
            IOException e = assertThrows(IOException.class, () -> writer.write(msg));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            int sent = msg.readerIndex();
            assertEquals(100 + 50_000, sent, "the header and the bytes the file still has, no more, no less");
            client.shutdownOutput();
            byte[] got = read(peer, Long.MAX_VALUE, false).get();
            assertArrayEquals(concat(header, Arrays.copyOf(content, 50_000)), got);
            assertThrows(IOException.class, () -> writer.write(msg), "a retry fails too: the bytes do not exist");
            assertEquals(sent, msg.readerIndex());
        } finally {
            msg.release();
        }
    }

    /** Non-blocking: the file shrinks while the message is half sent; no crash, no byte lost or repeated. */
    @Test
    void aFileTruncatedWhileSendingStopsWithAnIOExceptionAndExactCount() throws Exception {
        connect(4096);
        client.setOption(StandardSocketOptions.SO_SNDBUF, 4096);
        client.configureBlocking(false);
        byte[] content = random(4 << 20);
        Path path = file("shrinking", content);
        CompositeBuffer msg = BufferAllocator.pooled().composite(
                BufferAllocator.pooled().copyOf(random(10)), BufferAllocator.unpooled().mapFile(path));
        byte[] header = new byte[10];
        msg.getBytes(0, header);
        CompletableFuture<byte[]> got = read(peer, Long.MAX_VALUE, true);
        int cut = 1 << 20;
        IOException failure = null;
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client);
                Selector selector = Selector.open()) {
            client.register(selector, SelectionKey.OP_WRITE);
            boolean truncated = false;
            while (msg.isReadable()) {
                try {
                    writer.write(msg);
                } catch (IOException e) {
                    failure = e;
                    break;
                }
                if (!truncated && msg.readerIndex() > 64 << 10) {
                    assertTrue(msg.readerIndex() < 10 + cut, "still before the cut: " + msg.readerIndex());
                    try (RandomAccessFile raf = new RandomAccessFile(path.toFile(), "rw")) {
                        raf.setLength(cut);
                    }
                    truncated = true;
                }
                selector.select(1000);
                selector.selectedKeys().clear();
            }
        }
        try {
            assertTrue(failure != null, "a write past the file's new end fails");
            assertEquals(10 + cut, msg.readerIndex(), "every byte up to the new end went, then none");
            client.shutdownOutput();
            assertArrayEquals(concat(header, Arrays.copyOf(content, cut)), got.get());
        } finally {
            msg.release();
        }
    }

    /**
     * Request-response rounds of small responses: a header and a file (MSG_MORE, then sendfile), and a header, a
     * file and a trailer (TCP_CORK). Nothing may stay held back: with a header left waiting for more, or a small
     * send behind Nagle waiting for a delayed ACK, each round would take 40-200 ms instead of well under one.
     */
    @Test
    void smallResponsesLeaveAtOnce() throws Exception {
        connect(0);
        byte[] content = random(1024);
        Path path = file("small", content);
        byte[] header = random(120);
        byte[] trailer = random(2);
        int rounds = 100;
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(client)) {
            for (boolean withTrailer : new boolean[] {false, true}) {
                long start = System.nanoTime();
                for (int i = 0; i < rounds; i++) {
                    CompositeBuffer msg = BufferAllocator.pooled().composite(
                            BufferAllocator.pooled().copyOf(header),
                            i % 2 == 0 ? BufferAllocator.pooled().fileRegion(path)
                                    : BufferAllocator.unpooled().mapFile(path));
                    if (withTrailer) {
                        msg.addComponent(BufferAllocator.pooled().copyOf(trailer));
                    }
                    byte[] expected = withTrailer ? concat(header, content, trailer) : concat(header, content);
                    writer.writeAndRelease(msg);
                    ByteBuffer got = ByteBuffer.allocate(expected.length);
                    while (got.hasRemaining()) {
                        if (peer.read(got) < 0) {
                            throw new IOException("EOF");
                        }
                    }
                    assertArrayEquals(expected, got.array());
                    peer.write(ByteBuffer.wrap(new byte[] {1})); // the next request
                    ByteBuffer ack = ByteBuffer.allocate(1);
                    while (ack.hasRemaining()) {
                        client.read(ack);
                    }
                }
                long millis = (System.nanoTime() - start) / 1_000_000;
                assertTrue(millis < 3000, rounds + " rounds took " + millis + " ms (trailer: " + withTrailer + ")");
            }
            assertEquals(2L * rounds * content.length, writer.fileBytes());
        }
    }

    /** A Unix stream socket: sendfile serves it (no cork there), bytes exact. */
    @Test
    void aUnixStreamSocketGetsTheFileBySendfile() throws Exception {
        Path sockPath = dir.resolve("s");
        byte[] content = random(150_000);
        Path path = file("u", content);
        byte[] header = random(40);
        try (ServerSocketChannel us = ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            us.bind(UnixDomainSocketAddress.of(sockPath));
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sockPath));
                    SocketChannel p = us.accept();
                    ZeroCopyWriter writer = ZeroCopyWriter.open(c)) {
                assertTrue(writer.isNative(), writer.stats().autoDecision());
                CompositeBuffer msg = BufferAllocator.pooled().composite(
                        BufferAllocator.pooled().copyOf(header), BufferAllocator.unpooled().mapFile(path));
                CompletableFuture<byte[]> got = read(p, 40 + content.length, false);
                writer.writeAndRelease(msg);
                assertArrayEquals(concat(header, content), got.get());
                assertEquals(content.length, writer.fileBytes());
            }
        }
    }

    /** A datagram cannot come from sendfile: the mapped bytes go in the one datagram, exactly. */
    @Test
    void aDatagramGetsTheMappedBytesInOneDatagram() throws Exception {
        byte[] content = random(3000);
        Path path = file("d", content);
        byte[] header = random(20);
        try (DatagramChannel rx = DatagramChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                DatagramChannel tx = DatagramChannel.open().connect(rx.getLocalAddress());
                ZeroCopyWriter writer = ZeroCopyWriter.open(tx)) {
            CompositeBuffer msg = BufferAllocator.pooled().composite(
                    BufferAllocator.pooled().copyOf(header), BufferAllocator.unpooled().mapFile(path));
            writer.writeAndRelease(msg);
            ByteBuffer dst = ByteBuffer.allocate(1 << 16);
            rx.receive(dst);
            dst.flip();
            byte[] got = new byte[dst.remaining()];
            dst.get(got);
            assertArrayEquals(concat(header, content), got);
            assertEquals(0, writer.fileBytes());
        }
    }
}
