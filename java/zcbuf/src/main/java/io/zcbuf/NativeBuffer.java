package io.zcbuf;

import java.nio.ByteBuffer;

/**
 * A buffer over one region of native memory: a heap or pooled allocation, a
 * wrapped direct {@code ByteBuffer}, or a mapped file. Bytes are read and
 * written through the region's direct {@code ByteBuffer} at
 * {@code offset + index}; nothing crosses JNI per access.
 *
 * <pre>{@code
 * NativeBuffer buf = BufferAllocator.unpooled().allocate(16);
 * buf.writeShort(0xCAFE);
 * Buffer view = buf.slice();        // shares buf's count
 * assert view.getUnsignedShort(0) == 0xCAFE;
 * buf.release();                     // view is gone with it
 * }</pre>
 */
public final class NativeBuffer extends Buffer {
    final Memory memory;
    /** Where this buffer's index 0 lies in the region. */
    final int offset;
    private final int capacity;
    private final ByteBuffer bytes;

    NativeBuffer(Memory memory, RefCount count, int offset, int capacity, int readerIndex, int writerIndex) {
        super(count, readerIndex, writerIndex);
        this.memory = memory;
        this.offset = offset;
        this.capacity = capacity;
        this.bytes = memory.view;
    }

    /** A new buffer of the first {@code capacity} bytes of {@code memory}, owning the one reference it starts with. */
    static NativeBuffer owning(Memory memory, int capacity, int writerIndex) {
        return new NativeBuffer(memory, RefCount.onMemory(memory), 0, capacity, 0, writerIndex);
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public boolean isReadOnly() {
        return memory.readOnly;
    }

    @Override
    byte _getByte(int index) {
        return bytes.get(offset + index);
    }

    @Override
    short _getShort(int index) {
        return bytes.getShort(offset + index);
    }

    @Override
    int _getInt(int index) {
        return bytes.getInt(offset + index);
    }

    @Override
    long _getLong(int index) {
        return bytes.getLong(offset + index);
    }

    @Override
    void _setByte(int index, byte value) {
        bytes.put(offset + index, value);
    }

    @Override
    void _setShort(int index, short value) {
        bytes.putShort(offset + index, value);
    }

    @Override
    void _setInt(int index, int value) {
        bytes.putInt(offset + index, value);
    }

    @Override
    void _setLong(int index, long value) {
        bytes.putLong(offset + index, value);
    }

    @Override
    void _getBytes(int index, byte[] dst, int dstOffset, int length) {
        bytes.get(offset + index, dst, dstOffset, length);
    }

    @Override
    void _getBytes(int index, ByteBuffer dst, int length) {
        dst.put(bytes.slice(offset + index, length));
    }

    @Override
    void _setBytes(int index, byte[] src, int srcOffset, int length) {
        bytes.put(offset + index, src, srcOffset, length);
    }

    @Override
    void _setBytes(int index, ByteBuffer src, int length) {
        int limit = src.limit();
        src.limit(src.position() + length);
        bytes.slice(offset + index, length).put(src);
        src.limit(limit);
    }

    @Override
    int _forEachByte(int index, int length, ByteProcessor p) {
        int start = offset + index;
        int at = visit(bytes, start, start + length, memory.mayFault, p);
        return at < 0 ? -1 : at - offset;
    }

    @Override
    Buffer _slice(int index, int length, RefCount count) {
        return new NativeBuffer(memory, count, offset + index, length, 0, length);
    }

    @Override
    RefCount retainedCount(int index, int length) {
        memory.retain();
        return RefCount.onMemory(memory);
    }

    @Override
    ByteBuffer[] _nioBuffers(int index, int length) {
        if (length == 0) {
            return new ByteBuffer[0]; // as regionCount says, and as a composite does
        }
        return new ByteBuffer[] {bytes.slice(offset + index, length)};
    }

    @Override
    int regionCount(int index, int length) {
        return length == 0 ? 0 : 1;
    }

    @Override
    int holdRegions(int index, int length, long[] handles, int[] offsets, int[] lengths, Memory[] held, int at) {
        if (length == 0) {
            return at;
        }
        memory.retain();
        held[at] = memory;
        handles[at] = memory.handle();
        offsets[at] = offset + index;
        lengths[at] = length;
        return at + 1;
    }

    @Override
    public String toString() {
        return "NativeBuffer(ridx: " + readerIndex + ", widx: " + writerIndex + ", cap: " + capacity + ", refCnt: "
                + refCnt() + (isReadOnly() ? ", read-only" : "") + ")";
    }
}
