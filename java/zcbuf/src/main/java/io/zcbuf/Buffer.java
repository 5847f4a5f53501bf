package io.zcbuf;

import java.nio.ByteBuffer;
import java.nio.ReadOnlyBufferException;
import java.nio.charset.Charset;
import java.util.Objects;

/**
 * Bytes in native memory, read and written from Java through direct
 * {@code ByteBuffer} views (no JNI call per byte), with Netty's vocabulary.
 *
 * <p><b>Indices.</b> {@code 0 <= readerIndex <= writerIndex <= capacity}.
 * Absolute {@code get*}/{@code set*} take an index and leave both indices
 * alone; relative {@code read*} consume at {@code readerIndex} and
 * {@code write*} append at {@code writerIndex}. Every multi-byte accessor
 * exists big-endian (the default) and little-endian ({@code *LE}). The
 * capacity is fixed: writing past it throws {@link IndexOutOfBoundsException}.
 *
 * <p><b>Lifetime.</b> A buffer starts with a count of 1. {@link #retain()}
 * adds one, {@link #release()} (or {@link #close()}) takes one; at zero the
 * memory goes back (to the pool, the OS, or the owner of a wrapped buffer)
 * unless a zero-copy send still pins it natively. One rule for derived views,
 * pooled or not: {@link #slice()} and {@link #duplicate()} share this
 * buffer's count; {@link #retainedSlice()} and {@link #retainedDuplicate()}
 * have their own count and hold one reference on the memory until it reaches
 * zero. Any use after the count reached zero throws
 * {@link IllegalReferenceCountException}, also on other threads once they
 * see the release; over-releasing ({@code release(n)} with {@code n} above
 * the count) throws it and leaves the count as it was.
 *
 * <p><b>NIO views.</b> {@link #nioBuffer()} and {@link #nioBuffers()} hand out
 * direct {@code ByteBuffer}s of the memory itself, which nothing can guard:
 * do not use them after the buffer's release. Such a stale view never
 * crashes the JVM, but <b>a stale view of pooled memory may read the bytes
 * of the block's next owner</b> (as in Netty); other memory reads as zeros.
 * A stale {@code Buffer} object, by contrast, always throws. While the
 * buffer lives, the views keep showing their bytes, also when a composite
 * takes the components they show out of itself (as its slices do).
 *
 * <p>Buffers are not safe for concurrent use of their indices; counting
 * ({@code retain}/{@code release}) is thread-safe.
 *
 * <pre>{@code
 * try (NativeBuffer buf = BufferAllocator.pooled().allocate(64)) {
 *     buf.writeInt(42).writeLongLE(7L);
 *     assert buf.readInt() == 42 && buf.getLongLE(4) == 7L;
 * }
 * }</pre>
 */
public abstract sealed class Buffer implements AutoCloseable permits NativeBuffer, CompositeBuffer {
    final RefCount refCount;
    int readerIndex;
    int writerIndex;

    Buffer(RefCount refCount, int readerIndex, int writerIndex) {
        this.refCount = refCount;
        this.readerIndex = readerIndex;
        this.writerIndex = writerIndex;
    }

    // ---- what each kind implements, without checks (callers check) ----

    abstract byte _getByte(int index);

    abstract short _getShort(int index);

    abstract int _getInt(int index);

    abstract long _getLong(int index);

    abstract void _setByte(int index, byte value);

    abstract void _setShort(int index, short value);

    abstract void _setInt(int index, int value);

    abstract void _setLong(int index, long value);

    abstract void _getBytes(int index, byte[] dst, int offset, int length);

    abstract void _getBytes(int index, ByteBuffer dst, int length);

    abstract void _setBytes(int index, byte[] src, int offset, int length);

    abstract void _setBytes(int index, ByteBuffer src, int length);

    /** Index of the first byte in {@code [index, index + length)} where {@code p} says stop, or -1. */
    abstract int _forEachByte(int index, int length, ByteProcessor p);

    /** A view of {@code [index, index + length)} counted by {@code count}. */
    abstract Buffer _slice(int index, int length, RefCount count);

    /** A new count holding one reference on the memory of {@code [index, index + length)}. */
    abstract RefCount retainedCount(int index, int length);

    abstract ByteBuffer[] _nioBuffers(int index, int length);

