package io.zcbuf.examples;

import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyStats;
import io.zcbuf.ZeroCopyWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * A small HTTP/1.1 file server on plain {@code java.nio} that sends every
 * response without copying it in user space: the header is written into a
 * pooled {@link NativeBuffer}, the file becomes a file region
 * ({@link BufferAllocator#fileRegion}: opened, never mapped), both become one
 * {@link CompositeBuffer}, and a per-connection {@link ZeroCopyWriter} sends
 * the header (with {@code MSG_MORE}) and then the file with {@code sendfile},
 * straight from the page cache.
 *
 * <p>It answers {@code GET /<name>} for regular files under the root
 * (subdirectories included, no {@code ..}, no way out of the root through a
 * symbolic link), with 404 for missing files, 400 for malformed requests, 405
 * for other methods and keep-alive as the request asks. Connections idle
 * between requests (or stalled in a response) for longer than the idle
 * timeout are closed.
 *
 * <p>One thread runs every connection: a {@link Selector} event loop over
 * non-blocking channels, as nginx's worker does. A non-blocking
 * {@link ZeroCopyWriter#write} sends what the socket takes now and leaves the
 * response's {@code readerIndex} at the first byte that did not go; the loop
 * then waits for {@code OP_WRITE} and resumes there. Measured under {@code wrk}
 * on one core, a thread per connection spent a third of its time switching
 * threads (one switch per request and connection); a loop serves every ready
 * connection per wake-up. A server for several cores runs one loop per core.
 *
 * <p>One file per job: this one runs the loop and each connection's state;
 * {@link HttpRequestReader} parses requests, {@link PathResolver} maps targets
 * to files, {@link Responses} builds the answers, and {@link FileServerCli} is
 * the command line.
 *
 * <pre>{@code
 * try (FileServer server = new FileServer(Path.of("www"))) {
 *     server.start(8080);
 *     ...
 * }
 * }</pre>
 */
public final class FileServer implements AutoCloseable {
    private static final int MAX_LINGER_BYTES = 1 << 20;
    private static final int DEFAULT_MAX_CONNECTIONS = 1024;
    private static final long DEFAULT_IDLE_TIMEOUT_MILLIS = 60_000;

    /**
     * What a connection did, reported when it closes.
     *
     * @param remote the client
     * @param requests requests answered on it
     * @param nativeWriter whether the writer used the native sender (else the channel's gathering write)
     * @param stats the writer's counters, read just before it was closed
     * @param error why the connection ended abnormally, or null
     */
    public record ConnectionReport(
            SocketAddress remote, int requests, boolean nativeWriter, ZeroCopyStats stats, String error) {}

    private final Path root;
    private final PathResolver paths;
    private final Responses responses = new Responses(BufferAllocator.pooled());
    private final Consumer<? super ConnectionReport> reports;
    private final int maxConnections;
    private final long idleTimeoutNanos;
    /** Touched by the loop thread only. */
    private final ArrayList<Connection> connections = new ArrayList<>();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong served = new AtomicLong();

    private ServerSocketChannel server;
    private Selector selector;
    private Thread loop;
    private int port;
    private volatile boolean closed;

    /** @param root the directory served */
    public FileServer(Path root) {
        this(root, r -> {});
    }

    /**
     * @param root the directory served
     * @param reports called (on the server's thread) when a connection closes
     */
    public FileServer(Path root, Consumer<? super ConnectionReport> reports) {
        this(root, reports, DEFAULT_MAX_CONNECTIONS, DEFAULT_IDLE_TIMEOUT_MILLIS);
    }

    /**
     * @param root the directory served
     * @param reports called (on the server's thread) when a connection closes
     * @param maxConnections connections served at once; more are closed right after accept
     * @param idleTimeoutMillis how long a connection may wait for its next request, or make no progress
     */
    public FileServer(
            Path root, Consumer<? super ConnectionReport> reports, int maxConnections, long idleTimeoutMillis) {
        Objects.requireNonNull(root, "root");
        this.reports = Objects.requireNonNull(reports, "reports");
        if (maxConnections < 1 || idleTimeoutMillis < 1) {
            throw new IllegalArgumentException("maxConnections and idleTimeoutMillis must be positive");
        }
        this.root = root.toAbsolutePath().normalize();
        Path realRoot;
        try {
            realRoot = this.root.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serve " + root, e);
        }
        this.paths = new PathResolver(this.root, realRoot);
        if (!Files.isDirectory(realRoot)) {
            throw new IllegalArgumentException(root + " is not a directory");
        }
        this.maxConnections = maxConnections;
        this.idleTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(idleTimeoutMillis);
    }

    /**
     * Binds all interfaces on {@code port} and starts accepting.
     *
     * @param port a port, 0 for any free one
     * @return this
     * @throws IOException when the port cannot be bound
     */
    public synchronized FileServer start(int port) throws IOException {
        return start(new InetSocketAddress(port));
    }

    /**
     * @param address where to listen
     * @return this
     * @throws IOException when the address cannot be bound
     */
    public synchronized FileServer start(InetSocketAddress address) throws IOException {
        if (server != null || closed) {
            throw new IllegalStateException("a FileServer starts once");
        }
        ServerSocketChannel ch = ServerSocketChannel.open();
        Selector sel = null;
        try {
            ch.bind(address, 1024);
            ch.configureBlocking(false);
            sel = Selector.open();
            ch.register(sel, SelectionKey.OP_ACCEPT);
        } catch (IOException e) {
            ch.close();
            if (sel != null) {
                sel.close();
            }
            throw e;
        }
        server = ch;
        selector = sel;
        port = ((InetSocketAddress) ch.getLocalAddress()).getPort();
        loop = new Thread(this::run, "fileserver-loop");
        loop.setDaemon(true);
        loop.start();
        return this;
    }

    /** @return the port the server listens on */
    public synchronized int port() {
        if (server == null) {
            throw new IllegalStateException("not started");
        }
        return port;
    }

    /** @return the directory served */
    public Path root() {
        return root;
    }

    /** @return connections accepted so far */
    public long connectionsAccepted() {
        return accepted.get();
    }

    /** @return requests answered so far (every status) */
    public long requestsServed() {
        return served.get();
    }

    /**
     * Stops accepting, ends every connection (a response being sent is cut
     * short), waits for the server's thread, and so releases every buffer
     * the server made.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        if (loop == null) {
            return;
        }
        selector.wakeup();
        if (Thread.currentThread() == loop) {
            return; // called from a report, on the loop: it ends when this call returns
        }
        try {
            loop.join(15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The event loop: accepts, reads, writes, times out idle connections; closes everything at the end. */
    private void run() {
        long checkEvery = Math.max(TimeUnit.MILLISECONDS.toNanos(10), Math.min(idleTimeoutNanos / 4,
                TimeUnit.SECONDS.toNanos(1)));
        long nextCheck = System.nanoTime() + checkEvery;
        try {
            while (!closed) {
                selector.select(this::ready, Math.max(1, TimeUnit.NANOSECONDS.toMillis(checkEvery)));
                long now = System.nanoTime();
                if (now - nextCheck >= 0) {
                    nextCheck = now + checkEvery;
                    closeIdle(now);
                }
            }
        } catch (IOException | RuntimeException e) {
            if (!closed) {
                System.err.println("FileServer: the event loop failed: " + e);
            }
        } finally {
            for (Connection c : new ArrayList<>(connections)) {
                c.close(null);
            }
            try {
                server.close();
                selector.close();
            } catch (IOException ignored) {
                // Nothing left to do with them.
            }
        }
    }

    private void ready(SelectionKey key) {
        if (key.attachment() instanceof Connection c) {
            c.ready(key);
        } else {
            acceptAll();
        }
    }

    private void acceptAll() {
        for (;;) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (IOException e) {
                return; // e.g. too many open files: the next wake-up tries again
            }
            if (ch == null) {
                return;
            }
            accepted.incrementAndGet();
            if (connections.size() >= maxConnections) {
                closeQuietly(ch);
                continue;
            }
            Connection c;
            try {
                ch.configureBlocking(false);
                // As nginx's tcp_nodelay: a response's last small segment must not wait for the client's ACK of
                // the one before it (Nagle). The header still waits for the file's first bytes (MSG_MORE).
                ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                c = new Connection(ch);
            } catch (IOException | RuntimeException e) {
                closeQuietly(ch);
                continue;
            }
            connections.add(c);
            try {
                c.key = ch.register(selector, SelectionKey.OP_READ, c);
            } catch (IOException | RuntimeException e) {
                c.close(e.toString());
            }
        }
    }

    private void closeIdle(long now) {
        for (Connection c : new ArrayList<>(connections)) {
            if (now - c.lastProgress > idleTimeoutNanos) {
                c.close(null);
            }
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // Already gone.
        }
    }

    /** One connection's state: reading a request, sending a response, or draining before the close. */
    private final class Connection {
        private final SocketChannel ch;
        private final ZeroCopyWriter writer;
        private final HttpRequestReader reader;
        private final SocketAddress remote;
        SelectionKey key;
        /** {@code System.nanoTime()} when the connection last read or wrote a byte. */
        long lastProgress = System.nanoTime();
        private int requests;
        /** The response being sent, or null. */
        private Buffer sending;
        /** A file too large for one buffer: the file whose next piece starts at {@link #moreOffset}, or null. */
        private Path moreFile;
        private long moreOffset;
        private long moreSize;
        /** Whether the connection stays open after the response being sent. */
        private boolean keepAlive = true;
        /** Body bytes of the current request still to skip. */
        private long bodyLeft;
        /** Output shut: reading until the client closes, so that a reset cannot destroy the last response. */
        private boolean lingering;
        private long lingered;
        private boolean gone;

        Connection(SocketChannel ch) throws IOException {
            this.ch = ch;
            this.remote = ch.getRemoteAddress();
            this.reader = new HttpRequestReader(ch);
            this.writer = ZeroCopyWriter.open(ch);
        }

        void ready(SelectionKey k) {
            try {
                if (k.isWritable()) {
                    if (!flush()) {
                        return;
                    }
                }
                if (k.isValid() && k.isReadable()) {
                    readAndServe();
                }
            } catch (IOException | RuntimeException e) {
                close(closed ? null : e.toString());
            }
        }

        private void readAndServe() throws IOException {
            if (lingering) {
                linger();
                return;
            }
            int n = reader.fill();
            if (n < 0) {
                // The client closed; between requests that is the normal end.
                close(reader.buffered() == 0 && bodyLeft == 0 ? null : "end of stream inside a request");
                return;
            }
            if (n > 0) {
                lastProgress = System.nanoTime();
            }
            serveBuffered();
        }

        /** Answers the requests already buffered, in order, until one response has to wait for room. */
        private void serveBuffered() throws IOException {
            while (!gone && !lingering && sending == null) {
                if (bodyLeft > 0) {
                    bodyLeft -= reader.discard(bodyLeft);
                    if (bodyLeft > 0) {
                        return;
                    }
                }
                int headLength;
                HttpRequestReader.Request request;
                try {
                    headLength = reader.headLength();
                    if (headLength < 0) {
                        return; // wait for the rest of the head
                    }
                    request = reader.parse(headLength);
                    reader.consume(headLength);
                } catch (HttpError e) {
                    // After a malformed request the stream cannot be trusted: answer, then close.
                    respond(responses.error(e, false, false), false);
                    continue;
                }
                bodyLeft = request.contentLength();
                boolean keep = request.keepAlive() && !closed;
                Buffer response;
                try {
                    if (!request.method().equals("GET")) {
                        throw new HttpError(405, "Method Not Allowed");
                    }
                    Responses.FileResponse file =
                            responses.file(paths.resolve(request.target()), keep, writer.isNative());
                    moreFile = file.firstLength() < file.size() ? file.file() : null;
                    moreOffset = file.firstLength();
                    moreSize = file.size();
                    response = file.first();
                } catch (HttpError e) {
                    // The request was framed correctly: the connection goes on if asked to.
                    response = responses.error(e, keep, request.method().equals("HEAD"));
                }
                respond(response, keep);
            }
        }

        private void respond(Buffer response, boolean keep) throws IOException {
            requests++;
            served.incrementAndGet();
            sending = response;
            keepAlive = keep;
            flush();
        }

        /**
         * Sends what the socket takes of the response (and the pieces of a large file after it).
         *
         * @return whether the response went whole (reading goes on, or the close began)
         */
        private boolean flush() throws IOException {
            while (sending != null) {
                if (writer.write(sending) > 0) {
                    lastProgress = System.nanoTime();
                }
                if (sending.isReadable()) {
                    key.interestOps(SelectionKey.OP_WRITE); // resume here when there is room
                    return false;
                }
                sending.release();
                sending = null;
                if (moreFile != null && moreOffset < moreSize) {
                    long length = Math.min(Responses.CHUNK, moreSize - moreOffset);
                    sending = responses.piece(moreFile, moreOffset, length, writer.isNative());
                    moreOffset += length;
                }
            }
            moreFile = null;
            if (!keepAlive) {
                startLingering();
                return false;
            }
            key.interestOps(SelectionKey.OP_READ);
            // Pipelined requests may be buffered already: they get no readiness event of their own.
            serveBuffered();
            return true;
        }

        /**
         * Sends FIN, then reads until the client closes: closing with unread
         * bytes (say, a request pipelined after "Connection: close") would
         * send a reset that can destroy the response before the client reads it.
         * The idle timeout ends a client that neither closes nor stops sending.
         */
        private void startLingering() throws IOException {
            lingering = true;
            lastProgress = System.nanoTime();
            if (closed) {
                close(null);
                return;
            }
            ch.shutdownOutput();
            key.interestOps(SelectionKey.OP_READ);
            linger();
        }

        private void linger() throws IOException {
            for (;;) {
                int n = reader.drainNow();
                if (n < 0 || (lingered += Math.max(0, n)) >= MAX_LINGER_BYTES) {
                    close(null);
                    return;
                }
                if (n == 0) {
                    return;
                }
            }
        }

        /** Closes the connection, releases what it holds and reports it; once. */
        void close(String error) {
            if (gone) {
                return;
            }
            gone = true;
            connections.remove(this);
            if (sending != null) {
                sending.release();
                sending = null;
            }
            ZeroCopyStats stats = null;
            try {
                stats = writer.stats();
            } catch (RuntimeException e) {
                error = error != null ? error : e.toString();
            }
            // The writer before the channel, as it asks.
            writer.close();
            closeQuietly(ch);
            try {
                reports.accept(new ConnectionReport(remote, requests, writer.isNative(), stats, error));
            } catch (RuntimeException e) {
                // A report consumer's failure is not the connection's.
            }
        }
    }
}
