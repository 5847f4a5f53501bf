package io.zcbuf.examples;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyWriter;
import io.zcbuf.netty.ZeroCopyHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An HTTP/1.1 file server on Netty whose every response is one zcbuf composite: the status line and headers
 * in a pooled buffer, the file mapped, sent by {@link ZeroCopyHandler} on the channel's own socket
 * ({@code MSG_ZEROCOPY} where it pays, on epoll; Netty's gather write elsewhere). Nothing is copied in user
 * space. {@code GET /<name>} for regular files under the root; 404 for anything else under it, 400 for {@code
 * ..} or a backslash, 405 for other methods; keep-alive as the request asks.
 *
 * <pre>{@code
 * try (NettyFileServer server = new NettyFileServer(Path.of("www"), 8080)) {
 *     ... // GET http://localhost:8080/index.html
 * }
 * }</pre>
 */
public final class NettyFileServer implements AutoCloseable {
    private final Path realRoot;
    private final EventLoopGroup group;
    private final Channel server;

    /**
     * @param root the directory served
     * @param port the port on the loopback address; 0 picks a free one
     * @throws IOException when the root is not a directory
     * @throws InterruptedException when interrupted while binding
     */
    @SuppressWarnings("deprecation") // EpollEventLoopGroup/NioEventLoopGroup: the API 4.1 and 4.2 share
    public NettyFileServer(Path root, int port) throws IOException, InterruptedException {
        if (!Files.isDirectory(root)) {
            throw new IOException(root + " is not a directory");
        }
        this.realRoot = root.toRealPath();
        boolean epoll = Epoll.isAvailable();
        this.group = epoll ? new EpollEventLoopGroup(2) : new NioEventLoopGroup(2);
        Class<? extends ServerChannel> type = epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        this.server = new ServerBootstrap()
                .group(group)
                .channel(type)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline()
                                .addLast(new ZeroCopyHandler(ZeroCopyMode.AUTO, ZeroCopyWriter.DEFAULT_THRESHOLD))
                                .addLast(new HttpRequestDecoder())
                                .addLast(new Responder());
                    }
                })
                .bind(new InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), port))
                .sync()
                .channel();
    }

    /** @return the bound port */
    public int port() {
        return ((InetSocketAddress) server.localAddress()).getPort();
    }

    @Override
    public void close() throws InterruptedException {
        server.close().sync();
        group.shutdownGracefully(0, 2, java.util.concurrent.TimeUnit.SECONDS).sync();
    }

    /** Answers each request head; the body of a GET (if any) is ignored. */
    private final class Responder extends SimpleChannelInboundHandler<HttpObject> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, HttpObject msg) {
            if (!(msg instanceof HttpRequest request)) {
                return;
            }
            boolean keepAlive = HttpUtil.isKeepAlive(request) && request.decoderResult().isSuccess();
            Buffer response;
            if (!request.decoderResult().isSuccess()) {
                response = status(400, "Bad Request", false);
            } else if (!HttpMethod.GET.equals(request.method())) {
                response = status(405, "Method Not Allowed", keepAlive);
            } else {
                Path file = resolve(request.uri());
                response = file == null ? status(404, "Not Found", keepAlive) : fileResponse(file, keepAlive);
            }
            var done = ctx.writeAndFlush(response); // the composite's reference goes to the pipeline
            if (!keepAlive) {
                done.addListener(ChannelFutureListener.CLOSE);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
        }
    }

    /** @return the regular file under the root that {@code uri} names, or null (answered 404) */
    private Path resolve(String uri) {
        String path;
        try {
            path = new QueryStringDecoder(uri).path();
        } catch (IllegalArgumentException e) {
            return null;
        }
        if (!path.startsWith("/")) {
            return null;
        }
        for (String segment : path.substring(1).split("/", -1)) {
            if (segment.equals("..") || segment.indexOf('\\') >= 0 || segment.indexOf('\0') >= 0) {
                return null;
            }
        }
        try {
            Path file = realRoot.resolve(path.substring(1)).normalize();
            // No way out of the root, through a symbolic link either.
            if (!Files.isRegularFile(file) || !file.toRealPath().startsWith(realRoot)) {
                return null;
            }
            return file;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static Buffer fileResponse(Path file, boolean keepAlive) {
        NativeBuffer body;
        try {
            body = BufferAllocator.pooled().mapFile(file);
        } catch (RuntimeException e) { // gone or changed meanwhile
            return status(404, "Not Found", keepAlive);
        }
        NativeBuffer head = header(200, "OK", body.readableBytes(), keepAlive);
        return BufferAllocator.pooled().composite(head, body);
    }

    private static Buffer status(int code, String reason, boolean keepAlive) {
        return header(code, reason, 0, keepAlive);
    }

    private static NativeBuffer header(int code, String reason, long length, boolean keepAlive) {
        String head = "HTTP/1.1 " + code + " " + reason + "\r\n"
                + "Content-Length: " + length + "\r\n"
                + "Content-Type: application/octet-stream\r\n"
                + (code == 405 ? "Allow: GET\r\n" : "")
                + "Connection: " + (keepAlive ? "keep-alive" : "close") + "\r\n\r\n";
        return BufferAllocator.pooled().copyOf(head.getBytes(StandardCharsets.US_ASCII));
    }

    /**
     * Serves a directory until interrupted.
     *
     * @param args {@code <root-dir> [port]}
     * @throws Exception when the server cannot start
     */
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: NettyFileServer <root-dir> [port]");
            System.exit(2);
        }
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 8080;
        try (NettyFileServer server = new NettyFileServer(Path.of(args[0]), port)) {
            System.out.println("serving " + args[0] + " on http://127.0.0.1:" + server.port() + "/");
            Thread.currentThread().join();
        }
    }
}
