package io.zcbuf.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.zcbuf.BufferAllocator;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyStats;
import io.zcbuf.ZeroCopyWriter;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The row only zcbuf can have: UDP datagrams sent with {@code MSG_ZEROCOPY} to a sink that really takes them by
 * reference, against Netty's NIO write of the same bytes. Loopback (and a veth peer that owns a receiving
 * socket) always copies; a veth pair in a private network namespace, sending to a neighbour address nobody owns
 * (a static {@code ip neigh} entry on 198.18.0.0/15), drops each packet after the driver, with no copy.
 * {@code java/benchmarks/veth-sink.sh} makes that namespace ({@code unshare -n}, root) and runs this class in
 * it; outside it the setup fails and says so.
 *
 * <ul>
 *   <li>{@code zcbuf_vethSend_zerocopy}: {@code ZeroCopyWriter} in {@link ZeroCopyMode#ALWAYS} on a connected
 *       {@link DatagramChannel}, one pooled {@code size}-byte buffer sent again and again (each send pins it
 *       until its completion; the writer reads completions as it goes).</li>
 *   <li>{@code netty_vethSend_nio}: what Netty's {@code NioDatagramChannel} does for a connected channel:
 *       {@code DatagramChannel.write(buf.nioBuffer())} of a pooled direct {@link ByteBuf} of the same bytes.</li>
 * </ul>
 *
 * <p>The teardown prints the writer's counters: a row is only meaningful when its sends went by reference
 * (zero-copy sends equal to the sends, copied share 0%).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class VethSinkBenchmark {
    /** The neighbour with a static ARP entry that nobody answers to (see veth-sink.sh). */
    static final String SINK = System.getProperty("zcbuf.bench.sink", "198.18.0.2");

    @Param({"16384", "65000"})
    public int size;

    private DatagramChannel zcbufChannel;
    private DatagramChannel nettyChannel;
    private ZeroCopyWriter writer;
    private NativeBuffer zcbuf;
    private ByteBuf netty;
    private ByteBuffer nettyView;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        Affinity.pinCurrentThread(1);
        InetSocketAddress sink = new InetSocketAddress(SINK, 9);
        zcbufChannel = DatagramChannel.open();
        nettyChannel = DatagramChannel.open();
        try {
            zcbufChannel.connect(sink);
            nettyChannel.connect(sink);
            // One probe datagram: without the namespace's route, the send fails here, not in the measurement.
            nettyChannel.write(ByteBuffer.allocate(1));
        } catch (IOException e) {
            throw new IllegalStateException("no route to the veth sink " + SINK + " (" + e + "): run this "
                    + "benchmark through java/benchmarks/veth-sink.sh, which makes the namespace", e);
        }
        byte[] bytes = new byte[size];
        new java.util.Random(size).nextBytes(bytes);
        zcbuf = BufferAllocator.pooled().allocate(size);
        zcbuf.writeBytes(bytes);
        netty = PooledByteBufAllocator.DEFAULT.directBuffer(size);
        netty.writeBytes(bytes);
        nettyView = netty.nioBuffer();
        writer = ZeroCopyWriter.open(zcbufChannel, ZeroCopyMode.ALWAYS, 0);
        if (!writer.isNative()) {
            throw new IllegalStateException("ZeroCopyWriter is not native here: " + writer.stats().autoDecision());
        }
    }

    @TearDown(Level.Trial)
    public void teardown() throws IOException {
        ZeroCopyStats s = writer.stats();
        if (s.sends() > 0) { // the zcbuf row's fork (JMH runs each benchmark method in its own)
            System.out.printf("%nveth sink, %d B: zcbuf sends %d, zero-copy %d, completions %d, copied share %.0f%%, "
                + "ENOBUFS fallbacks %d%n", size, s.sends(), s.zeroCopySends(), s.completions(),
                100 * s.copiedShare(), s.enobufsFallbacks());
        }
        writer.close();
        zcbufChannel.close();
        nettyChannel.close();
        zcbuf.release();
        netty.release();
        Affinity.unpinCurrentThread();
    }

    @Benchmark
    public long zcbuf_vethSend_zerocopy() throws IOException {
        long n = writer.write(zcbuf);
        if (n != size) {
            throw new IllegalStateException("sent " + n + " of " + size);
        }
        zcbuf.readerIndex(0);
        return n;
    }

    @Benchmark
    public long netty_vethSend_nio() throws IOException {
        nettyView.clear();
        int n = nettyChannel.write(nettyView);
        if (n != size) {
            throw new IllegalStateException("sent " + n + " of " + size);
        }
        return n;
    }
}
