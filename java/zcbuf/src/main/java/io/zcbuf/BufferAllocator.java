package io.zcbuf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where buffers come from: the native pool (size classes, thread caches;
 * memory returns only when the last reference, including a zero-copy send's
 * pin, is gone) or plain zeroed native memory; and zero-copy wraps of
 * direct {@code ByteBuffer}s and mapped files.
 *
 * <p>A released pool block of up to 64 KiB stays with the releasing thread
 * for its next allocation of the same size class (a bounded number per
 * class), so allocating and releasing pooled buffers crosses no JNI boundary
 * in the common case; blocks that went to a {@link ZeroCopyWriter} always go
 * back through the native side, which keeps them until the kernel is done.
 * Reuse is why an NIO view of a pooled buffer, read after that buffer's
 * release, may show the bytes of the block's next owner; a released
 * {@link Buffer} itself always throws (see {@link Buffer}, "NIO views").
 *
 * <pre>{@code
 * BufferAllocator alloc = BufferAllocator.pooled();
 * try (NativeBuffer buf = alloc.allocate(4096)) {
 *     buf.writeLong(1L);
 * }
 * }</pre>
 */
public final class BufferAllocator {
    private static final BufferAllocator POOLED = new BufferAllocator(true);
    private static final BufferAllocator UNPOOLED = new BufferAllocator(false);

    private final boolean pooled;

    private BufferAllocator(boolean pooled) {
        this.pooled = pooled;
    }

    /** @return the allocator over the process-wide native pool */
    public static BufferAllocator pooled() {
        return POOLED;
    }

    /** @return the allocator of plain, zeroed native memory */
    public static BufferAllocator unpooled() {
        return UNPOOLED;
    }

    /** @return whether {@link #allocate} takes memory from the pool */
    public boolean isPooled() {
        return pooled;
    }

    /**
     * Pooled requests up to 1 MiB take a block of the pool's size class; larger ones, and unpooled ones
     * above 64 KiB, get memory of their own that goes back to the OS at release. A view read after release
     * never crashes: it sees zeros, or for memory that is reused (pool blocks, small unpooled buffers) the
     * bytes of its next owner.
     *
     * @param capacity bytes, {@code >= 0}
     * @return an empty buffer (indices 0) of exactly {@code capacity} bytes; pooled memory is not zeroed
     * @throws IllegalArgumentException for a negative capacity
     * @throws BufferAllocationException when the pool or the OS refuses (also for sizes no memory can serve)
     */
    public NativeBuffer allocate(int capacity) {
        return NativeBuffer.owning(Memory.allocate(capacity, pooled), capacity, 0);
    }

    /**
     * @param bytes copied into a new buffer
     * @return a buffer whose readable bytes are {@code bytes}
     */
    public NativeBuffer copyOf(byte[] bytes) {
        Objects.requireNonNull(bytes, "bytes");
        NativeBuffer buf = allocate(bytes.length);
        buf.writeBytes(bytes);
        return buf;
    }

