package io.zcbuf;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Objects;

/**
 * Many buffers read and written as one, by reference: a header, payload
 * slices, file pages and pooled chunks become one message without a copy,
 * and {@link ZeroCopyWriter} sends it in one gather write.
 *
 * <p>An index is found by a binary search over the components' cumulative
 * end offsets, after a check of the last component hit (O(1) for sequential
 * access). The composite <b>never consolidates on its own</b>, however many
 * components it holds; {@link #consolidate()} copies, and only when asked.
 *
 * <p><b>Ownership.</b> {@link #addComponent} takes over the caller's
 * reference to the added buffer (it does not retain it): releasing the
 * composite releases its components. {@link #component(int)} returns a view
 * that shares the composite's count. Slices and duplicates of a composite are
 * views too and cannot change its components; a retained slice or duplicate
 * holds one reference on each piece of memory it shows (not on the
 * composite), so it stays valid whatever the composite does afterwards.
 * Once a view sharing the count or an NIO view ({@link #nioBuffers()}) was
 * handed out, components that {@link #removeComponent},
 * {@link #discardReadComponents} or {@link #consolidate} take out are kept
 * until the composite's count reaches zero, so such views keep showing their
 * bytes. A composite never takes itself (or a view sharing its count) as a
 * component: {@link #addComponent} refuses it.
 *
 * <p>Like every buffer, a composite is for one thread at a time, but its
 * {@link #release()} may race its structural changes ({@link #addComponent},
 * {@link #removeComponent}, {@link #discardReadComponents},
 * {@link #consolidate}) on another thread: the change either throws
 * {@link IllegalReferenceCountException} or is complete before the
 * components are released, so nothing leaks.
 *
 * <pre>{@code
 * BufferAllocator alloc = BufferAllocator.pooled();
 * NativeBuffer header = alloc.allocate(64);
 * header.writeBytes("HTTP/1.1 200 OK\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
 * try (CompositeBuffer response = alloc.composite()) {
 *     response.addComponent(header).addComponent(alloc.mapFile(path));
 *     writer.write(response);
 * }
 * }</pre>
 */
public final class CompositeBuffer extends Buffer {
    private final boolean pooled;
    /** Null for views, which do not own their components. */
    private NativeBuffer[] owned;
    private Memory[] memories;
    private ByteBuffer[] views;
    /** Region position of composite index {@code i} in component c is {@code i + adjust[c]}. */
    private int[] adjust;
    /** Cumulative end offset of each component. */
    private int[] ends;
    private int count;
    private int capacity;
    /**
     * The component the last lookup found, as one immutable object, so that an access inside it (every
     * access to a one-component composite, most sequential ones) reads no array: composite indices
     * {@code [start, end)} are read through {@code view} at {@code index + adjust}. One object and not
     * four fields because threads may read one composite at the same time (absolute reads change no
     * index): each sees some lookup's hit whole, never one component's range with another's view.
     * {@link #NO_HIT} (an empty range) until the first lookup and after every structural change. The view
     * is the one {@code views[c]} holds, so it is exactly as safe to read as that one.
     */
    private Hit hit = NO_HIT;
    /** Each component's {@link Hit}, made at its first lookup (so that a lookup allocates nothing after); cleared with the hit; null until the first lookup. */
    private Hit[] hits;
    /**
     * For composites of many components read at random (see {@link BlockIndex}): null until
     * {@link #BLOCK_INDEX_MIN} components and a number of searches that pays for building it; dropped by
     * every change of the components (an append too), so it never describes anything but the current ones.
     */
    private BlockIndex blockIndex;
    /** Searches since the last change; the block index is built once they are a sixteenth of the components. */
    private int searches;
    private static final int BLOCK_INDEX_MIN = 8;
    private boolean readOnly;
    /** Whether any component's memory may fault when read ({@link Memory#mayFault}): then bytes are read one by one. */
    private boolean mayFault;
    /**
     * Set once a view sharing this composite's count (slice, duplicate,
     * component) or an NIO view has been handed out: from then on, components
     * taken out of the composite are kept until its count reaches zero,
     * because such a view may still show them and must never read freed
     * memory, nor a pool block's next owner's bytes.
     */
    private boolean sharedViews;
    /** Components taken out while shared views may show them. */
    private NativeBuffer[] deferred;
    private int deferredCount;

