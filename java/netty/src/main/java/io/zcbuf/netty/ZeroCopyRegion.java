package io.zcbuf.netty;

import io.netty.channel.FileRegion;
import io.netty.util.AbstractReferenceCounted;
import io.zcbuf.Buffer;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;

/**
 * A zcbuf buffer's readable bytes as a message in Netty's outbound queue: the transport calls {@link
 * #transferTo} when the bytes before it are out, and again after a full socket buffer; each call sends through
 * the channel's {@link io.zcbuf.ZeroCopyWriter}. Holds the buffer's reference; the writer's pins keep the memory
 * for the kernel after Netty releases the region.
 */
final class ZeroCopyRegion extends AbstractReferenceCounted implements FileRegion {
    private final ZeroCopyHandler handler;
    private final Buffer buf;
    private final long count;
    private long transferred;

    ZeroCopyRegion(ZeroCopyHandler handler, Buffer buf) {
        this.handler = handler;
        this.buf = buf;
        this.count = buf.readableBytes();
    }

    @Override
    public long position() {
        return 0;
    }

    @Override
    @Deprecated
    public long transfered() {
        return transferred;
    }

    @Override
    public long transferred() {
        return transferred;
    }

    @Override
    public long count() {
        return count;
    }

    @Override
    public long transferTo(WritableByteChannel target, long position) throws IOException {
        if (position != transferred) {
            throw new IOException("a zcbuf region resumes where it stopped (" + transferred + "), not at " + position);
        }
        if (transferred >= count) {
            return 0;
        }
        long n = handler.writer(target).write(buf); // moves buf's readerIndex past what went out
        transferred += n;
        if (n > 0) {
            handler.sent();
        }
        return n;
    }

    @Override
    public FileRegion retain() {
        super.retain();
        return this;
    }

    @Override
    public FileRegion retain(int increment) {
        super.retain(increment);
        return this;
    }

    @Override
    public FileRegion touch() {
        return this;
    }

    @Override
    public FileRegion touch(Object hint) {
        return this;
    }

    @Override
    protected void deallocate() {
        buf.release();
    }
}