    /** NIO views are going to the user: a composite keeps what they show, as it does for its slices. */
    void nioViewsHandedOut() {}

    /** Number of native (handle, offset, length) pieces covering {@code [index, index + length)}. */
    abstract int regionCount(int index, int length);

    /**
     * Writes those pieces into the arrays from {@code at}, each with its region retained in {@code held} (the
     * caller releases them), and returns the next free slot. A region released already throws
     * {@link IllegalReferenceCountException} (the slots filled before it hold their regions): its block may
     * have a new owner, whose bytes must not go out as this buffer's.
     */
    abstract int holdRegions(int index, int length, long[] handles, int[] offsets, int[] lengths, Memory[] held,
            int at);

    /**
     * Visits the bytes at positions {@code [from, to)} of {@code view} in order and returns the position where
     * {@code proc} said stop, or -1. Memory that cannot fault is read eight bytes per (bounds-checked)
     * {@code getLong} and handed out from the register, which costs a quarter of a checked read per byte; the
     * bytes a stop leaves unvisited were inside the checked range, so reading them is harmless. Memory that
     * may fault (a mapped file that could be truncated, a wrapped buffer) is read byte by byte, so that only
     * bytes the processor reaches can raise the fault's error.
     */
    static int visit(ByteBuffer view, int from, int to, boolean mayFault, ByteProcessor proc) {
        int i = from;
        if (!mayFault) {
            for (int last = to - 8; i <= last; i += 8) {
                long w = view.getLong(i); // big-endian: the first byte is the high one
                if (!proc.process((byte) (w >>> 56))) {
                    return i;
                }
                if (!proc.process((byte) (w >>> 48))) {
                    return i + 1;
                }
                if (!proc.process((byte) (w >>> 40))) {
                    return i + 2;
                }
                if (!proc.process((byte) (w >>> 32))) {
                    return i + 3;
                }
                if (!proc.process((byte) (w >>> 24))) {
                    return i + 4;
                }
                if (!proc.process((byte) (w >>> 16))) {
                    return i + 5;
                }
                if (!proc.process((byte) (w >>> 8))) {
                    return i + 6;
                }
                if (!proc.process((byte) w)) {
                    return i + 7;
                }
            }
        }
        for (; i < to; i++) {
            if (!proc.process(view.get(i))) {
                return i;
            }
        }
        return -1;
    }

    // ---- size and indices ----

    /** @return the number of bytes this buffer can hold */
    public abstract int capacity();

    /** @return whether writes are refused (mapped files, read-only wraps) */
    public abstract boolean isReadOnly();

    /** @return the index of the next byte {@code read*} consumes */
    public final int readerIndex() {
        return readerIndex;
    }

    /**
     * @param index the new reader index, {@code 0 <= index <= writerIndex}
     * @return this
     */
    public final Buffer readerIndex(int index) {
        ensureAccessible();
        if (index < 0 || index > writerIndex) {
            throw new IndexOutOfBoundsException("readerIndex " + index + " outside [0, writerIndex " + writerIndex + "]");
        }
        readerIndex = index;
        return this;
    }

    /** @return the index where the next {@code write*} puts its bytes */
    public final int writerIndex() {
        return writerIndex;
    }

    /**
     * @param index the new writer index, {@code readerIndex <= index <= capacity}
     * @return this
     */
    public final Buffer writerIndex(int index) {
        ensureAccessible();
        if (index < readerIndex || index > capacity()) {
            throw new IndexOutOfBoundsException(
                    "writerIndex " + index + " outside [readerIndex " + readerIndex + ", capacity " + capacity() + "]");
        }
        writerIndex = index;
        return this;
    }

    /**
     * @param reader the new reader index
     * @param writer the new writer index
     * @return this
     */
    public final Buffer setIndex(int reader, int writer) {
        ensureAccessible();
        if (reader < 0 || reader > writer || writer > capacity()) {
            throw new IndexOutOfBoundsException(
                    "indices " + reader + ", " + writer + " not within 0 <= r <= w <= capacity " + capacity());
        }
        readerIndex = reader;
        writerIndex = writer;
        return this;
    }

    /** @return {@code writerIndex - readerIndex} */
    public final int readableBytes() {
        return writerIndex - readerIndex;
    }

