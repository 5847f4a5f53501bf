package io.zcbuf.netty;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.ZeroCopyMode;
import io.zcbuf.ZeroCopyStats;
import java.io.ByteArrayOutputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ZeroCopyHandlerTest {
    private static final int ROUNDS = 24;

    /**
     * Netty buffers and zcbuf composites written alternately on one channel arrive in order, every byte; the
     * peer starts reading late, so the zcbuf sends stop on a full socket buffer and resume on Netty's writability
     * events. On epoll the composites go out with MSG_ZEROCOPY on the channel's own socket, their completions are
     * read without another write, and the event loop does not spin meanwhile.
     */
    @ParameterizedTest
    @EnumSource(Sockets.Transport.class)
    void zcbufSendsInOrderWithNettysWrites(Sockets.Transport t) throws Exception {
        if (!Sockets.usable(t)) {
            return;
        }
        long handlesBefore = BufferAllocator.liveNativeHandles();
        AtomicReference<ZeroCopyHandler> handler = new AtomicReference<>();
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        List<ChannelFuture> writes = new ArrayList<>();
        try (Sockets.Pair pair = new Sockets.Pair(t, ByteBufAllocator.DEFAULT, () -> {
            ZeroCopyHandler h = new ZeroCopyHandler(ZeroCopyMode.ALWAYS, 0);
            handler.set(h);
            return h;
        })) {
            pair.peer.setReceiveBufferSize(64 << 10);
            for (int i = 0; i < ROUNDS; i++) {
                byte[] small = Sockets.random(1 + i * 37, 100 + i);
                byte[] head = Sockets.random(512, 200 + i);
                byte[] body = Sockets.random(256 << 10, 300 + i);
                expected.write(small);
                expected.write(head);
                expected.write(body);
                writes.add(pair.channel.write(Unpooled.directBuffer().writeBytes(small)));
                CompositeBuffer msg = BufferAllocator.pooled()
                        .composite(BufferAllocator.pooled().copyOf(head), BufferAllocator.unpooled().copyOf(body));
                writes.add(pair.channel.write(msg));
            }
            pair.channel.flush();
            Thread.sleep(200); // the socket buffer fills: the zcbuf sends must resume on writability
            byte[] all = expected.toByteArray();
            CompletableFuture<byte[]> got = pair.read(all.length);
            Sockets.Pair.assertBytes(all, got);
            for (ChannelFuture f : writes) {
                assertTrue(f.await(10, TimeUnit.SECONDS) && f.isSuccess(), "write failed: " + f.cause());
            }

            ZeroCopyHandler h = handler.get();
            assertNull(h.fallbackReason(), "fell back to Netty's writev");
            if (t == Sockets.Transport.EPOLL) {
                // Completions are read on the event loop with no further write; meanwhile the loop stays idle.
                ThreadMXBean threads = ManagementFactory.getThreadMXBean();
                long loopThread = pair.channel.eventLoop().submit(() -> Thread.currentThread().getId()).get();
                long cpuBefore = threads.getThreadCpuTime(loopThread);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                ZeroCopyStats s = stats(pair, h);
                while (s.pinnedSends() > 0 && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                    s = stats(pair, h);
                }
                Thread.sleep(500);
                long cpuMillis = (threads.getThreadCpuTime(loopThread) - cpuBefore) / 1_000_000;
                s = stats(pair, h);
                System.out.println("epoll zero-copy: " + s + "; event loop CPU over the idle wait: " + cpuMillis + " ms");
                assertTrue(s.zeroCopySends() > 0, "no MSG_ZEROCOPY send: " + s);
                assertEquals(s.zeroCopySends(), s.completions(), "completions not read without a write: " + s);
                assertEquals(0, s.pinnedSends());
                assertTrue(cpuMillis < 200, "the event loop spun: " + cpuMillis + " ms CPU");
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (BufferAllocator.liveNativeHandles() != handlesBefore && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(handlesBefore, BufferAllocator.liveNativeHandles(), "regions or writers left behind");
    }

    /** The handler's stats are read on its event loop, as the handler's state is the loop's. */
    private static ZeroCopyStats stats(Sockets.Pair pair, ZeroCopyHandler h) throws Exception {
        return pair.channel.eventLoop().submit(h::stats).get();
    }
}
