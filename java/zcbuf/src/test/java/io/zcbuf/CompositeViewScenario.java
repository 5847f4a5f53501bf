package io.zcbuf;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Issue 10 class 2: views from a live composite's {@code nioBuffer()} and
 * {@code nioBuffers()} keep showing their bytes after the composite takes
 * the components out ({@code removeComponent}, {@code discardReadComponents},
 * {@code consolidate}), exactly as a {@code slice()} does, until the
 * composite itself is released.
 *
 * <p>Argument: {@code remove-mapped}, {@code discard-pooled} or {@code consolidate-pooled}.
 */
public final class CompositeViewScenario {
    private CompositeViewScenario() {}

    /**
     * @param args the case
     */
    public static void main(String[] args) {
        ChildJvm.guard(() -> run(args));
    }

    private static void run(String[] args) throws Exception {
        switch (args[0]) {
            case "remove-mapped" -> removeMapped();
            case "discard-pooled" -> takeOutPooled(false);
            case "consolidate-pooled" -> takeOutPooled(true);
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    private static void removeMapped() throws Exception {
        Path file = Files.createTempFile("zcbuf-view", ".bin");
        try {
            byte[] content = new byte[1 << 20];
            for (int i = 0; i < content.length; i++) {
                content[i] = (byte) (i * 31 + 7);
            }
            Files.write(file, content);
            for (int round = 0; round < 50; round++) {
                CompositeBuffer c = BufferAllocator.pooled().composite(
                        BufferAllocator.unpooled().mapFile(file), BufferAllocator.pooled().copyOf(new byte[100]));
                ByteBuffer[] views = c.nioBuffers();
                ByteBuffer one = c.nioBuffer(0, content.length);
                c.removeComponent(0); // the file's component goes; the views still show it
                System.gc();
                expect(content, views[0], "nioBuffers()[0] after removeComponent(0)");
                expect(content, one, "nioBuffer() after removeComponent(0)");
                if (c.capacity() != 100 || c.refCnt() != 1) {
                    throw new AssertionError("composite after removeComponent: " + c);
                }
                c.release();
            }
        } finally {
            Files.delete(file);
        }
        ChildJvm.ok("views of a removed mapped component still read the file's bytes");
    }

    private static void takeOutPooled(boolean consolidate) {
        byte[] mine = new byte[4000];
        Arrays.fill(mine, (byte) 0x11);
        byte[] theirs = new byte[4000];
        Arrays.fill(theirs, (byte) 0x77);
        for (int round = 0; round < 200; round++) {
            CompositeBuffer c = BufferAllocator.pooled().composite(
                    BufferAllocator.pooled().copyOf(mine), BufferAllocator.pooled().copyOf(mine));
            ByteBuffer[] views = c.nioBuffers();
            ByteBuffer one = c.nioBuffer(0, 4000);
            if (consolidate) {
                c.consolidate();
            } else {
                c.readerIndex(4000);
                c.discardReadComponents();
            }
            // The next owners of freed pool blocks of this class write their own bytes.
            NativeBuffer[] others = new NativeBuffer[8];
            for (int i = 0; i < others.length; i++) {
                others[i] = BufferAllocator.pooled().copyOf(theirs);
            }
            expect(mine, views[0], "nioBuffers()[0] after " + args(consolidate));
            expect(mine, one, "nioBuffer() after " + args(consolidate));
            for (NativeBuffer o : others) {
                o.release();
            }
            c.release();
        }
        ChildJvm.ok("views survive " + args(consolidate) + " without showing a new owner's bytes");
    }

    private static String args(boolean consolidate) {
        return consolidate ? "consolidate()" : "discardReadComponents()";
    }

    private static void expect(byte[] expected, ByteBuffer view, String what) {
        byte[] got = new byte[view.remaining()];
        view.duplicate().get(got);
        if (!Arrays.equals(expected, got)) {
            int i = Arrays.mismatch(expected, got);
            throw new AssertionError(what + ": byte " + i + " is " + (i < got.length ? got[i] : -1) + ", expected "
                    + (i < expected.length ? expected[i] : -1));
        }
    }
}
