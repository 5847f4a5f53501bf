package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Writers against hostile timing: a release racing {@code write()}, a
 * channel closed while a writer opens. Every byte that reaches the peer is
 * checked against the byte stream the writer reported, so a write that sent
 * bytes but threw (or reported the wrong count) fails the test.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class WriterRaceTest {

    /** The byte at stream position {@code p}: the peer checks every byte against it. */
    static byte streamByte(long p) {
        return (byte) (p % 251);
    }

    @Test
    void writeReportsEveryByteItSentEvenWhenReleasedMeanwhile() throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            try (SocketChannel client = SocketChannel.open(server.getLocalAddress());
                    SocketChannel peer = server.accept();
                    ZeroCopyWriter writer = ZeroCopyWriter.open(client, ZeroCopyMode.NEVER, 0)) {
                assertTrue(writer.isNative(), writer.stats().autoDecision());
                CompletableFuture<Long> received = CompletableFuture.supplyAsync(() -> receive(peer));
                SynchronousQueue<Buffer> toRelease = new SynchronousQueue<>();
                Thread releaser = new Thread(() -> {
                    try {
                        for (;;) {
                            Buffer b = toRelease.take();
                            if (b.capacity() == 0) {
                                return;
                            }
                            int spin = ThreadLocalRandom.current().nextInt(2000);
                            for (int i = 0; i < spin; i++) {
                                Thread.onSpinWait();
                            }
                            b.release();
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                });
                releaser.start();
                long sent = 0;
                int rounds = 3000;
                int refusedBefore = 0;
                int wrote = 0;
                for (int r = 0; r < rounds; r++) {
                    int n = 1 + ThreadLocalRandom.current().nextInt(16 << 10);
                    NativeBuffer msg = BufferAllocator.pooled().allocate(n);
                    for (int i = 0; i < n; i++) {
                        msg.writeByte(streamByte(sent + i));
                    }
                    toRelease.put(msg);
                    try {
                        long w = writer.write(msg);
                        assertEquals(w, msg.readerIndex(), "the reader index moved by what was sent");
                        sent += w;
                        wrote++;
                    } catch (IllegalReferenceCountException | StaleHandleException released) {
                        refusedBefore++; // refused before anything went out: the peer's check proves it
                    } catch (IOException peerGone) {
                        break; // the peer saw a wrong byte and closed: received.get() says which
                    }
                }
                toRelease.put(BufferAllocator.pooled().allocate(0));
                releaser.join();
                client.shutdownOutput();
                long got = received.get(60, TimeUnit.SECONDS);
                assertEquals(sent, got, "the peer got exactly the bytes write() reported");
                System.out.println("write vs release: " + wrote + " writes reported " + sent + " bytes, "
                        + refusedBefore + " refused before sending, of " + rounds);
                assertTrue(wrote > 0 && refusedBefore > 0, "both sides of the race were hit");
            }
        }
    }

    /** Reads to EOF, checking every byte against the stream; returns the count. */
    private static long receive(SocketChannel peer) {
        ByteBuffer chunk = ByteBuffer.allocate(1 << 16);
        long at = 0;
        try {
            for (;;) {
                chunk.clear();
                int r = peer.read(chunk);
                if (r < 0) {
                    return at;
                }
                for (int i = 0; i < r; i++) {
                    if (chunk.get(i) != streamByte(at + i)) {
                        peer.close(); // the writer gets an error instead of blocking on a full socket
                        throw new AssertionError("byte " + (at + i) + " is " + chunk.get(i) + ", expected "
                                + streamByte(at + i) + ": a write sent bytes it did not report");
                    }
                }
                at += r;
            }
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    @Test
    void aWriterNeverOpensOnAChannelClosedMeanwhile() throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int refused = 0;
            int opened = 0;
            for (int r = 0; r < 300; r++) {
                SocketChannel client = SocketChannel.open(server.getLocalAddress());
                SocketChannel peer = server.accept();
                Thread closer = new Thread(() -> {
                    try {
                        client.close();
                    } catch (IOException e) {
                        throw new RuntimeException(e);
                    }
                });
                closer.start();
                try (ZeroCopyWriter w = ZeroCopyWriter.open(client, ZeroCopyMode.NEVER, 0)) {
                    // Opened before the close: the writer has its own duplicate of *this* socket, so a write
                    // either reaches this peer or fails; it never goes to whatever reuses the number.
                    opened++;
                    closer.join();
                    try (NativeBuffer b = BufferAllocator.pooled().copyOf(new byte[] {7})) {
                        w.write(b);
                        fail("a write after the channel closed must fail");
                    } catch (IOException expected) {
                        // ClosedChannelException
                    }
                } catch (ChannelClosedException e) {
                    refused++;
                    assertTrue(e.getMessage().contains("closed"), e.getMessage());
                } finally {
                    closer.join();
                    peer.close();
                }
            }
            System.out.println("writer open vs channel close: " + opened + " opened, " + refused + " refused");
            assertEquals(300, opened + refused);
        }
    }
}