    CompositeBuffer(boolean pooled) {
        this(RefCount.onComponents(), pooled);
    }

    private CompositeBuffer(RefCount.OnComponents count, boolean pooled) {
        super(count, 0, 0);
        count.attach(this);
        this.pooled = pooled;
        this.owned = new NativeBuffer[16];
        allocateArrays(16);
    }

    /** A view over pieces of another composite, counted by {@code count}. */
    private CompositeBuffer(RefCount count, int components) {
        super(count, 0, 0);
        this.pooled = false;
        allocateArrays(Math.max(components, 1));
    }

    private void allocateArrays(int n) {
        memories = new Memory[n];
        views = new ByteBuffer[n];
        adjust = new int[n];
        ends = new int[n];
    }

    private int start(int c) {
        return c == 0 ? 0 : ends[c - 1];
    }

    private void append(Memory memory, int regionOffset, int length, NativeBuffer owner) {
        if (count == ends.length) {
            int n = Math.max(16, count * 2);
            memories = Arrays.copyOf(memories, n);
            views = Arrays.copyOf(views, n);
            adjust = Arrays.copyOf(adjust, n);
            ends = Arrays.copyOf(ends, n);
            if (hits != null) {
                hits = Arrays.copyOf(hits, n);
            }
            if (owned != null) {
                owned = Arrays.copyOf(owned, n);
            }
        }
        memories[count] = memory;
        views[count] = memory.view;
        adjust[count] = regionOffset - capacity;
        ends[count] = capacity + length;
        if (owned != null) {
            owned[count] = owner;
        }
        readOnly |= memory.readOnly;
        mayFault |= memory.mayFault;
        capacity += length;
        count++;
        blockIndex = null;
        searches = 0;
    }

    private void ensureOwner(String what) {
        ensureAccessible();
        if (owned == null) {
            throw new UnsupportedOperationException(what + " on a view of a composite: only the composite itself can");
        }
    }

    // ---- structure ----

    /**
     * Appends {@code buffer}'s readable bytes as one component (a composite's
     * components are added one by one: composites never nest). Takes over the
     * caller's reference: the buffer is released with the composite, and
     * right away if it cannot be added.
     *
     * @param buffer the buffer to append
     * @return this
     * @throws IllegalArgumentException when {@code buffer} shares this
     *     composite's count (the composite itself, its {@code slice()},
     *     {@code duplicate()} or {@link #component(int)} view); nothing is
     *     released then
     * @throws IllegalReferenceCountException when either was released (the buffer is released if it can be)
     * @throws UnsupportedOperationException on a view of a composite
     */
    public CompositeBuffer addComponent(Buffer buffer) {
        Objects.requireNonNull(buffer, "buffer");
        if (buffer.refCount == refCount) {
            // Its own count: taking that reference over would release the
            // composite itself. Refused before anything is touched.
            throw new IllegalArgumentException("a composite cannot be added to itself (nor its own slice, duplicate "
                    + "or component view, which share its count); add a retainedSlice() or retainedDuplicate()");
        }
        RuntimeException failed = null;
        // Released outside the lock: a composite taking components of another that takes components of this
        // one at the same time must not wait on each other's lock.
        synchronized (this) {
            try {
                ensureOwner("addComponent");
                int length = buffer.readableBytes();
                buffer.ensureAccessible();
                if (capacity + length < 0) {
                    throw new IllegalArgumentException("a composite holds at most 2^31 - 1 bytes");
                }
            } catch (RuntimeException e) {
                failed = e;
            }
            if (failed == null) {
                if (buffer instanceof NativeBuffer nb) {
                    append(nb.memory, nb.offset + nb.readerIndex, nb.readableBytes(), nb);
                } else {
                    CompositeBuffer cb = (CompositeBuffer) buffer;
                    for (CompositeBuffer.Pieces p = cb.new Pieces(cb.readerIndex, cb.readableBytes()); p.next(); ) {
                        Memory memory = cb.memories[p.c];
                        memory.retain();
                        append(memory, p.pos, p.n,
                                new NativeBuffer(memory, RefCount.onMemory(memory), p.pos, p.n, 0, p.n));
                    }
                }
                writerIndex = capacity;
            }
        }
        if (failed != null) {
            releaseAfterFailure(buffer, failed);
            throw failed;
        }
        if (buffer instanceof CompositeBuffer cb) {
            cb.release(); // its pieces are retained in this composite now
        }
        return this;
    }

