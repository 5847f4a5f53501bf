package io.zcbuf;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The reference count one family of buffers shares: a buffer and its
 * {@code slice()}s and {@code duplicate()}s. When it reaches zero it lets go
 * of what it holds: one reference on a {@link Memory}, one on a parent count
 * (a retained view of a composite), or a composite's components.
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
    private final RefCount parent;
    private CompositeBuffer components;

    private RefCount(Memory memory, RefCount parent, CompositeBuffer components) {
        this.memory = memory;
        this.parent = parent;
        this.components = components;
    }

    /** A count that releases one reference on {@code memory} at zero (the caller took it). */
    static RefCount onMemory(Memory memory) {
        return new RefCount(memory, null, null);
    }

    /** A count that releases one reference on {@code parent} at zero (the caller took it). */
    static RefCount onParent(RefCount parent) {
        return new RefCount(null, parent, null);
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
                } else if (parent != null) {
                    parent.release(1);
                } else {
                    components.releaseComponents();
                }
                return true;
            }
        }
    }
}