    /** @return {@code capacity - writerIndex} */
    public final int writableBytes() {
        return capacity() - writerIndex;
    }

    /** @return whether there are bytes to read */
    public final boolean isReadable() {
        return writerIndex > readerIndex;
    }

    /** @return whether there is room to write */
    public final boolean isWritable() {
        return capacity() > writerIndex;
    }

    /**
     * Sets both indices to 0 (the bytes stay).
     *
     * @return this
     */
    public final Buffer clear() {
        ensureAccessible();
        readerIndex = 0;
        writerIndex = 0;
        return this;
    }

    /**
     * @param length bytes to skip
     * @return this
     */
    public final Buffer skipBytes(int length) {
        checkReadable(length);
        readerIndex += length;
        return this;
    }

    // ---- checks ----

    /** The count check of every access: a plain read, see {@link RefCount#live()}. */
    final void ensureAccessible() {
        if (!refCount.live()) {
            throw new IllegalReferenceCountException("buffer used after its count reached 0");
        }
    }

    final void checkIndex(int index, int length) {
        ensureAccessible();
        int capacity = capacity();
        if ((index | length | (index + length) | (capacity - (index + length))) < 0) {
            throw new IndexOutOfBoundsException(
                    "index " + index + ", length " + length + " out of bounds for capacity " + capacity);
        }
    }

    final void checkWritableIndex(int index, int length) {
        checkIndex(index, length);
        if (isReadOnly()) {
            throw new ReadOnlyBufferException();
        }
    }

    final int checkReadable(int length) {
        ensureAccessible();
        if (length < 0 || readerIndex > writerIndex - length) {
            throw new IndexOutOfBoundsException(
                    "reading " + length + " bytes at readerIndex " + readerIndex + " past writerIndex " + writerIndex);
        }
        return readerIndex;
    }

    final int checkWritable(int length) {
        ensureAccessible();
        if (length < 0 || writerIndex > capacity() - length) {
            throw new IndexOutOfBoundsException("writing " + length + " bytes at writerIndex " + writerIndex
                    + " past capacity " + capacity());
        }
        if (isReadOnly()) {
            throw new ReadOnlyBufferException();
        }
        return writerIndex;
    }

    private static void checkArray(int arrayLength, int offset, int length) {
        if ((offset | length | (offset + length) | (arrayLength - (offset + length))) < 0) {
            throw new IndexOutOfBoundsException(
                    "offset " + offset + ", length " + length + " out of bounds for an array of " + arrayLength);
        }
    }

    // ---- absolute reads ----

    /**
     * @param index where
     * @return the byte there
     */
    public final byte getByte(int index) {
        checkIndex(index, 1);
        return _getByte(index);
    }

    /**
     * @param index where
     * @return the byte there, 0..255
     */
    public final short getUnsignedByte(int index) {
        return (short) (getByte(index) & 0xff);
    }

    /**
     * @param index where
     * @return whether the byte there is not 0
     */
    public final boolean getBoolean(int index) {
        return getByte(index) != 0;
    }

    /**
     * @param index where
     * @return the big-endian short there
     */
    public final short getShort(int index) {
        checkIndex(index, 2);
        return _getShort(index);
    }

    /**
     * @param index where
     * @return the little-endian short there
     */
    public final short getShortLE(int index) {
        return Short.reverseBytes(getShort(index));
    }

    /**
     * @param index where
     * @return the big-endian unsigned short there
     */
    public final int getUnsignedShort(int index) {
        return getShort(index) & 0xffff;
    }

    /**
     * @param index where
     * @return the little-endian unsigned short there
     */
    public final int getUnsignedShortLE(int index) {
        return getShortLE(index) & 0xffff;
    }

    /**
     * @param index where
     * @return the big-endian char there
     */
    public final char getChar(int index) {
        return (char) getShort(index);
    }

    /**
     * @param index where
     * @return the little-endian char there
     */
    public final char getCharLE(int index) {
        return (char) getShortLE(index);
    }

    /**
     * @param index where
     * @return the big-endian int there
     */
    public final int getInt(int index) {
        checkIndex(index, 4);
        return _getInt(index);
    }

    /**
     * @param index where
     * @return the little-endian int there
     */
    public final int getIntLE(int index) {
        return Integer.reverseBytes(getInt(index));
    }

