package io.zcbuf;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The one native interface of the wrapper: static methods implemented by
 * {@code libzcbuf_jni.so} (crate {@code zcbuf-jni}). Java holds {@code long}
 * handles that the native side validates on every call.
 *
 * <p>The library is loaded from {@code java.library.path} first, else
 * extracted from the jar ({@code io/zcbuf/native/<os>-<arch>/}).
 */
final class Native {
    private Native() {}

    static {
        load();
    }

    private static void load() {
        try {
            System.loadLibrary("zcbuf_jni");
            return;
        } catch (UnsatisfiedLinkError notOnPath) {
            // Fall through to the copy inside the jar.
        }
        String arch = System.getProperty("os.arch");
        String platform = "linux-" + (arch.equals("amd64") ? "x86_64" : arch);
        String resource = "native/" + platform + "/libzcbuf_jni.so";
        try (InputStream in = Native.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("libzcbuf_jni.so is neither on java.library.path nor in the jar at io/zcbuf/"
                        + resource);
            }
            Path dir = Files.createTempDirectory("zcbuf-native");
            Path lib = dir.resolve("libzcbuf_jni.so");
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
            System.load(lib.toAbsolutePath().toString());
            // Linux keeps the mapped library after unlinking: leave no files behind.
            Files.delete(lib);
            Files.delete(dir);
        } catch (IOException e) {
            UnsatisfiedLinkError err = new UnsatisfiedLinkError("cannot extract libzcbuf_jni.so: " + e);
            err.initCause(e);
            throw err;
        }
    }

    /**
     * A region of {@code capacity} bytes (a whole pool block, or exactly {@code capacity} zeroed bytes); its
     * handle goes to {@code handleOut[0]} and its root id to {@code handleOut[1]}: when that is not 0, the
     * returned root must be reported with {@link #unmapRoot} once it is collected.
     */
    static native ByteBuffer allocate(int capacity, boolean pooled, long[] handleOut);

    /** The bytes {@code [offset, offset + length)} of a direct buffer, without copying; the handle goes to {@code handleOut[0]}. */
    static native void wrap(ByteBuffer direct, int offset, int length, long[] handleOut);

    /** A read-only map of a file range; {@code length < 0} maps to the end. Handle and root id as {@link #allocate}. */
    static native ByteBuffer mapFile(String path, long offset, long length, long[] handleOut) throws IOException;

    /** Drops the native reference a memory handle names; memory goes back to the OS, addresses stay mapped. */
    static native void release(long handle);

    /** The root buffer of {@code root} was collected: its address range may be unmapped now. */
    static native void unmapRoot(long root);

    /** {@code {bytes, ranges}} released (memory back to the OS) but still mapped until their roots are collected. */
    static native long[] retiredMaps();

    /** Roots whose buffer was not reported collected yet. */
    static native long liveRoots();

    /** Memory regions and writers not yet released. */
    static native long liveHandles();

    /** {@code {reserved, inUse, liveBuffers}} of the process-wide pool. */
    static native long[] poolStats();

    /** A zero-copy writer over a duplicate of the channel's socket descriptor. */
    static native long writerOpen(Object channel, int mode, int threshold) throws IOException;

    /**
     * One gather write of {@code count} (handle, offset, length) pieces; returns the bytes sent. On a
     * {@code blocking} socket (without a send timeout of its own) a send waits at most 100 ms for room, so a
     * full socket returns what went and the caller can look for a close.
     */
    static native long writerWrite(long writer, long[] handles, int[] offsets, int[] lengths, int count,
            boolean blocking) throws IOException;

    /** Waits at most {@code timeoutMillis} for every outstanding zero-copy completion. */
    static native void writerFlush(long writer, long timeoutMillis) throws IOException;

    /** The writer's counters, in {@link ZeroCopyStats}'s order. */
    static native long[] writerStats(long writer);

    /** What the writer's AUTO mode decided, in words. */
    static native String writerAutoDecision(long writer);

    /** Closes a writer; pinned memory stays until its completion (or is parked, never freed early). */
    static native void writerClose(long writer);
}
