package io.zcbuf.netty;

import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.unix.UnixChannel;
import io.zcbuf.Buffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyStats;
import io.zcbuf.ZeroCopyWriter;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.util.concurrent.TimeUnit;

/**
 * Sends zcbuf {@link Buffer}s written to the pipeline with {@code MSG_ZEROCOPY} on the channel's own socket,
 * in order with the channel's other writes. Put it next to the head of the pipeline of each channel (one
 * instance per channel) and write {@code Buffer}s; everything else passes through.
 *
 * <p>How: each {@code Buffer} becomes a {@link io.netty.channel.FileRegion} in Netty's own outbound queue, so
 * the transport writes it when every earlier message is out and resumes it after a full socket buffer; the
 * region sends through a {@link ZeroCopyWriter} on the channel's socket (Netty's epoll transport: its
 * descriptor; NIO: the JDK channel), which pins the memory until the kernel's completion. Completions are read
 * on the channel's event loop, a millisecond after a send and then while sends are pinned, so memory goes back
 * without another write, and at the end of every read Netty does while sends are pinned: queued completions
 * keep the socket in error readiness, which Netty's loop answers with a read on every wait (measured: 0.6 s of
 * CPU per second while completions sit unread), so the first such wake-up reads them and the loop goes back to
 * sleep. A 4.1 channel in level-triggered epoll mode, and any transport other than epoll and NIO, gets Netty's
 * own gather write of the same memory instead ({@link NettyBuffers#toByteBuf}), which copies nothing in user
 * space either; {@link #fallbackReason()} says when that happened.
 *
 * <pre>{@code
 * ch.pipeline().addFirst(new ZeroCopyHandler(ZeroCopyMode.AUTO, ZeroCopyWriter.DEFAULT_THRESHOLD));
 * ctx.write(headerByteBuf);
 * ctx.writeAndFlush(zcbufComposite); // its reference goes to the pipeline
 * }</pre>
 */
public final class ZeroCopyHandler extends ChannelDuplexHandler {
    private static final long FIRST_REAP_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
    private static final long MAX_REAP_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final ZeroCopyMode mode;
    private final int threshold;
    private ZeroCopyWriter writer;
    private String fallbackReason;
    private boolean closed;
    private boolean reapScheduled;
    private long reapDelay = FIRST_REAP_NANOS;
    private ChannelHandlerContext ctx;

    /**
     * @param mode when to ask for zero-copy (as {@link ZeroCopyWriter#open})
     * @param threshold sends of fewer bytes never ask for it
     */
    public ZeroCopyHandler(ZeroCopyMode mode, int threshold) {
        if (threshold < 0) {
            throw new IllegalArgumentException("threshold " + threshold + " is negative");
        }
        this.mode = java.util.Objects.requireNonNull(mode, "mode");
        this.threshold = threshold;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
        if (!(msg instanceof Buffer buf)) {
            ctx.write(msg, promise);
            return;
        }
        if (buf.refCnt() == 0) {
            promise.setFailure(new io.zcbuf.IllegalReferenceCountException("a released zcbuf buffer was written"));
            return;
        }
        Object out;
        try {
            out = useRegion(ctx.channel()) ? new ZeroCopyRegion(this, buf) : NettyBuffers.toByteBuf(buf, ctx.alloc());
        } catch (RuntimeException e) {
            if (buf.refCnt() > 0) {
                buf.release(); // the pipeline owned it: it goes back as a failed write's message does
            }
            promise.setFailure(e);
            return;
        }
        ctx.write(out, promise);
    }

