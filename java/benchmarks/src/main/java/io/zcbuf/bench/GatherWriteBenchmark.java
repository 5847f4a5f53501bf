package io.zcbuf.bench;

import io.netty.buffer.CompositeByteBuf;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyWriter;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A gather write of a composite of {@code components} x {@code componentSize} bytes to a blocking
 * TCP {@link SocketChannel} over loopback; a reader thread drains the other end (blocking reads
 * into one direct buffer) so the writer never waits on a full window for long.
 *
 * <p>The writer (the JMH thread) is pinned to CPU 0 and the reader to CPU 1 (see {@link Affinity};
 * {@code -Dzcbuf.bench.pin=false} turns it off): left to the scheduler, both sometimes share a core
 * and the time per write doubles from one iteration to the next.
 *
 * <p>1 KiB components: small enough that the per-component work (iovec building, ByteBuffer views,
 * JNI crossing) is visible next to the kernel's copy of the bytes, large enough to be a realistic
 * message part. 64 components = 64 KiB per operation, 1024 = 1 MiB (exactly Linux's IOV_MAX, so one
 * {@code writev}/{@code sendmsg} can carry all of them when the socket takes them).
 *
 * <ul>
 *   <li>{@code zcbuf_gatherWrite_writer}: {@code ZeroCopyWriter.open(ch, NEVER, ...).write(composite)}
 *       (one JNI crossing per call carrying all components; plain {@code sendmsg}, no MSG_ZEROCOPY),
 *       then {@code readerIndex(0)} to send the same message again.</li>
 *   <li>{@code zcbuf_gatherWrite_nioBuffers}: zcbuf's {@code nioBuffers()} and NIO's
 *       {@code SocketChannel.write(ByteBuffer[])} until all is written.</li>
 *   <li>{@code netty_gatherWrite_nioBuffers}: Netty's {@code CompositeByteBuf.nioBuffers()} and the same
 *       NIO loop (what Netty's NioSocketChannel does; NIO caps each call at IOV_MAX buffers and the
 *       loop resumes after partial writes).</li>
 *   <li>{@code zcbuf_nioBuffers} / {@code netty_nioBuffers}: only building the ByteBuffer[] views, no
 *       write: the per-component cost without the kernel's copy (and its noise).</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class GatherWriteBenchmark {

    @Param({"64", "1024"})
    public int components;

    @Param({"1024"})
    public int componentSize;

    private ServerSocketChannel server;
    private SocketChannel client;
    private SocketChannel accepted;
    private Thread reader;
    private final AtomicLong drained = new AtomicLong();

    private ZeroCopyWriter writer;
    private CompositeBuffer zcbuf;
    private CompositeByteBuf netty;
    private long total;

    @Setup
    public void setup() throws IOException {
        Affinity.pinCurrentThread(0);
        server = ServerSocketChannel.open();
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        client = SocketChannel.open(server.getLocalAddress());
        client.setOption(StandardSocketOptions.TCP_NODELAY, true);
        accepted = server.accept();
        reader = new Thread(this::drain, "gather-write-reader");
        reader.setDaemon(true);
        reader.start();

        int[] lengths = Shapes.repeat(components, componentSize);
        zcbuf = Shapes.zcbufComposite(lengths);
        netty = Shapes.nettyComposite(lengths);
        total = (long) components * componentSize;
        writer = ZeroCopyWriter.open(client, ZeroCopyMode.NEVER, Integer.MAX_VALUE);
        if (!writer.isNative()) {
            System.err.println("note: ZeroCopyWriter is not native here (fallback GatheringByteChannel path)");
        }
    }

    private void drain() {
        Affinity.pinCurrentThread(1);
        ByteBuffer sink = ByteBuffer.allocateDirect(1 << 20);
        try {
            while (true) {
                sink.clear();
                int n = accepted.read(sink);
                if (n < 0) {
                    return;
                }
                drained.addAndGet(n);
            }
        } catch (IOException closed) {
            // the benchmark is over
        }
    }

    @TearDown
    public void teardown() throws Exception {
        writer.close();
        client.close();
        reader.join(10_000);
        accepted.close();
        server.close();
        zcbuf.release();
        netty.release();
        Affinity.unpinCurrentThread();
    }

    @Benchmark
    public long zcbuf_gatherWrite_writer() throws IOException {
        long n = writer.write(zcbuf);
        if (n != total) {
            throw new IllegalStateException("wrote " + n + " of " + total);
        }
        zcbuf.readerIndex(0);
        return n;
    }

    @Benchmark
    public long zcbuf_gatherWrite_nioBuffers() throws IOException {
        return writeFully(zcbuf.nioBuffers());
    }

    @Benchmark
    public long netty_gatherWrite_nioBuffers() throws IOException {
        return writeFully(netty.nioBuffers());
    }

    @Benchmark
    public ByteBuffer[] zcbuf_nioBuffers() {
        return zcbuf.nioBuffers();
    }

    @Benchmark
    public ByteBuffer[] netty_nioBuffers() {
        return netty.nioBuffers();
    }

    private long writeFully(ByteBuffer[] buffers) throws IOException {
        long left = total;
        int first = 0;
        while (left > 0) {
            left -= client.write(buffers, first, buffers.length - first);
            while (first < buffers.length && !buffers[first].hasRemaining()) {
                first++;
            }
        }
        return total;
    }
}
