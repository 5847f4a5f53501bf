package io.zcbuf.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** {@code BufferAllocator.wrap(ByteBuffer, Runnable)}, the hook zcbuf-netty's Netty-to-zcbuf direction rests on. */
class WrapOnReleaseTest {
    @Test
    void runsOnceWhenTheLastReferenceGoes() {
        AtomicInteger runs = new AtomicInteger();
        ByteBuffer direct = ByteBuffer.allocateDirect(64);
        direct.putLong(0, 42).position(8);
        NativeBuffer wrapped = BufferAllocator.unpooled().wrap(direct, runs::incrementAndGet);
        assertEquals(56, wrapped.readableBytes(), "position to limit");
        Buffer slice = wrapped.retainedSlice(0, 8);
        CompositeBuffer composite = BufferAllocator.pooled().composite(wrapped); // takes wrapped's reference
        composite.release();
        assertEquals(0, runs.get(), "a retained slice still holds the memory");
        slice.release();
        assertEquals(1, runs.get());
        assertThrows(io.zcbuf.IllegalReferenceCountException.class, slice::release);
        assertEquals(1, runs.get(), "an over-release does not run it again");
    }

    @Test
    void heapBuffersAreRefusedWithoutRunningIt() {
        AtomicInteger runs = new AtomicInteger();
        assertThrows(IllegalArgumentException.class,
                () -> BufferAllocator.unpooled().wrap(ByteBuffer.allocate(8), runs::incrementAndGet));
        assertThrows(NullPointerException.class, () -> BufferAllocator.unpooled().wrap(ByteBuffer.allocateDirect(8), null));
        assertEquals(0, runs.get());
    }
}
