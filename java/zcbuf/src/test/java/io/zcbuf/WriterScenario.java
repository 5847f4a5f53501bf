package io.zcbuf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Issue 10 classes 3, 5 and 6: real bytes through real loopback sockets,
 * checked byte for byte.
 *
 * <p>Argument: {@code two-writers} (3), {@code write-race} (5) or {@code closed-channel} (6).
 */
public final class WriterScenario {
    private static final int MESSAGE = 64 << 10;

    private WriterScenario() {}

    /**
     * @param args the case
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        switch (args[0]) {
            case "two-writers" -> twoWriters();
            case "write-race" -> writeRace(Double.parseDouble(args.length > 1 ? args[1] : "2"));
            case "closed-channel" -> closedChannel();
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    /** A connected pair on loopback: [client, peer]. */
    private static SocketChannel[] connect(ServerSocketChannel server) throws IOException {
        SocketChannel client = SocketChannel.open(server.getLocalAddress());
        return new SocketChannel[] {client, server.accept()};
    }

    private static ServerSocketChannel listen() throws IOException {
        return ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    }

    /**
     * Reads until end of stream on another thread, as messages: each
     * {@link #MESSAGE} bytes must be one sequence number repeated, recorded in
     * arrival order. The stream is checked as it arrives, never held whole: a
     * fast loopback moves gigabytes in a race of a few seconds.
     */
    private static CompletableFuture<List<Integer>> readMessages(SocketChannel ch) {
        return CompletableFuture.supplyAsync(() -> {
            List<Integer> seqs = new ArrayList<>();
            ByteBuffer message = ByteBuffer.allocate(MESSAGE);
            try {
                while (ch.read(message) >= 0) {
                    if (message.hasRemaining()) {
                        continue;
                    }
                    message.flip();
                    int seq = message.getInt(0);
                    for (int i = 0; i < MESSAGE / 4; i++) {
                        int x = message.getInt();
                        if (x != seq) {
                            throw new AssertionError("message " + seqs.size() + " (seq " + seq + ") word " + i
                                    + " is " + x);
                        }
                    }
                    seqs.add(seq);
                    message.clear();
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            if (message.position() != 0) {
                throw new AssertionError("the stream ended inside message " + seqs.size() + ", after "
                        + message.position() + " of its " + MESSAGE + " bytes");
            }
            return seqs;
        });
    }

    /** Reads until end of stream on another thread. */
    private static CompletableFuture<byte[]> readAll(SocketChannel ch) {
        return CompletableFuture.supplyAsync(() -> {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer chunk = ByteBuffer.allocate(1 << 16);
            try {
                while (ch.read(chunk.clear()) >= 0) {
                    out.write(chunk.array(), 0, chunk.position());
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return out.toByteArray();
        });
    }

    private static NativeBuffer message(int seq) {
        NativeBuffer b = BufferAllocator.pooled().allocate(MESSAGE);
        while (b.isWritable()) {
            b.writeInt(seq);
        }
        return b;
    }

    private static void checkStream(List<Integer> got, List<Integer> sent) {
        if (!got.equals(sent)) {
            throw new AssertionError("received " + got.size() + " messages, sent " + sent.size()
                    + "; first difference at message " + firstDifference(got, sent));
        }
    }

    private static int firstDifference(List<Integer> a, List<Integer> b) {
        int i = 0;
        while (i < a.size() && i < b.size() && a.get(i).equals(b.get(i))) {
            i++;
        }
        return i;
    }

    /**
     * Two writers on one socket: the second is refused with a clear
     * exception, or both write and every byte arrives, in order, intact,
     * while freed pool blocks are reused at once.
     */
    private static void twoWriters() throws Exception {
        try (ServerSocketChannel server = listen()) {
            SocketChannel[] pair = connect(server);
            CompletableFuture<List<Integer>> received = readMessages(pair[1]);
            ZeroCopyWriter w1 = ZeroCopyWriter.open(pair[0], ZeroCopyMode.ALWAYS, 0);
            ZeroCopyWriter w2;
            try {
                w2 = ZeroCopyWriter.open(pair[0], ZeroCopyMode.ALWAYS, 0);
            } catch (IllegalStateException | IllegalArgumentException refused) {
                w1.close();
                pair[0].close();
                pair[1].close();
                ChildJvm.ok("a second writer on the socket was refused: " + refused);
                return;
            }
            List<Integer> sent = new ArrayList<>();
            for (int seq = 0; seq < 200; seq++) {
                ZeroCopyWriter w = seq % 2 == 0 ? w1 : w2;
                w.writeAndRelease(message(seq));
                sent.add(seq);
                // Freed pool blocks of the class go to the next message at once.
            }
            w1.flush(Duration.ofSeconds(20));
            w2.flush(Duration.ofSeconds(20));
            w1.close();
            w2.close();
            pair[0].shutdownOutput();
            checkStream(received.get(60, TimeUnit.SECONDS), sent);
            pair[0].close();
            pair[1].close();
            ChildJvm.ok("two writers on one socket: 200 messages arrived intact and in order (native: "
                    + w1.isNative() + ", " + w2.isNative() + ")");
        }
    }

    /**
     * write() racing a release on another thread: a write that returns sent
     * the whole message, a write that throws sent none of it; nothing
     * crashes and the stream holds exactly the messages whose write returned.
     */
    private static void writeRace(double seconds) throws Exception {
        try (ServerSocketChannel server = listen()) {
            SocketChannel[] pair = connect(server);
            CompletableFuture<List<Integer>> received = readMessages(pair[1]);
            ZeroCopyWriter w = ZeroCopyWriter.open(pair[0], ZeroCopyMode.ALWAYS, 0);
            List<Integer> sent = new ArrayList<>();
            int refusedBefore = 0;
            int rounds = 0;
            long end = System.nanoTime() + (long) (seconds * 1e9);
            for (int seq = 0; System.nanoTime() < end; seq++) {
                NativeBuffer b = message(seq);
                long spin = ThreadLocalRandom.current().nextLong(30_000);
                Thread releaser = new Thread(() -> {
                    for (long t0 = System.nanoTime(); System.nanoTime() - t0 < spin; ) {
                        Thread.onSpinWait();
                    }
                    b.release();
                });
                releaser.start();
                try {
                    long n = w.write(b);
                    if (n != MESSAGE) {
                        throw new AssertionError("write() returned " + n + " of " + MESSAGE + " on a blocking socket");
                    }
                    sent.add(seq);
                } catch (IllegalReferenceCountException | StaleHandleException refused) {
                    refusedBefore++;
                }
                releaser.join();
                rounds++;
            }
            w.flush(Duration.ofSeconds(20));
            w.close();
            pair[0].shutdownOutput();
            checkStream(received.get(60, TimeUnit.SECONDS), sent);
            pair[0].close();
            pair[1].close();
            if (sent.isEmpty() || refusedBefore == 0) {
                System.out.println("note: the race never went both ways (" + sent.size() + " sent, " + refusedBefore
                        + " refused)");
            }
            ChildJvm.ok(rounds + " writes raced a release: " + sent.size() + " returned and arrived whole, "
                    + refusedBefore + " threw and sent nothing");
        }
    }

    /**
     * A writer opened on a channel closed already must not write to the
     * socket that now has its descriptor number.
     */
    private static void closedChannel() throws Exception {
        try (ServerSocketChannel server = listen()) {
            for (int round = 0; round < 20; round++) {
                SocketChannel[] old = connect(server);
                old[0].close();
                SocketChannel[] fresh = connect(server); // likely takes the descriptor number old[0] had
                CompletableFuture<byte[]> received = readAll(fresh[1]);
                String outcome;
                try (ZeroCopyWriter w = ZeroCopyWriter.open(old[0], ZeroCopyMode.ALWAYS, 0)) {
                    NativeBuffer b = message(round);
                    try {
                        w.write(b);
                        throw new AssertionError("a writer on a closed channel wrote");
                    } catch (java.nio.channels.ClosedChannelException expected) {
                        outcome = "write threw " + expected;
                    } finally {
                        b.release();
                    }
                } catch (IllegalArgumentException | IllegalStateException refused) {
                    outcome = "open refused: " + refused.getMessage();
                }
                fresh[0].shutdownOutput();
                byte[] got = received.get(30, TimeUnit.SECONDS);
                if (got.length != 0) {
                    throw new AssertionError("the other socket received " + got.length + " bytes: "
                            + Arrays.toString(Arrays.copyOf(got, 8)));
                }
                fresh[0].close();
                fresh[1].close();
                old[1].close();
                if (round == 19) {
                    ChildJvm.ok("a writer on a closed channel touched no other socket: " + outcome);
                }
            }
        }
    }
}
