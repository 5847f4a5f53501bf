package io.zcbuf.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
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
 * Building a composite of {@code components} existing buffers and releasing it: the cost of
 * assembling a message by reference. The components are allocated once in setup; the measured
 * operation takes one new reference on each ({@code retainedDuplicate()}, on both sides, because
 * both composites take ownership of what they are given), adds it, then releases the composite,
 * which releases every component reference it took.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class CompositeBuildBenchmark {

    @Param({"64"})
    public int components;

    @Param({"1024"})
    public int componentSize;

    private NativeBuffer[] zcbufParts;
    private ByteBuf[] nettyParts;

    @Setup
    public void setup() {
        BufferAllocator alloc = BufferAllocator.unpooled();
        zcbufParts = new NativeBuffer[components];
        nettyParts = new ByteBuf[components];
        byte[] fill = new byte[componentSize];
        for (int i = 0; i < components; i++) {
            zcbufParts[i] = alloc.allocate(componentSize);
            zcbufParts[i].writeBytes(fill);
            nettyParts[i] = Unpooled.directBuffer(componentSize);
            nettyParts[i].writeBytes(fill);
        }
    }

    @TearDown
    public void teardown() {
        for (int i = 0; i < components; i++) {
            if (zcbufParts[i].refCnt() != 1 || nettyParts[i].refCnt() != 1) {
                throw new IllegalStateException("component " + i + " leaked a reference: zcbuf "
                        + zcbufParts[i].refCnt() + ", netty " + nettyParts[i].refCnt());
            }
            zcbufParts[i].release();
            nettyParts[i].release();
        }
    }

    @Benchmark
    public int zcbuf_build() {
        CompositeBuffer composite = BufferAllocator.unpooled().composite();
        for (NativeBuffer part : zcbufParts) {
            composite.addComponent(part.retainedDuplicate());
        }
        int readable = composite.readableBytes();
        composite.release();
        return readable;
    }

    /**
     * The same build with {@code retain()} instead of {@code retainedDuplicate()}: the component
     * itself is added with one more reference, so both sides do the same atomic work (one increment,
     * one decrement per component). The rows above differ by one atomic operation per component
     * because zcbuf's retained views always have their own count (Netty's unpooled
     * {@code retainedDuplicate()} shares the parent's); this pair shows the composites' own cost.
     */
    @Benchmark
    public int zcbuf_buildRetain() {
        CompositeBuffer composite = BufferAllocator.unpooled().composite();
        for (NativeBuffer part : zcbufParts) {
            composite.addComponent(part.retain());
        }
        int readable = composite.readableBytes();
        composite.release();
        return readable;
    }

    @Benchmark
    public int netty_buildRetain() {
        CompositeByteBuf composite = Unpooled.compositeBuffer(Integer.MAX_VALUE);
        for (ByteBuf part : nettyParts) {
            composite.addComponent(true, part.retain());
        }
        int readable = composite.readableBytes();
        composite.release();
        return readable;
    }

    @Benchmark
    public int netty_build() {
        CompositeByteBuf composite = Unpooled.compositeBuffer(Integer.MAX_VALUE);
        for (ByteBuf part : nettyParts) {
            composite.addComponent(true, part.retainedDuplicate());
        }
        int readable = composite.readableBytes();
        composite.release();
        return readable;
    }
}
