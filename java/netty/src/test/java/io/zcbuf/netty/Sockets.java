package io.zcbuf.netty;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/** Real sockets for the tests: a Netty client channel (epoll or NIO) connected to a plain JDK reader. */
final class Sockets {
    private Sockets() {}

    enum Transport {
        EPOLL,
        NIO
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** Fails (CI=true) or says why when this machine has no usable epoll transport. */
    static boolean usable(Transport t) {
        if (t == Transport.NIO || Epoll.isAvailable()) {
            return true;
        }
        String why = "Netty epoll is unavailable here: " + Epoll.unavailabilityCause();
        if ("true".equals(System.getenv("CI"))) {
            throw new AssertionError(why);
        }
        System.out.println("SKIPPED (" + why + ")");
        return false;
    }

    /** A connected Netty client and the peer that reads what it sends. */
    static final class Pair implements AutoCloseable {
        final EventLoopGroup group;
        final Channel channel;
        final ServerSocket server;
        final Socket peer;

        @SuppressWarnings("deprecation")
        Pair(Transport t, ByteBufAllocator alloc, Supplier<ChannelHandler> handler) throws Exception {
            group = t == Transport.EPOLL ? new EpollEventLoopGroup(1) : new NioEventLoopGroup(1);
            server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
            Bootstrap b = new Bootstrap()
                    .group(group)
                    .channel(t == Transport.EPOLL ? EpollSocketChannel.class : NioSocketChannel.class)
                    .option(ChannelOption.ALLOCATOR, alloc)
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ChannelHandler h = handler.get();
                            if (h != null) {
                                ch.pipeline().addLast(h);
                            }
                        }
                    });
            channel = b.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort()))
                    .sync()
                    .channel();
            peer = server.accept();
            peer.setSoTimeout(20_000);
        }

        /** Reads exactly {@code n} bytes on another thread. */
        CompletableFuture<byte[]> read(int n) {
            return read(n, 0);
        }

        /** Reads exactly {@code n} bytes on another thread, pausing {@code pauseMillis} after each read. */
        CompletableFuture<byte[]> read(int n, int pauseMillis) {
            return CompletableFuture.supplyAsync(() -> {
                try {
                    InputStream in = peer.getInputStream();
                    ByteArrayOutputStream out = new ByteArrayOutputStream(n);
                    byte[] chunk = new byte[pauseMillis > 0 ? 16 << 10 : 64 << 10];
                    while (out.size() < n) {
                        int r = in.read(chunk, 0, Math.min(chunk.length, n - out.size()));
                        if (r < 0) {
                            throw new AssertionError("EOF after " + out.size() + " of " + n + " bytes");
                        }
                        out.write(chunk, 0, r);
                        if (pauseMillis > 0) {
                            Thread.sleep(pauseMillis);
                        }
                    }
                    return out.toByteArray();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            });
        }

        static void assertBytes(byte[] expected, CompletableFuture<byte[]> got) throws Exception {
            byte[] actual = got.get(30, TimeUnit.SECONDS);
            assertArrayEquals(expected, actual, "bytes at the peer");
        }

        @Override
        public void close() throws Exception {
            channel.close().sync();
            peer.close();
            server.close();
            assertTrue(group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS));
        }
    }
}
