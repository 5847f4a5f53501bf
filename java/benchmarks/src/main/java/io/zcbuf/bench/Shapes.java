package io.zcbuf.bench;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;

import java.util.Arrays;

/**
 * The composite layouts of Netty's own CompositeByteBuf microbenchmarks, built the same way
 * for zcbuf and for Netty so both sides read exactly the same component lengths.
 *
 * <ul>
 *   <li>{@code SMALL}: 1..9-byte components, each preceded by an empty one, repeating every 45 bytes;</li>
 *   <li>{@code LARGE}: a 512-byte, an empty and a 1024-byte component, repeating every 1536 bytes.</li>
 * </ul>
 *
 * The pattern is cut at exactly {@code size} bytes (the last component is shortened), which is what
 * Netty's benchmarks get with {@code capacity(size)}. Every component is native (direct) memory
 * filled with zeros, and Netty's composite is created with {@code maxNumComponents =
 * Integer.MAX_VALUE}, so neither side ever consolidates.
 */
public enum Shapes {
    SMALL(new int[] {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 0}),
    LARGE(new int[] {512, 0, 1024});

    private final int[] pattern;

    Shapes(int[] pattern) {
        this.pattern = pattern;
    }

    /** Component lengths (empty ones included) adding up to exactly {@code size}. */
    public int[] chunkLengths(int size) {
        int[] out = new int[16];
        int n = 0;
        int total = 0;
        outer:
        while (true) {
            for (int len : pattern) {
                if (total == size) {
                    break outer;
                }
                int take = Math.min(len, size - total);
                if (n == out.length) {
                    out = Arrays.copyOf(out, n * 2);
                }
                out[n++] = take;
                total += take;
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** A zcbuf composite over unpooled native components, readable bytes [0, size). */
    public CompositeBuffer zcbuf(int size) {
        return zcbufComposite(chunkLengths(size));
    }

    /** A Netty composite over unpooled direct components, readable bytes [0, size). */
    public CompositeByteBuf netty(int size) {
        return nettyComposite(chunkLengths(size));
    }

    static CompositeBuffer zcbufComposite(int[] lengths) {
        BufferAllocator alloc = BufferAllocator.unpooled();
        CompositeBuffer composite = alloc.composite();
        for (int len : lengths) {
            NativeBuffer b = alloc.allocate(len);
            if (len > 0) {
                b.writeBytes(new byte[len]); // zeros, writerIndex = len
            }
            composite.addComponent(b); // takes b's reference
        }
        return composite;
    }

    static CompositeByteBuf nettyComposite(int[] lengths) {
        CompositeByteBuf composite = Unpooled.compositeBuffer(Integer.MAX_VALUE);
        for (int len : lengths) {
            ByteBuf b = Unpooled.directBuffer(len);
            b.writeZero(len);
            composite.addComponent(true, b); // takes b's reference
        }
        return composite;
    }

    static int[] repeat(int count, int length) {
        int[] out = new int[count];
        Arrays.fill(out, length);
        return out;
    }
}
