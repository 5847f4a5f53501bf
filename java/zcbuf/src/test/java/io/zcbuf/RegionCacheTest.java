package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Released pool blocks are reused by the same thread without JNI, except those the writer saw. */
class RegionCacheTest {

    @Test
    void classesFollowTheNativePool() {
        assertEquals(0, RegionCache.classOf(0));
        assertEquals(0, RegionCache.classOf(256));
        assertEquals(1, RegionCache.classOf(257));
        assertEquals(8, RegionCache.classOf(65536));
        assertEquals(-1, RegionCache.classOf(65537));
        assertEquals(2, RegionCache.classOfBlock(1024));
        assertEquals(-1, RegionCache.classOfBlock(1000), "not a block size");
        assertEquals(-1, RegionCache.classOfBlock(1 << 20), "above the cached classes");
    }

    @Test
    void aReleasedBlockServesTheNextRequestOfItsClass() {
        long live = BufferAllocator.liveNativeHandles();
        NativeBuffer a = BufferAllocator.pooled().allocate(1000);
        long h = a.memory.handle();
        a.writeLong(0x0102030405060708L);
        assertTrue(a.release());
        assertEquals(live, BufferAllocator.liveNativeHandles(), "a cached block is not in use");
        NativeBuffer b = BufferAllocator.pooled().allocate(600); // same 1 KiB class
        assertEquals(h, b.memory.handle(), "the same native block, no JNI call");
        assertEquals(600, b.capacity(), "the capacity asked for, not the block's");
        assertEquals(1, b.refCnt());
        assertThrows(IllegalReferenceCountException.class, () -> a.getLong(0), "the old buffer stays dead");
        assertThrows(IndexOutOfBoundsException.class, () -> b.getByte(600));
        NativeBuffer c = BufferAllocator.pooled().allocate(5000); // another class: a new block
        assertNotEquals(h, c.memory.handle());
        c.release();
        b.release();
        assertEquals(live, BufferAllocator.liveNativeHandles());
    }

    @Test
    void aBlockTheWriterSawGoesBackThroughTheNativeSide() {
        NativeBuffer a = BufferAllocator.pooled().allocate(2000);
        long h = a.memory.handle();
        a.writerIndex(2000);
        // What ZeroCopyWriter.write does before its JNI call: a zero-copy send may pin the block now.
        Memory[] held = new Memory[1];
        a.holdRegions(0, 2000, new long[1], new int[1], new int[1], held, 0);
        held[0].exported();
        held[0].release();
        assertTrue(a.release());
        assertThrows(StaleHandleException.class, () -> Native.release(h), "freed natively, not cached");
        NativeBuffer b = BufferAllocator.pooled().allocate(2000);
        assertNotEquals(h, b.memory.handle());
        b.release();
    }

    @Test
    void aDeadThreadsBlocksGoBackToTheNativePool() throws Exception {
        long cachedBefore = RegionCache.cachedBlocks();
        Thread t = new Thread(() -> {
            for (int i = 0; i < 10; i++) {
                BufferAllocator.pooled().allocate(300 << (i % 5)).release();
            }
        });
        t.start();
        t.join();
        assertTrue(RegionCache.cachedBlocks() > cachedBefore, "the thread kept its released blocks");
        t = null;
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (RegionCache.cachedBlocks() > cachedBefore && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(cachedBefore, RegionCache.cachedBlocks(), "freed once the thread was gone");
    }
}
