package io.zcbuf;

import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;

/**
 * One native region as Java sees it: the direct {@code ByteBuffer} every
 * buffer over it reads and writes through, and the native handle that keeps
 * it alive. Each {@link RefCount} over the region holds one reference; the
 * native handle is released when the last one goes.
 *
 * <p><b>Stale reads never crash.</b> A read through a direct
 * {@code ByteBuffer} cannot be guarded against a release on another thread,
 * so releasing never unmaps what a view can reach: the native side gives
 * the memory back to the OS at release and keeps the addresses mapped (a
 * stale read then sees zeros; pooled memory may show its next owner's
 * bytes), and unmaps them only when the root {@code ByteBuffer} below, which
 * every view keeps reachable, is collected ({@link #ROOTS}).
 */
final class Memory {
    /** Reports collected roots whose address range the native side must unmap. */
    private static final Cleaner ROOTS = Cleaner.create();

    /** The view buffers use; read-only for mapped files and read-only wraps. */
    final ByteBuffer view;
    final boolean readOnly;
    /** Whether the region came from the pool (a consolidated copy goes back there too). */
    final boolean pooled;
    /**
     * Whether reading the bytes may fault (SIGBUS): a mapped file, or a wrapped buffer (which may map one),
     * once the file is truncated. Java reads turn the fault into an InternalError; native code must not copy
     * such bytes at all.
     */
    final boolean mayFault;
    /**
     * A file region ({@link #fileRegion}): nothing mapped, the view is empty, so a Java read of its bytes is an
     * {@code IndexOutOfBoundsException}; only writers send it (with {@code sendfile}).
     */
    final boolean fileRegion;
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
    /** The owner's action for wrapped memory ({@link #wrap(ByteBuffer, Runnable)}), else null. */
    private final OnRelease onRelease;

    private Memory(ByteBuffer root, long handle, boolean readOnly, boolean pooled, boolean mayFault) {
        this(root, handle, readOnly, pooled, mayFault, null, false);
    }

    private Memory(ByteBuffer root, long handle, boolean readOnly, boolean pooled, boolean mayFault,
            OnRelease onRelease, boolean fileRegion) {
        this.fileRegion = fileRegion;
        this.mayFault = mayFault;
        this.onRelease = onRelease;
        this.root = root;
        this.view = readOnly ? root.asReadOnlyBuffer() : root;
        this.readOnly = readOnly;
        this.pooled = pooled;
        this.sizeClass = pooled ? RegionCache.classOfBlock(root.capacity()) : -1;
        this.state = new State(handle);
    }

