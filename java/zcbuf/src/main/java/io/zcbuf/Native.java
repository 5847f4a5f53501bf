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
 * extracted from the jar, where the build put it under
 * {@code META-INF/native/<os>-<arch>/} ({@link #platform()}: the one naming
 * scheme the pom and this loader share).
 */
final class Native {
    private Native() {}

    /** Platforms a jar may carry, in the scheme {@link #platform()} names them; for the error message. */
    private static final String[] KNOWN_PLATFORMS = {
        "linux-x86_64", "linux-aarch64", "linux-riscv64", "linux-ppc64le", "linux-s390x", "osx-x86_64", "osx-aarch64",
        "windows-x86_64", "windows-aarch64"
    };

    static {
        load();
    }

    /**
     * {@code <os>-<arch>} of this JVM, as the build names the directory it packs the library in: os {@code
     * linux}, {@code osx} or {@code windows}; arch {@code x86_64} (the JDK's {@code amd64}), {@code aarch64}
     * ({@code arm64} on macOS), else {@code os.arch} as the JDK reports it.
     */
    static String platform() {
        String name = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String os = name.startsWith("linux") ? "linux"
                : name.startsWith("mac") || name.startsWith("darwin") ? "osx"
                : name.startsWith("windows") ? "windows"
                : name.replaceAll("[^a-z0-9]", "");
        String arch = System.getProperty("os.arch", "").toLowerCase(java.util.Locale.ROOT);
        arch = switch (arch) {
            case "amd64", "x86_64", "x64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        return os + "-" + arch;
    }

    /** The library's file name on this OS. */
    static String libraryFile() {
        String platform = platform();
        return platform.startsWith("windows-") ? "zcbuf_jni.dll"
                : platform.startsWith("osx-") ? "libzcbuf_jni.dylib" : "libzcbuf_jni.so";
    }

    /** @return the resource path of the library for {@code platform} */
    static String resource(String platform, String file) {
        return "/META-INF/native/" + platform + "/" + file;
    }

    private static void load() {
        UnsatisfiedLinkError notOnPath;
        try {
            System.loadLibrary("zcbuf_jni");
            return;
        } catch (UnsatisfiedLinkError e) {
            notOnPath = e; // fall through to the copy inside the jar
        }
        String platform = platform();
        String file = libraryFile();
        String resource = resource(platform, file);
        try (InputStream in = Native.class.getResourceAsStream(resource)) {
            if (in == null) {
                StringBuilder carried = new StringBuilder();
                for (String p : KNOWN_PLATFORMS) {
                    for (String f : new String[] {"libzcbuf_jni.so", "libzcbuf_jni.dylib", "zcbuf_jni.dll"}) {
                        if (Native.class.getResource(resource(p, f)) != null) {
                            carried.append(carried.length() == 0 ? "" : ", ").append(p);
                        }
                    }
                }
                UnsatisfiedLinkError err = new UnsatisfiedLinkError("zcbuf has no native library for this platform, "
                        + platform + " (os.name=" + System.getProperty("os.name") + ", os.arch="
                        + System.getProperty("os.arch") + "): this jar carries "
                        + (carried.length() == 0 ? "none" : carried) + " (at META-INF/native/<platform>/), and "
                        + "java.library.path has no " + System.mapLibraryName("zcbuf_jni")
                        + "; build it with `cargo build --release -p zcbuf-jni` and pass -Djava.library.path");
                err.initCause(notOnPath);
                throw err;
            }
            Path dir = Files.createTempDirectory("zcbuf-native");
            Path lib = dir.resolve(file);
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
            System.load(lib.toAbsolutePath().toString());
            // Linux keeps the mapped library after unlinking: leave no files behind.
            Files.delete(lib);
            Files.delete(dir);
        } catch (IOException e) {
            UnsatisfiedLinkError err = new UnsatisfiedLinkError("cannot extract " + resource + ": " + e);
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
     * {@code blocking} stream socket (without a send timeout of its own) a send waits at most 100 ms for room, so a
     * full socket returns what went and the caller can look for a close.
     */
    static native long writerWrite(long writer, long[] handles, int[] offsets, int[] lengths, int count,
            boolean blocking) throws IOException;

    /** Waits at most {@code timeoutMillis} for every outstanding zero-copy completion. */
    static native void writerFlush(long writer, long timeoutMillis) throws IOException;

    /** The writer's counters, in {@link ZeroCopyStats}'s order. */
    static native long[] writerStats(long writer);

    /**
     * A file region: {@code length} bytes of the regular file at {@code path} from {@code offset} (negative
     * length: to the end), opened but never mapped; returns its handle (released with {@link #release}).
     */
    static native long fileRegion(String path, long offset, long length) throws IOException;

    /** The length of a file region's handle, -1 for any other handle. */
    static native long fileRegionLength(long handle);

    /** Bytes the writer sent with {@code sendfile} (mapped-file pieces). */
    static native long writerFileBytes(long writer);

    /** What the writer's AUTO mode decided, in words. */
    static native String writerAutoDecision(long writer);

    /** Closes a writer; pinned memory stays until its completion (or is parked, never freed early). */
    static native void writerClose(long writer);
}