    /**
     * @param index where
     * @return the big-endian unsigned int there
     */
    public final long getUnsignedInt(int index) {
        return getInt(index) & 0xffffffffL;
    }

    /**
     * @param index where
     * @return the little-endian unsigned int there
     */
    public final long getUnsignedIntLE(int index) {
        return getIntLE(index) & 0xffffffffL;
    }

    /**
     * @param index where
     * @return the big-endian long there
     */
    public final long getLong(int index) {
        checkIndex(index, 8);
        return _getLong(index);
    }

    /**
     * @param index where
     * @return the little-endian long there
     */
    public final long getLongLE(int index) {
        return Long.reverseBytes(getLong(index));
    }

    /**
     * @param index where
     * @return the big-endian float there
     */
    public final float getFloat(int index) {
        return Float.intBitsToFloat(getInt(index));
    }

    /**
     * @param index where
     * @return the little-endian float there
     */
    public final float getFloatLE(int index) {
        return Float.intBitsToFloat(getIntLE(index));
    }

    /**
     * @param index where
     * @return the big-endian double there
     */
    public final double getDouble(int index) {
        return Double.longBitsToDouble(getLong(index));
    }

    /**
     * @param index where
     * @return the little-endian double there
     */
    public final double getDoubleLE(int index) {
        return Double.longBitsToDouble(getLongLE(index));
    }

    // ---- absolute writes ----

    /**
     * @param index where
     * @param value its low 8 bits are written
     * @return this
     */
    public final Buffer setByte(int index, int value) {
        checkWritableIndex(index, 1);
        _setByte(index, (byte) value);
        return this;
    }

    /**
     * @param index where
     * @param value written as 1 or 0
     * @return this
     */
    public final Buffer setBoolean(int index, boolean value) {
        return setByte(index, value ? 1 : 0);
    }

    /**
     * @param index where
     * @param value its low 16 bits, big-endian
     * @return this
     */
    public final Buffer setShort(int index, int value) {
        checkWritableIndex(index, 2);
        _setShort(index, (short) value);
        return this;
    }

    /**
     * @param index where
     * @param value its low 16 bits, little-endian
     * @return this
     */
    public final Buffer setShortLE(int index, int value) {
        return setShort(index, Short.reverseBytes((short) value));
    }

    /**
     * @param index where
     * @param value big-endian
     * @return this
     */
    public final Buffer setChar(int index, int value) {
        return setShort(index, value);
    }

    /**
     * @param index where
     * @param value little-endian
     * @return this
     */
    public final Buffer setCharLE(int index, int value) {
        return setShortLE(index, value);
    }

    /**
     * @param index where
     * @param value big-endian
     * @return this
     */
    public final Buffer setInt(int index, int value) {
        checkWritableIndex(index, 4);
        _setInt(index, value);
        return this;
    }

    /**
     * @param index where
     * @param value little-endian
     * @return this
     */
    public final Buffer setIntLE(int index, int value) {
        return setInt(index, Integer.reverseBytes(value));
    }

    /**
     * @param index where
     * @param value big-endian
     * @return this
     */
    public final Buffer setLong(int index, long value) {
        checkWritableIndex(index, 8);
        _setLong(index, value);
        return this;
    }

    /**
     * @param index where
     * @param value little-endian
     * @return this
     */
    public final Buffer setLongLE(int index, long value) {
        return setLong(index, Long.reverseBytes(value));
    }

    /**
     * @param index where
     * @param value big-endian
     * @return this
     */
    public final Buffer setFloat(int index, float value) {
        return setInt(index, Float.floatToRawIntBits(value));
    }

    /**
     * @param index where
     * @param value little-endian
     * @return this
     */
    public final Buffer setFloatLE(int index, float value) {
        return setIntLE(index, Float.floatToRawIntBits(value));
    }

    /**
     * @param index where
     * @param value big-endian
     * @return this
     */
    public final Buffer setDouble(int index, double value) {
        return setLong(index, Double.doubleToRawLongBits(value));
    }

    /**
     * @param index where
     * @param value little-endian
     * @return this
     */
    public final Buffer setDoubleLE(int index, double value) {
        return setLongLE(index, Double.doubleToRawLongBits(value));
    }

