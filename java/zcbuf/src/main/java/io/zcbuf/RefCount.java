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

    @SuppressWarnings("unused") // accessed through COUNT
    private volatile int count = 1;
    private final Memory memory;
    private final Memory[] memories;
    private CompositeBuffer components;

    private RefCount(Memory memory, Memory[] memories, CompositeBuffer components) {
        this.memory = memory;
        this.memories = memories;
        this.components = components;
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

    int get() {
        return count;
    }

    void retain(int increment) {
        if (increment <= 0) {
            throw new IllegalArgumentException("increment " + increment + " must be positive");
        }
        for (;;) {
            int n = count;
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
        for (;;) {
            int n = count;
            if (n < decrement) {
                throw new IllegalReferenceCountException(
                        "release(" + decrement + ") with a count of " + n + (n == 0 ? " (released already)" : ""));
            }
            if (COUNT.compareAndSet(this, n, n - decrement)) {
                if (n != decrement) {
                    return false;
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
        }
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
