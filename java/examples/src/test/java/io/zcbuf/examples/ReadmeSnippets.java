package io.zcbuf.examples;

import static java.nio.charset.StandardCharsets.US_ASCII;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyWriter;
import io.zcbuf.netty.ZeroCopyHandler;
import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * The README's Java snippets, compiled: {@link ReadmeSnippetsTest} checks that the lines between each pair of
 * markers are the README's, and runs them.
 */
final class ReadmeSnippets {
    private ReadmeSnippets() {}

    /** README "Using it from Java". */
    static void usingItFromJava(SocketChannel socketChannel, Path path) throws IOException {
        // README java begin
        BufferAllocator alloc = BufferAllocator.pooled();
        NativeBuffer header = alloc.allocate(128);
        header.writeBytes("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".getBytes(US_ASCII));
        try (ZeroCopyWriter writer = ZeroCopyWriter.open(socketChannel);
             CompositeBuffer response = alloc.composite(header, alloc.mapFile(path))) {
            writer.write(response);      // one JNI call, one sendmsg, no copy in user space
        }                                 // released: memory a zero-copy send pins stays until its completion
        // README java end
    }

    /** README "Netty"; {@code ch} is {@code ctx}'s channel. */
    static void netty(Channel ch, ChannelHandlerContext ctx, byte[] prefix, BufferAllocator alloc, NativeBuffer header,
            Path path) {
        // README netty begin
        ch.pipeline().addFirst(new ZeroCopyHandler(ZeroCopyMode.AUTO, ZeroCopyWriter.DEFAULT_THRESHOLD));
        ctx.write(Unpooled.wrappedBuffer(prefix));              // a Netty buffer, then
        ctx.writeAndFlush(alloc.composite(header, alloc.mapFile(path))); // zcbuf memory, in order
        // README netty end
    }
}