    // ---- relative reads ----

    /** @return the byte at readerIndex, which advances by 1 */
    public final byte readByte() {
        int i = checkReadable(1);
        readerIndex = i + 1;
        return _getByte(i);
    }

    /** @return the unsigned byte at readerIndex, which advances by 1 */
    public final short readUnsignedByte() {
        return (short) (readByte() & 0xff);
    }

    /** @return whether the byte at readerIndex is not 0; readerIndex advances by 1 */
    public final boolean readBoolean() {
        return readByte() != 0;
    }

    /** @return the big-endian short at readerIndex, which advances by 2 */
    public final short readShort() {
        int i = checkReadable(2);
        readerIndex = i + 2;
        return _getShort(i);
    }

    /** @return the little-endian short at readerIndex, which advances by 2 */
    public final short readShortLE() {
        return Short.reverseBytes(readShort());
    }

    /** @return the big-endian unsigned short at readerIndex, which advances by 2 */
    public final int readUnsignedShort() {
        return readShort() & 0xffff;
    }

    /** @return the little-endian unsigned short at readerIndex, which advances by 2 */
    public final int readUnsignedShortLE() {
        return readShortLE() & 0xffff;
    }

    /** @return the big-endian char at readerIndex, which advances by 2 */
    public final char readChar() {
        return (char) readShort();
    }

    /** @return the little-endian char at readerIndex, which advances by 2 */
    public final char readCharLE() {
        return (char) readShortLE();
    }

    /** @return the big-endian int at readerIndex, which advances by 4 */
    public final int readInt() {
        int i = checkReadable(4);
        readerIndex = i + 4;
        return _getInt(i);
    }

    /** @return the little-endian int at readerIndex, which advances by 4 */
    public final int readIntLE() {
        return Integer.reverseBytes(readInt());
    }

    /** @return the big-endian unsigned int at readerIndex, which advances by 4 */
    public final long readUnsignedInt() {
        return readInt() & 0xffffffffL;
    }

    /** @return the little-endian unsigned int at readerIndex, which advances by 4 */
    public final long readUnsignedIntLE() {
        return readIntLE() & 0xffffffffL;
    }

    /** @return the big-endian long at readerIndex, which advances by 8 */
    public final long readLong() {
        int i = checkReadable(8);
        readerIndex = i + 8;
        return _getLong(i);
    }

    /** @return the little-endian long at readerIndex, which advances by 8 */
    public final long readLongLE() {
        return Long.reverseBytes(readLong());
    }

    /** @return the big-endian float at readerIndex, which advances by 4 */
    public final float readFloat() {
        return Float.intBitsToFloat(readInt());
    }

    /** @return the little-endian float at readerIndex, which advances by 4 */
    public final float readFloatLE() {
        return Float.intBitsToFloat(readIntLE());
    }

    /** @return the big-endian double at readerIndex, which advances by 8 */
    public final double readDouble() {
        return Double.longBitsToDouble(readLong());
    }

    /** @return the little-endian double at readerIndex, which advances by 8 */
    public final double readDoubleLE() {
        return Double.longBitsToDouble(readLongLE());
    }

    // ---- relative writes ----

    /**
     * @param value its low 8 bits go at writerIndex, which advances by 1
     * @return this
     */
    public final Buffer writeByte(int value) {
        int i = checkWritable(1);
        _setByte(i, (byte) value);
        writerIndex = i + 1;
        return this;
    }

    /**
     * @param value written as 1 or 0
     * @return this
     */
    public final Buffer writeBoolean(boolean value) {
        return writeByte(value ? 1 : 0);
    }

    /**
     * @param value its low 16 bits, big-endian
     * @return this
     */
    public final Buffer writeShort(int value) {
        int i = checkWritable(2);
        _setShort(i, (short) value);
        writerIndex = i + 2;
        return this;
    }

    /**
     * @param value its low 16 bits, little-endian
     * @return this
     */
    public final Buffer writeShortLE(int value) {
        return writeShort(Short.reverseBytes((short) value));
    }

    /**
     * @param value big-endian
     * @return this
     */
    public final Buffer writeChar(int value) {
        return writeShort(value);
    }

    /**
     * @param value little-endian
     * @return this
     */
    public final Buffer writeCharLE(int value) {
        return writeShortLE(value);
    }

