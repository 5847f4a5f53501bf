package io.zcbuf;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A hostile user's races and misuse, through the public API only, each in a
 * child JVM (issue 10 follow-up).
 *
 * <p>Arguments: the case, and the seconds a race lasts.
 * <ul>
 *   <li>{@code retained-slice-reuse}: {@code retainedSlice()} on one thread
 *       races {@code release()} and a new allocation of the same size on
 *       another; the pool block goes back to the releasing thread's cache
 *       and out again at once. A retained slice that was granted must show
 *       its own buffer's bytes, never the block's next owner's.
 *   <li>{@code write-reuse}: {@link ZeroCopyWriter#write} on one thread
 *       races {@code release()} and a new allocation on another. A write
 *       either throws {@link IllegalReferenceCountException} (nothing sent)
 *       or sends its own buffer's bytes, checked byte for byte at the peer.
 *   <li>{@code close-channel-mid-write}, {@code close-writer-mid-write}: a
 *       blocking write of 64 MiB to a peer that does not read; another thread
 *       closes the channel (or the writer). The write throws
 *       {@link AsynchronousCloseException} at once (not when the peer reads),
 *       and the peer then gets exactly the bytes readerIndex says went out.
 *   <li>{@code interrupt-mid-write}: the same write, its thread interrupted:
 *       {@code ClosedByInterruptException} and a closed channel, as the
 *       JDK's blocking channels do (it stayed blocked before).
 *   <li>{@code channel-write-after-writer}: after a writer's blocking write
 *       waited on a full socket, the channel's own blocking
 *       {@code write(ByteBuffer)} still writes everything in one call.
 *   <li>{@code composite-release-race}: a composite's {@code release()} on
 *       one thread races {@code consolidate}, {@code discardReadComponents},
 *       {@code addComponent} or {@code removeComponent} on another. The
 *       release never throws, the change either succeeds or throws
 *       {@link IllegalReferenceCountException}, and no native handle leaks.
 *   <li>{@code flush-forever}: {@code flush(ChronoUnit.FOREVER.getDuration())}
 *       after a zero-copy send waits for its completion and returns (it threw
 *       ArithmeticException: the duration has no long count of milliseconds).
 *   <li>{@code fallback-partial}: a writer over a channel that is not a
 *       socket (the fallback path) whose {@code write} takes 100 bytes a call
 *       and then throws, or reports more than it took: readerIndex says
 *       exactly which bytes the channel got.
 *   <li>{@code udp-truncated-mapfile}: a datagram writer sends a composite
 *       whose mapped file was truncated after mapping, as the tail of more
 *       than IOV_MAX pieces and as a small piece of a zero-copy datagram
 *       (both are copied before the send): the write fails (InternalError,
 *       the JDK's error for a fault in mapped memory), the JVM lives and
 *       nothing leaks.
 *   <li>{@code forgotten-writers}: 2000 writers opened and dropped without
 *       {@code close()}: once collected, their native writers and duplicate
 *       descriptors are closed (and reported as leaks).
 *   <li>{@code socketchannel-subclass}: a writer over a user's
 *       {@code SocketChannel} subclass that transforms its bytes (as TLS
 *       would) and has an {@code fdVal} field naming the raw socket: the
 *       peer gets the transformed bytes, i.e. the subclass's own write ran.
 *   <li>{@code extreme-indices}: every index/length taking accessor, on a
 *       buffer, a two-piece composite and a read-only wrap, with indices and
 *       lengths from {@code Integer.MIN_VALUE} to {@code MAX_VALUE} (sums
 *       overflowing int): only IndexOutOfBounds, IllegalArgument,
 *       ReadOnlyBuffer or UnsupportedOperation exceptions, nothing leaks.
 *   <li>{@code huge-composite}: a composite of exactly 2^31 - 1 bytes (a
 *       sparse 1.5 GB mapped file and an unpooled buffer): reads at the last
 *       index and across the boundary are right, one more byte is refused.
 *   <li>{@code component-released-behind}: the user releases components
 *       the composite owns (mapped, large, pooled): reads through the
 *       composite never crash, its release throws
 *       IllegalReferenceCountException once and still releases the rest.
 *   <li>{@code mapfile-truncated}: a mapped file truncated by someone else
 *       while mapped: reads of the lost part (get, bulk, forEachByte, NIO
 *       view, writeBytes, consolidate) get the JDK's InternalError (HotSpot
 *       raises it at the next safepoint, so it may land on a later call), a
 *       stream socket write throws IOException ({@code EFAULT}); the JVM
 *       lives.
 *   <li>{@code paranoid-races}: leak detection on every allocation while
 *       threads hand buffers to each other (allocated on one thread,
 *       retained-sliced and released on another), keep views past release,
 *       ask for GCs, and short-lived threads die with cached pool blocks
 *       still viewed: no crash, no false leak report, nothing leaks.
 * </ul>
 */
public final class AttackScenario {
    private AttackScenario() {}

    /**
     * @param args the case and the race's seconds
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 2;
        long nanos = (long) (seconds * 1e9);
        switch (args[0]) {
            case "retained-slice-reuse" -> retainedSliceReuse(nanos);
            case "write-reuse" -> writeReuse(nanos);
            case "close-channel-mid-write" -> closeMidWrite(true);
            case "close-writer-mid-write" -> closeMidWrite(false);
            case "interrupt-mid-write" -> interruptMidWrite();
            case "channel-write-after-writer" -> channelWriteAfterWriter();
            case "composite-release-race" -> compositeReleaseRace(nanos);
            case "flush-forever" -> flushForever();
            case "fallback-partial" -> fallbackPartial();
            case "udp-truncated-mapfile" -> udpTruncatedMapFile();
            case "forgotten-writers" -> forgottenWriters();
            case "socketchannel-subclass" -> socketChannelSubclass();
            case "extreme-indices" -> extremeIndices();
            case "huge-composite" -> hugeComposite();
            case "component-released-behind" -> componentReleasedBehind();
            case "mapfile-truncated" -> mapFileTruncated();
            case "paranoid-races" -> paranoidRaces(nanos);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    /**
     * The owner thread allocates a 64-byte pooled buffer, tags it, publishes
     * it, releases it and allocates again (the same block, from its cache).
     * The other thread reads a published buffer's tag and takes a retained
     * slice of it: either that throws (the buffer was released) or the slice
     * shows the tag it read. Before the cache handed out a new count per reuse,
     * a retain that checked the old buffer just before its release took a
     * reference on the next owner and showed its bytes (15 in 3 s).
     */
    private static void retainedSliceReuse(long nanos) throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        AtomicReference<NativeBuffer> published = new AtomicReference<>();
        AtomicLong foreign = new AtomicLong();
        AtomicLong refused = new AtomicLong();
        AtomicLong granted = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread slicer = new Thread(() -> {
            try {
                while (!stop.get()) {
                    NativeBuffer b = published.get();
                    if (b == null) {
                        continue;
                    }
                    byte tag;
                    try {
                        tag = b.getByte(0);
                    } catch (IllegalReferenceCountException released) {
                        continue;
                    }
                    Buffer slice;
                    try {
                        slice = b.retainedSlice(0, 64);
                    } catch (IllegalReferenceCountException released) {
                        refused.incrementAndGet();
                        continue;
                    }
                    try {
                        if (slice.getByte(0) != tag) {
                            foreign.incrementAndGet();
                        } else {
                            granted.incrementAndGet();
                        }
                    } finally {
                        slice.release();
                    }
                }
            } catch (Throwable e) {
                failure.compareAndSet(null, e);
            }
        });
        slicer.start();
        long end = System.nanoTime() + nanos;
        byte tag = 0;
        while (System.nanoTime() < end) {
            NativeBuffer b = alloc.allocate(64);
            tag = (byte) (tag == -1 ? 1 : tag + 1); // never 0: the slicer's first byte is never "unset"
            b.setByte(0, tag).writerIndex(64);
            published.set(b);
            for (int k = 0; k < 50; k++) {
                Thread.onSpinWait();
            }
            b.release();
        }
        stop.set(true);
        slicer.join();
        if (failure.get() != null) {
            throw new AssertionError("the slicer failed", failure.get());
        }
        if (foreign.get() != 0) {
            ChildJvm.failScenario(foreign + " retained slices showed the block's next owner (granted " + granted
                    + ", refused " + refused + ")");
        }
        if (granted.get() == 0 || refused.get() == 0) {
            ChildJvm.failScenario("the race never ran both ways: granted " + granted + ", refused " + refused);
        }
        ChildJvm.ok("no foreign bytes: " + granted + " retained slices showed their own tag, " + refused
                + " refused after release");
    }

    /**
     * The owner thread fills a 4 KiB pooled buffer with a tag, publishes it,
     * releases it and allocates again; the writer thread writes each
     * published buffer it can read the tag of. The peer checks every byte
     * against the (tag, bytes written) list the writer keeps. Before writes
     * held their memory, a write of a buffer released just before the native
     * call threw {@link StaleHandleException} (not the documented
     * {@link IllegalReferenceCountException}), and one whose block went back to
     * the thread cache could send the block's next owner's bytes.
     */
    private static void writeReuse(long nanos) throws Exception {
        int size = 4096;
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel tx = SocketChannel.open(server.getLocalAddress());
                SocketChannel rx = server.accept();
                ZeroCopyWriter writer = ZeroCopyWriter.open(tx)) {
            BlockingQueue<long[]> sent = new LinkedBlockingQueue<>();
            AtomicLong wrong = new AtomicLong();
            AtomicLong checked = new AtomicLong();
            AtomicLong refused = new AtomicLong();
            AtomicLong reported = new AtomicLong();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread peer = new Thread(() -> {
                ByteBuffer in = ByteBuffer.allocate(1 << 16);
                long[] cur = null;
                long left = 0;
                try {
                    while (rx.read(in.clear()) > 0) {
                        in.flip();
                        while (in.hasRemaining()) {
                            while (left == 0) {
                                cur = sent.take();
                                left = cur[1];
                            }
                            if (in.get() != (byte) cur[0]) {
                                wrong.incrementAndGet();
                            }
                            left--;
                            checked.incrementAndGet();
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            peer.setDaemon(true);
            peer.start();
            AtomicReference<NativeBuffer> published = new AtomicReference<>();
            Thread sender = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        NativeBuffer b = published.get();
                        if (b == null) {
                            continue;
                        }
                        byte tag;
                        try {
                            tag = b.getByte(0);
                            b.readerIndex(0);
                        } catch (IllegalReferenceCountException released) {
                            continue;
                        }
                        try {
                            long n = writer.write(b);
                            reported.addAndGet(n);
                            sent.add(new long[] {tag, n});
                        } catch (IllegalReferenceCountException released) {
                            refused.incrementAndGet();
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            sender.start();
            BufferAllocator alloc = BufferAllocator.pooled();
            long end = System.nanoTime() + nanos;
            byte tag = 0;
            while (System.nanoTime() < end && failure.get() == null) {
                NativeBuffer b = alloc.allocate(size);
                tag = (byte) (tag == -1 ? 1 : tag + 1);
                for (int k = 0; k < size; k++) {
                    b.writeByte(tag);
                }
                published.set(b);
                for (int k = 0; k < 200; k++) {
                    Thread.onSpinWait();
                }
                b.release();
            }
            stop.set(true);
            sender.join();
            long total = reported.get();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (checked.get() < total && failure.get() == null && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            if (failure.get() != null) {
                throw new AssertionError("a thread failed", failure.get());
            }
            if (wrong.get() != 0 || checked.get() != total) {
                ChildJvm.failScenario(wrong + " wrong bytes of " + checked + " checked (" + total + " reported sent)");
            }
            ChildJvm.ok("no foreign bytes: " + total + " bytes sent and checked, " + refused
                    + " writes refused after release");
        }
    }

    /**
     * Before sends were bounded, the write stayed blocked forever: the
     * writer's duplicate descriptor kept the socket open after the channel's
     * close, and nothing woke the native send.
     */
    private static void closeMidWrite(boolean closeChannel) throws Exception {
        int size = 64 << 20;
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel rx = SocketChannel.open(server.getLocalAddress());
                NativeBuffer msg = BufferAllocator.unpooled().allocate(size)) {
            SocketChannel tx = server.accept();
            for (int i = 0; i < size; i += 8) {
                msg.writeLong(pattern(i));
            }
            ZeroCopyWriter writer = ZeroCopyWriter.open(tx);
            AtomicReference<Object> outcome = new AtomicReference<>();
            Thread sender = new Thread(() -> {
                try {
                    outcome.set(writer.write(msg));
                } catch (Throwable e) {
                    outcome.set(e);
                }
            });
            sender.start();
            Thread.sleep(300); // the socket is full: the peer reads nothing yet
            long closedAt = System.nanoTime();
            if (closeChannel) {
                tx.close();
            } else {
                writer.close();
            }
            sender.join(5000);
            if (sender.isAlive()) {
                ChildJvm.failScenario("HUNG: the write is still blocked 5 s after the "
                        + (closeChannel ? "channel" : "writer") + " was closed");
            }
            long tookMs = (System.nanoTime() - closedAt) / 1_000_000;
            if (!(outcome.get() instanceof AsynchronousCloseException)) {
                throw new AssertionError("expected AsynchronousCloseException, got " + outcome.get());
            }
            long went = msg.readerIndex();
            if (went <= 0 || went >= size) {
                throw new AssertionError("readerIndex " + went + " of " + size + ": the socket should have been full");
            }
            writer.close(); // the socket's last descriptor: the peer sees EOF after the bytes
            tx.close();
            ByteBuffer in = ByteBuffer.allocateDirect(1 << 20);
            long got = 0;
            for (int r; (r = rx.read(in.clear())) > 0; ) {
                in.flip();
                for (int k = 0; k < r; k++) {
                    long at = got + k;
                    byte expected = (byte) (pattern(at & ~7L) >>> (8 * (7 - (at & 7))));
                    if (in.get(k) != expected) {
                        throw new AssertionError("byte " + at + " is wrong");
                    }
                }
                got += r;
            }
            if (got != went) {
                ChildJvm.failScenario("the peer got " + got + " bytes, readerIndex says " + went);
            }
            ChildJvm.ok("stopped " + tookMs + " ms after the close with AsynchronousCloseException; the peer got the "
                    + got + " bytes readerIndex reports, each checked");
        }
    }

    private static long pattern(long index) {
        return index * 0x9E3779B97F4A7C15L;
    }

    /**
     * The bound a writer puts on its blocking sends must not outlive the
     * write: a socket left with {@code SO_SNDTIMEO} makes the JDK's blocking
     * {@code SocketChannel.write} return short counts (3.9 MiB of 32 MiB when
     * the timeout was left on), which code that trusts a blocking write to be
     * whole turns into lost bytes.
     */
    private static void channelWriteAfterWriter() throws Exception {
        int size = 32 << 20;
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel tx = SocketChannel.open(server.getLocalAddress());
                SocketChannel rx = server.accept();
                ZeroCopyWriter writer = ZeroCopyWriter.open(tx);
                NativeBuffer msg = BufferAllocator.unpooled().allocate(size)) {
            AtomicLong got = new AtomicLong();
            Thread peer = new Thread(() -> {
                try {
                    Thread.sleep(400); // both writes find the socket full first
                    ByteBuffer in = ByteBuffer.allocateDirect(1 << 20);
                    for (int r; (r = rx.read(in.clear())) > 0; ) {
                        got.addAndGet(r);
                    }
                } catch (Exception e) {
                    got.set(-1);
                }
            });
            peer.start();
            msg.writerIndex(size);
            long viaWriter = writer.write(msg);
            if (viaWriter != size) {
                throw new AssertionError("the writer's blocking write sent " + viaWriter + " of " + size);
            }
            Thread.sleep(300); // the socket is full again by the time the channel writes
            int viaChannel = tx.write(ByteBuffer.allocateDirect(size));
            if (viaChannel != size) {
                ChildJvm.failScenario("the channel's blocking write returned " + viaChannel + " of " + size
                        + ": the writer's send timeout outlived its write");
            }
            tx.shutdownOutput();
            peer.join(10_000);
            if (got.get() != 2L * size) {
                throw new AssertionError("the peer got " + got.get() + " bytes, expected " + 2L * size);
            }
            ChildJvm.ok("whole: the writer sent " + viaWriter + " and the channel's own write " + viaChannel
                    + " bytes on a full socket");
        }
    }

    /**
     * Before structural changes and the release of the components shared a
     * lock, 2 s of consolidate against release leaked 9 native handles and
     * made release() throw NullPointerException (a half-moved array);
     * discardReadComponents likewise.
     */
    private static void compositeReleaseRace(long nanos) throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        long liveBefore = BufferAllocator.liveNativeHandles();
        Map<String, Integer> outcomes = new TreeMap<>();
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            for (String op : new String[] {"consolidate", "discard", "add", "remove"}) {
                long end = System.nanoTime() + nanos / 2;
                while (System.nanoTime() < end) {
                    CompositeBuffer c = alloc.composite(alloc.allocate(64).writerIndex(64),
                            alloc.allocate(64).writerIndex(64), alloc.allocate(64).writerIndex(64));
                    c.readerIndex(64);
                    CountDownLatch go = new CountDownLatch(1);
                    Future<String> change = pool.submit(() -> {
                        go.await();
                        try {
                            switch (op) {
                                case "consolidate" -> c.consolidate();
                                case "discard" -> c.discardReadComponents();
                                case "add" -> c.addComponent(alloc.allocate(64).writerIndex(64));
                                default -> c.removeComponent(1);
                            }
                            return "done";
                        } catch (IllegalReferenceCountException released) {
                            return "refused";
                        }
                    });
                    Future<?> release = pool.submit(() -> {
                        go.await();
                        c.release();
                        return null;
                    });
                    go.countDown();
                    release.get(); // an exception from release() fails the scenario
                    outcomes.merge(op + " " + change.get(), 1, Integer::sum);
                }
            }
        } finally {
            pool.shutdown();
        }
        long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
        if (leaked != 0) {
            ChildJvm.failScenario(leaked + " native handles leaked; outcomes " + outcomes);
        }
        ChildJvm.ok("nothing leaked, release never threw: " + outcomes);
    }

    private static void flushForever() throws Exception {
        int size = 1 << 20;
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel tx = SocketChannel.open(server.getLocalAddress());
                SocketChannel rx = server.accept();
                ZeroCopyWriter writer = ZeroCopyWriter.open(tx, ZeroCopyMode.ALWAYS, 0)) {
            AtomicLong got = new AtomicLong();
            Thread peer = new Thread(() -> {
                ByteBuffer in = ByteBuffer.allocateDirect(1 << 16);
                try {
                    for (int r; got.get() < size && (r = rx.read(in.clear())) > 0; ) {
                        got.addAndGet(r);
                    }
                } catch (Exception e) {
                    got.set(-1);
                }
            });
            peer.start();
            NativeBuffer msg = BufferAllocator.pooled().allocate(size);
            msg.writerIndex(size);
            writer.writeAndRelease(msg);
            writer.flush(java.time.temporal.ChronoUnit.FOREVER.getDuration());
            writer.flush(java.time.Duration.ofSeconds(-1)); // nothing left: returns at once
            peer.join(10_000);
            ZeroCopyStats stats = writer.stats();
            if (got.get() != size) {
                throw new AssertionError("the peer got " + got.get() + " of " + size);
            }
            ChildJvm.ok("flush(FOREVER) returned after " + stats.zeroCopySends() + " zero-copy sends, "
                    + stats.pinnedSends() + " pinned sends left");
        }
    }

    /** A channel that takes at most 100 bytes a call, fails on call {@code failOn}, and may overstate. */
    private static final class StingyChannel implements java.nio.channels.GatheringByteChannel {
        final java.io.ByteArrayOutputStream got = new java.io.ByteArrayOutputStream();
        private final int failOn;
        private final boolean overstate;
        private int calls;

        StingyChannel(int failOn, boolean overstate) {
            this.failOn = failOn;
            this.overstate = overstate;
        }

        @Override
        public long write(ByteBuffer[] srcs, int offset, int length) throws java.io.IOException {
            if (++calls == failOn) {
                throw new java.io.IOException("connection reset (call " + calls + ")");
            }
            int budget = 100;
            for (int i = offset; i < offset + length && budget > 0; i++) {
                while (srcs[i].hasRemaining() && budget > 0) {
                    got.write(srcs[i].get());
                    budget--;
                }
            }
            return overstate ? Integer.MAX_VALUE : 100 - budget;
        }

        @Override
        public long write(ByteBuffer[] srcs) throws java.io.IOException {
            return write(srcs, 0, srcs.length);
        }

        @Override
        public int write(ByteBuffer src) throws java.io.IOException {
            return (int) write(new ByteBuffer[] {src});
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {}
    }

    /**
     * Before, the fallback loop counted the calls' results: an exception on
     * the third call lost the 200 bytes the first two sent (readerIndex stayed
     * at 0, so a retry sent them twice), and a channel reporting more than it
     * took pushed readerIndex past writerIndex.
     */
    private static void fallbackPartial() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        byte[] expected = new byte[1000];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = (byte) (i * 7 + 3);
        }
        for (boolean overstate : new boolean[] {false, true}) {
            StingyChannel channel = new StingyChannel(overstate ? 0 : 3, overstate);
            try (ZeroCopyWriter writer = ZeroCopyWriter.open(channel, ZeroCopyMode.AUTO, 0);
                    CompositeBuffer msg = alloc.composite(alloc.copyOf(java.util.Arrays.copyOfRange(expected, 0, 150)),
                            alloc.copyOf(java.util.Arrays.copyOfRange(expected, 150, 1000)))) {
                if (writer.isNative()) {
                    throw new AssertionError("a channel that is not a socket must take the fallback path");
                }
                Object outcome;
                try {
                    outcome = writer.write(msg);
                } catch (java.io.IOException e) {
                    outcome = e;
                }
                byte[] got = channel.got.toByteArray();
                if (msg.readerIndex() != got.length || msg.readerIndex() > msg.writerIndex()) {
                    ChildJvm.failScenario((overstate ? "overstating" : "failing") + " channel: readerIndex "
                            + msg.readerIndex() + " (writerIndex " + msg.writerIndex() + "), the channel got "
                            + got.length + " bytes; write gave " + outcome);
                }
                if (!java.util.Arrays.equals(got, java.util.Arrays.copyOf(expected, got.length))) {
                    throw new AssertionError("the channel got other bytes than the message's first " + got.length);
                }
                if (!overstate && !(outcome instanceof java.io.IOException)) {
                    throw new AssertionError("the third call's IOException was lost: " + outcome);
                }
            }
        }
        ChildJvm.ok("readerIndex matches what the channel got, also after an IOException and an overstated count");
    }

    /**
     * Before, the native sender copied those pieces itself and died of
     * SIGBUS in memcpy, taking the JVM down (hs_err: libc, Native.writerWrite).
     */
    private static void udpTruncatedMapFile() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        java.nio.file.Path file = java.nio.file.Files.createTempFile("zcbuf-truncated", ".bin");
        long liveBefore = BufferAllocator.liveNativeHandles();
        try (java.nio.channels.DatagramChannel rx = java.nio.channels.DatagramChannel.open()
                        .bind(new InetSocketAddress("127.0.0.1", 0));
                java.nio.channels.DatagramChannel tx = java.nio.channels.DatagramChannel.open()
                        .connect(rx.getLocalAddress())) {
            StringBuilder seen = new StringBuilder();
            for (String shape : new String[] {"past-IOV_MAX", "small-zero-copy"}) {
                java.nio.file.Files.write(file, new byte[8192]);
                CompositeBuffer msg = alloc.composite();
                int pieces = shape.equals("past-IOV_MAX") ? 1100 : 30;
                for (int i = 0; i < pieces; i++) {
                    msg.addComponent(alloc.allocate(16).writeLong(i).writeLong(~i));
                }
                NativeBuffer mapped = alloc.mapFile(file);
                if (shape.equals("small-zero-copy")) {
                    mapped.writerIndex(1000);
                }
                msg.addComponent(mapped);
                try (java.nio.channels.FileChannel fc = java.nio.channels.FileChannel.open(file,
                        java.nio.file.StandardOpenOption.WRITE)) {
                    fc.truncate(0);
                }
                try (ZeroCopyWriter writer = ZeroCopyWriter.open(tx, ZeroCopyMode.ALWAYS, 0)) {
                    long sent = writer.write(msg);
                    throw new AssertionError(shape + ": a write of a truncated file's pages sent " + sent);
                } catch (java.io.IOException | InternalError expected) {
                    seen.append(shape).append(": ").append(expected).append("; ");
                } finally {
                    msg.release();
                }
            }
            long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
            if (leaked != 0) {
                ChildJvm.failScenario(leaked + " native handles leaked by the failed writes: " + seen);
            }
            ChildJvm.ok("alive, nothing leaked, the write failed each time: " + seen);
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    private static void interruptMidWrite() throws Exception {
        int size = 64 << 20;
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel rx = SocketChannel.open(server.getLocalAddress());
                NativeBuffer msg = BufferAllocator.unpooled().allocate(size)) {
            SocketChannel tx = server.accept();
            msg.writerIndex(size);
            ZeroCopyWriter writer = ZeroCopyWriter.open(tx);
            AtomicReference<Object> outcome = new AtomicReference<>();
            Thread sender = new Thread(() -> {
                try {
                    outcome.set(writer.write(msg));
                } catch (Throwable e) {
                    outcome.set(e);
                }
            });
            sender.start();
            Thread.sleep(300);
            sender.interrupt();
            sender.join(5000);
            if (sender.isAlive()) {
                ChildJvm.failScenario("HUNG: the write is still blocked 5 s after its thread was interrupted");
            }
            if (!(outcome.get() instanceof java.nio.channels.ClosedByInterruptException) || tx.isOpen()) {
                throw new AssertionError("expected ClosedByInterruptException and a closed channel, got "
                        + outcome.get() + ", channel open " + tx.isOpen());
            }
            long went = msg.readerIndex();
            writer.close();
            ByteBuffer in = ByteBuffer.allocateDirect(1 << 20);
            long got = 0;
            for (int r; (r = rx.read(in.clear())) > 0; ) {
                got += r;
            }
            if (got != went) {
                ChildJvm.failScenario("the peer got " + got + " bytes, readerIndex says " + went);
            }
            ChildJvm.ok("ClosedByInterruptException, channel closed; the peer got the " + got
                    + " bytes readerIndex reports");
        }
    }

    /** Before, each forgotten writer kept its native writer and a socket descriptor until the JVM exited. */
    private static void forgottenWriters() throws Exception {
        int n = 2000;
        AtomicLong reports = new AtomicLong();
        LeakDetector.setReporter(message -> {
            if (message.contains("ZeroCopyWriter")) {
                reports.incrementAndGet();
            }
        });
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                SocketChannel tx = SocketChannel.open(server.getLocalAddress());
                SocketChannel rx = server.accept()) {
            long before = BufferAllocator.liveNativeHandles();
            long fdsBefore = openDescriptors();
            for (int i = 0; i < n; i++) {
                ZeroCopyWriter.open(tx); // dropped at once, never closed
            }
            long opened = BufferAllocator.liveNativeHandles() - before;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (BufferAllocator.liveNativeHandles() > before && System.nanoTime() < deadline) {
                System.gc();
                Thread.sleep(50);
            }
            long left = BufferAllocator.liveNativeHandles() - before;
            long fdsLeft = openDescriptors() - fdsBefore;
            if (left != 0 || fdsLeft > 10) {
                ChildJvm.failScenario(left + " of " + opened + " forgotten writers still open natively, " + fdsLeft
                        + " descriptors more than before");
            }
            ChildJvm.ok("all " + n + " forgotten writers closed after collection (" + reports.get()
                    + " leak reports), descriptors back to " + openDescriptors());
        }
    }

    private static long openDescriptors() throws java.io.IOException {
        try (java.util.stream.Stream<java.nio.file.Path> fds = java.nio.file.Files.list(java.nio.file.Path.of(
                "/proc/self/fd"))) {
            return fds.count();
        }
    }

    /**
     * Before, the native side read the subclass's {@code fdVal} field and sent
     * the message on the raw socket itself: the peer got the plain bytes, the
     * subclass's write (its encryption) never ran.
     */
    private static void socketChannelSubclass() throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            java.util.Set<String> fdsBefore = socketDescriptors();
            SocketChannel raw = SocketChannel.open();
            java.util.Set<String> fdsAfter = socketDescriptors();
            fdsAfter.removeAll(fdsBefore);
            if (fdsAfter.size() != 1) {
                throw new AssertionError("cannot tell the raw socket's descriptor: " + fdsAfter);
            }
            int rawFd = Integer.parseInt(fdsAfter.iterator().next());
            raw.connect(server.getLocalAddress());
            try (SocketChannel rx = server.accept();
                    ScramblingChannel tx = new ScramblingChannel(raw, rawFd);
                    ZeroCopyWriter writer = ZeroCopyWriter.open(tx);
                    NativeBuffer msg = BufferAllocator.pooled().copyOf("attack at dawn".getBytes(
                            java.nio.charset.StandardCharsets.US_ASCII))) {
                int n = msg.readableBytes();
                byte[] plain = msg.toByteArray();
                writer.write(msg);
                ByteBuffer in = ByteBuffer.allocate(n);
                while (in.hasRemaining() && rx.read(in) > 0) {
                    // until the message is in
                }
                for (int i = 0; i < n; i++) {
                    if (in.get(i) != (byte) (plain[i] ^ ScramblingChannel.KEY)) {
                        ChildJvm.failScenario("the peer got the message unscrambled at byte " + i
                                + ": the subclass's write() was bypassed (writer native: " + writer.isNative() + ")");
                    }
                }
                ChildJvm.ok("the subclass's own write ran (writer native: " + writer.isNative() + "), " + n
                        + " bytes scrambled as it does");
            }
        }
    }

    private static java.util.Set<String> socketDescriptors() throws java.io.IOException {
        try (java.util.stream.Stream<java.nio.file.Path> fds = java.nio.file.Files.list(java.nio.file.Path.of(
                "/proc/self/fd"))) {
            // "3 -> socket:[1234]": the listing's own directory descriptor comes and goes, so sockets only.
            java.util.Set<String> sockets = new java.util.HashSet<>();
            for (java.nio.file.Path p : fds.toList()) {
                try {
                    if (java.nio.file.Files.readSymbolicLink(p).toString().startsWith("socket:")) {
                        sockets.add(p.getFileName().toString());
                    }
                } catch (java.io.IOException gone) {
                    // closed meanwhile (the listing's own descriptor)
                }
            }
            return sockets;
        }
    }

    /** One accessor taking an index and a length. */
    @FunctionalInterface
    private interface IndexedOp {
        void run(Buffer b, int index, int length) throws Exception;
    }

    private static void extremeIndices() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        long liveBefore = BufferAllocator.liveNativeHandles();
        Map<String, IndexedOp> ops = new TreeMap<>();
        ops.put("getByte", (b, i, l) -> b.getByte(i));
        ops.put("getShort", (b, i, l) -> b.getShort(i));
        ops.put("getInt", (b, i, l) -> b.getInt(i));
        ops.put("getLong", (b, i, l) -> b.getLong(i));
        ops.put("setLong", (b, i, l) -> b.setLong(i, 1));
        ops.put("setInt", (b, i, l) -> b.setInt(i, 1));
        ops.put("getBytes[]", (b, i, l) -> b.getBytes(i, new byte[16], 0, l));
        ops.put("getBytes[]offset", (b, i, l) -> b.getBytes(0, new byte[16], i, l));
        ops.put("setBytes[]", (b, i, l) -> b.setBytes(i, new byte[16], 0, l));
        ops.put("setBytes[]offset", (b, i, l) -> b.setBytes(0, new byte[16], i, l));
        ops.put("getBytesBB", (b, i, l) -> b.getBytes(i, ByteBuffer.allocate(Math.max(0, Math.min(l, 64)))));
        ops.put("setBytesBB", (b, i, l) -> b.setBytes(i, ByteBuffer.allocate(Math.max(0, Math.min(l, 64)))));
        ops.put("slice", (b, i, l) -> b.slice(i, l));
        ops.put("retainedSlice", (b, i, l) -> b.retainedSlice(i, l).release());
        ops.put("nioBuffers", (b, i, l) -> b.nioBuffers(i, l));
        ops.put("nioBuffer", (b, i, l) -> b.nioBuffer(i, l));
        ops.put("indexOf", (b, i, l) -> b.indexOf(i, l, (byte) 1));
        ops.put("forEachByte", (b, i, l) -> b.forEachByte(i, l, x -> true));
        ops.put("readerIndex", (b, i, l) -> b.readerIndex(i));
        ops.put("writerIndex", (b, i, l) -> b.writerIndex(i));
        ops.put("setIndex", (b, i, l) -> b.setIndex(i, l));
        ops.put("skipBytes", (b, i, l) -> b.skipBytes(i));
        ops.put("readBytes", (b, i, l) -> b.readBytes(new byte[16], i, l));
        ops.put("writeBytes", (b, i, l) -> b.writeBytes(new byte[16], i, l));
        ops.put("retain", (b, i, l) -> b.retain(i));
        ops.put("release(n)", (b, i, l) -> b.release(i));
        ops.put("component", (b, i, l) -> {
            if (b instanceof CompositeBuffer c) {
                c.component(i);
            }
        });
        ops.put("removeComponent", (b, i, l) -> {
            if (b instanceof CompositeBuffer c) {
                c.removeComponent(i);
            }
        });
        ops.put("allocate", (b, i, l) -> {
            if (i <= 1 << 20) { // larger ones would really allocate; MAX_VALUE is hugeAllocations' case
                alloc.allocate(i).release();
            }
        });
        int[] values = {Integer.MIN_VALUE, Integer.MIN_VALUE + 1, -8, -1, 0, 1, 7, 8, 15, 16, 17, 100,
            Integer.MAX_VALUE - 7, Integer.MAX_VALUE - 1, Integer.MAX_VALUE};
        long calls = 0;
        java.util.List<String> wrong = new java.util.ArrayList<>();
        for (String kind : new String[] {"native", "composite", "read-only wrap"}) {
            for (Map.Entry<String, IndexedOp> op : ops.entrySet()) {
                for (int i : values) {
                    for (int l : values) {
                        Buffer b = switch (kind) {
                            case "native" -> alloc.allocate(16).writerIndex(16);
                            case "composite" -> alloc.composite(alloc.allocate(5).writerIndex(5),
                                    alloc.allocate(11).writerIndex(11));
                            default -> alloc.wrap(ByteBuffer.allocateDirect(16).asReadOnlyBuffer());
                        };
                        calls++;
                        try {
                            op.getValue().run(b, i, l);
                        } catch (IndexOutOfBoundsException | IllegalArgumentException
                                | UnsupportedOperationException expected) {
                            // ReadOnlyBufferException is an UnsupportedOperationException
                        } catch (IllegalReferenceCountException e) {
                            if (!op.getKey().startsWith("re")) { // retain / release(n) overflow or over-release
                                wrong.add(kind + " " + op.getKey() + "(" + i + ", " + l + "): " + e);
                            }
                        } catch (Throwable e) {
                            wrong.add(kind + " " + op.getKey() + "(" + i + ", " + l + "): " + e);
                        }
                        if (b.refCnt() > 0) {
                            b.release(b.refCnt());
                        }
                    }
                }
            }
        }
        long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
        if (!wrong.isEmpty() || leaked != 0) {
            ChildJvm.failScenario(wrong.size() + " calls threw something else, " + leaked + " handles leaked: "
                    + wrong.subList(0, Math.min(10, wrong.size())));
        }
        ChildJvm.ok("only the specific exceptions in " + calls + " calls, nothing leaked");
    }

    private static void hugeComposite() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        long liveBefore = BufferAllocator.liveNativeHandles();
        int fileSize = 1_500_000_000;
        java.nio.file.Path file = java.nio.file.Files.createTempFile("zcbuf-huge", ".bin");
        try {
            try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
                raf.setLength(fileSize); // sparse: no disk, no RAM
                raf.seek(fileSize - 8);
                raf.writeLong(0x1122334455667788L);
            }
            CompositeBuffer c = alloc.composite(alloc.mapFile(file));
            try {
                int rest = Integer.MAX_VALUE - fileSize;
                Buffer fill = BufferAllocator.unpooled().allocate(rest).writerIndex(rest);
                fill.setLong(rest - 8, 42);
                c.addComponent(fill);
                check(c.capacity() == Integer.MAX_VALUE, "capacity " + c.capacity());
                check(c.getLong(Integer.MAX_VALUE - 8) == 42, "last long");
                check(c.getLong(fileSize - 4) == 0x5566778800000000L, "long across the boundary");
                check(c.slice(fileSize - 10, 20).getLong(6) == 0x5566778800000000L, "slice across the boundary");
                check(c.forEachByte(Integer.MAX_VALUE - 100, 100, b -> b == 0) == Integer.MAX_VALUE - 1, "forEachByte");
                check(c.nioBuffers(fileSize - 10, 20).length == 2, "two NIO pieces");
                try {
                    c.getLong(Integer.MAX_VALUE - 7);
                    check(false, "a read past 2^31 - 1");
                } catch (IndexOutOfBoundsException expected) {
                    // the index arithmetic did not wrap
                }
                try {
                    c.addComponent(alloc.allocate(1).writerIndex(1));
                    check(false, "a byte past 2^31 - 1 was accepted");
                } catch (IllegalArgumentException expected) {
                    // and the refused buffer was released
                }
                Buffer tail = c.retainedSlice(1_000_000_000, Integer.MAX_VALUE - 1_000_000_000);
                CompositeBuffer again = alloc.composite(tail);
                check(again.getLong(again.capacity() - 8) == 42, "retained slice of it");
                again.release();
            } finally {
                c.release();
            }
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
        long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
        check(leaked == 0, leaked + " handles leaked");
        ChildJvm.ok("2^31 - 1 bytes: reads at the end and across pieces right, one more byte refused, nothing leaked");
    }

    private static void componentReleasedBehind() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        long liveBefore = BufferAllocator.liveNativeHandles();
        java.nio.file.Path file = java.nio.file.Files.createTempFile("zcbuf-behind", ".bin");
        try {
            java.nio.file.Files.write(file, new byte[3 << 20]);
            Buffer pooled = alloc.allocate(100).writerIndex(100);
            Buffer large = BufferAllocator.unpooled().allocate(8 << 20).writerIndex(8 << 20);
            Buffer mapped = alloc.mapFile(file);
            Buffer pooledLarge = alloc.allocate(2 << 20).writerIndex(2 << 20);
            CompositeBuffer c = alloc.composite(pooled, large, mapped, pooledLarge);
            pooled.release(); // references the composite took over
            large.release();
            mapped.release();
            pooledLarge.release();
            long sum = 0;
            for (int i = 0; i + 8 <= c.capacity(); i += 4096) {
                sum += c.getLong(i); // stale memory: zeros or a new owner's bytes, never a crash
            }
            byte[] all = new byte[c.capacity()];
            c.getBytes(0, all);
            try {
                c.release();
                check(false, "the composite's release did not say a component was released already");
            } catch (IllegalReferenceCountException expected) {
                // and the others were released anyway
            }
            long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
            check(leaked == 0, leaked + " handles leaked");
            ChildJvm.ok("no crash reading " + all.length + " bytes of released components (sum " + sum
                    + "), release threw IllegalReferenceCountException, nothing leaked");
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    private static void mapFileTruncated() throws Exception {
        BufferAllocator alloc = BufferAllocator.pooled();
        long liveBefore = BufferAllocator.liveNativeHandles();
        java.nio.file.Path file = java.nio.file.Files.createTempFile("zcbuf-truncated", ".bin");
        Map<String, String> outcomes = new TreeMap<>();
        try {
            java.nio.file.Files.write(file, new byte[1 << 20]);
            NativeBuffer m = alloc.mapFile(file);
            try (java.nio.channels.FileChannel fc = java.nio.channels.FileChannel.open(file,
                    java.nio.file.StandardOpenOption.WRITE)) {
                fc.truncate(4096); // the first page stays
            }
            int lost = 1 << 19;
            Map<String, IndexedOp> reads = new TreeMap<>();
            reads.put("getLong", (b, i, l) -> b.getLong(i));
            reads.put("getBytes", (b, i, l) -> b.getBytes(i, new byte[l]));
            reads.put("forEachByte", (b, i, l) -> b.forEachByte(i, l, x -> true));
            reads.put("nioBuffer", (b, i, l) -> b.nioBuffer(i, l).getLong(0));
            reads.put("writeBytes", (b, i, l) -> {
                try (NativeBuffer target = alloc.allocate(l)) {
                    target.writeBytes(b.slice(i, l));
                }
            });
            reads.put("consolidate", (b, i, l) -> {
                try (CompositeBuffer c = alloc.composite(alloc.allocate(8).writeLong(1), b.retainedSlice(i, l))) {
                    c.consolidate();
                }
            });
            for (Map.Entry<String, IndexedOp> read : reads.entrySet()) {
                try {
                    read.getValue().run(m, lost, 4096);
                    outcomes.put(read.getKey(), "no error?!");
                } catch (InternalError expected) {
                    outcomes.put(read.getKey(), "InternalError");
                }
            }
            check(m.getLong(0) == 0, "the page still in the file reads");
            try (ServerSocketChannel server = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
                    SocketChannel tx = SocketChannel.open(server.getLocalAddress());
                    SocketChannel rx = server.accept();
                    ZeroCopyWriter writer = ZeroCopyWriter.open(tx)) {
                m.readerIndex(lost);
                try {
                    writer.write(m);
                    outcomes.put("tcp write", "no error?!");
                } catch (java.io.IOException expected) {
                    outcomes.put("tcp write", "IOException");
                }
            }
            m.release();
        } finally {
            java.nio.file.Files.deleteIfExists(file);
        }
        // HotSpot raises the fault's InternalError asynchronously, at the thread's next safepoint: a read may
        // return (0) and the error land on a later call. So: the JVM lives, and the faults do surface.
        if (!outcomes.containsValue("InternalError") || !"IOException".equals(outcomes.get("tcp write"))) {
            ChildJvm.failScenario("the truncation went unnoticed: " + outcomes);
        }
        // A failed consolidate may keep the block it allocated: its InternalError can land after the allocation.
        long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
        ChildJvm.ok("alive: " + outcomes + "; handles left " + leaked);
    }

    private static void paranoidRaces(long nanos) throws Exception {
        LeakDetector.setLevel(LeakDetector.Level.PARANOID);
        java.util.List<String> reports = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        LeakDetector.setReporter(reports::add);
        long liveBefore = BufferAllocator.liveNativeHandles();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicReference<Buffer> handOver = new AtomicReference<>();
        java.util.List<Buffer> kept = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        AtomicLong rounds = new AtomicLong();
        Thread[] threads = new Thread[3];
        for (int t = 0; t < threads.length; t++) {
            java.util.Random random = new java.util.Random(t);
            threads[t] = new Thread(() -> {
                try {
                    while (!stop.get()) {
                        BufferAllocator alloc = random.nextBoolean() ? BufferAllocator.pooled()
                                : BufferAllocator.unpooled();
                        int size = random.nextInt(4) == 0 ? 70_000 + random.nextInt(2 << 20) : 1 + random.nextInt(4000);
                        Buffer b = alloc.allocate(size).writerIndex(size);
                        Buffer previous = handOver.getAndSet(b); // allocated by another thread, maybe
                        if (previous != null) {
                            Buffer slice = previous.retainedSlice();
                            slice.getByte(0);
                            slice.release();
                            previous.release();
                        }
                        if (random.nextInt(100) == 0) {
                            Buffer v = alloc.allocate(64);
                            kept.add(v.retainedSlice()); // outlives v's release
                            v.release();
                        }
                        if (random.nextInt(2000) == 0) {
                            System.gc();
                        }
                        rounds.incrementAndGet();
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            threads[t].start();
        }
        for (int k = 0; k < 100; k++) { // threads that die with blocks in their caches, some still viewed
            Thread dying = new Thread(() -> {
                for (int i = 0; i < 20; i++) {
                    BufferAllocator.pooled().allocate(1000).release();
                }
                Buffer b = BufferAllocator.pooled().allocate(512);
                kept.add(b.retainedDuplicate());
                b.release();
            });
            dying.start();
            dying.join();
        }
        Thread.sleep(nanos / 1_000_000 / 2);
        stop.set(true);
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError("a racing thread failed", failure.get());
        }
        Buffer last = handOver.get();
        if (last != null) {
            last.release();
        }
        for (Buffer v : kept) {
            v.release();
        }
        for (int i = 0; i < 5; i++) {
            System.gc();
            Thread.sleep(50);
        }
        long leaked = BufferAllocator.liveNativeHandles() - liveBefore;
        if (!reports.isEmpty() || leaked != 0) {
            ChildJvm.failScenario(reports.size() + " leak reports, " + leaked + " handles left"
                    + (reports.isEmpty() ? "" : ": " + reports.get(0)));
        }
        ChildJvm.ok("no false leak report, nothing leaked after " + rounds + " handovers and 100 dead threads");
    }
}