    /**
     * Wraps {@code direct}'s bytes from position to limit without copying; the
     * native side keeps the {@code ByteBuffer} reachable while any view or
     * pinned send needs it. Read-only buffers give read-only wraps.
     *
     * @param direct a direct buffer
     * @return a buffer whose readable bytes are {@code direct}'s remaining bytes
     * @throws IllegalArgumentException for a heap buffer
     */
    public NativeBuffer wrap(ByteBuffer direct) {
        Objects.requireNonNull(direct, "direct");
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("only direct ByteBuffers can be wrapped without copying");
        }
        Memory memory = Memory.wrap(direct);
        return NativeBuffer.owning(memory, memory.capacity(), memory.capacity());
    }

    /**
     * Wraps {@code direct}'s remaining bytes without copying, as {@link #wrap(ByteBuffer)}, for memory that
     * someone else owns and frees (a Netty buffer, a pool of the application's): {@code onRelease} runs once,
     * when zcbuf lets go of the bytes. That is at the last release when the buffer never went to a
     * {@link ZeroCopyWriter}; after a send, the kernel may still read the bytes after the release, and
     * {@code onRelease} runs once the native side dropped its last pin and the garbage collector noticed
     * (never earlier). An NIO view of the wrap read after {@code onRelease} ran reads whatever the owner did with
     * the memory; if the owner unmaps it, such a read can crash the JVM, as a stale view of the owner's own
     * buffer can.
     *
     * @param direct a direct buffer
     * @param onRelease gives the memory back to its owner; runs on the releasing thread or on a cleaner thread,
     *     and must not throw
     * @return a buffer whose readable bytes are {@code direct}'s remaining bytes
     * @throws IllegalArgumentException for a heap buffer ({@code onRelease} does not run)
     */
    public NativeBuffer wrap(ByteBuffer direct, Runnable onRelease) {
        Objects.requireNonNull(direct, "direct");
        Objects.requireNonNull(onRelease, "onRelease");
        if (!direct.isDirect()) {
            throw new IllegalArgumentException("only direct ByteBuffers can be wrapped without copying");
        }
        Memory memory = Memory.wrap(direct, onRelease);
        return NativeBuffer.owning(memory, memory.capacity(), memory.capacity());
    }

    /**
     * Maps a whole file read-only. The file must not be truncated or written
     * while the buffer lives (as with {@code FileChannel.map}). If it is
     * truncated anyway, the JVM survives: a read of a lost page gets the JDK's
     * {@code InternalError} for a fault in mapped memory (which HotSpot raises
     * at the thread's next safepoint, so it may come from a later call and may
     * leave a buffer allocated meanwhile unreleased), and a socket write of it
     * an {@code IOException} or that error.
     *
     * @param path the file
     * @return a read-only buffer whose readable bytes are the file's
     */
    public NativeBuffer mapFile(Path path) {
        return mapFile(path, 0, -1);
    }

    /**
     * @param path the file
     * @param offset first byte mapped
     * @param length bytes mapped; negative maps to the end of the file
     * @return a read-only buffer of those bytes
     * @throws IndexOutOfBoundsException for a range outside the file
     * @throws UncheckedIOException when the file cannot be opened or mapped (missing); its cause is a
     *     {@link NotRegularFileException} for anything but a regular file (a FIFO, a device, a directory),
     *     refused at once without waiting on it
     */
    public NativeBuffer mapFile(Path path, long offset, long length) {
        Objects.requireNonNull(path, "path");
        String file = path.toAbsolutePath().toString();
        Memory memory;
        try {
            memory = Memory.map(file, offset, length);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file + ": " + e.getMessage(), e);
        }
        return NativeBuffer.owning(memory, memory.capacity(), memory.capacity());
    }

    /**
     * A whole file as a <b>file region</b>: see {@link #fileRegion(Path, long, long)}.
     *
     * @param path the file
     * @return a read-only buffer whose readable bytes are the file's, sent by {@code sendfile}
     */
    public NativeBuffer fileRegion(Path path) {
        return fileRegion(path, 0, -1);
    }

    /**
     * Part of a file as a <b>file region</b>, as Netty's {@code FileRegion}: the file is opened, never mapped
     * (no {@code mmap}, no page touched, no address space), and {@link ZeroCopyWriter} sends it with
     * {@code sendfile(2)} straight from the page cache, also inside a {@link CompositeBuffer} next to a header.
     * On a datagram socket, where {@code sendfile} cannot serve, the writer reads the bytes into a buffer of its
     * own and sends them in the one datagram.
     *
     * <p><b>Its bytes cannot be read from Java</b>: a read, a bulk copy, an NIO view or a
     * {@code consolidate()} of it throws {@link IndexOutOfBoundsException} (the region has no bytes in memory);
     * use {@link #mapFile} for a file Java reads. Indexes, slices, retain and release work as on any buffer.
     * A {@code ZeroCopyWriter} on its fallback path (not the native sender) refuses it with
     * {@link UnsupportedOperationException}. A file truncated before or while it is sent is an
     * {@link IOException} from the write, after exactly the bytes the file still had; nothing crashes.
     *
     * @param path the file (a regular file: anything else is refused at once, without waiting on it)
     * @param offset first byte of the region
     * @param length its length; negative: to the end of the file
     * @return a read-only buffer of {@code length} readable bytes that only a writer reads
     * @throws IndexOutOfBoundsException for a range outside the file
     * @throws IllegalArgumentException for a region over 2^31 - 1 bytes
     * @throws UncheckedIOException when the file cannot be opened; its cause is a {@link NotRegularFileException}
     *     for anything but a regular file
     */
    public NativeBuffer fileRegion(Path path, long offset, long length) {
        Objects.requireNonNull(path, "path");
        String file = path.toAbsolutePath().toString();
        Memory memory;
        try {
            memory = Memory.fileRegion(file, offset, length);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + file + ": " + e.getMessage(), e);
        }
        long size = Native.fileRegionLength(memory.handle());
        if (size < 0 || size > Integer.MAX_VALUE) { // the native side checked: a broken invariant, not bad input
            memory.release();
            throw new IllegalStateException("file region of " + size + " bytes");
        }
        memory.trackFileRegion((int) size);
        return NativeBuffer.owning(memory, (int) size, (int) size);
    }

    /** @return a new, empty composite; {@link CompositeBuffer#consolidate()} allocates from this allocator */
    public CompositeBuffer composite() {
        return new CompositeBuffer(pooled);
    }

    /**
     * @param buffers components, taken over as by {@link CompositeBuffer#addComponent}; when one
     *     cannot be added, all of them are released and the exception is thrown
     * @return a composite of them
     */
    public CompositeBuffer composite(Buffer... buffers) {
        CompositeBuffer composite = composite();
        try {
            return composite.addComponents(buffers);
        } catch (RuntimeException e) {
            composite.release(); // and with it the components added so far
            throw e;
        }
    }

    /**
     * @return the process-wide pool's statistics; blocks that threads keep for
     *     reuse after their buffers were released count as free
     */
    public static PoolStats poolStats() {
        long[] s = Native.poolStats();
        return new PoolStats(s[0], s[1] - RegionCache.cachedBytes(), s[2] - RegionCache.cachedBlocks());
    }

    /**
     * @return native memory regions and writers in use (0 when nothing leaked); blocks kept by
     *     threads for reuse are not in use
     */
    public static long liveNativeHandles() {
        return Native.liveHandles() - RegionCache.cachedBlocks();
    }
}
