/**
 * Zero-copy buffers for JVM servers, over the zcbuf Rust core.
 *
 * <p>{@link io.zcbuf.BufferAllocator} makes buffers (pooled or plain native
 * memory, wraps of direct {@code ByteBuffer}s, mapped files);
 * {@link io.zcbuf.Buffer} reads and writes them through direct
 * {@code ByteBuffer} views with Netty's vocabulary;
 * {@link io.zcbuf.CompositeBuffer} joins many into one message without a
 * copy; {@link io.zcbuf.ZeroCopyWriter} sends it in one gather write, with
 * {@code MSG_ZEROCOPY} where it pays.
 *
 * <p><b>Misuse</b> gets a specific exception, never a JVM crash: a released,
 * over-released or stale {@code Buffer} throws
 * {@link io.zcbuf.IllegalReferenceCountException}; a forged or stale native
 * handle throws {@link io.zcbuf.StaleHandleException}. NIO views
 * ({@code nioBuffer()}, {@code nioBuffers()}) cannot be guarded that way, and
 * must not be used after their buffer's release: such a stale view never
 * crashes the JVM, but a view of <em>pooled</em> memory may show the bytes
 * of the block's next owner (as in Netty), and other memory reads as zeros.
 *
 * <pre>{@code
 * try (NativeBuffer buf = BufferAllocator.pooled().allocate(64)) {
 *     buf.writeInt(42);
 *     assert buf.readInt() == 42;
 * }
 * }</pre>
 */
package io.zcbuf;
