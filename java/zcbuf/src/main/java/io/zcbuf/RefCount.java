package io.zcbuf;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The reference count one family of buffers shares: a buffer and its
 * {@code slice()}s and {@code duplicate()}s. When it reaches zero it lets go
 * of what it holds: one reference on a {@link Memory}, one reference on each
 * of several (a retained view of a composite), or a composite's components.
 */
final class RefCount {
    private static final VarHandle COUNT;

    static {
        try {
            COUNT = MethodHandles.lookup().findVarHandle(RefCount.class, "count", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * Read with acquire and changed by CAS through {@link #COUNT}; not
     * {@code volatile}, so that making a count (every slice and retained
     * view does) is a release store rather than a full fence.
     */
    private int count;
    private final Memory memory;
    private final Memory[] memories;
    private CompositeBuffer components;

    private RefCount(Memory memory, Memory[] memories, CompositeBuffer components) {
        this.memory = memory;
        this.memories = memories;
        this.components = components;
        COUNT.setRelease(this, 1);
    }

    /** A count that releases one reference on {@code memory} at zero (the caller took it). */
    static RefCount onMemory(Memory memory) {
        return new RefCount(memory, null, null);
    }

    /**
     * A count that releases one reference on each of {@code memories} at zero
     * (the caller took them): a retained view of a composite keeps exactly the
     * memory it shows, whatever the composite does with its components later.
     */
    static RefCount onMemories(Memory[] memories) {
        return new RefCount(null, memories, null);
    }

    /** A count that releases a composite's components at zero; the composite attaches itself. */
    static RefCount onComponents() {
        return new RefCount(null, null, null);
    }

    void attach(CompositeBuffer composite) {
        this.components = composite;
    }

    /** The count; 0 once released (never negative to callers). */
    int get() {
        return Math.max(0, (int) COUNT.getAcquire(this));
    }

    void retain(int increment) {
        if (increment <= 0) {
            throw new IllegalArgumentException("increment " + increment + " must be positive");
        }
        for (;;) {
            int n = get();
            if (n <= 0) {
                throw new IllegalReferenceCountException("retain(" + increment + ") after the count reached 0");
            }
            if (n + increment < n) {
                throw new IllegalReferenceCountException("retain(" + increment + ") overflows the count " + n);
            }
            if (COUNT.compareAndSet(this, n, n + increment)) {
                return;
            }
        }
    }

    /** @return whether this release brought the count to zero and freed what it held */
    boolean release(int decrement) {
        if (decrement <= 0) {
            throw new IllegalArgumentException("decrement " + decrement + " must be positive");
        }
        // One atomic add rather than a CAS loop. A release past zero is
        // undone at once; meanwhile the count reads as zero or below, which
        // every check treats as released, so no buffer looks live that isn't.
        // (retain() stays a CAS: it must never lift a released count above 0.)
        int n = (int) COUNT.getAndAdd(this, -decrement);
        if (n > decrement) {
            return false;
        }
        if (n < decrement) {
            COUNT.getAndAdd(this, decrement);
            throw new IllegalReferenceCountException(
                    "release(" + decrement + ") with a count of " + n + (n == 0 ? " (released already)" : ""));
        }
        if (memory != null) {
            memory.release();
        } else if (memories != null) {
            releaseAll(memories);
        } else {
            components.releaseComponents();
        }
        return true;
    }

    private static void releaseAll(Memory[] memories) {
        RuntimeException first = null;
        for (Memory m : memories) {
            try {
                m.release();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
