package io.zcbuf;

import java.io.IOException;
import java.net.SocketAddress;
import java.net.SocketOption;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.channels.spi.SelectorProvider;
import java.util.Set;

/**
 * A socket descriptor the caller owns (a Netty native channel's, a server's own), carried to the native writer
 * in the shape it opens on: a {@code SocketChannel} whose descriptor is in a field named {@code fdVal}, as the
 * JDK's own has. Only {@link ZeroCopyWriter#openDescriptor} makes one, so a user's or library's
 * {@code SocketChannel} subclass that happens to have such a field is never trusted (its own {@code write} must
 * run). Nothing here reads or writes the socket: every I/O method refuses, and the writer never falls back to it.
 */
final class DescriptorChannel extends SocketChannel {
    /** Read by name by the JNI bridge, as {@code sun.nio.ch.SocketChannelImpl.fdVal}. */
    @SuppressWarnings("unused")
    private final int fdVal;

    DescriptorChannel(int fd) {
        super(SelectorProvider.provider());
        this.fdVal = fd;
        try {
            // The owner's event loop waits for room, not the writer: a write returns what a full socket took.
            configureBlocking(false);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // cannot happen: implConfigureBlocking does nothing
        }
    }

    private static UnsupportedOperationException refused() {
        return new UnsupportedOperationException("only carries a socket descriptor to a ZeroCopyWriter");
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

    /** Closes nothing: the descriptor is its owner's. */
    @Override
    protected void implCloseSelectableChannel() throws IOException {}

    @Override
    protected void implConfigureBlocking(boolean block) {}
}
