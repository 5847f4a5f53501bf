package io.zcbuf.netty;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * zcbuf memory as Netty buffers and Netty memory as zcbuf buffers, both without copying a byte, with the
 * reference counts bridged: each side holds one reference on the other's memory and gives it back when its
 * own count reaches zero.
 *
 * <pre>{@code
 * // zcbuf -> Netty: Netty's own writev sends the zcbuf bytes where they lie.
 * CompositeBuffer reply = BufferAllocator.pooled().composite(header, BufferAllocator.pooled().mapFile(path));
 * channel.writeAndFlush(NettyBuffers.toByteBuf(reply)); // the ByteBuf owns reply's reference now
 *
 * // Netty -> zcbuf: a received direct buffer becomes a component, holding its Netty reference meanwhile.
 * Buffer body = NettyBuffers.fromByteBuf(msg);         // takes over msg's reference
 * }</pre>
 */
public final class NettyBuffers {
    private NettyBuffers() {}

    /**
     * A Netty view of {@code buf}'s memory, capacity and indices included: the same bytes, no copy. The view
     * takes over the caller's reference to {@code buf} and releases it when its own count reaches zero;
     * retain {@code buf} first to keep using it. A composite gives a {@link CompositeByteBuf} of one component
     * per region; a single region gives a buffer with a {@link ByteBuf#memoryAddress() memoryAddress} (where
     * Netty may use {@code Unsafe}). Writes through the view reach zcbuf's memory; a read-only buffer (a mapped
     * file) gives a read-only view.
     *
     * @param buf a live zcbuf buffer; its reference goes to the view
     * @return the Netty view, with {@code buf}'s reader and writer indices
     * @throws io.zcbuf.IllegalReferenceCountException when {@code buf} was released (nothing changes)
     */
    public static ByteBuf toByteBuf(Buffer buf) {
        return toByteBuf(buf, ByteBufAllocator.DEFAULT);
    }

    /**
     * As {@link #toByteBuf(Buffer)}; {@code alloc} is what the view's {@link ByteBuf#alloc()} (used for its
     * copies) returns.
     *
     * @param buf a live zcbuf buffer; its reference goes to the view
     * @param alloc the allocator the view reports
     * @return the Netty view
     */
    public static ByteBuf toByteBuf(Buffer buf, ByteBufAllocator alloc) {
        Objects.requireNonNull(buf, "buf");
        Objects.requireNonNull(alloc, "alloc");
        int capacity = buf.capacity();
        ByteBuffer[] regions = buf.nioBuffers(0, capacity); // checks the count: a released buf throws here
        int reader = buf.readerIndex();
        int writer = buf.writerIndex();
        if (regions.length == 0) {
            buf.release();
            return Unpooled.EMPTY_BUFFER;
        }
        if (regions.length == 1) {
            ByteBuf view = new ZcbufByteBuf(alloc, buf::release, regions[0]);
            return view.setIndex(reader, writer);
        }
        // The caller's reference is shared by the components: the last one gone gives it back, so a component
        // Netty keeps (a slice it retains, a component it removes) keeps its memory valid.
        Shared shared = new Shared(buf, regions.length);
        CompositeByteBuf composite = new CompositeByteBuf(alloc, true, regions.length);
        for (ByteBuffer region : regions) {
            // All its bytes readable: a composite shows each component's readable bytes.
            composite.addComponent(true, new ZcbufByteBuf(alloc, shared, region).writerIndex(region.capacity()));
        }
        return composite.setIndex(reader, writer);
    }

    /** One zcbuf reference shared by the components of a composite view; released with the last of them. */
    private static final class Shared implements Runnable {
        private final Buffer buf;
        private final AtomicInteger left;

        Shared(Buffer buf, int pieces) {
            this.buf = buf;
            this.left = new AtomicInteger(pieces);
        }

        @Override
        public void run() {
            if (left.decrementAndGet() == 0) {
                buf.release();
            }
        }
    }

    /**
     * A zcbuf view of {@code buf}'s readable bytes, no copy: a {@link NativeBuffer} for a contiguous direct
     * buffer (pooled or not), a {@link CompositeBuffer} of one component per region for a composite one. The
     * view takes over the caller's Netty reference and gives it back once zcbuf lets go of the bytes (see
     * {@link BufferAllocator#wrap(ByteBuffer, Runnable)}: at the last release, or, after a zero-copy send,
     * once the kernel is done and the GC noticed). The Netty buffer's indices do not move. As with Netty's own
     * buffers, an NIO view taken from the zcbuf buffer and read after that release reads whatever Netty did with
     * the memory (a stale zcbuf {@link Buffer} itself throws).
     *
     * @param buf a direct Netty buffer (or a composite of direct ones); its reference goes to the view
     * @return a zcbuf buffer whose readable bytes are {@code buf}'s
     * @throws IllegalArgumentException for heap memory (nothing changes: the caller keeps its reference)
     * @throws io.netty.util.IllegalReferenceCountException when {@code buf} was released
     */
    public static Buffer fromByteBuf(ByteBuf buf) {
        Objects.requireNonNull(buf, "buf");
        int from = buf.readerIndex();
        int length = buf.readableBytes();
        ByteBuffer[] regions = buf.nioBuffers(from, length);
        for (ByteBuffer region : regions) {
            if (!region.isDirect()) {
                throw new IllegalArgumentException("only direct Netty buffers can be seen by zcbuf without copying ("
                        + buf.getClass().getSimpleName() + " is on the heap); copy it into a zcbuf buffer");
            }
        }
        BufferAllocator wraps = BufferAllocator.unpooled();
        if (regions.length == 1) {
            return wraps.wrap(regions[0], releaser(buf));
        }
        CompositeBuffer composite = wraps.composite();
        try {
            int at = from;
            for (ByteBuffer region : regions) {
                int n = region.remaining();
                if (n > 0) {
                    ByteBuf piece = buf.retainedSlice(at, n);
                    NativeBuffer wrapped;
                    try {
                        wrapped = wraps.wrap(region, releaser(piece));
                    } catch (RuntimeException e) {
                        piece.release();
                        throw e;
                    }
                    composite.addComponent(wrapped);
                }
                at += n;
            }
        } catch (RuntimeException e) {
            composite.release(); // the pieces' Netty references go back; buf keeps the caller's
            throw e;
        }
        buf.release(); // each piece holds its own reference now
        return composite;
    }

    /** Gives one Netty reference back; runs at most once, possibly on a cleaner thread, so it must not throw. */
    private static Runnable releaser(ByteBuf buf) {
        return () -> {
            try {
                buf.release();
            } catch (RuntimeException e) {
                // Released behind zcbuf's back (the caller gave its reference away and released it anyway):
                // nothing is left to give back.
            }
        };
    }
}
