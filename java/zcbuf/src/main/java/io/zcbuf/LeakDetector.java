package io.zcbuf;

import java.lang.ref.Cleaner;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Reports native memory whose buffers were garbage-collected without being
 * released, with the stack where it was allocated.
 *
 * <p>The level comes from the system property {@code io.zcbuf.leakDetection}
 * ({@code disabled}, {@code sampled} — the default, one allocation in
 * {@code io.zcbuf.leakDetection.samplingInterval} (128) — or {@code paranoid},
 * every allocation) and can be changed with {@link #setLevel}. A tracked
 * region is watched through its root {@code ByteBuffer}: every buffer and
 * every NIO view of the region reaches that object, so once it is
 * unreachable nothing in Java can touch the memory, and the report also gives
 * the memory back (an untracked leak stays leaked, as in Netty).
 */
public final class LeakDetector {
    /** How many allocations are tracked. */
    public enum Level {
        /** None. */
        DISABLED,
        /** One in {@code io.zcbuf.leakDetection.samplingInterval}. */
        SAMPLED,
        /** Every one, with its allocation stack. */
        PARANOID
    }

    private static final Cleaner CLEANER = Cleaner.create();
    private static final int SAMPLING_INTERVAL =
            Math.max(1, Integer.getInteger("io.zcbuf.leakDetection.samplingInterval", 128));
    private static final AtomicLong LEAKS = new AtomicLong();
    private static final System.Logger LOG = System.getLogger("io.zcbuf.LeakDetector");
    private static volatile Level level = parse(System.getProperty("io.zcbuf.leakDetection", "sampled"));
    private static volatile Consumer<String> reporter = message -> LOG.log(System.Logger.Level.WARNING, message);

    private LeakDetector() {}

    private static Level parse(String value) {
        try {
            return Level.valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return Level.SAMPLED;
        }
    }

    /** @return the current level */
    public static Level level() {
        return level;
    }

    /** @param newLevel the level for allocations from now on */
    public static void setLevel(Level newLevel) {
        level = Objects.requireNonNull(newLevel, "level");
    }

    /** @return how many leaks have been reported since the JVM started */
    public static long leaksReported() {
        return LEAKS.get();
    }

    /** @param newReporter receives each leak report (default: a WARNING on System.Logger) */
    public static void setReporter(Consumer<String> newReporter) {
        reporter = Objects.requireNonNull(newReporter, "reporter");
    }

    /** Whether the allocation being made now is tracked. */
    static boolean shouldTrack() {
        return switch (level) {
            case DISABLED -> false;
            case PARANOID -> true;
            case SAMPLED -> ThreadLocalRandom.current().nextInt(SAMPLING_INTERVAL) == 0;
        };
    }

    static Cleaner.Cleanable watch(Object root, Runnable onUnreachable) {
        return CLEANER.register(root, onUnreachable);
    }

    static void report(String message) {
        LEAKS.incrementAndGet();
        try {
            reporter.accept(message);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "leak reporter failed", e);
        }
    }
}