    /**
     * Appends each buffer in order, see {@link #addComponent}. When one
     * cannot be added, it and every buffer after it are released (the
     * references were handed over) and the exception is thrown; the ones
     * before it stay in the composite.
     *
     * @param buffers the buffers
     * @return this
     */
    public CompositeBuffer addComponents(Buffer... buffers) {
        return addComponents(Arrays.asList(Objects.requireNonNull(buffers, "buffers")));
    }

    /**
     * @param buffers appended in order, as {@link #addComponents(Buffer...)}
     * @return this
     */
    public CompositeBuffer addComponents(Iterable<? extends Buffer> buffers) {
        Objects.requireNonNull(buffers, "buffers");
        Iterator<? extends Buffer> it = buffers.iterator();
        while (it.hasNext()) {
            try {
                addComponent(it.next());
            } catch (RuntimeException e) {
                while (it.hasNext()) {
                    Buffer rest = it.next();
                    if (rest != null) {
                        releaseAfterFailure(rest, e);
                    }
                }
                throw e;
            }
        }
        return this;
    }

    /** Releases a handed-over buffer that could not be added; a second failure is attached to the first. */
    private static void releaseAfterFailure(Buffer buffer, RuntimeException cause) {
        try {
            if (buffer.refCnt() > 0) {
                buffer.release();
            }
        } catch (RuntimeException e) {
            cause.addSuppressed(e);
        }
    }

    /** @return the number of components, empty ones included */
    public int numComponents() {
        return count;
    }

    /**
     * @param index which component
     * @return a view of its bytes that shares the composite's count (retain it to keep it)
     */
    public Buffer component(int index) {
        ensureAccessible();
        Objects.checkIndex(index, count);
        int start = start(index);
        int length = ends[index] - start;
        sharedViews = true;
        return new NativeBuffer(memories[index], refCount, start + adjust[index], length, 0, length);
    }

    /**
     * Removes a component and releases it; later bytes move down, and indices
     * past it move down by its length.
     *
     * @param index which component
     * @return this
     */
    public synchronized CompositeBuffer removeComponent(int index) {
        ensureOwner("removeComponent");
        Objects.checkIndex(index, count);
        int start = start(index);
        int length = ends[index] - start;
        NativeBuffer gone = owned[index];
        int tail = count - index - 1;
        System.arraycopy(owned, index + 1, owned, index, tail);
        System.arraycopy(memories, index + 1, memories, index, tail);
        System.arraycopy(views, index + 1, views, index, tail);
        System.arraycopy(adjust, index + 1, adjust, index, tail);
        System.arraycopy(ends, index + 1, ends, index, tail);
        count--;
        clearSlot(count);
        for (int c = index; c < count; c++) {
            ends[c] -= length;
            adjust[c] += length;
        }
        capacity -= length;
        readerIndex = shiftDown(readerIndex, start, length);
        writerIndex = shiftDown(writerIndex, start, length);
        forgetHit();
        recomputeReadOnly();
        releaseTakenOut(new NativeBuffer[] {gone}, 1);
        return this;
    }

    private static int shiftDown(int index, int start, int length) {
        return index <= start ? index : Math.max(start, index - length);
    }

    private void clearSlot(int c) {
        owned[c] = null;
        memories[c] = null;
        views[c] = null;
    }

    private void recomputeReadOnly() {
        readOnly = false;
        mayFault = false;
        for (int c = 0; c < count; c++) {
            readOnly |= memories[c].readOnly;
            mayFault |= memories[c].mayFault;
        }
    }