    /** Whether this channel's transport can send a region through a writer (opens it for epoll). */
    private boolean useRegion(Channel ch) {
        if (fallbackReason != null) {
            return false;
        }
        if (writer != null) {
            return true;
        }
        if (closed) {
            fallbackReason = "the channel is closed";
            return false;
        }
        String transport = ch.getClass().getName();
        if (transport.startsWith("io.netty.channel.socket.nio.")) {
            return true; // the writer opens on the JDK channel the transport hands the region
        }
        if (!transport.startsWith("io.netty.channel.epoll.") || !(ch instanceof UnixChannel unix)) {
            fallbackReason = transport + " is neither Netty's epoll nor its NIO transport";
            return false;
        }
        if (levelTriggered(ch)) {
            fallbackReason = "level-triggered epoll is not supported (only Netty's default, edge-triggered, was measured)";
            return false;
        }
        // Netty closes the descriptor only on this event loop, so it is the channel's while the writer opens.
        ZeroCopyWriter w = ZeroCopyWriter.openDescriptor(unix.fd().intValue(), mode, threshold);
        if (!w.isNative()) {
            fallbackReason = w.stats().autoDecision();
            w.close();
            return false;
        }
        writer = w;
        return true;
    }

    /** 4.1's {@code EpollChannelOption.EPOLL_MODE}, looked up by name: 4.2 has no such mode. */
    private static boolean levelTriggered(Channel ch) {
        if (!ChannelOption.exists("EPOLL_MODE")) {
            return false;
        }
        Object epollMode = ch.config().getOption(ChannelOption.valueOf("EPOLL_MODE"));
        return epollMode != null && "LEVEL_TRIGGERED".equals(epollMode.toString());
    }

    /** The writer for a region Netty transfers to {@code target} (the JDK channel on NIO). */
    ZeroCopyWriter writer(WritableByteChannel target) {
        if (closed) {
            throw new IllegalStateException("the channel closed: its zero-copy writer is gone");
        }
        if (writer == null) {
            if (!(target instanceof SocketChannel socket)) {
                throw new IllegalStateException("a zcbuf region was handed " + target + ", not a socket");
            }
            writer = ZeroCopyWriter.open(socket, mode, threshold);
        }
        return writer;
    }

    /** Reads completions soon, so pinned memory goes back without waiting for the next write. */
    void sent() {
        reapDelay = FIRST_REAP_NANOS;
        if (!reapScheduled && ctx != null) {
            reapScheduled = true;
            ctx.executor().schedule(this::reap, reapDelay, TimeUnit.NANOSECONDS);
        }
    }

    private void reap() {
        reapScheduled = false;
        if (readCompletions()) {
            reapScheduled = true;
            reapDelay = Math.min(reapDelay * 2, MAX_REAP_NANOS);
            ctx.executor().schedule(this::reap, reapDelay, TimeUnit.NANOSECONDS);
        }
    }

    /** @return whether sends are still pinned after reading the completions queued so far */
    private boolean readCompletions() {
        if (writer == null || closed) {
            return false;
        }
        return writer.stats().pinnedSends() > 0; // stats() reads the error queue first
    }

    /**
     * Call it on the channel's event loop (the handler's state is the loop's), e.g. {@code
     * ch.eventLoop().submit(handler::stats).get()}.
     *
     * @return the writer's counters (completions read first), or null while (or when) none is open
     */
    public ZeroCopyStats stats() {
        return writer == null || closed ? null : writer.stats();
    }

    /** @return why this channel's buffers go through Netty's own gather write, or null when they do not */
    public String fallbackReason() {
        return fallbackReason;
    }

    /**
     * Queued completions keep the socket in error readiness, and both of Netty's loops answer that with a read
     * (epoll reports EPOLLERR on every wait until the queue is read: measured, the loop spins): reading the
     * queue at the end of that read is what stops the wake-ups, at the first one.
     */
    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) throws Exception {
        if (reapScheduled) {
            readCompletions();
        }
        super.channelReadComplete(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
        closeWriter();
        super.channelInactive(ctx);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        closeWriter();
    }

    /** The writer's duplicate of the descriptor keeps the socket open: close it with the channel. */
    private void closeWriter() {
        closed = true;
        if (writer != null) {
            writer.close(); // waits at most a second for completions; the native side parks what is left
        }
    }
}
