package io.zcbuf.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.zcbuf.BufferAllocator;
import io.zcbuf.NativeBuffer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

import java.util.concurrent.TimeUnit;

/**
 * Allocate a native buffer of {@code size} bytes, write one long into it, release it.
 *
 * <ul>
 *   <li>{@code pooled}: zcbuf's {@code BufferAllocator.pooled()} next to Netty's
 *       {@code PooledByteBufAllocator.DEFAULT.directBuffer}. Netty 4.1's default gives thread caches
 *       only to its own FastThreadLocalThreads (useCacheForAllThreads=false), so a JMH thread goes
 *       to the arena every time; {@code netty_pooled_threadCache} is the same allocator with
 *       useCacheForAllThreads=true, i.e. what a Netty event-loop thread gets.</li>
 *   <li>{@code unpooled}: zcbuf's {@code BufferAllocator.unpooled()} next to Netty's
 *       {@code Unpooled.directBuffer}, for reference.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class AllocateBenchmark {

    @Param({"256", "4096", "65536"})
    public int size;

    private BufferAllocator zcbufPooled;
    private BufferAllocator zcbufUnpooled;
    private PooledByteBufAllocator nettyPooled;
    private PooledByteBufAllocator nettyPooledCached;

    @Setup
    public void setup() {
        zcbufPooled = BufferAllocator.pooled();
        zcbufUnpooled = BufferAllocator.unpooled();
        nettyPooled = PooledByteBufAllocator.DEFAULT;
        nettyPooledCached = new PooledByteBufAllocator(
                true,
                PooledByteBufAllocator.defaultNumHeapArena(),
                PooledByteBufAllocator.defaultNumDirectArena(),
                PooledByteBufAllocator.defaultPageSize(),
                PooledByteBufAllocator.defaultMaxOrder(),
                PooledByteBufAllocator.defaultSmallCacheSize(),
                PooledByteBufAllocator.defaultNormalCacheSize(),
                true);
    }

    @Benchmark
    public boolean zcbuf_pooled() {
        NativeBuffer b = zcbufPooled.allocate(size);
        b.writeLong(42L);
        return b.release();
    }

    @Benchmark
    public boolean netty_pooled() {
        ByteBuf b = nettyPooled.directBuffer(size);
        b.writeLong(42L);
        return b.release();
    }

    @Benchmark
    public boolean netty_pooled_threadCache() {
        ByteBuf b = nettyPooledCached.directBuffer(size);
        b.writeLong(42L);
        return b.release();
    }

    @Benchmark
    public boolean zcbuf_unpooled() {
        NativeBuffer b = zcbufUnpooled.allocate(size);
        b.writeLong(42L);
        return b.release();
    }

    @Benchmark
    public boolean netty_unpooled() {
        ByteBuf b = Unpooled.directBuffer(size);
        b.writeLong(42L);
        return b.release();
    }
}