    /**
     * Releases the components that lie wholly before readerIndex and moves
     * everything down by their length.
     *
     * @return this
     */
    public synchronized CompositeBuffer discardReadComponents() {
        ensureOwner("discardReadComponents");
        int k = 0;
        while (k < count && ends[k] <= readerIndex) {
            k++;
        }
        if (k == 0) {
            return this;
        }
        int shift = ends[k - 1];
        NativeBuffer[] gone = Arrays.copyOf(owned, k);
        int left = count - k;
        System.arraycopy(owned, k, owned, 0, left);
        System.arraycopy(memories, k, memories, 0, left);
        System.arraycopy(views, k, views, 0, left);
        System.arraycopy(adjust, k, adjust, 0, left);
        System.arraycopy(ends, k, ends, 0, left);
        for (int c = left; c < count; c++) {
            clearSlot(c);
        }
        count = left;
        for (int c = 0; c < count; c++) {
            ends[c] -= shift;
            adjust[c] += shift;
        }
        capacity -= shift;
        readerIndex -= shift;
        writerIndex -= shift;
        forgetHit();
        recomputeReadOnly();
        releaseTakenOut(gone, k);
        return this;
    }

    /**
     * Copies every component into one new native buffer and releases them:
     * the only copying operation, and never done implicitly. Indices stay.
     *
     * @return this
     * @throws IndexOutOfBoundsException when a component is a file region ({@link BufferAllocator#fileRegion}),
     *     whose bytes Java cannot read; the composite is unchanged
     */
    public synchronized CompositeBuffer consolidate() {
        ensureOwner("consolidate");
        if (count <= 1) {
            return this;
        }
        Memory memory = Memory.allocate(capacity, pooled);
        ByteBuffer target = memory.view;
        try {
            for (int c = 0; c < count; c++) {
                int start = start(c);
                target.put(start, views[c], start + adjust[c], ends[c] - start);
            }
        } catch (RuntimeException | Error e) {
            // A component Java cannot read (a file region; a truncated mapped file): the composite stays as it was.
            memory.release();
            throw e;
        }
        NativeBuffer[] gone = Arrays.copyOf(owned, count);
        int n = count;
        for (int c = 0; c < count; c++) {
            clearSlot(c);
        }
        int size = capacity;
        count = 0;
        capacity = 0;
        readOnly = false;
        mayFault = false;
        forgetHit();
        append(memory, 0, size, NativeBuffer.owning(memory, size, size));
        releaseTakenOut(gone, n);
        return this;
    }

    /**
     * Releases components taken out of the composite now, or, when views
     * sharing its count may still show them, when the composite goes.
     */
    private void releaseTakenOut(NativeBuffer[] gone, int n) {
        if (!sharedViews) {
            releaseAll(gone, n);
            return;
        }
        if (deferred == null) {
            deferred = new NativeBuffer[Math.max(4, n)];
        } else if (deferredCount + n > deferred.length) {
            deferred = Arrays.copyOf(deferred, Math.max(deferredCount + n, deferred.length * 2));
        }
        System.arraycopy(gone, 0, deferred, deferredCount, n);
        deferredCount += n;
    }

    /**
     * The composite's count reached zero. Structural changes hold the same lock and check the count inside it,
     * so a release racing one on another thread either comes first (the change then throws) or releases the
     * components as the change left them: never a half-moved array (a NullPointerException from release())
     * nor a component added or consolidated after the release (a leaked native handle).
     */
    synchronized void releaseComponents() {
        if (deferredCount > 0) {
            NativeBuffer[] all = Arrays.copyOf(owned, count + deferredCount);
            System.arraycopy(deferred, 0, all, count, deferredCount);
            releaseAll(all, all.length);
        } else {
            releaseAll(owned, count);
        }
    }

