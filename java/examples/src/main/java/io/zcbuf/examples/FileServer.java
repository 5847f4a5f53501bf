package io.zcbuf.examples;

import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyStats;
import io.zcbuf.ZeroCopyWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * A small HTTP/1.1 file server on plain {@code java.nio} that sends every
 * response without copying it in user space: the header is written into a
 * pooled {@link NativeBuffer}, the file becomes a file region
 * ({@link BufferAllocator#fileRegion}: opened, never mapped), both become one
 * {@link CompositeBuffer}, and a per-connection {@link ZeroCopyWriter} sends
 * the header (under {@code TCP_CORK}) and then the file with {@code sendfile},
 * straight from the page cache.
 *
 * <p>It answers {@code GET /<name>} for regular files under the root
 * (subdirectories included, no {@code ..}, no way out of the root through a
 * symbolic link), with 404 for missing files, 400 for malformed requests, 405
 * for other methods and keep-alive as the request asks. One blocking
 * {@link SocketChannel} per connection, each on a thread of a bounded pool;
 * connections idle between requests for longer than the idle timeout are
 * closed.
 *
 * <p>One file per job: this one accepts connections, runs each on its
 * thread and closes idle ones; {@link HttpRequestReader} parses requests,
 * {@link PathResolver} maps targets to files, {@link Responses} sends the
 * answers, and {@link FileServerCli} is the command line.
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
    private static final int DEFAULT_MAX_CONNECTIONS = 64;
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
    private final long idleTimeoutMillis;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong served = new AtomicLong();

    private ServerSocketChannel server;
    private Thread acceptor;
    private ThreadPoolExecutor workers;
    private ScheduledExecutorService reaper;
    private volatile boolean closed;

    /** @param root the directory served */
    public FileServer(Path root) {
        this(root, r -> {});
    }

    /**
     * @param root the directory served
     * @param reports called (on the connection's thread) when a connection closes
     */
    public FileServer(Path root, Consumer<? super ConnectionReport> reports) {
        this(root, reports, DEFAULT_MAX_CONNECTIONS, DEFAULT_IDLE_TIMEOUT_MILLIS);
    }

    /**
     * @param root the directory served
     * @param reports called (on the connection's thread) when a connection closes
     * @param maxConnections connections served at once; more are closed right after accept
     * @param idleTimeoutMillis how long a connection may wait for its next request
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
        this.idleTimeoutMillis = idleTimeoutMillis;
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
        server = ServerSocketChannel.open();
        try {
            server.bind(address, 128);
        } catch (IOException e) {
            server.close();
            throw e;
        }
        AtomicInteger n = new AtomicInteger();
        workers = new ThreadPoolExecutor(0, maxConnections, 30, TimeUnit.SECONDS, new SynchronousQueue<>(), r -> {
            Thread t = new Thread(r, "fileserver-connection-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        reaper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "fileserver-idle-reaper");
            t.setDaemon(true);
            return t;
        });
        long period = Math.max(10, Math.min(1000, idleTimeoutMillis / 4));
        reaper.scheduleAtFixedRate(this::closeIdle, period, period, TimeUnit.MILLISECONDS);
        acceptor = new Thread(this::acceptLoop, "fileserver-acceptor");
        acceptor.setDaemon(true);
        acceptor.start();
        return this;
    }

    /** @return the port the server listens on */
    public synchronized int port() {
        if (server == null) {
            throw new IllegalStateException("not started");
        }
        try {
            return ((InetSocketAddress) server.getLocalAddress()).getPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
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
     * short), waits for the connection threads, and so releases every buffer
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
        if (server == null) {
            return;
        }
        try {
            server.close();
        } catch (IOException ignored) {
            // Nothing left to do with it.
        }
        reaper.shutdownNow();
        for (Connection c : connections) {
            c.shutdown();
        }
        workers.shutdown();
        try {
            acceptor.join(5000);
            if (!workers.awaitTermination(10, TimeUnit.SECONDS)) {
                // A thread still blocked somewhere: closing its channel is the last resort.
                for (Connection c : connections) {
                    c.closeChannel();
                }
                workers.awaitTermination(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                continue; // e.g. too many open files: try again
            }
            accepted.incrementAndGet();
            Connection c = new Connection(ch);
            connections.add(c);
            try {
                workers.execute(c);
            } catch (RejectedExecutionException full) {
                connections.remove(c);
                c.closeChannel();
                continue;
            }
            if (closed) {
                c.shutdown(); // close() may have run between add and execute
            }
        }
    }

    private void closeIdle() {
        long now = System.nanoTime();
        for (Connection c : connections) {
            if (c.idleSince != 0 && now - c.idleSince > TimeUnit.MILLISECONDS.toNanos(idleTimeoutMillis)) {
                c.shutdown();
            }
        }
    }

    private final class Connection implements Runnable {
        private final SocketChannel ch;
        /** {@code System.nanoTime()} when the connection began waiting for a request; 0 while busy. */
        volatile long idleSince = System.nanoTime();
        private final HttpRequestReader reader;
        private int requests;

        Connection(SocketChannel ch) {
            this.ch = ch;
            this.reader = new HttpRequestReader(ch, () -> idleSince = 0);
        }

        @Override
        public void run() {
            SocketAddress remote = null;
            String error = null;
            ZeroCopyStats stats = null;
            boolean nativeWriter = false;
            // Resources close in reverse order: the writer before the channel, as it asks.
            try (SocketChannel channel = ch; ZeroCopyWriter writer = ZeroCopyWriter.open(channel)) {
                remote = channel.getRemoteAddress();
                nativeWriter = writer.isNative();
                try {
                    serve(writer);
                    lingeringClose();
                } catch (IOException | RuntimeException e) {
                    if (!closed) {
                        error = e.toString();
                    }
                } finally {
                    stats = writer.stats();
                }
            } catch (IOException | RuntimeException e) {
                error = e.toString();
            } finally {
                connections.remove(this);
            }
            try {
                reports.accept(new ConnectionReport(remote, requests, nativeWriter, stats, error));
            } catch (RuntimeException e) {
                // A report consumer's failure is not the connection's.
            }
        }

        /**
         * Sends FIN, then reads until the client closes: closing with unread
         * bytes (say, a request pipelined after "Connection: close") would
         * send a reset that can destroy the response before the client reads it.
         * The idle reaper ends a client that neither closes nor stops sending.
         */
        private void lingeringClose() throws IOException {
            if (closed) {
                return;
            }
            ch.shutdownOutput();
            idleSince = System.nanoTime();
            reader.drain(MAX_LINGER_BYTES);
        }

        void shutdown() {
            try {
                // Wakes a blocked read (it sees end of stream) and a blocked send,
                // native or not: shutdown acts on the socket, not on one descriptor.
                ch.shutdownInput();
                ch.shutdownOutput();
            } catch (IOException e) {
                closeChannel();
            }
        }

        void closeChannel() {
            try {
                ch.close();
            } catch (IOException ignored) {
                // Already gone.
            }
        }

        private void serve(ZeroCopyWriter writer) throws IOException {
            while (!closed) {
                idleSince = System.nanoTime();
                HttpRequestReader.Request request;
                try {
                    int headLength = reader.readHead();
                    idleSince = 0;
                    if (headLength < 0) {
                        return; // the client closed between requests
                    }
                    request = reader.parse(headLength);
                    reader.consume(headLength);
                } catch (HttpError e) {
                    requests++;
                    served.incrementAndGet();
                    responses.sendError(writer, e, false, false);
                    return; // after a malformed request the stream cannot be trusted
                }
                reader.discardBody(request.contentLength());
                requests++;
                served.incrementAndGet();
                boolean keepAlive = request.keepAlive() && !closed;
                try {
                    if (!request.method().equals("GET")) {
                        throw new HttpError(405, "Method Not Allowed");
                    }
                    responses.sendFile(writer, paths.resolve(request.target()), keepAlive);
                } catch (HttpError e) {
                    // The request was framed correctly: the connection goes on if asked to.
                    responses.sendError(writer, e, keepAlive, request.method().equals("HEAD"));
                }
                if (!keepAlive) {
                    return;
                }
            }
        }
    }
}
