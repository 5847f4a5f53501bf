package io.zcbuf.netty;

import io.netty.buffer.AbstractReferenceCountedByteBuf;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.internal.PlatformDependent;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.ScatteringByteChannel;

/**
 * One contiguous region of zcbuf memory seen as a Netty {@link ByteBuf}, without copying: reads and writes go
 * to the zcbuf bytes through a direct view, and Netty's transports find them where they lie ({@link
 * #memoryAddress()} when Netty may use {@code Unsafe}, else {@link #nioBuffer}). The buffer holds a reference
 * on its zcbuf {@link io.zcbuf.Buffer} (or a share of one) and gives it back when its own (Netty) count reaches
 * zero; its slices and duplicates share that count, as Netty's derived buffers do.
 *
 * <p>Built by {@link NettyBuffers#toByteBuf(Buffer)}; the capacity is fixed.
 */
final class ZcbufByteBuf extends AbstractReferenceCountedByteBuf {
    private static final int COPY_CHUNK = 8192;

    private final ByteBufAllocator alloc;
    /** Gives the zcbuf reference back (or this piece's share of it). */
    private final Runnable release;
    /** Index 0 is this buffer's index 0; big-endian, as Netty's. */
    private final ByteBuffer view;
    private final long address;
    private final boolean readOnly;

    /**
     * @param release runs once when this buffer's count reaches zero: gives back the zcbuf reference that
     *     keeps {@code view}'s memory
     * @param view its bytes, {@code [0, capacity)}, a single region; this buffer takes it over
     */
    ZcbufByteBuf(ByteBufAllocator alloc, Runnable release, ByteBuffer view) {
        super(view.capacity());
        if (!view.isDirect()) {
            throw new IllegalArgumentException("zcbuf memory is always direct");
        }
        this.alloc = alloc;
        this.release = release;
        this.view = view.order(ByteOrder.BIG_ENDIAN).clear();
        this.readOnly = view.isReadOnly();
        // The address lets the native transports pass the bytes to writev without asking for a view each time.
        this.address = PlatformDependent.hasUnsafe() ? PlatformDependent.directBufferAddress(this.view) : 0;
    }

    @Override
    protected void deallocate() {
        release.run();
    }

    @Override
    public int capacity() {
        return view.capacity();
    }

    @Override
    public ByteBuf capacity(int newCapacity) {
        throw new UnsupportedOperationException("a ByteBuf over zcbuf memory has a fixed capacity (" + capacity() + ")");
    }

    @Override
    public ByteBufAllocator alloc() {
        return alloc;
    }

    @Override
    @SuppressWarnings("deprecation")
    public ByteOrder order() {
        return ByteOrder.BIG_ENDIAN;
    }

    @Override
    public ByteBuf unwrap() {
        return null;
    }

