package io.zcbuf.bench;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.netty.NettyBuffers;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Netty's own transport (NIO, loopback TCP, a reader thread draining the other end) writing the same bytes
 * as a Netty {@link CompositeByteBuf} of pooled direct buffers and as zcbuf memory seen through {@link
 * NettyBuffers#toByteBuf} ({@code components} x 1 KiB pooled zcbuf buffers): the zcbuf view must cost Netty
 * nothing extra. Each operation writes, flushes and waits for the write to complete.
 *
 * <ul>
 *   <li>{@code netty_composite}: a retained duplicate of the Netty composite per write.</li>
 *   <li>{@code zcbuf_view}: a retained duplicate of the zcbuf view (built once) per write.</li>
 *   <li>{@code zcbuf_toByteBuf}: the view built for each write (one retained slice per component), as a
 *       server that makes a response per request does.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class NettyWriteBenchmark {
    private static final int COMPONENT = 1024;

    @Param({"64", "1024"})
    public int components;

    private EventLoopGroup group;
    private ServerSocketChannel server;
    private SocketChannel peer;
    private Channel channel;
    private Thread reader;
    private CompositeByteBuf nettyComposite;
    private CompositeBuffer zcbufComposite;
    private ByteBuf zcbufView;

    @Setup
    @SuppressWarnings("deprecation") // NioEventLoopGroup: the API 4.1 and 4.2 share
    public void setup() throws Exception {
        byte[] bytes = new byte[COMPONENT];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) i;
        }
        nettyComposite = PooledByteBufAllocator.DEFAULT.compositeDirectBuffer(components);
        zcbufComposite = BufferAllocator.pooled().composite();
        for (int i = 0; i < components; i++) {
            nettyComposite.addComponent(true, PooledByteBufAllocator.DEFAULT.directBuffer(COMPONENT).writeBytes(bytes));
            zcbufComposite.addComponent(BufferAllocator.pooled().copyOf(bytes));
        }
        zcbufView = NettyBuffers.toByteBuf(zcbufComposite.retain());

        server = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        group = new NioEventLoopGroup(1);
        channel = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {}
                })
                .connect(server.getLocalAddress())
                .sync()
                .channel();
        peer = server.accept();
        reader = new Thread(this::drain, "netty-write-reader");
        reader.setDaemon(true);
        reader.start();
    }

    private void drain() {
        ByteBuffer into = ByteBuffer.allocateDirect(1 << 20);
        try {
            while (peer.read(into) >= 0) {
                into.clear();
            }
        } catch (IOException e) {
            // closed at tear-down
        }
    }

    @TearDown
    public void tearDown() throws Exception {
        channel.close().sync();
        peer.close();
        server.close();
        reader.join(10_000);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        nettyComposite.release();
        zcbufView.release();
        zcbufComposite.release();
    }

    @Benchmark
    public void netty_composite() throws InterruptedException {
        channel.writeAndFlush(nettyComposite.retainedDuplicate()).sync();
    }

    @Benchmark
    public void zcbuf_view() throws InterruptedException {
        channel.writeAndFlush(zcbufView.retainedDuplicate()).sync();
    }

    @Benchmark
    public void zcbuf_toByteBuf() throws InterruptedException {
        channel.writeAndFlush(NettyBuffers.toByteBuf(zcbufComposite.retain())).sync();
    }
}
