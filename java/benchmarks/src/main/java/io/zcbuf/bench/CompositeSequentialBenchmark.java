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

import java.util.concurrent.TimeUnit;

/**
 * Sequential {@code forEachByte} over every readable byte of a composite of SMALL or LARGE chunks
 * (Netty's CompositeByteBufSequentialBenchmark workload). The processor looks for a byte that is
 * never there, so both sides visit all {@code size} bytes and return -1.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CompositeSequentialBenchmark {

    @Param({"64", "10240", "1024000"})
    public int size;

    @Param({"SMALL", "LARGE"})
    public Shapes shape;

    private static final io.zcbuf.ByteProcessor ZCBUF_NOT_B = value -> value != 'b';
    private static final io.netty.util.ByteProcessor NETTY_NOT_B = value -> value != 'b';

    private CompositeBuffer zcbuf;
    private CompositeByteBuf netty;

    @Setup
    public void setup() {
        zcbuf = shape.zcbuf(size);
        netty = shape.netty(size);
        if (zcbuf.forEachByte(ZCBUF_NOT_B) != -1 || netty.forEachByte(NETTY_NOT_B) != -1) {
            throw new IllegalStateException("forEachByte stopped early");
        }
    }

    @TearDown
    public void teardown() {
        zcbuf.release();
        netty.release();
    }

    @Benchmark
    public int zcbuf_forEachByte() {
        return zcbuf.forEachByte(ZCBUF_NOT_B);
    }

    @Benchmark
    public int netty_forEachByte() {
        return netty.forEachByte(NETTY_NOT_B);
    }
}
