package io.zcbuf;

import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;

/**
 * One native region as Java sees it: the direct {@code ByteBuffer} every
 * buffer over it reads and writes through, and the native handle that keeps
 * it alive. Each {@link RefCount} over the region holds one reference; the
 * native handle is released when the last one goes.
 */
final class Memory {
    /** The view buffers use; read-only for mapped files and read-only wraps. */
    final ByteBuffer view;
    final boolean readOnly;
    /** Whether the region came from the pool (a consolidated copy goes back there too). */
    final boolean pooled;
    /** The {@link RegionCache} class of a pool block, or -1 when it is never cached. */
    final int sizeClass;
    /**
     * Set once the region went to the native writer: a zero-copy send may pin
     * it after its buffers are released, so it must go back through the
     * native side (which waits for the completion), never to a Java cache.
     */
    private volatile boolean exported;
    private final ByteBuffer root;
    private final State state;

    private Memory(ByteBuffer root, long handle, boolean readOnly, boolean pooled) {
        this.root = root;
        this.view = readOnly ? root.asReadOnlyBuffer() : root;
        this.readOnly = readOnly;
        this.pooled = pooled;
        this.sizeClass = pooled ? RegionCache.classOfBlock(root.capacity()) : -1;
        this.state = new State(handle);
    }

    /** Watches the region for a leak when the detector samples this allocation of {@code capacity} bytes. */
    private Memory track(int capacity) {
        if (LeakDetector.shouldTrack()) {
            state.capacity = capacity;
            state.allocatedAt = new Throwable("allocated here");
            state.cleanable = LeakDetector.watch(root, state);
        }
        return this;
    }

    static Memory allocate(int capacity, boolean pooled) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity " + capacity + " is negative");
        }
        if (pooled) {
            Memory reused = RegionCache.take(capacity);
            if (reused != null) {
                reused.state.reset(); // one reference, as if new
                return reused.track(capacity);
            }
        }
        long[] handle = new long[1];
        ByteBuffer root = Native.allocate(capacity, pooled, handle);
        return new Memory(root, handle[0], false, pooled).track(capacity);
    }

    void exported() {
        if (!exported) {
            exported = true;
        }
    }

    /** Gives the region back to the native side: on release when no cache keeps it, and for a gone thread's cache. */
    void free() {
        Native.release(state.handle);
    }

    static Memory wrap(ByteBuffer direct) {
        long[] handle = new long[1];
        ByteBuffer root = Native.wrap(direct, direct.position(), direct.remaining(), handle);
        return new Memory(root, handle[0], direct.isReadOnly(), false).track(root.capacity());
    }

    static Memory map(String path, long offset, long length) throws java.io.IOException {
        long[] handle = new long[1];
        ByteBuffer root = Native.mapFile(path, offset, length, handle);
        return new Memory(root, handle[0], true, false).track(root.capacity());
    }

    long handle() {
        return state.handle;
    }

    int capacity() {
        return view.capacity();
    }

    void retain() {
        state.retain(1);
    }

    void release() {
        if (state.release(1)) {
            Cleaner.Cleanable cleanable = state.cleanable;
            if (cleanable != null) {
                state.cleanable = null;
                state.allocatedAt = null;
                cleanable.clean(); // deregisters; the action sees nothing left to do
            } else if (sizeClass >= 0 && !exported && RegionCache.give(this)) {
                return; // kept by this thread for its next allocation of the class
            }
            free();
        }
    }

    /**
     * What the leak cleaner needs, and nothing that reaches the root buffer
     * (which would keep it reachable forever).
     */
    private static final class State extends RefCount implements Runnable {
        final long handle;
        int capacity;
        Throwable allocatedAt;
        Cleaner.Cleanable cleanable;

        State(long handle) {
            this.handle = handle;
        }

        /** Nothing: {@link Memory#release()} gives the region back, which needs the region itself. */
        @Override
        void deallocate() {}

        /** Runs when the root view became unreachable, or after an explicit release. */
        @Override
        public void run() {
            if (!clear()) {
                return; // released properly
            }
            java.io.StringWriter trace = new java.io.StringWriter();
            if (allocatedAt != null) {
                allocatedAt.printStackTrace(new java.io.PrintWriter(trace));
            }
            LeakDetector.report("LEAK: a zcbuf buffer of " + capacity
                    + " bytes was garbage-collected without release(); its native memory is freed now. " + trace);
            Native.release(handle);
        }
    }
}
