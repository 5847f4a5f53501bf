package io.zcbuf.bench;

import io.netty.buffer.CompositeByteBuf;
import io.zcbuf.CompositeBuffer;

import java.util.Random;
import java.util.function.IntToLongFunction;

/**
 * The composite read rows of {@link CompositeRandomAccessBenchmark} and {@link CompositeSequentialBenchmark},
 * measured for a machine shared with other jobs: zcbuf and Netty run in alternating batches in one JVM, and
 * each side's figure is its fastest batch (time per operation). Another job can only make a batch slower, so
 * the minimum is what the code costs, where JMH's mean over a few seconds is what the machine allowed.
 * JMH stays the reference on a quiet machine; this is the cross-check on a busy one.
 *
 * <pre>
 * java -cp java/benchmarks/target/benchmarks.jar io.zcbuf.bench.CompositeInterleaved [rounds]
 * </pre>
 *
 * Each row runs in a JVM of its own. Prints one line per row and {@code RATIO <name>.interleaved <zcbuf/Netty> [<aim>]} lines for
 * {@code scripts/plot-ratios.py}.
 */
public final class CompositeInterleaved {
    private static volatile long sink;

    private CompositeInterleaved() {}

    /** workload, shape, size, aim */
    private static final String[][] ROWS = {
        {"getLong", "LARGE", "64", ""},
        {"getLong", "LARGE", "1024000", "<=1.0"},
        {"getLong", "SMALL", "64", ""},
        {"setGetLong", "LARGE", "64", "<=1.0"},
        {"setGetLong", "SMALL", "64", ""},
        {"forEachByte", "SMALL", "64", "<=1.0"},
        {"forEachByte", "LARGE", "64", "<=1.0"},
        {"forEachByte", "LARGE", "10240", ""},
    };

    /**
     * @param args {@code [rounds]}: every row in a JVM of its own (as JMH forks, so that one row's type
     *     profiles do not slow the next); {@code [rounds] row} runs that one row here
     * @throws Exception when a child JVM cannot be started or fails
     */
    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        if (args.length > 1) {
            String[] r = ROWS[Integer.parseInt(args[1])];
            row(rounds, r[0], Shapes.valueOf(r[1]), Integer.parseInt(r[2]), r[3]);
            return;
        }
        String javaBin = ProcessHandle.current().info().command().orElse("java");
        StringBuilder ratios = new StringBuilder();
        for (int i = 0; i < ROWS.length; i++) {
            Process p = new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"),
                    CompositeInterleaved.class.getName(), String.valueOf(rounds), String.valueOf(i))
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                throw new IllegalStateException("row " + i + " failed: " + out);
            }
            for (String line : out.split("\n")) {
                if (line.startsWith("RATIO ")) {
                    ratios.append(line).append('\n');
                } else if (!line.isBlank()) {
                    System.out.println(line);
                }
            }
        }
        System.out.println();
        System.out.print(ratios);
    }

    private static void row(int rounds, String workload, Shapes shape, int size, String aim) {
        CompositeBuffer z = shape.zcbuf(size);
        CompositeByteBuf n = shape.netty(size);
        try {
            int[] offsets = new int[4096];
            Random random = new Random(0L);
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = random.nextInt(size - 8);
            }
            io.zcbuf.ByteProcessor zp = v -> v != 'b';
            io.netty.util.ByteProcessor np = v -> v != 'b';
            IntToLongFunction zop;
            IntToLongFunction nop;
            switch (workload) {
                case "getLong" -> {
                    zop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            s += z.getLong(offsets[i & 4095]);
                        }
                        return s;
                    };
                    nop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            s += n.getLong(offsets[i & 4095]);
                        }
                        return s;
                    };
                }
                case "setGetLong" -> {
                    zop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            int o = offsets[i & 4095];
                            s += z.setLong(o, i).getLong(o);
                        }
                        return s;
                    };
                    nop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            int o = offsets[i & 4095];
                            s += n.setLong(o, i).getLong(o);
                        }
                        return s;
                    };
                }
                default -> {
                    zop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            s += z.forEachByte(zp);
                        }
                        return s;
                    };
                    nop = k -> {
                        long s = 0;
                        for (int i = 0; i < k; i++) {
                            s += n.forEachByte(np);
                        }
                        return s;
                    };
                }
            }
            // About 1 ms per batch whatever the row costs.
            int batch = Math.max(100, (int) (1_000_000 / Math.max(1.0, fastest(zop, 1000, 3))));
            for (int w = 0; w < 5; w++) {
                fastest(zop, batch, 20);
                fastest(nop, batch, 20);
            }
            double zb = Double.MAX_VALUE;
            double nb = Double.MAX_VALUE;
            for (int r = 0; r < rounds; r++) {
                zb = Math.min(zb, fastest(zop, batch, 5));
                nb = Math.min(nb, fastest(nop, batch, 5));
            }
            String name = "Composite" + (workload.equals("forEachByte") ? "Sequential." : "RandomAccess.") + workload
                    + "." + shape + "." + size;
            System.out.printf("%-48s zcbuf %10.2f ns  Netty %10.2f ns  zcbuf/Netty %.2f%n", name, zb, nb, zb / nb);
            System.out.println(String.format("RATIO %s.interleaved %.3f %s", name, zb / nb, aim).trim());
        } finally {
            z.release();
            n.release();
        }
    }

    /** The fastest of {@code times} batches of {@code k} operations, in ns per operation. */
    private static double fastest(IntToLongFunction op, int k, int times) {
        double best = Double.MAX_VALUE;
        for (int t = 0; t < times; t++) {
            long t0 = System.nanoTime();
            sink += op.applyAsLong(k);
            best = Math.min(best, (double) (System.nanoTime() - t0) / k);
        }
        return best;
    }
}