    /**
     * @param value big-endian
     * @return this
     */
    public final Buffer writeInt(int value) {
        int i = checkWritable(4);
        _setInt(i, value);
        writerIndex = i + 4;
        return this;
    }

    /**
     * @param value little-endian
     * @return this
     */
    public final Buffer writeIntLE(int value) {
        return writeInt(Integer.reverseBytes(value));
    }

    /**
     * @param value big-endian
     * @return this
     */
    public final Buffer writeLong(long value) {
        int i = checkWritable(8);
        _setLong(i, value);
        writerIndex = i + 8;
        return this;
    }

    /**
     * @param value little-endian
     * @return this
     */
    public final Buffer writeLongLE(long value) {
        return writeLong(Long.reverseBytes(value));
    }

    /**
     * @param value big-endian
     * @return this
     */
    public final Buffer writeFloat(float value) {
        return writeInt(Float.floatToRawIntBits(value));
    }

    /**
     * @param value little-endian
     * @return this
     */
    public final Buffer writeFloatLE(float value) {
        return writeIntLE(Float.floatToRawIntBits(value));
    }

    /**
     * @param value big-endian
     * @return this
     */
    public final Buffer writeDouble(double value) {
        return writeLong(Double.doubleToRawLongBits(value));
    }

    /**
     * @param value little-endian
     * @return this
     */
    public final Buffer writeDoubleLE(double value) {
        return writeLongLE(Double.doubleToRawLongBits(value));
    }

    // ---- bulk transfer ----

    /**
     * Copies {@code dst.length} bytes from {@code index} into {@code dst}.
     *
     * @param index the first byte's index in this buffer
     * @param dst where the bytes go
     * @return this
     */
    public final Buffer getBytes(int index, byte[] dst) {
        return getBytes(index, dst, 0, Objects.requireNonNull(dst, "dst").length);
    }

    /**
     * Copies {@code length} bytes from {@code index} into {@code dst[offset..]}.
     *
     * @param index the first byte's index in this buffer
     * @param dst where the bytes go
     * @param offset the first array element copied
     * @param length how many bytes
     * @return this
     */
    public final Buffer getBytes(int index, byte[] dst, int offset, int length) {
        Objects.requireNonNull(dst, "dst");
        checkIndex(index, length);
        checkArray(dst.length, offset, length);
        _getBytes(index, dst, offset, length);
        return this;
    }

    /**
     * Copies {@code dst.remaining()} bytes from {@code index} into {@code dst}, advancing its position.
     *
     * @param index the first byte's index in this buffer
     * @param dst where the bytes go
     * @return this
     */
    public final Buffer getBytes(int index, ByteBuffer dst) {
        Objects.requireNonNull(dst, "dst");
        int length = dst.remaining();
        checkIndex(index, length);
        _getBytes(index, dst, length);
        return this;
    }

    /**
     * Copies all of {@code src} to {@code index}.
     *
     * @param index the first byte's index in this buffer
     * @param src where the bytes come from
     * @return this
     */
    public final Buffer setBytes(int index, byte[] src) {
        return setBytes(index, src, 0, Objects.requireNonNull(src, "src").length);
    }

    /**
     * Copies {@code src[offset..offset+length]} to {@code index}.
     *
     * @param index the first byte's index in this buffer
     * @param src where the bytes come from
     * @param offset the first array element copied
     * @param length how many bytes
     * @return this
     */
    public final Buffer setBytes(int index, byte[] src, int offset, int length) {
        Objects.requireNonNull(src, "src");
        checkWritableIndex(index, length);
        checkArray(src.length, offset, length);
        _setBytes(index, src, offset, length);
        return this;
    }

    /**
     * Copies {@code src.remaining()} bytes to {@code index}, advancing its position.
     *
     * @param index the first byte's index in this buffer
     * @param src where the bytes come from
     * @return this
     */
    public final Buffer setBytes(int index, ByteBuffer src) {
        Objects.requireNonNull(src, "src");
        int length = src.remaining();
        checkWritableIndex(index, length);
        _setBytes(index, src, length);
        return this;
    }

