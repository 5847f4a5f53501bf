package io.zcbuf;

import java.io.IOException;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.DatagramChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SelectableChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * Writes buffers to a socket the server already owns, in one scatter-gather
 * {@code sendmsg} per call, with {@code MSG_ZEROCOPY} where it pays.
 *
 * <p>A write crosses JNI once, carrying every component as a native
 * (handle, offset, length); the native side reads the channel's descriptor
 * itself (no {@code --add-opens}) and works on its own duplicate of it.
 * Memory sent with {@code MSG_ZEROCOPY} is pinned natively until the
 * kernel's completion: releasing a buffer right after {@link #write} is
 * safe, and the memory is never reused while the kernel may still read it.
 * When the native path is not available for a channel, writes fall back to
 * {@link GatheringByteChannel#write(ByteBuffer[])} over the same direct
 * views, which copies nothing in user space either.
 *
 * <p><b>Files go out with {@code sendfile}.</b> On a stream socket, the pieces of a message that come from
 * {@link BufferAllocator#mapFile} are sent with {@code sendfile(2)} from the file itself: the kernel hands the
 * page cache's pages to the socket, and neither the mapping's pages nor the bytes are touched. Memory before
 * them (a response header) is sent under {@code TCP_CORK}, so it leaves in the same segment as the file's first
 * bytes; what follows goes after, in order. A partial write (a full non-blocking socket) stops at the exact
 * byte, wherever it falls, and the next write resumes there. Datagram sockets, and files {@code sendfile} cannot
 * serve, get the mapped bytes in the gather write instead. A {@link BufferAllocator#fileRegion file region} is
 * never mapped at all: it goes the same way ({@code sendfile}), and where that cannot serve its bytes are read
 * into a buffer of the write's own. {@link #fileBytes()} counts what went by {@code sendfile}.
 *
 * <p>Several writers on one socket (one channel, or duplicates of its
 * descriptor, in this process; Rust senders too) share the socket's
 * zero-copy completion state, so none releases memory the kernel still
 * sends because another read its completion.
 *
 * <p>Close the writer before the channel (a writer collected without
 * {@link #close()} is closed then, and reported through {@link LeakDetector}).
 * A writer is for one thread at a time; {@link #close()} from another thread stops a blocked write. On a
 * blocking stream channel, while a write sends, the writer bounds each native send
 * with a 100 ms {@code SO_SNDTIMEO} (unless the socket has a send timeout
 * already), so that a write blocked on a full socket sees a close of the
 * channel by another thread, as the JDK's own writes do; the timeout is
 * gone again when the write returns. A datagram send waits for no peer (only
 * for the local device to drain), so datagram writes go without it.
 *
 * <pre>{@code
 * try (ZeroCopyWriter writer = ZeroCopyWriter.open(socketChannel);
 *      CompositeBuffer response = alloc.composite(header, alloc.mapFile(path))) {
 *     writer.write(response);
 * }
 * }</pre>
 */
public final class ZeroCopyWriter implements AutoCloseable {
    /** The kernel documentation's break-even for {@code MSG_ZEROCOPY}: about 10 KB. */
    public static final int DEFAULT_THRESHOLD = 10 * 1024;

    private static final Duration CLOSE_FLUSH = Duration.ofSeconds(1);
    private static final Cleaner WRITERS = Cleaner.create();
    /** Linux's {@code IOV_MAX}: past it, the native sender copies a datagram's tail into one piece. */
    private static final int IOV_MAX = 1024;
    /** Pieces smaller than a page may be copied together for a zero-copy datagram. */
    private static final int PAGE = 4096;

    private final GatheringByteChannel channel;
    private final ZeroCopyMode mode;
    /** 0 when writes fall back to the channel. */
    private final long handle;
    private final String fallbackReason;
    /** Closes the native writer at {@link #close()}, or when this writer is collected without it. */
    private final Cleaner.Cleanable nativeClose;
    private final NativeClose nativeCloseAction;
    private final boolean datagram;
    private boolean closed;
    /** Set by {@link #close()} before it waits for a write in progress, which then stops. */
    private volatile boolean closing;
    private long[] handles = new long[16];
    private int[] offsets = new int[16];
    private int[] lengths = new int[16];
    /** The regions a write holds while it sends (one reference each), so none can be reused under it. */
    private Memory[] held = new Memory[16];
    /** Copies a datagram write made of pieces the native side must not read (see copyWhatTheNativeSideWouldCopy). */
    private Memory[] temps = new Memory[16];
    private long fallbackWrites;
    private long fallbackBytes;

    private ZeroCopyWriter(GatheringByteChannel channel, ZeroCopyMode mode, int threshold) {
        this.channel = channel;
        this.mode = mode;
        long h = 0;
        String reason = null;
        if (!channel.isOpen()) {
            throw new ChannelClosedException("cannot open a writer on a closed channel");
        }
        if ((channel instanceof SocketChannel || channel instanceof DatagramChannel) && !isJdkChannel(channel)) {
            // A subclass of the user's or a library's (a TLS or throttling wrapper): its write() is what must
            // run; a descriptor field it happens to have (fdVal, fd) may be the raw socket under it.
            reason = channel.getClass().getName() + " is not the JDK's socket channel: its own write() is used";
        } else if (channel instanceof SocketChannel || channel instanceof DatagramChannel) {
            try {
                // Refuses with ChannelClosedException when the channel closed meanwhile: the descriptor it
                // duplicated may then belong to anything.
                h = Native.writerOpen(channel, mode.ordinal(), threshold);
            } catch (IllegalArgumentException | IOException e) {
                reason = e.getMessage();
            }
        } else {
            reason = channel.getClass().getName() + " is not a socket channel";
        }
        this.handle = h;
        this.fallbackReason = reason;
        this.nativeCloseAction = h != 0 ? new NativeClose(h) : null;
        this.nativeClose = h != 0 ? WRITERS.register(this, nativeCloseAction) : null;
        this.datagram = channel instanceof DatagramChannel;
    }

    /**
     * Whether the native side may read {@code channel}'s descriptor and send on it: the JDK's own socket
     * channels, and a descriptor handed over by {@link #openDescriptor}.
     */
    private static boolean isJdkChannel(GatheringByteChannel channel) {
        Class<?> type = channel.getClass();
        return type == DescriptorChannel.class
                || (type.getModule() == Object.class.getModule() && type.getName().startsWith("sun.nio.ch."));
    }

    /**
     * @param channel a connected socket
     * @return a writer in AUTO mode with the default threshold
     */
    public static ZeroCopyWriter open(SocketChannel channel) {
        return open(channel, ZeroCopyMode.AUTO, DEFAULT_THRESHOLD);
    }

    /**
     * @param channel a connected datagram channel
     * @return a writer in AUTO mode with the default threshold
     */
    public static ZeroCopyWriter open(DatagramChannel channel) {
        return open(channel, ZeroCopyMode.AUTO, DEFAULT_THRESHOLD);
    }

    /**
     * @param channel a connected {@code SocketChannel} or {@code DatagramChannel} of the JDK (any other
     *     gathering channel, subclasses of those outside the JDK included, gets the fallback path: its own
     *     {@code write})
     * @param mode when to ask for zero-copy
     * @param threshold sends of fewer bytes never ask for it
     * @return a writer
     * @throws ChannelClosedException when the channel is closed (also when it closes while the writer opens)
     * @throws ZeroCopyRefusedException in {@link ZeroCopyMode#ALWAYS} when {@code SO_ZEROCOPY} was set on the
     *     socket outside zcbuf (its completions could not be owned)
     */
    public static ZeroCopyWriter open(GatheringByteChannel channel, ZeroCopyMode mode, int threshold) {
        Objects.requireNonNull(channel, "channel");
        Objects.requireNonNull(mode, "mode");
        if (threshold < 0) {
            throw new IllegalArgumentException("threshold " + threshold + " is negative");
        }
        return new ZeroCopyWriter(channel, mode, threshold);
    }

    /**
     * Opens a writer on a connected stream socket the caller owns by descriptor, for transports that keep
     * their sockets outside {@code java.nio} (Netty's epoll channels, a server's own descriptors). The writer
     * duplicates the descriptor and refuses what is not a socket; it never closes the caller's descriptor.
     * Writes behave as on a non-blocking channel: they send what the socket takes now and leave
     * {@code readerIndex} at the first byte that did not go, so the owner's event loop resumes on
     * writability. The descriptor must stay open and be this socket's until this method returns.
     *
     * @param fd the socket's descriptor
     * @param mode when to ask for zero-copy
     * @param threshold sends of fewer bytes never ask for it
     * @return a writer; {@link #isNative()} is false, with the reason in {@link ZeroCopyStats#autoDecision()},
     *     when the native library cannot send on the descriptor (then every write throws, as there is no channel
     *     to fall back to)
     * @throws IllegalArgumentException when {@code fd} is negative or {@code threshold} is negative
     */
    public static ZeroCopyWriter openDescriptor(int fd, ZeroCopyMode mode, int threshold) {
        if (fd < 0) {
            throw new IllegalArgumentException("descriptor " + fd + " is negative");
        }
        return open(new DescriptorChannel(fd), mode, threshold);
    }

    /** @return whether writes go through the native sender (else the channel's own gathering write) */
    public boolean isNative() {
        return handle != 0;
    }

    /** @return the mode this writer was opened with */
    public ZeroCopyMode mode() {
        return mode;
    }

    private void ensureOpen() throws ClosedChannelException {
        if (closed || !channel.isOpen()) {
            throw new ClosedChannelException();
        }
    }

    /**
     * Writes {@code msg}'s readable bytes: all of them on a blocking channel,
     * as many as the socket takes on a non-blocking one (0 when it is full).
     * {@code msg}'s readerIndex advances by exactly the bytes written, so a
     * partial write resumes at the right byte. Does not release {@code msg}.
     *
     * @param msg the bytes to send
     * @return the bytes written by this call
     * @throws IOException when the socket fails (reset, closed), or when a mapped file in {@code msg} was
     *     truncated: on a stream socket {@code sendfile} finds the file's end early (the bytes up to it went,
     *     {@code readerIndex} stops after them, and the next write throws); through a gather write the kernel
     *     refuses the bytes ({@code EFAULT}); on a datagram socket, whose pieces may be
     *     copied first, a truncated file gives the JDK's {@link InternalError} for a fault in mapped memory
     *     instead, as any read of it does
     * @throws AsynchronousCloseException when another thread closed the channel or this writer while a
     *     blocking write waited for room on a full socket (within 100 ms); {@code msg}'s readerIndex then
     *     says how far it went. A {@code ClosedByInterruptException} (a subclass) when the writing thread was
     *     interrupted meanwhile: the channel is closed then, as the JDK's blocking channels do
     * @throws UnsupportedOperationException when {@code msg} holds a {@link BufferAllocator#fileRegion file
     *     region} and this writer is not native (nothing was sent)
     * @throws IllegalReferenceCountException when {@code msg} was released, also by another thread before the
     *     write took hold of its memory (nothing was sent then); a release during the send is safe: the write
     *     holds the memory until its bytes went out
     */
    public synchronized long write(Buffer msg) throws IOException {
        Objects.requireNonNull(msg, "msg");
        ensureOpen();
        int from = msg.readerIndex();
        int length = msg.readableBytes();
        msg.checkIndex(from, length);
        if (length == 0) {
            return 0;
        }
        int n = msg.regionCount(from, length);
        if (n > handles.length) {
            int size = Math.max(n, handles.length * 2);
            handles = Arrays.copyOf(handles, size);
            offsets = Arrays.copyOf(offsets, size);
            lengths = Arrays.copyOf(lengths, size);
            held = Arrays.copyOf(held, size);
            temps = Arrays.copyOf(temps, size);
        }
        long written = 0;
        try {
            // One reference on each region for the length of the send: a release racing this write (on
            // another thread) can then neither hand the block to a new owner whose bytes would go out as
            // msg's, nor free it under the native call; a release before this point makes it throw here.
            msg.holdRegions(from, length, handles, offsets, lengths, held, 0);
            if (handle != 0) {
                if (datagram) {
                    copyWhatTheNativeSideWouldCopy(n);
                }
                for (int i = 0; i < n; i++) {
                    // A zero-copy send may pin it: it goes back through the native side.
                    (temps[i] != null ? temps[i] : held[i]).exported();
                }
                boolean blocking = !(channel instanceof SelectableChannel sc) || sc.isBlocking();
                int left = n;
                for (;;) {
                    long sent = Native.writerWrite(handle, handles, offsets, lengths, left, blocking);
                    written += sent;
                    if (written == length || !blocking) {
                        break;
                    }
                    // A blocking send returns what it sent when the socket stays full (the native side bounds
                    // it): nothing else wakes it when another thread closes the channel or this writer, since
                    // the writer's own descriptor keeps the socket open.
                    if (closing || !channel.isOpen()) {
                        throw new AsynchronousCloseException();
                    }
                    if (Thread.currentThread().isInterrupted()) {
                        // As the JDK's blocking channel I/O does on an interrupt (InterruptibleChannel).
                        channel.close();
                        throw new ClosedByInterruptException();
                    }
                    left = skipSent(left, sent);
                }
            } else {
                for (int i = 0; i < n; i++) {
                    if (held[i].fileRegion) {
                        throw new UnsupportedOperationException("a file region (BufferAllocator.fileRegion) goes "
                                + "only through the native writer; this one writes through the channel: "
                                + fallbackReason);
                    }
                }
                ByteBuffer[] pieces = msg._nioBuffers(from, length);
                try {
                    writeThroughChannel(pieces);
                } finally {
                    // What the views' positions say went, also when a later call of the loop threw: a count
                    // kept from the calls' results would be lost with the exception (and the bytes sent again
                    // by the caller's retry), and a channel's result is not trusted over its own positions.
                    written = length - remaining(pieces);
                    fallbackBytes += written;
                }
            }
        } finally {
            Reference.reachabilityFence(this); // the native writer is closed when this is collected
            releaseHeld(n);
            // The bytes are out: report them even if another thread released msg meanwhile (the checked setter
            // would throw IllegalReferenceCountException and lose the count), or the channel closed after some
            // went. They were readable at the start.
            msg.readerIndex = from + (int) written;
        }
        return written;
    }

    /**
     * A datagram goes whole, so the native sender copies pieces itself: the tail past {@code IOV_MAX} (1024)
     * pieces, and pieces under a page when a zero-copy datagram would need too many fragments. A native copy of
     * a mapped file truncated meanwhile dies of SIGBUS, which takes the JVM down. Such pieces (mapped files,
     * wrapped buffers, which may map one) are copied here instead, into pool blocks the write holds: a
     * truncated file then costs this write the JDK's {@link InternalError} for a fault in mapped memory, as any
     * Java read of it does, not the JVM. The JVM throws that error a little after the faulting copy, anywhere
     * in this write: so each copy is in {@link #temps} (released with the holds) before it is filled.
     */
    private void copyWhatTheNativeSideWouldCopy(int n) {
        for (int i = 0; i < n; i++) {
            Memory source = held[i];
            if (!source.mayFault || (lengths[i] >= PAGE && n <= IOV_MAX)) {
                continue;
            }
            Memory copy = Memory.allocate(lengths[i], true);
            temps[i] = copy;
            copy.view.put(0, source.view, offsets[i], lengths[i]);
            handles[i] = copy.handle();
            offsets[i] = 0;
        }
    }

    /** Drops the first {@code sent} bytes from the first {@code count} pieces; returns the pieces left. */
    private int skipSent(int count, long sent) {
        int i = 0;
        while (i < count && sent >= lengths[i]) {
            sent -= lengths[i];
            i++;
        }
        if (i < count) {
            offsets[i] += (int) sent;
            lengths[i] -= (int) sent;
        }
        int left = count - i;
        System.arraycopy(handles, i, handles, 0, left);
        System.arraycopy(offsets, i, offsets, 0, left);
        System.arraycopy(lengths, i, lengths, 0, left);
        return left;
    }

    private void releaseHeld(int n) {
        for (int i = 0; i < n; i++) {
            Memory copy = temps[i];
            if (copy != null) {
                temps[i] = null;
                copy.release();
            }
        }
        for (int i = 0; i < n && held[i] != null; i++) {
            Memory m = held[i];
            held[i] = null;
            m.release();
        }
    }

    private void writeThroughChannel(ByteBuffer[] pieces) throws IOException {
        boolean blocking = !(channel instanceof SelectableChannel sc) || sc.isBlocking();
        int first = 0;
        for (;;) {
            while (first < pieces.length && !pieces[first].hasRemaining()) {
                first++;
            }
            if (first == pieces.length) {
                return;
            }
            long n = channel.write(pieces, first, pieces.length - first);
            if (n > 0) {
                fallbackWrites++;
            } else if (!blocking) {
                return;
            } else if (closing || !channel.isOpen()) {
                throw new AsynchronousCloseException(); // a blocking channel that takes nothing: stop at a close
            }
            if (channel instanceof DatagramChannel) {
                return; // one datagram per write
            }
        }
    }

    private static long remaining(ByteBuffer[] pieces) {
        long left = 0;
        for (ByteBuffer piece : pieces) {
            left += piece.remaining();
        }
        return left;
    }

    /**
     * Writes all of {@code msg} (blocking channels) and releases it, also
     * when the write fails.
     *
     * @param msg the bytes to send; released afterwards
     * @throws IOException when the socket fails
     */
    public void writeAndRelease(Buffer msg) throws IOException {
        try {
            while (msg.isReadable()) {
                if (write(msg) == 0) {
                    throw new IOException("the channel is non-blocking and full; use write() and wait for OP_WRITE");
                }
            }
        } finally {
            msg.release();
        }
    }

    /**
     * Waits until every zero-copy send has been completed by the kernel.
     *
     * @param timeout how long at most (a negative one is 0; {@code ChronoUnit.FOREVER.getDuration()} waits
     *     as long as it takes)
     * @throws SocketTimeoutException when time runs out (every pin is kept)
     * @throws IOException when reading the completions fails
     */
    public synchronized void flush(Duration timeout) throws IOException {
        Objects.requireNonNull(timeout, "timeout");
        ensureOpen();
        if (handle != 0) {
            Native.writerFlush(handle, millisAtMost(timeout));
        }
    }

    /** {@code timeout} in milliseconds, 0 when negative, {@code Long.MAX_VALUE} when longer (as FOREVER is). */
    private static long millisAtMost(Duration timeout) {
        if (timeout.isNegative()) {
            return 0;
        }
        try {
            return timeout.toMillis();
        } catch (ArithmeticException tooLong) {
            return Long.MAX_VALUE;
        }
    }

    /**
     * @return the bytes this writer sent with {@code sendfile} (pieces of mapped files and file regions on a stream
     *     socket; {@link #stats()}'s {@code bytes} counts them too, its {@code sends} only {@code sendmsg} calls);
     *     0 on the fallback path
     */
    public synchronized long fileBytes() {
        return handle != 0 && !closed ? Native.writerFileBytes(handle) : 0;
    }

    /** @return the writer's counters (completions read first) */
    public synchronized ZeroCopyStats stats() {
        if (handle != 0 && !closed) {
            return ZeroCopyStats.fromNative(Native.writerStats(handle), Native.writerAutoDecision(handle));
        }
        String why = handle != 0 ? "closed" : "fallback to the channel's gathering write: " + fallbackReason;
        return new ZeroCopyStats(fallbackWrites, 0, fallbackBytes, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, why, 0, 0, 0,
                false, 0);
    }

    /**
     * Waits (at most a second) for outstanding completions and frees the
     * native sender. Memory still pinned after that is kept, never freed
     * while the kernel may read it. The channel stays open.
     */
    @Override
    public void close() {
        closing = true; // a write blocked on a full socket stops within the send timeout, not at the peer's will
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            if (handle != 0) {
                try {
                    Native.writerFlush(handle, CLOSE_FLUSH.toMillis());
                } catch (IOException | RuntimeException e) {
                    // Timed out or the socket failed: the native close parks what is left.
                }
                nativeCloseAction.closedExplicitly = true;
                nativeClose.clean(); // Native.writerClose, once
            }
        }
    }

    /**
     * Closes the native writer: its duplicate descriptor, and its pins, which are parked until their
     * completions, never freed early. Holds nothing that reaches the writer, so that a writer dropped without
     * {@link #close()} is collected and its descriptor does not leak; that is reported as a leak.
     */
    private static final class NativeClose implements Runnable {
        private final long handle;
        volatile boolean closedExplicitly;

        NativeClose(long handle) {
            this.handle = handle;
        }

        @Override
        public void run() {
            if (!closedExplicitly) {
                LeakDetector.report("LEAK: a ZeroCopyWriter was garbage-collected without close(); its native "
                        + "writer and socket descriptor are closed now");
            }
            Native.writerClose(handle);
        }
    }
}