    /** The same cached pool block under a new count (see {@link #allocate}); nothing recomputed. */
    private Memory(Memory cached) {
        this.fileRegion = false;
        this.mayFault = false;
        this.onRelease = null;
        this.root = cached.root;
        this.view = cached.view;
        this.readOnly = false;
        this.pooled = true;
        this.sizeClass = cached.sizeClass;
        this.state = new State(cached.state.handle);
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
                // The block and its handle, under a new Memory with a new count: never the cached object with its
                // count set back to 1. A thread that checked a buffer just before its release may still retain
                // the old Memory (retainedSlice, a write); its count stays 0, so that retain throws instead of
                // taking a reference on, and showing, the block's next owner.
                return new Memory(reused).track(capacity);
            }
        }
        long[] handle = new long[2];
        boolean ownMap = pooled ? capacity > POOL_CLASS_MAX : capacity > SMALL_UNPOOLED_MAX;
        ByteBuffer root;
        if (ownMap) {
            collectRetiredIfPiledUp();
            try {
                root = Native.allocate(capacity, pooled, handle);
            } catch (BufferAllocationException e) {
                if (!collectRetired()) {
                    throw e;
                }
                root = Native.allocate(capacity, pooled, handle); // address space came back: once more
            }
        } else {
            root = Native.allocate(capacity, pooled, handle);
        }
        watchRoot(root, handle[1]);
        return new Memory(root, handle[0], false, pooled, false).track(capacity);
    }

    /** The native pool's largest block: bigger pooled requests get a map of their own. */
    static final int POOL_CLASS_MAX = 1 << 20;
    /** Bigger unpooled requests get a map of their own (smaller ones share a native pool). */
    static final int SMALL_UNPOOLED_MAX = 64 << 10;

    /**
     * Maps of their own that were released (no RAM) but wait for their roots to be collected cost address space
     * and a map slot each ({@code vm.max_map_count}); past these figures (more since the last collection), the next
     * large allocation asks for a GC, as the JDK does for direct memory.
     */
    private static final long RETIRED_GC_BYTES = Long.getLong("io.zcbuf.retiredGcBytes", 64L << 30);
    private static final long RETIRED_GC_MAPS = Long.getLong("io.zcbuf.retiredGcMaps", 16384);
    private static volatile long nextGcBytes = RETIRED_GC_BYTES;
    private static volatile long nextGcMaps = RETIRED_GC_MAPS;

    private static void collectRetiredIfPiledUp() {
        long[] r = Native.retiredMaps();
        if (r[0] > nextGcBytes || r[1] > nextGcMaps) {
            collectRetired();
        }
    }

    /**
     * Asks for a GC so that collected roots unmap their retired ranges, and waits (briefly) for the cleaner.
     *
     * @return whether any range was unmapped
     */
    private static synchronized boolean collectRetired() {
        long[] before = Native.retiredMaps();
        if (before[1] == 0) {
            return false;
        }
        System.gc();
        long[] now = before;
        for (int i = 0; i < 50 && now[1] >= before[1]; i++) {
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            now = Native.retiredMaps();
        }
        // Roots still reachable stay: the next collection waits for as many again, so a program that keeps stale
        // views does not pay a GC per allocation.
        nextGcBytes = now[0] + RETIRED_GC_BYTES;
        nextGcMaps = now[1] + RETIRED_GC_MAPS;
        return now[1] < before[1];
    }

    void exported() {
        if (!exported) {
            exported = true;
        }
    }

    /** Gives the region back to the native side: on release when no cache keeps it, and for a gone thread's cache. */
    void free() {
        Native.release(state.handle);
        // Read after the native release: a writer that pinned the region marked it exported before its send,
        // so a region seen unexported here had no pin, and the native side has dropped the bytes already.
        // An exported one is handed back by the GC once the native side let go (never early).
        OnRelease hook = onRelease;
        if (hook != null && !exported) {
            hook.run();
        }
    }

    /**
     * Unmaps the root's address range (natively) once the root is collected. A slice, duplicate or
     * read-only view of a direct buffer keeps its root reachable, so no view can read the range after.
     */
    private static void watchRoot(ByteBuffer root, long id) {
        if (id != 0) {
            ROOTS.register(root, new Unmap(id));
        }
    }

    /** The action for a collected root; holds nothing that reaches it. */
    private record Unmap(long id) implements Runnable {
        @Override
        public void run() {
            Native.unmapRoot(id);
        }
    }

    static Memory wrap(ByteBuffer direct) {
        return wrap(direct, null);
    }

    /**
     * @param onRelease run once when neither Java nor the native side (a pinned zero-copy send) uses the bytes
     *     any more, or null
     */
    static Memory wrap(ByteBuffer direct, Runnable onRelease) {
        // Views read through a slice of the caller's own buffer, which keeps it (and so its memory) reachable
        // for as long as any view is: a stale read sees its bytes, never memory the JDK freed.
        ByteBuffer root = direct.slice(direct.position(), direct.remaining());
        long[] handle = new long[1];
        ByteBuffer nativeOwner = direct;
        OnRelease hook = null;
        if (onRelease != null) {
            // The native side holds this duplicate (a global reference) while its handle or a pinned send needs
            // the bytes, and nothing in Java does: once it is collected, the native side has let go for sure.
            nativeOwner = direct.duplicate();
            hook = new OnRelease(onRelease);
        }
        Native.wrap(nativeOwner, direct.position(), direct.remaining(), handle);
        Memory memory = new Memory(root, handle[0], direct.isReadOnly(), false, true, hook, false);
        if (hook != null) {
            ROOTS.register(nativeOwner, hook);
        }
        return memory.track(root.capacity());
    }

    /** Runs its action once, from whichever comes first: a release the native side confirms, or the GC. */
    private static final class OnRelease implements Runnable {
        private final java.util.concurrent.atomic.AtomicReference<Runnable> action;

        OnRelease(Runnable action) {
            this.action = new java.util.concurrent.atomic.AtomicReference<>(action);
        }

        @Override
        public void run() {
            Runnable a = action.getAndSet(null);
            if (a != null) {
                a.run();
            }
        }
    }

    static Memory map(String path, long offset, long length) throws java.io.IOException {
        collectRetiredIfPiledUp();
        long[] handle = new long[2];
        ByteBuffer root = Native.mapFile(path, offset, length, handle);
        watchRoot(root, handle[1]);
        return new Memory(root, handle[0], true, false, true).track(root.capacity());
    }

    /** The empty root every file region's view duplicates: a file region has no bytes in memory. */
    private static final ByteBuffer NO_BYTES = ByteBuffer.allocateDirect(0);

    /**
     * A file region of {@code length} bytes (negative: to the end of the file) from {@code offset}; nothing is
     * mapped. Its own root (an empty duplicate) is what the leak detector watches.
     */
    static Memory fileRegion(String path, long offset, long length) throws java.io.IOException {
        long handle = Native.fileRegion(path, offset, length);
        return new Memory(NO_BYTES.duplicate(), handle, true, false, false, null, true);
    }

    /** Tracks a file region for leaks once its length is known. */
    Memory trackFileRegion(int length) {
        return track(length);
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