    /**
     * Fills {@code dst} from readerIndex, which advances.
     *
     * @param dst where the bytes go
     * @return this
     */
    public final Buffer readBytes(byte[] dst) {
        return readBytes(dst, 0, Objects.requireNonNull(dst, "dst").length);
    }

    /**
     * Copies {@code length} bytes from readerIndex into {@code dst[offset..]}.
     *
     * @param dst where the bytes go
     * @param offset the first array element copied
     * @param length how many bytes
     * @return this
     */
    public final Buffer readBytes(byte[] dst, int offset, int length) {
        Objects.requireNonNull(dst, "dst");
        checkArray(dst.length, offset, length);
        int i = checkReadable(length);
        _getBytes(i, dst, offset, length);
        readerIndex = i + length;
        return this;
    }

    /**
     * Copies {@code dst.remaining()} bytes from readerIndex into {@code dst}.
     *
     * @param dst where the bytes go
     * @return this
     */
    public final Buffer readBytes(ByteBuffer dst) {
        Objects.requireNonNull(dst, "dst");
        int length = dst.remaining();
        int i = checkReadable(length);
        _getBytes(i, dst, length);
        readerIndex = i + length;
        return this;
    }

    /**
     * Appends all of {@code src}.
     *
     * @param src where the bytes come from
     * @return this
     */
    public final Buffer writeBytes(byte[] src) {
        return writeBytes(src, 0, Objects.requireNonNull(src, "src").length);
    }

    /**
     * Appends {@code src[offset..offset+length]}.
     *
     * @param src where the bytes come from
     * @param offset the first array element copied
     * @param length how many bytes
     * @return this
     */
    public final Buffer writeBytes(byte[] src, int offset, int length) {
        Objects.requireNonNull(src, "src");
        checkArray(src.length, offset, length);
        int i = checkWritable(length);
        _setBytes(i, src, offset, length);
        writerIndex = i + length;
        return this;
    }

    /**
     * Appends {@code src.remaining()} bytes of {@code src}, advancing its position.
     *
     * @param src where the bytes come from
     * @return this
     */
    public final Buffer writeBytes(ByteBuffer src) {
        Objects.requireNonNull(src, "src");
        int length = src.remaining();
        int i = checkWritable(length);
        _setBytes(i, src, length);
        writerIndex = i + length;
        return this;
    }

    /**
     * Appends {@code src}'s readable bytes and advances its readerIndex past them.
     *
     * @param src where the bytes come from
     * @return this
     */
    public final Buffer writeBytes(Buffer src) {
        Objects.requireNonNull(src, "src");
        int length = src.readableBytes();
        int from = src.checkReadable(length);
        int i = checkWritable(length);
        for (ByteBuffer piece : src._nioBuffers(from, length)) {
            int n = piece.remaining();
            _setBytes(i, piece, n);
            i += n;
        }
        writerIndex = i;
        src.readerIndex = from + length;
        return this;
    }

    /** @return the readable bytes, copied into a new array (indices unchanged) */
    public final byte[] toByteArray() {
        ensureAccessible();
        byte[] bytes = new byte[readableBytes()];
        _getBytes(readerIndex, bytes, 0, bytes.length);
        return bytes;
    }

    /**
     * @param charset how to decode
     * @return the readable bytes decoded
     */
    public final String toString(Charset charset) {
        return new String(toByteArray(), Objects.requireNonNull(charset, "charset"));
    }

    // ---- search ----

    /**
     * @param fromIndex first index searched (inclusive)
     * @param toIndex end of the search (exclusive), {@code >= fromIndex}
     * @param value the byte looked for
     * @return the first index of {@code value} in the range, or -1
     */
    public final int indexOf(int fromIndex, int toIndex, byte value) {
        if (fromIndex > toIndex) {
            throw new IndexOutOfBoundsException("fromIndex " + fromIndex + " > toIndex " + toIndex);
        }
        checkIndex(fromIndex, toIndex - fromIndex);
        return _forEachByte(fromIndex, toIndex - fromIndex, b -> b != value);
    }

    /**
     * @param p visitor of the readable bytes
     * @return index where it stopped, or -1
     */
    public final int forEachByte(ByteProcessor p) {
        return forEachByte(readerIndex, readableBytes(), p);
    }

