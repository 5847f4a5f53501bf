package io.zcbuf;

import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Issue 10 classes 4, 7, 8 and 9, each in a child JVM.
 *
 * <p>Argument: {@code over-release} (class 4), {@code fifo-mapfile} (7),
 * {@code allocate-max} (8) or {@code self-add} (9).
 */
public final class MisuseScenario {
    private MisuseScenario() {}

    /**
     * @param args the case
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        switch (args[0]) {
            case "over-release" -> overRelease();
            case "fifo-mapfile" -> fifoMapFile();
            case "allocate-max" -> allocateMax();
            case "self-add" -> selfAdd();
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    /**
     * Correct threads retain and release while a hostile one releases more
     * than the count could ever allow: the hostile calls all throw and change
     * nothing, the correct ones never throw, and the count ends where it began.
     */
    private static void overRelease() throws Exception {
        int correct = 3;
        for (String kind : List.of("pooled", "unpooled", "composite", "retained-slice")) {
            Buffer root = switch (kind) {
                case "pooled" -> BufferAllocator.pooled().allocate(64);
                case "unpooled" -> BufferAllocator.unpooled().allocate(64);
                case "composite" -> BufferAllocator.pooled().composite(BufferAllocator.pooled().allocate(64));
                default -> BufferAllocator.pooled().allocate(64).retainedSlice(0, 0);
            };
            root.retain(); // count 2: each correct thread adds at most one more
            int tooMany = 2 + correct + 1;
            AtomicBoolean stop = new AtomicBoolean();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong correctOps = new AtomicLong();
            AtomicLong refused = new AtomicLong();
            Thread[] threads = new Thread[correct + 1];
            for (int t = 0; t < threads.length; t++) {
                boolean hostile = t == 0;
                threads[t] = new Thread(() -> {
                    try {
                        while (!stop.get()) {
                            if (hostile) {
                                try {
                                    root.release(tooMany);
                                    throw new AssertionError("release(" + tooMany + ") succeeded");
                                } catch (IllegalReferenceCountException expected) {
                                    refused.incrementAndGet();
                                }
                            } else {
                                root.retain();
                                root.release();
                                correctOps.incrementAndGet();
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                        stop.set(true);
                    }
                });
                threads[t].start();
            }
            Thread.sleep(400);
            stop.set(true);
            for (Thread t : threads) {
                t.join();
            }
            if (failure.get() != null) {
                throw new AssertionError(kind + ": a correct or hostile call went wrong", failure.get());
            }
            if (root.refCnt() != 2 || refused.get() == 0 || correctOps.get() == 0) {
                throw new AssertionError(kind + ": count " + root.refCnt() + " after " + refused.get()
                        + " refused over-releases and " + correctOps.get() + " correct pairs");
            }
            try {
                root.release(3);
                throw new AssertionError("release(3) on a count of 2 succeeded");
            } catch (IllegalReferenceCountException expected) {
                if (root.refCnt() != 2) {
                    throw new AssertionError("release(3) on 2 left " + root.refCnt());
                }
            }
            if (!root.release(2)) {
                throw new AssertionError(kind + ": release(2) on a count of 2 did not free it");
            }
            System.out.println(kind + ": " + refused.get() + " over-releases refused, " + correctOps.get()
                    + " correct retain/release pairs undisturbed");
        }
        ChildJvm.ok("over-release never disturbed correct counting");
    }

    /** A FIFO (nobody writes it) is refused at once, not waited on forever. */
    private static void fifoMapFile() throws Exception {
        Path dir = Files.createTempDirectory("zcbuf-fifo");
        Path fifo = dir.resolve("fifo");
        String outcomeText;
        try {
            Process mk = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
            if (!mk.waitFor(10, TimeUnit.SECONDS) || mk.exitValue() != 0 || !Files.exists(fifo)) {
                throw new AssertionError("mkfifo failed: cannot make the FIFO this case needs");
            }
            CountDownLatch done = new CountDownLatch(1);
            AtomicReference<Object> outcome = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    outcome.set(BufferAllocator.unpooled().mapFile(fifo));
                } catch (Throwable e) {
                    outcome.set(e);
                }
                done.countDown();
            });
            t.setDaemon(true);
            t.start();
            if (!done.await(5, TimeUnit.SECONDS)) {
                throw new AssertionError("mapFile of a FIFO still blocks after 5 s");
            }
            Object o = outcome.get();
            if (!(o instanceof UncheckedIOException || o instanceof IllegalArgumentException)) {
                throw new AssertionError("mapFile of a FIFO gave " + o, o instanceof Throwable th ? th : null);
            }
            String msg = ((Throwable) o).getMessage();
            if (msg == null || !msg.contains(fifo.toString())) {
                throw new AssertionError("the refusal does not name the file: " + o);
            }
            outcomeText = o.toString();
        } finally {
            Files.deleteIfExists(fifo);
            Files.delete(dir);
        }
        ChildJvm.ok("mapFile of a FIFO refused at once: " + outcomeText);
    }

    /** Capacities near 2^31 - 1: exactly the capacity asked for, or zcbuf's own allocation error. */
    private static void allocateMax() {
        StringBuilder seen = new StringBuilder();
        for (BufferAllocator alloc : List.of(BufferAllocator.pooled(), BufferAllocator.unpooled())) {
            for (int capacity : new int[] {Integer.MAX_VALUE, Integer.MAX_VALUE - 7, (1 << 30) + 1}) {
                String what = (alloc.isPooled() ? "pooled" : "unpooled") + " allocate(" + capacity + ")";
                try {
                    NativeBuffer b = alloc.allocate(capacity);
                    if (b.capacity() != capacity) {
                        throw new AssertionError(what + " gave capacity " + b.capacity());
                    }
                    b.setByte(capacity - 1, 42);
                    if (b.getByte(capacity - 1) != 42) {
                        throw new AssertionError(what + ": last byte not kept");
                    }
                    b.release();
                    seen.append(what).append(": ok; ");
                } catch (BufferAllocationException e) {
                    if (e.getMessage() == null || e.getMessage().contains("capacity < 0")) {
                        throw new AssertionError(what + ": unclear refusal " + e, e);
                    }
                    seen.append(what).append(": ").append(e.getMessage()).append("; ");
                }
            }
        }
        ChildJvm.ok("huge allocations got their exact capacity or BufferAllocationException: " + seen);
    }

    /**
     * A composite given itself, its own slice, duplicate or component view
     * (all share its count) refuses it, and releases nothing.
     */
    private static void selfAdd() {
        for (String what : List.of("itself", "slice", "duplicate", "component", "retainedDuplicate-then-self")) {
            CompositeBuffer c = BufferAllocator.pooled().composite(BufferAllocator.pooled().copyOf(new byte[] {1, 2, 3}),
                    BufferAllocator.unpooled().copyOf(new byte[] {4, 5}));
            Supplier<Buffer> arg = switch (what) {
                case "itself" -> () -> c;
                case "slice" -> () -> c.slice(1, 3);
                case "duplicate" -> c::duplicate;
                case "component" -> () -> c.component(1);
                default -> () -> c;
            };
            Buffer held = what.startsWith("retained") ? c.retainedDuplicate() : null;
            Buffer given = arg.get();
            try {
                c.addComponent(given);
                throw new AssertionError("a composite accepted " + what + ": " + c);
            } catch (IllegalArgumentException expected) {
                if (!expected.getMessage().contains("itself")) {
                    throw new AssertionError("unclear refusal: " + expected.getMessage());
                }
            }
            if (c.refCnt() != 1 || c.numComponents() != 2 || c.capacity() != 5 || c.getByte(4) != 5) {
                throw new AssertionError("refusing " + what + " changed the composite: " + c);
            }
            // A composite that holds the other one's memory (not its count) is fine: composites flatten.
            CompositeBuffer other = BufferAllocator.pooled().composite(c.retainedSlice(0, 5));
            c.addComponent(other);
            if (c.capacity() != 10 || c.getByte(9) != 5 || c.getByte(5) != 1 || other.refCnt() != 0) {
                throw new AssertionError("adding a composite of its own memory: " + c);
            }
            if (held != null) {
                held.release();
            }
            if (!c.release()) {
                throw new AssertionError("the composite was not freed by its one release");
            }
        }
        if (BufferAllocator.liveNativeHandles() != 0) {
            throw new AssertionError(BufferAllocator.liveNativeHandles() + " native handles still live");
        }
        ChildJvm.ok("a composite refuses itself, its slices, duplicates and components, and releases nothing");
    }
}
