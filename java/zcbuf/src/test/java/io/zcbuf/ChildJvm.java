package io.zcbuf;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs a scenario's {@code public static void main} in a new JVM, so that a
 * JVM crash (SIGSEGV in native code, an hs_err file) fails one test instead
 * of killing the whole test run.
 *
 * <p>The child uses the same {@code java} binary, the test classpath
 * ({@code java.class.path}), {@code java.library.path} and every
 * {@code -Dio.zcbuf.*} / {@code -Dzcbuf.*} property of this JVM, and writes
 * its crash report to {@code <tmpdir>/hs_err_<pid>.log}. A scenario signals
 * the outcome it expected by printing a line {@code SCENARIO-OK <what>} and
 * exiting 0 ({@link #ok}); anything else (an exception, another exit code, a
 * crash, a hang past the timeout) fails the test that ran it.
 *
 * <p>At most {@code -Dzcbuf.childJvms} (default 3) children run at once, so
 * a suite that runs its cases concurrently does not starve a small machine.
 */
final class ChildJvm {
    /** What a scenario prints, on a line of its own, when it saw what it expected. */
    static final String OK = "SCENARIO-OK";

    private static final Semaphore SLOTS = new Semaphore(Math.max(1, Integer.getInteger("zcbuf.childJvms", 3)), true);

    private ChildJvm() {}

    /** Everything the child left behind. */
    record Result(String scenario, int exitCode, boolean timedOut, String stdout, String stderr, Path hsErr,
            Duration took) {
        /** The hs_err file's first lines (the signal and the frame that crashed), or "". */
        String crashSummary() {
            if (hsErr == null) {
                return "";
            }
            try (Stream<String> lines = Files.lines(hsErr, StandardCharsets.ISO_8859_1)) {
                return String.join("\n", lines.limit(25).toList());
            } catch (IOException | UncheckedIOException e) {
                return "(cannot read " + hsErr + ": " + e + ")";
            }
        }

        /** Deletes what a crashed child left (its hs_err file and output), for crashes a test asked for. */
        void deleteFiles() throws IOException {
            if (hsErr != null) {
                Path dir = hsErr.getParent();
                try (Stream<Path> files = Files.list(dir)) {
                    for (Path f : files.toList()) {
                        Files.delete(f);
                    }
                }
                Files.delete(dir);
            }
        }

        /** The lines the scenario printed after {@link #OK}. */
        List<String> okLines() {
            return stdout.lines().filter(l -> l.startsWith(OK)).map(l -> l.substring(OK.length()).trim()).toList();
        }

        /**
         * Fails, saying why, unless the scenario exited 0 after printing
         * {@link #OK}: a crash names the hs_err file, a hang says it timed out
         * (with the thread dump the child printed), anything else shows the
         * exit code and the child's output.
         *
         * @return this, for further checks of the output
         */
        Result assertOk() {
            if (hsErr != null) {
                fail(scenario + " CRASHED the JVM (exit " + exitCode + "), hs_err file: " + hsErr + "\n"
                        + crashSummary() + "\n--- stdout ---\n" + tail(stdout) + "\n--- stderr ---\n" + tail(stderr));
            }
            if (timedOut) {
                fail(scenario + " HUNG: no exit within " + took.toSeconds() + " s; killed. Thread dump and output:\n"
                        + tail(stdout) + "\n--- stderr ---\n" + tail(stderr));
            }
            if (exitCode != 0) {
                fail(scenario + " failed with exit code " + exitCode + "\n--- stdout ---\n" + tail(stdout)
                        + "\n--- stderr ---\n" + tail(stderr));
            }
            if (okLines().isEmpty()) {
                fail(scenario + " exited 0 without printing " + OK + " (did it check anything?)\n--- stdout ---\n"
                        + tail(stdout) + "\n--- stderr ---\n" + tail(stderr));
            }
            // What it measured, in the test's output (surefire keeps it in the report).
            System.out.println(scenario + " (" + took.toMillis() + " ms): " + String.join("; ", okLines()));
            return this;
        }

        /**
         * @param expected text one {@link #OK} line must contain
         * @return this
         */
        Result assertOk(String expected) {
            assertOk();
            if (okLines().stream().noneMatch(l -> l.contains(expected))) {
                fail(scenario + " reported " + okLines() + ", expected a line containing \"" + expected + "\"");
            }
            return this;
        }
    }

    private static String tail(String s) {
        int max = 6000;
        return s.length() <= max ? s : "... (" + (s.length() - max) + " chars cut)\n" + s.substring(s.length() - max);
    }

    /**
     * Runs {@code scenario.main(args)} in a child JVM.
     *
     * @param scenario a class with {@code public static void main(String[])}
     * @param timeout how long before the child counts as hung and is killed
     * @param jvmArgs extra JVM options (heap size, system properties)
     * @param args the scenario's arguments
     * @return what happened; call {@link Result#assertOk()} on it
     */
    static Result run(Class<?> scenario, Duration timeout, List<String> jvmArgs, String... args) {
        String name = scenario.getSimpleName() + (args.length == 0 ? "" : " " + String.join(" ", args));
        try {
            SLOTS.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted before " + name + " could start", e);
        }
        try {
            return runNow(scenario, name, timeout, jvmArgs, args);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + name + " in a child JVM", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while " + name + " ran", e);
        } finally {
            SLOTS.release();
        }
    }

    /** {@link #run(Class, Duration, List, String...)} without extra JVM options. */
    static Result run(Class<?> scenario, Duration timeout, String... args) {
        return run(scenario, timeout, List.of(), args);
    }

    private static Result runNow(Class<?> scenario, String name, Duration timeout, List<String> jvmArgs,
            String... args) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("zcbuf-child-");
        Path out = dir.resolve("stdout.txt");
        Path err = dir.resolve("stderr.txt");
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-XX:ErrorFile=" + dir.resolve("hs_err_%p.log"));
        cmd.add("-XX:-CreateCoredumpOnCrash");
        // Small and few GC threads: several children share two cores.
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-Xmx256m");
        cmd.add("-Xss1m");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        String libPath = System.getProperty("java.library.path");
        if (libPath != null) {
            cmd.add("-Djava.library.path=" + libPath);
        }
        for (Map.Entry<Object, Object> e : System.getProperties().entrySet()) {
            String key = e.getKey().toString();
            if (key.startsWith("io.zcbuf.") || key.startsWith("zcbuf.")) {
                cmd.add("-D" + key + "=" + e.getValue());
            }
        }
        cmd.addAll(jvmArgs);
        cmd.add(scenario.getName());
        cmd.addAll(Arrays.asList(args));
        long start = System.nanoTime();
        Process p = new ProcessBuilder(cmd)
                .redirectOutput(out.toFile())
                .redirectError(err.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .start();
        boolean exited = p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (!exited) {
            // A thread dump to the child's stdout says where it hung.
            new ProcessBuilder("kill", "-QUIT", Long.toString(p.pid())).start().waitFor(5, TimeUnit.SECONDS);
            p.waitFor(2, TimeUnit.SECONDS);
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        Path hsErr;
        try (Stream<Path> files = Files.list(dir)) {
            hsErr = files.filter(f -> f.getFileName().toString().startsWith("hs_err")).findFirst().orElse(null);
        }
        String stdout = Files.readString(out, StandardCharsets.ISO_8859_1);
        String stderr = Files.readString(err, StandardCharsets.ISO_8859_1);
        if (hsErr == null) {
            // Nothing to look at later: a crash keeps its directory, with the output beside the hs_err file.
            Files.delete(out);
            Files.delete(err);
            Files.delete(dir);
        }
        return new Result(name, exited ? p.exitValue() : -1, !exited, stdout, stderr, hsErr, took);
    }

    // ---- for the scenarios (they run in the child) ----

    /**
     * Called by a scenario that saw what it expected: prints the
     * {@link #OK} line and exits 0 at once (threads it left do not matter).
     *
     * @param what the outcome, in words
     */
    static void ok(String what) {
        System.out.println(OK + " " + what);
        System.out.flush();
        System.exit(0);
    }

    /** A scenario's body. */
    @FunctionalInterface
    interface Body {
        /** @throws Exception anything, which fails the scenario */
        void run() throws Exception;
    }

    /**
     * Runs a scenario's body and exits 1 on anything it throws: a JVM whose
     * main thread died may otherwise stay up (native or non-daemon threads)
     * and count as hung.
     *
     * @param body the scenario, which calls {@link #ok} when it saw what it expected
     */
    static void guard(Body body) {
        try {
            body.run();
        } catch (Throwable e) {
            e.printStackTrace();
            System.err.flush();
            System.exit(1);
        }
        failScenario("the scenario returned without calling ChildJvm.ok");
    }

    /**
     * Fails the scenario (exit 1) with a message, from any thread.
     *
     * @param why what went wrong
     */
    static void failScenario(String why) {
        System.out.println("SCENARIO-FAILED " + why);
        System.out.flush();
        System.exit(1);
    }
}