    /**
     * @param index first byte
     * @param length bytes
     * @param p visitor
     * @return index where it stopped, or -1
     */
    public final int forEachByte(int index, int length, ByteProcessor p) {
        Objects.requireNonNull(p, "processor");
        checkIndex(index, length);
        return _forEachByte(index, length, p);
    }

    // ---- views ----

    /** @return a view of the readable bytes that shares this buffer's count */
    public final Buffer slice() {
        return slice(readerIndex, readableBytes());
    }

    /**
     * @param index start
     * @param length bytes
     * @return a view sharing this buffer's count
     */
    public final Buffer slice(int index, int length) {
        checkIndex(index, length);
        return _slice(index, length, refCount);
    }

    /** @return a view of the whole capacity with this buffer's indices, sharing its count */
    public final Buffer duplicate() {
        checkIndex(0, capacity());
        Buffer dup = _slice(0, capacity(), refCount);
        dup.readerIndex = readerIndex;
        dup.writerIndex = writerIndex;
        return dup;
    }

    /** @return a view of the readable bytes with its own count, holding one reference on the memory */
    public final Buffer retainedSlice() {
        return retainedSlice(readerIndex, readableBytes());
    }

    /**
     * @param index start
     * @param length bytes
     * @return a view with its own count, holding one reference
     */
    public final Buffer retainedSlice(int index, int length) {
        checkIndex(index, length);
        return _slice(index, length, retainedCount(index, length));
    }

    /** @return a duplicate with its own count, holding one reference on the memory */
    public final Buffer retainedDuplicate() {
        checkIndex(0, capacity());
        Buffer dup = _slice(0, capacity(), retainedCount(0, capacity()));
        dup.readerIndex = readerIndex;
        dup.writerIndex = writerIndex;
        return dup;
    }

    /** @return the number of ByteBuffers {@link #nioBuffers()} returns */
    public final int nioBufferCount() {
        ensureAccessible();
        return regionCount(readerIndex, readableBytes());
    }

    /** @return direct views of the readable bytes, one per component, no copy */
    public final ByteBuffer[] nioBuffers() {
        return nioBuffers(readerIndex, readableBytes());
    }

    /**
     * @param index start
     * @param length bytes
     * @return direct views, one per component, no copy
     */
    public final ByteBuffer[] nioBuffers(int index, int length) {
        checkIndex(index, length);
        nioViewsHandedOut();
        return _nioBuffers(index, length);
    }

    /** @return one view of the readable bytes (a copy when they span several components) */
    public final ByteBuffer nioBuffer() {
        return nioBuffer(readerIndex, readableBytes());
    }

    /**
     * @param index start
     * @param length bytes
     * @return one view (a copy when it spans components)
     */
    public final ByteBuffer nioBuffer(int index, int length) {
        ByteBuffer[] pieces = nioBuffers(index, length);
        if (pieces.length == 1) {
            return pieces[0];
        }
        ByteBuffer copy = ByteBuffer.allocateDirect(length);
        for (ByteBuffer piece : pieces) {
            copy.put(piece);
        }
        return copy.flip();
    }

    // ---- reference counting ----

    /** @return the count this buffer shares with its non-retained views */
    public final int refCnt() {
        return refCount.get();
    }

    /**
     * Adds one to the count.
     *
     * @return this
     */
    public final Buffer retain() {
        refCount.retain(1);
        return this;
    }

    /**
     * @param increment added to the count
     * @return this
     */
    public final Buffer retain(int increment) {
        refCount.retain(increment);
        return this;
    }

    /**
     * @return whether the count reached zero and the memory was let go
     * @throws IllegalReferenceCountException when the count is zero already
     */
    public final boolean release() {
        return refCount.release(1);
    }

    /**
     * Takes {@code decrement} from the count atomically, or nothing: asking
     * for more than the count holds throws and leaves the count as it was,
     * so releases by correct code on other threads go on undisturbed.
     *
     * @param decrement taken from the count, {@code > 0}
     * @return whether it reached zero
     * @throws IllegalReferenceCountException when {@code decrement} is more than the count
     * @throws IllegalArgumentException when {@code decrement <= 0}
     */
    public final boolean release(int decrement) {
        return refCount.release(decrement);
    }

    /** Same as {@link #release()}, for try-with-resources. */
    @Override
    public final void close() {
        release();
    }
}
