package io.zcbuf;

import java.io.IOException;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.SocketOption;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.Set;

/**
 * A user's {@code SocketChannel} subclass that transforms what it writes (as
 * a TLS wrapper encrypts) before the raw socket under it sends it, and that
 * keeps the raw socket's descriptor number in a field named {@code fdVal}
 * (as the JDK's own channel does). Only its own {@code write} may send.
 */
final class ScramblingChannel extends SocketChannel {
    /** XORed into every byte written. */
    static final byte KEY = 0x5A;

    private final SocketChannel raw;
    /** The raw socket's descriptor: a field of the same name as the JDK's, which the native side reads. */
    @SuppressWarnings("unused")
    private final int fdVal;

    ScramblingChannel(SocketChannel raw, int rawFd) {
        super(raw.provider());
        this.raw = raw;
        this.fdVal = rawFd;
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long n = 0;
        for (int i = offset; i < offset + length; i++) {
            n += write(srcs[i]);
        }
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        ByteBuffer scrambled = ByteBuffer.allocate(src.remaining());
        while (src.hasRemaining()) {
            scrambled.put((byte) (src.get() ^ KEY));
        }
        scrambled.flip();
        int n = scrambled.remaining();
        while (scrambled.hasRemaining()) {
            raw.write(scrambled);
        }
        return n;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return raw.read(dst);
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        return raw.read(dsts, offset, length);
    }

    @Override
    public SocketChannel bind(SocketAddress local) throws IOException {
        raw.bind(local);
        return this;
    }

    @Override
    public <T> SocketChannel setOption(SocketOption<T> name, T value) throws IOException {
        raw.setOption(name, value);
        return this;
    }

    @Override
    public <T> T getOption(SocketOption<T> name) throws IOException {
        return raw.getOption(name);
    }

    @Override
    public Set<SocketOption<?>> supportedOptions() {
        return raw.supportedOptions();
    }

    @Override
    public SocketChannel shutdownInput() throws IOException {
        raw.shutdownInput();
        return this;
    }

    @Override
    public SocketChannel shutdownOutput() throws IOException {
        raw.shutdownOutput();
        return this;
    }

    @Override
    public Socket socket() {
        return raw.socket();
    }

    @Override
    public boolean isConnected() {
        return raw.isConnected();
    }

    @Override
    public boolean isConnectionPending() {
        return raw.isConnectionPending();
    }

    @Override
    public boolean connect(SocketAddress remote) throws IOException {
        return raw.connect(remote);
    }

    @Override
    public boolean finishConnect() throws IOException {
        return raw.finishConnect();
    }

    @Override
    public SocketAddress getRemoteAddress() throws IOException {
        return raw.getRemoteAddress();
    }

    @Override
    public SocketAddress getLocalAddress() throws IOException {
        return raw.getLocalAddress();
    }

    @Override
    protected void implCloseSelectableChannel() throws IOException {
        raw.close();
    }

    @Override
    protected void implConfigureBlocking(boolean block) throws IOException {
        raw.configureBlocking(block);
    }
}
