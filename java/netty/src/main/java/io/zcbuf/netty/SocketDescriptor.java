package io.zcbuf.netty;

import java.io.IOException;
import java.net.SocketAddress;
import java.net.SocketOption;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.channels.spi.SelectorProvider;
import java.util.Set;

/**
 * A Netty native channel's socket descriptor in the only shape {@link io.zcbuf.ZeroCopyWriter} opens on: a
 * {@code SocketChannel} with the descriptor in a field named {@code fdVal}, as the JDK's own has (the bridge
 * reads that field and duplicates the descriptor; nothing here reads or writes the socket). Every I/O method
 * refuses: the writer only takes the descriptor, and {@link ZeroCopyHandler} never lets the writer fall back to
 * the channel.
 */
final class SocketDescriptor extends SocketChannel {
    /** Read by name by the JNI bridge, as {@code sun.nio.ch.SocketChannelImpl.fdVal}. */
    @SuppressWarnings("unused")
    private final int fdVal;

    SocketDescriptor(int fd) {
        super(SelectorProvider.provider());
        this.fdVal = fd;
        try {
            // As Netty's socket is: the writer then returns what a full socket took (0 included) instead of
            // waiting for room, and Netty resumes the region on writability.
            configureBlocking(false);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // cannot happen: implConfigureBlocking does nothing
        }
    }

    private static UnsupportedOperationException refused() {
        return new UnsupportedOperationException("only carries a Netty channel's descriptor to a ZeroCopyWriter");
    }

    @Override
    public SocketChannel bind(SocketAddress local) {
        throw refused();
    }

    @Override
    public <T> SocketChannel setOption(SocketOption<T> name, T value) {
        throw refused();
    }

    @Override
    public <T> T getOption(SocketOption<T> name) {
        throw refused();
    }

    @Override
    public Set<SocketOption<?>> supportedOptions() {
        return Set.of();
    }

    @Override
    public SocketChannel shutdownInput() {
        throw refused();
    }

    @Override
    public SocketChannel shutdownOutput() {
        throw refused();
    }

    @Override
    public java.net.Socket socket() {
        throw refused();
    }

    @Override
    public boolean isConnected() {
        return true;
    }

    @Override
    public boolean isConnectionPending() {
        return false;
    }

    @Override
    public boolean connect(SocketAddress remote) {
        throw refused();
    }

    @Override
    public boolean finishConnect() {
        throw refused();
    }

    @Override
    public SocketAddress getRemoteAddress() {
        throw refused();
    }

    @Override
    public int read(ByteBuffer dst) {
        throw refused();
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) {
        throw refused();
    }

    @Override
    public int write(ByteBuffer src) {
        throw refused();
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) {
        throw refused();
    }

    @Override
    public SocketAddress getLocalAddress() {
        throw refused();
    }

    /** Closes nothing: the descriptor is Netty's. */
    @Override
    protected void implCloseSelectableChannel() throws IOException {}

    @Override
    protected void implConfigureBlocking(boolean block) {}
}
