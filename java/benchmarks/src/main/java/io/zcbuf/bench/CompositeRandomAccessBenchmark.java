package io.zcbuf.bench;

import io.netty.buffer.CompositeByteBuf;
import io.zcbuf.CompositeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Random-offset {@code setLong}/{@code getLong} on a composite of SMALL or LARGE chunks (Netty's
 * CompositeByteBufRandomAccessBenchmark workload). A long at a random offset straddles component
 * boundaries often with SMALL chunks (every component is at most 9 bytes), rarely with LARGE.
 *
 * <p>The offsets come from a precomputed table (same seed for both sides) so the random number
 * generator is not part of the measurement.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CompositeRandomAccessBenchmark {

    @Param({"64", "10240", "1024000"})
    public int size;

    @Param({"SMALL", "LARGE"})
    public Shapes shape;

    private static final int OFFSETS = 4096; // power of two

    private CompositeBuffer zcbuf;
    private CompositeByteBuf netty;
    private int[] offsets;
    private int next;

    @Setup
    public void setup() {
        zcbuf = shape.zcbuf(size);
        netty = shape.netty(size);
        if (zcbuf.readableBytes() != size || netty.readableBytes() != size) {
            throw new IllegalStateException("composite sizes: zcbuf " + zcbuf.readableBytes()
                    + ", netty " + netty.readableBytes() + ", wanted " + size);
        }
        Random random = new Random(0L);
        offsets = new int[OFFSETS];
        for (int i = 0; i < OFFSETS; i++) {
            offsets[i] = random.nextInt(size - 8);
        }
    }

    @TearDown
    public void teardown() {
        zcbuf.release();
        netty.release();
    }

    private int nextOffset() {
        int i = next;
        next = (i + 1) & (OFFSETS - 1);
        return offsets[i];
    }

    @Benchmark
    public long zcbuf_setGetLong() {
        int i = nextOffset();
        return zcbuf.setLong(i, 1).getLong(i);
    }

    @Benchmark
    public long netty_setGetLong() {
        int i = nextOffset();
        return netty.setLong(i, 1).getLong(i);
    }

    @Benchmark
    public long zcbuf_getLong() {
        return zcbuf.getLong(nextOffset());
    }

    @Benchmark
    public long netty_getLong() {
        return netty.getLong(nextOffset());
    }
}