    private static void releaseAll(NativeBuffer[] buffers, int n) {
        RuntimeException first = null;
        for (int c = 0; c < n; c++) {
            try {
                buffers[c].release();
            } catch (RuntimeException e) {
                // A component released behind the composite's back: release
                // the others anyway, then say so.
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    // ---- lookup ----

    /** The component holding byte {@code index} (which lies in [0, capacity)). */
    private int find(int index) {
        Hit h = hit;
        if (index >= h.start && index < h.end) {
            return h.c;
        }
        int base = 0;
        int n = count;
        if (n >= BLOCK_INDEX_MIN) {
            BlockIndex bi = blockIndex;
            if (bi == null && ++searches >= n >>> 4) {
                bi = buildBlockIndex();
            }
            if (bi != null) {
                int[] blocks = bi.blocks;
                int b = index >>> bi.shift;
                base = blocks[b];
                n = (b + 1 < blocks.length ? blocks[b + 1] : count - 1) - base + 1;
            }
        }
        // Branch-free halving (C2 turns the select into a conditional move): a random index over thousands of
        // components would mispredict about half of the ~11 steps of a branching search.
        int[] e = ends;
        while (n > 1) {
            int half = n >>> 1;
            base = e[base + half - 1] <= index ? base + half : base;
            n -= half;
        }
        Hit[] all = hits;
        if (all == null || all.length < count) {
            // Made at the first lookup, not with the composite: building one (append after append) pays nothing.
            all = new Hit[ends.length];
            hits = all;
        }
        Hit h2 = all[base];
        if (h2 == null) {
            // Several readers may make it at once: equal immutable objects, any of them will do.
            h2 = new Hit(base, start(base), ends[base], adjust[base], views[base]);
            all[base] = h2;
        }
        hit = h2;
        return base;
    }

    /** Builds {@link #blockIndex}: at most twice as many entries as components. */
    private BlockIndex buildBlockIndex() {
        int mean = Math.max(1, capacity / count);
        int shift = 31 - Integer.numberOfLeadingZeros(mean);
        int[] blocks = new int[((capacity - 1) >>> shift) + 1];
        int c = 0;
        for (int b = 0; b < blocks.length; b++) {
            int start = b << shift;
            while (ends[c] <= start) {
                c++;
            }
            blocks[b] = c;
        }
        BlockIndex bi = new BlockIndex(shift, blocks);
        blockIndex = bi;
        return bi;
    }

    /** After a structural change: nothing cached. */
    private void forgetHit() {
        hit = NO_HIT;
        if (hits != null) {
            Arrays.fill(hits, null);
        }
        blockIndex = null;
        searches = 0;
    }

    private static final Hit NO_HIT = new Hit(0, 0, 0, 0, null);

    /** Component {@code c}: composite indices {@code [start, end)} at {@code index + adjust} of {@code view}. */
    private record Hit(int c, int start, int end, int adjust, ByteBuffer view) {}

    /**
     * Entry {@code b} of {@code blocks} is the component holding composite index {@code b << shift} (blocks
     * about as long as the mean component), so a lookup reads one entry and searches the few components
     * between it and the next. Shift and entries in one immutable object, for readers on several threads.
     */
    private record BlockIndex(int shift, int[] blocks) {}

    // ---- access ----

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    byte _getByte(int index) {
        Hit h = hit;
        if (index >= h.start && index < h.end) {
            return h.view.get(index + h.adjust);
        }
        int c = find(index);
        return views[c].get(index + adjust[c]);
    }

    @Override
    short _getShort(int index) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 2) {
            return h.view.getShort(index + h.adjust);
        }
        int c = find(index);
        if (index + 2 <= ends[c]) {
            return views[c].getShort(index + adjust[c]);
        }
        return (short) getStraddling(index, c, 2);
    }

    @Override
    int _getInt(int index) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 4) {
            return h.view.getInt(index + h.adjust);
        }
        int c = find(index);
        if (index + 4 <= ends[c]) {
            return views[c].getInt(index + adjust[c]);
        }
        return (int) getStraddling(index, c, 4);
    }

    @Override
    long _getLong(int index) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 8) {
            return h.view.getLong(index + h.adjust);
        }
        int c = find(index);
        if (index + 8 <= ends[c]) {
            return views[c].getLong(index + adjust[c]);
        }
        return getStraddling(index, c, 8);
    }

    /**
     * A big-endian value of {@code size} bytes that starts in component
     * {@code c} and runs into the next ones: one walk over the components
     * instead of a lookup per byte.
     */
    private long getStraddling(int index, int c, int size) {
        long value = 0;
        for (int end = index + size; index < end; index++) {
            while (index >= ends[c]) {
                c++;
            }
            value = value << 8 | (views[c].get(index + adjust[c]) & 0xff);
        }
        // The cached component stays: a value that straddles tiny components (where this path is common)
        // says little about where the next access goes, and caching costs five stores.
        return value;
    }

    private void setStraddling(int index, int c, int size, long value) {
        for (int shift = (size - 1) * 8; shift >= 0; shift -= 8, index++) {
            while (index >= ends[c]) {
                c++;
            }
            views[c].put(index + adjust[c], (byte) (value >>> shift));
        }
    }

    @Override
    void _setByte(int index, byte value) {
        Hit h = hit;
        if (index >= h.start && index < h.end) {
            h.view.put(index + h.adjust, value);
            return;
        }
        int c = find(index);
        views[c].put(index + adjust[c], value);
    }

    @Override
    void _setShort(int index, short value) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 2) {
            h.view.putShort(index + h.adjust, value);
            return;
        }
        int c = find(index);
        if (index + 2 <= ends[c]) {
            views[c].putShort(index + adjust[c], value);
        } else {
            setStraddling(index, c, 2, value);
        }
    }

    @Override
    void _setInt(int index, int value) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 4) {
            h.view.putInt(index + h.adjust, value);
            return;
        }
        int c = find(index);
        if (index + 4 <= ends[c]) {
            views[c].putInt(index + adjust[c], value);
        } else {
            setStraddling(index, c, 4, value);
        }
    }

    @Override
    void _setLong(int index, long value) {
        Hit h = hit;
        if (index >= h.start && index <= h.end - 8) {
            h.view.putLong(index + h.adjust, value);
            return;
        }
        int c = find(index);
        if (index + 8 <= ends[c]) {
            views[c].putLong(index + adjust[c], value);
        } else {
            setStraddling(index, c, 8, value);
        }
    }

    /**
     * The one walk over the non-empty pieces of {@code [index, index + length)}:
     * {@code for (Pieces p = new Pieces(i, n); p.next(); )} visits each with
     * its component {@link #c}, composite index {@link #at}, region position
     * {@link #pos} and length {@link #n}. It never escapes its loop, so the JIT
     * keeps its fields in registers and allocates nothing.
     */
    private final class Pieces {
        private final int end;
        /** The current piece's component. */
        int c;
        /** Composite index where the current piece starts. */
        int at;
        /** Its position in the component's region view. */
        int pos;
        /** Its length; 0 before the first piece and after the last. */
        int n;

        Pieces(int index, int length) {
            this.at = index;
            this.end = index + length;
            this.c = length == 0 ? count : find(index) - 1;
        }

        /** @return whether there is a next piece (now current) */
        boolean next() {
            at += n;
            while (at < end) {
                int len = Math.min(end, ends[++c]) - at;
                if (len > 0) {
                    n = len;
                    pos = at + adjust[c];
                    return true;
                }
            }
            n = 0;
            return false;
        }
    }

    @Override
    void _getBytes(int index, byte[] dst, int offset, int length) {
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            views[p.c].get(p.pos, dst, offset + (p.at - index), p.n);
        }
    }

    @Override
    void _getBytes(int index, ByteBuffer dst, int length) {
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            dst.put(views[p.c].slice(p.pos, p.n));
        }
    }

    @Override
    void _setBytes(int index, byte[] src, int offset, int length) {
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            views[p.c].put(p.pos, src, offset + (p.at - index), p.n);
        }
    }

    @Override
    void _setBytes(int index, ByteBuffer src, int length) {
        int limit = src.limit();
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            src.limit(src.position() + p.n);
            views[p.c].slice(p.pos, p.n).put(src);
        }
        src.limit(limit);
    }

    @Override
    int _forEachByte(int index, int length, ByteProcessor proc) {
        if (length == 0) {
            return -1;
        }
        int end = index + length;
        Hit h = hit;
        if (index >= h.start && end <= h.end) {
            // Within the cached component (all of a one-component composite): no lookup.
            int adj = h.adjust;
            int at = visit(h.view, index + adj, end + adj, mayFault, proc);
            return at < 0 ? -1 : at - adj;
        }
        return forEachAcross(index, end, proc);
    }

    /**
     * {@link #_forEachByte} over several components, kept apart so that the one-component case stays small
     * enough for the JIT to inline. No Pieces walker: with many tiny components (1-9 bytes) every instruction
     * of set-up counts, so short pieces are a plain byte loop and an empty one is a loop that runs zero times.
     * (Four bytes per {@code getInt} in short pieces took 64 B from 1.38 to 1.19 of Netty, but the 1 MB row
     * of 432,000 components went from 0.85-0.87 to 1.2-1.5: not kept.)
     */
    private int forEachAcross(int index, int end, ByteProcessor proc) {
        // From the start (forEachByte of a whole composite): the walk itself skips leading empty components.
        int c = index == 0 ? 0 : find(index);
        int at = index;
        for (;;) {
            int stop = Math.min(end, ends[c]);
            if (stop - at >= 16) {
                int adj = adjust[c];
                int found = visit(views[c], at + adj, stop + adj, mayFault, proc);
                if (found >= 0) {
                    return found - adj;
                }
            } else if (stop > at) {
                int adj = adjust[c];
                ByteBuffer view = views[c];
                int i = at;
                for (; i < stop; i++) {
                    if (!proc.process(view.get(i + adj))) {
                        return i;
                    }
                }
            }
            if (stop == end) {
                return -1;
            }
            at = stop;
            c++;
        }
    }

    @Override
    Buffer _slice(int index, int length, RefCount viewCount) {
        if (viewCount == refCount) {
            sharedViews = true;
        }
        if (count == 0) {
            return new CompositeBuffer(viewCount, 0);
        }
        int first = find(Math.min(index, capacity - 1));
        if (length == 0 || index + length <= ends[first]) {
            Memory memory = memories[first];
            return new NativeBuffer(memory, viewCount, index + adjust[first], length, 0, length);
        }
        CompositeBuffer view = new CompositeBuffer(viewCount, 4);
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            view.append(memories[p.c], p.pos, p.n, null);
        }
        view.writerIndex = view.capacity;
        return view;
    }

    @Override
    RefCount retainedCount(int index, int length) {
        // The memories _slice puts in the view, each retained: not the
        // composite's count, which removeComponent, discardReadComponents
        // and consolidate would let go of under the view.
        Memory[] held;
        if (count == 0) {
            held = new Memory[0];
        } else if (length == 0) {
            held = new Memory[] {memories[find(Math.min(index, capacity - 1))]};
        } else {
            held = new Memory[regionCount(index, length)];
            int k = 0;
            for (Pieces p = new Pieces(index, length); p.next(); ) {
                held[k++] = memories[p.c];
            }
        }
        for (Memory m : held) {
            m.retain(); // cannot fail: the composite is accessible and holds each one
        }
        return RefCount.onMemories(held);
    }

    @Override
    void nioViewsHandedOut() {
        // NIO views show components as slices do: keep taken-out ones until the count reaches zero.
        sharedViews = true;
    }

    @Override
    ByteBuffer[] _nioBuffers(int index, int length) {
        ByteBuffer[] out = new ByteBuffer[regionCount(index, length)];
        int k = 0;
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            out[k++] = views[p.c].slice(p.pos, p.n);
        }
        return out;
    }

    @Override
    int regionCount(int index, int length) {
        int n = 0;
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            n++;
        }
        return n;
    }

    @Override
    int holdRegions(int index, int length, long[] handles, int[] offsets, int[] lengths, Memory[] held, int at) {
        for (Pieces p = new Pieces(index, length); p.next(); ) {
            Memory memory = memories[p.c];
            memory.retain();
            held[at] = memory;
            handles[at] = memory.handle();
            offsets[at] = p.pos;
            lengths[at] = p.n;
            at++;
        }
        return at;
    }

    @Override
    public String toString() {
        return "CompositeBuffer(ridx: " + readerIndex + ", widx: " + writerIndex + ", cap: " + capacity
                + ", components: " + count + ", refCnt: " + refCnt() + ")";
    }
}
