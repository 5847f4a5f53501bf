package io.zcbuf.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Pins the calling thread to one CPU with {@code taskset -pc CPU TID} (Linux; the thread's id comes
 * from {@code /proc/thread-self}). Used so a socket writer and its reader thread run on separate
 * cores, the way the Rust io_gather benchmark pins them: without it the scheduler sometimes puts both
 * on one core and a gather write's time doubles from one iteration to the next.
 *
 * <p>Best effort: off with {@code -Dzcbuf.bench.pin=false}, and a no-op (one note on stderr) where
 * there are fewer than two CPUs or taskset is missing.
 */
final class Affinity {
    private Affinity() {}

    static boolean enabled() {
        return Boolean.parseBoolean(System.getProperty("zcbuf.bench.pin", "true"))
                && Runtime.getRuntime().availableProcessors() >= 2;
    }

    /** @return whether the calling thread is now pinned to {@code cpu} */
    static boolean pinCurrentThread(int cpu) {
        return enabled() && taskset(Integer.toString(cpu));
    }

    /** Lets the calling thread run on every CPU again. */
    static void unpinCurrentThread() {
        if (enabled()) {
            taskset("0-" + (Runtime.getRuntime().availableProcessors() - 1));
        }
    }

    private static boolean taskset(String cpus) {
        try {
            String link = Files.readSymbolicLink(Path.of("/proc/thread-self")).toString(); // PID/task/TID
            String tid = link.substring(link.lastIndexOf('/') + 1);
            Process p = new ProcessBuilder("taskset", "-pc", cpus, tid)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0) {
                return true;
            }
            p.destroy();
        } catch (Exception e) {
            // fall through to the note
        }
        System.err.println("note: could not set this thread's CPUs to " + cpus + " (taskset); results may be bimodal");
        return false;
    }
}
