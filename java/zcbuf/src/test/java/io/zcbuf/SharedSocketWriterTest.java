package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Two writers on one channel (each on its own duplicate of the socket's
 * descriptor) share the socket's zero-copy completion state: neither
 * releases memory the kernel still sends because it read the other's
 * completions. Before, the receiver got message 32's bytes in place of
 * message 5 in 5 of 5 runs, and the second writer's pins never completed.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class SharedSocketWriterTest {

    /** Byte {@code j} of message {@code m}: the receiver checks every one. */
    static byte messageByte(int m, int j) {
        return (byte) ((m * 31 + j) % 251);
    }

    @Test
    void twoWritersOnOneChannelLoseNothing() throws Exception {
        Random rnd = new Random(5);
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            try (SocketChannel client = SocketChannel.open(server.getLocalAddress());
                    SocketChannel peer = server.accept()) {
                for (int round = 0; round < 4; round++) {
                    try (ZeroCopyWriter a = ZeroCopyWriter.open(client, ZeroCopyMode.ALWAYS, 0);
                            ZeroCopyWriter b = ZeroCopyWriter.open(client, ZeroCopyMode.ALWAYS, 0)) {
                        int messages = 64;
                        int[] sizes = new int[messages];
                        long total = 0;
                        for (int m = 0; m < messages; m++) {
                            sizes[m] = 16 * 1024 + rnd.nextInt(200 * 1024);
                            total += sizes[m];
                        }
                        final long expected = total;
                        CompletableFuture<Long> received = CompletableFuture.supplyAsync(
                                () -> receive(peer, sizes, expected));
                        for (int m = 0; m < messages; m++) {
                            // Pooled: a block released too early is handed out again at once and overwritten
                            // by the next message, which the receiver would see.
                            NativeBuffer msg = BufferAllocator.pooled().allocate(sizes[m]);
                            for (int j = 0; j < sizes[m]; j++) {
                                msg.writeByte(messageByte(m, j));
                            }
                            ZeroCopyWriter w = (m % 3 == 1 || rnd.nextBoolean()) ? b : a;
                            w.writeAndRelease(msg);
                        }
                        assertEquals(expected, received.get(60, TimeUnit.SECONDS));
                        a.flush(Duration.ofSeconds(10));
                        b.flush(Duration.ofSeconds(10));
                        ZeroCopyStats sa = a.stats();
                        ZeroCopyStats sb = b.stats();
                        System.out.println("round " + round + ": a " + sa + "\n  b " + sb);
                        for (ZeroCopyStats s : new ZeroCopyStats[] {sa, sb}) {
                            assertEquals(2, s.socketUsers(), "both writers share the socket's state");
                            assertTrue(s.zeroCopySends() > 0, "zero-copy was used: " + s);
                            assertEquals(0, s.pinnedSends(), "every pin completed, the second writer's too");
                            assertEquals(0, s.pinnedBytes());
                            assertEquals(0, s.unknownCompletions());
                            assertFalse(s.desynchronised());
                        }
                        // Completions are the socket's (either writer may read them): they cover both writers' sends.
                        long sends = sa.zeroCopySends() + sb.zeroCopySends();
                        assertEquals(sends, sa.completions(), "every zero-copy send of both writers completed");
                        assertEquals(sends, sb.completions());
                    }
                }
            }
        }
    }

    /** Reads {@code total} bytes, checking each message byte for byte. */
    private static long receive(SocketChannel peer, int[] sizes, long total) {
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16);
        int m = 0;
        int j = 0;
        long got = 0;
        try {
            while (got < total) {
                chunk.clear();
                chunk.limit((int) Math.min(chunk.capacity(), total - got));
                int r = peer.read(chunk);
                if (r < 0) {
                    throw new AssertionError("EOF after " + got + " of " + total + " bytes");
                }
                for (int i = 0; i < r; i++) {
                    if (chunk.get(i) != messageByte(m, j)) {
                        peer.close();
                        throw new AssertionError("message " + m + " byte " + j + " is " + chunk.get(i) + ", expected "
                                + messageByte(m, j) + ": memory was released while the kernel still sent it");
                    }
                    if (++j == sizes[m]) {
                        m++;
                        j = 0;
                    }
                }
                got += r;
            }
            return got;
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }
}
