package io.zcbuf;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The wrapper's one reference count. A family of buffers (a buffer and its
 * {@code slice()}s and {@code duplicate()}s) shares one, and so does each
 * native region ({@link Memory}); when it reaches zero, {@link #deallocate()}
 * lets go of what the count guards.
 *
 * <p>Costs that were measured and are kept: a new count is a release store
 * (not a volatile write's full fence), and {@code release(1)}, the common
 * case, is one atomic add. {@code release(n)} for {@code n > 1} is a
 * compare-and-set loop that never takes the count below what it may take, so
 * an over-release throws without disturbing a correct, concurrent
 * {@code release(1)}; {@code retain} is one too, so that a released count is
 * never lifted above zero.
 */
abstract class RefCount {
    private static final VarHandle COUNT;

    static {
        try {
            COUNT = MethodHandles.lookup().findVarHandle(RefCount.class, "count", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * Read with acquire and changed atomically through {@link #COUNT}; not
     * {@code volatile}, so that making a count (every slice and retained
     * view does) is a release store rather than a full fence. Below zero only
     * for the moment a {@code release(1)} of a released count takes to undo
     * itself; every check treats that as released.
     */
    private int count;

    RefCount() {
        COUNT.setRelease(this, 1);
    }

    /**
     * @param memory the region whose one reference (taken by the caller) goes at zero
     * @return a count of 1
     */
    static RefCount onMemory(Memory memory) {
        return new OnMemory(memory);
    }

    /**
     * A count that releases one reference on each of {@code memories} at zero
     * (the caller took them): a retained view of a composite keeps exactly the
     * memory it shows, whatever the composite does with its components later.
     *
     * @param memories the regions
     * @return a count of 1
     */
    static RefCount onMemories(Memory[] memories) {
        return new OnMemories(memories);
    }

    /** @return a count that releases a composite's components at zero; the composite attaches itself */
    static OnComponents onComponents() {
        return new OnComponents();
    }

    /** Lets go of what the count guards; called once, by the release that reached zero. */
    abstract void deallocate();

    /** @return the count; 0 once released (never negative to callers) */
    final int get() {
        return Math.max(0, (int) COUNT.getAcquire(this));
    }

    /**
     * The per-access check ({@link Buffer#ensureAccessible}): a plain read, as Netty's. An acquire read here
     * cost about 2 ns per {@code setLong} + {@code getLong} pair (measured): it orders every later load after
     * it, so the JIT reloads the buffer's fields and its view's address and limit at every access instead of
     * sharing them between accesses. Memory safety never rested on this check: a read racing a release on
     * another thread reads memory that release keeps mapped ({@link Memory}). What a plain read gives up is
     * a promise of when another thread's release becomes visible without synchronization: the releasing
     * thread, and every thread that synchronizes with it, sees it at once; a racing reader sees it once the JIT
     * reloads the field (at the latest after a call it did not inline), which the child-JVM release races of
     * {@code MisuseSuiteTest} rely on and pass with.
     *
     * @return whether the count is above zero
     */
    final boolean live() {
        return (int) COUNT.get(this) > 0;
    }

    /** @return whether the count was above zero; it is zero now (a leak cleaner's claim, without deallocate) */
    final boolean clear() {
        return (int) COUNT.getAndSet(this, 0) > 0;
    }

    /** @param increment added to the count, which must be above zero */
    final void retain(int increment) {
        if (increment <= 0) {
            throw new IllegalArgumentException("increment " + increment + " must be positive");
        }
        for (;;) {
            int n = (int) COUNT.getAcquire(this);
            if (n <= 0) {
                throw new IllegalReferenceCountException("retain(" + increment + ") after the count reached 0");
            }
            if (n + increment < n) {
                throw new IllegalReferenceCountException("retain(" + increment + ") overflows the count " + n);
            }
            if (COUNT.weakCompareAndSet(this, n, n + increment)) {
                return;
            }
        }
    }

    /**
     * @param decrement taken from the count; more than it holds throws and changes nothing
     * @return whether this release brought the count to zero and deallocated
     */
    final boolean release(int decrement) {
        if (decrement == 1) {
            // One atomic add: a single release can only go below zero on a
            // count that is zero already (a double release), which it undoes.
            int n = (int) COUNT.getAndAdd(this, -1);
            if (n > 1) {
                return false;
            }
            if (n < 1) {
                COUNT.getAndAdd(this, 1);
                throw overRelease(1, n);
            }
        } else {
            if (decrement <= 0) {
                throw new IllegalArgumentException("decrement " + decrement + " must be positive");
            }
            for (;;) {
                int n = (int) COUNT.getAcquire(this);
                if (n < decrement) {
                    throw overRelease(decrement, n);
                }
                if (COUNT.weakCompareAndSet(this, n, n - decrement)) {
                    if (n > decrement) {
                        return false;
                    }
                    break;
                }
            }
        }
        deallocate();
        return true;
    }

    private static IllegalReferenceCountException overRelease(int decrement, int n) {
        int shown = Math.max(0, n);
        return new IllegalReferenceCountException(
                "release(" + decrement + ") with a count of " + shown + (shown == 0 ? " (released already)" : ""));
    }

    /** Holds one reference on a region. */
    private static final class OnMemory extends RefCount {
        private final Memory memory;

        OnMemory(Memory memory) {
            this.memory = memory;
        }

        @Override
        void deallocate() {
            memory.release();
        }
    }

    /** Holds one reference on each of several regions. */
    private static final class OnMemories extends RefCount {
        private final Memory[] memories;

        OnMemories(Memory[] memories) {
            this.memories = memories;
        }

        @Override
        void deallocate() {
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

    /** A composite's own count: at zero, its components go. */
    static final class OnComponents extends RefCount {
        private CompositeBuffer components;

        void attach(CompositeBuffer composite) {
            this.components = composite;
        }

        @Override
        void deallocate() {
            components.releaseComponents();
        }
    }
}