    @Override
    public boolean isDirect() {
        return true;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public boolean isContiguous() {
        return true;
    }

    @Override
    public boolean hasArray() {
        return false;
    }

    @Override
    public byte[] array() {
        throw new UnsupportedOperationException("zcbuf memory is native: no backing array");
    }

    @Override
    public int arrayOffset() {
        throw new UnsupportedOperationException("zcbuf memory is native: no backing array");
    }

    @Override
    public boolean hasMemoryAddress() {
        return address != 0;
    }

    @Override
    public long memoryAddress() {
        if (address == 0) {
            throw new UnsupportedOperationException("Netty cannot use Unsafe here: use nioBuffer()");
        }
        return address;
    }

    @Override
    public int nioBufferCount() {
        return 1;
    }

    @Override
    public ByteBuffer nioBuffer(int index, int length) {
        checkIndex(index, length);
        return view.slice(index, length);
    }

    @Override
    public ByteBuffer internalNioBuffer(int index, int length) {
        return nioBuffer(index, length);
    }

    @Override
    public ByteBuffer[] nioBuffers(int index, int length) {
        return new ByteBuffer[] {nioBuffer(index, length)};
    }

    @Override
    public ByteBuf copy(int index, int length) {
        checkIndex(index, length);
        ByteBuf copy = alloc.directBuffer(length);
        copy.writeBytes(view.slice(index, length));
        return copy;
    }

    // Single values: AbstractByteBuf checked the bounds and the count.

    @Override
    protected byte _getByte(int index) {
        return view.get(index);
    }

    @Override
    protected short _getShort(int index) {
        return view.getShort(index);
    }

    @Override
    protected short _getShortLE(int index) {
        return Short.reverseBytes(view.getShort(index));
    }

    @Override
    protected int _getUnsignedMedium(int index) {
        return (view.get(index) & 0xff) << 16 | (view.get(index + 1) & 0xff) << 8 | view.get(index + 2) & 0xff;
    }

    @Override
    protected int _getUnsignedMediumLE(int index) {
        return view.get(index) & 0xff | (view.get(index + 1) & 0xff) << 8 | (view.get(index + 2) & 0xff) << 16;
    }

    @Override
    protected int _getInt(int index) {
        return view.getInt(index);
    }

    @Override
    protected int _getIntLE(int index) {
        return Integer.reverseBytes(view.getInt(index));
    }

    @Override
    protected long _getLong(int index) {
        return view.getLong(index);
    }

    @Override
    protected long _getLongLE(int index) {
        return Long.reverseBytes(view.getLong(index));
    }

    @Override
    protected void _setByte(int index, int value) {
        view.put(index, (byte) value);
    }

    @Override
    protected void _setShort(int index, int value) {
        view.putShort(index, (short) value);
    }

    @Override
    protected void _setShortLE(int index, int value) {
        view.putShort(index, Short.reverseBytes((short) value));
    }

    @Override
    protected void _setMedium(int index, int value) {
        view.put(index, (byte) (value >>> 16));
        view.put(index + 1, (byte) (value >>> 8));
        view.put(index + 2, (byte) value);
    }

    @Override
    protected void _setMediumLE(int index, int value) {
        view.put(index, (byte) value);
        view.put(index + 1, (byte) (value >>> 8));
        view.put(index + 2, (byte) (value >>> 16));
    }

    @Override
    protected void _setInt(int index, int value) {
        view.putInt(index, value);
    }

    @Override
    protected void _setIntLE(int index, int value) {
        view.putInt(index, Integer.reverseBytes(value));
    }

    @Override
    protected void _setLong(int index, long value) {
        view.putLong(index, value);
    }

    @Override
    protected void _setLongLE(int index, long value) {
        view.putLong(index, Long.reverseBytes(value));
    }

    // Bulk transfers.

    @Override
    public ByteBuf getBytes(int index, ByteBuf dst, int dstIndex, int length) {
        checkIndex(index, length);
        if (dstIndex < 0 || dstIndex > dst.capacity() - length) {
            throw new IndexOutOfBoundsException("dstIndex " + dstIndex + " + " + length + " > " + dst.capacity());
        }
        if (dst.hasArray()) {
            view.get(index, dst.array(), dst.arrayOffset() + dstIndex, length);
        } else {
            dst.setBytes(dstIndex, view.slice(index, length));
        }
        return this;
    }

    @Override
    public ByteBuf getBytes(int index, byte[] dst, int dstIndex, int length) {
        checkIndex(index, length);
        view.get(index, dst, dstIndex, length);
        return this;
    }

    @Override
    public ByteBuf getBytes(int index, ByteBuffer dst) {
        checkIndex(index, dst.remaining());
        dst.put(view.slice(index, dst.remaining()));
        return this;
    }

    @Override
    public ByteBuf getBytes(int index, OutputStream out, int length) throws IOException {
        checkIndex(index, length);
        byte[] chunk = new byte[Math.min(length, COPY_CHUNK)];
        for (int done = 0; done < length; ) {
            int n = Math.min(chunk.length, length - done);
            view.get(index + done, chunk, 0, n);
            out.write(chunk, 0, n);
            done += n;
        }
        return this;
    }

    @Override
    public int getBytes(int index, GatheringByteChannel out, int length) throws IOException {
        checkIndex(index, length);
        return length == 0 ? 0 : out.write(view.slice(index, length));
    }

    @Override
    public int getBytes(int index, FileChannel out, long position, int length) throws IOException {
        checkIndex(index, length);
        return length == 0 ? 0 : out.write(view.slice(index, length), position);
    }

    @Override
    public ByteBuf setBytes(int index, ByteBuf src, int srcIndex, int length) {
        checkIndex(index, length);
        if (srcIndex < 0 || srcIndex > src.capacity() - length) {
            throw new IndexOutOfBoundsException("srcIndex " + srcIndex + " + " + length + " > " + src.capacity());
        }
        if (src.hasArray()) {
            setBytes(index, src.array(), src.arrayOffset() + srcIndex, length);
        } else if (src.nioBufferCount() > 0) {
            int at = index;
            for (ByteBuffer piece : src.nioBuffers(srcIndex, length)) {
                int n = piece.remaining();
                setBytes(at, piece);
                at += n;
            }
        } else {
            src.getBytes(srcIndex, this, index, length);
        }
        return this;
    }

    @Override
    public ByteBuf setBytes(int index, byte[] src, int srcIndex, int length) {
        checkIndex(index, length);
        view.put(index, src, srcIndex, length);
        return this;
    }

    @Override
    public ByteBuf setBytes(int index, ByteBuffer src) {
        int length = src.remaining();
        checkIndex(index, length);
        view.put(index, src, src.position(), length);
        src.position(src.limit());
        return this;
    }

    @Override
    public int setBytes(int index, InputStream in, int length) throws IOException {
        checkIndex(index, length);
        byte[] chunk = new byte[Math.min(Math.max(length, 1), COPY_CHUNK)];
        int done = 0;
        while (done < length) {
            int n = in.read(chunk, 0, Math.min(chunk.length, length - done));
            if (n < 0) {
                return done == 0 ? -1 : done;
            }
            view.put(index + done, chunk, 0, n);
            done += n;
        }
        return done;
    }

    @Override
    public int setBytes(int index, ScatteringByteChannel in, int length) throws IOException {
        checkIndex(index, length);
        try {
            return in.read(view.slice(index, length));
        } catch (ClosedChannelException e) {
            return -1; // as Netty's own buffers report it
        }
    }

    @Override
    public int setBytes(int index, FileChannel in, long position, int length) throws IOException {
        checkIndex(index, length);
        try {
            return in.read(view.slice(index, length), position);
        } catch (ClosedChannelException e) {
            return -1;
        }
    }

    @Override
    public String toString() {
        return "ZcbufByteBuf(ridx: " + readerIndex() + ", widx: " + writerIndex() + ", cap: " + capacity()
                + ", refCnt: " + refCnt() + (readOnly ? ", read-only" : "") + ")";
    }
}
