package io.zcbuf.examples;

import io.zcbuf.BufferAllocator;
import io.zcbuf.CompositeBuffer;
import io.zcbuf.NativeBuffer;
import io.zcbuf.ZeroCopyStats;
import io.zcbuf.ZeroCopyWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
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
import java.util.stream.Stream;

/**
 * A small HTTP/1.1 file server on plain {@code java.nio} that sends every
 * response without copying it in user space: the header is written into a
 * pooled {@link NativeBuffer}, the file is mapped with
 * {@link BufferAllocator#mapFile}, both become one {@link CompositeBuffer},
 * and a per-connection {@link ZeroCopyWriter} sends it in one gather write
 * ({@code MSG_ZEROCOPY} where it pays).
 *
 * <p>It answers {@code GET /<name>} for regular files under the root
 * (subdirectories included, no {@code ..}, no way out of the root through a
 * symbolic link), with 404 for missing files, 400 for malformed requests, 405
 * for other methods and keep-alive as the request asks. One blocking
 * {@link SocketChannel} per connection, each on a thread of a bounded pool;
 * connections idle between requests for longer than the idle timeout are
 * closed.
 *
 * <pre>{@code
 * try (FileServer server = new FileServer(Path.of("www"))) {
 *     server.start(8080);
 *     ...
 * }
 * }</pre>
 */
public final class FileServer implements AutoCloseable {
    /** Files larger than this are mapped and sent in several pieces (a buffer holds at most 2^31 - 1 bytes). */
    static final long CHUNK = 1L << 30;

    private static final int MAX_HEAD = 16 * 1024;
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
    private final Path realRoot;
    private final Consumer<? super ConnectionReport> reports;
    private final int maxConnections;
    private final long idleTimeoutMillis;
    private final BufferAllocator alloc = BufferAllocator.pooled();
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
        try {
            this.realRoot = this.root.toRealPath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot serve " + root, e);
        }
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

    /** A response status that ends request handling early. */
    private static final class HttpError extends Exception {
        private static final long serialVersionUID = 1L;
        final int status;
        final String reason;

        HttpError(int status, String reason) {
            super(status + " " + reason, null, false, false);
            this.status = status;
            this.reason = reason;
        }
    }

    /** A parsed request head. */
    private record Request(String method, String target, boolean keepAlive, long contentLength) {}

    private final class Connection implements Runnable {
        private final SocketChannel ch;
        private final ByteBuffer in = ByteBuffer.allocate(MAX_HEAD);
        /** {@code System.nanoTime()} when the connection began waiting for a request; 0 while busy. */
        volatile long idleSince = System.nanoTime();
        private int requests;

        Connection(SocketChannel ch) {
            this.ch = ch;
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
            long drained = 0;
            in.clear();
            while (drained < MAX_LINGER_BYTES && ch.read(in) >= 0) {
                drained += in.position();
                in.clear();
            }
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
                Request request;
                try {
                    int headLength = readHead();
                    idleSince = 0;
                    if (headLength < 0) {
                        return; // the client closed between requests
                    }
                    request = parse(headLength);
                    consume(headLength);
                } catch (HttpError e) {
                    requests++;
                    served.incrementAndGet();
                    sendError(writer, e, false, false);
                    return; // after a malformed request the stream cannot be trusted
                }
                discardBody(request.contentLength());
                requests++;
                served.incrementAndGet();
                boolean keepAlive = request.keepAlive() && !closed;
                try {
                    if (!request.method().equals("GET")) {
                        throw new HttpError(405, "Method Not Allowed");
                    }
                    sendFile(writer, resolve(request.target()), keepAlive);
                } catch (HttpError e) {
                    // The request was framed correctly: the connection goes on if asked to.
                    sendError(writer, e, keepAlive, request.method().equals("HEAD"));
                }
                if (!keepAlive) {
                    return;
                }
            }
        }

        /** @return the length of the head including its blank line, or -1 at a clean end of stream */
        private int readHead() throws IOException, HttpError {
            int scanned = 0;
            for (;;) {
                // Ignore empty lines before a request line (RFC 9112, section 2.2).
                int skip = 0;
                while (skip + 1 < in.position() && in.get(skip) == '\r' && in.get(skip + 1) == '\n') {
                    skip += 2;
                }
                if (skip > 0) {
                    consume(skip);
                    scanned = 0;
                }
                int end = indexOfBlankLine(Math.max(0, scanned - 3), in.position());
                if (end >= 0) {
                    return end + 4;
                }
                scanned = in.position();
                if (!in.hasRemaining()) {
                    throw new HttpError(431, "Request Header Fields Too Large");
                }
                if (ch.read(in) < 0) {
                    if (in.position() == 0) {
                        return -1;
                    }
                    throw new IOException("end of stream inside a request head");
                }
                idleSince = 0;
            }
        }

        private int indexOfBlankLine(int from, int to) {
            for (int i = from; i + 3 < to; i++) {
                if (in.get(i) == '\r' && in.get(i + 1) == '\n' && in.get(i + 2) == '\r' && in.get(i + 3) == '\n') {
                    return i;
                }
            }
            return -1;
        }

        /** Drops the first {@code n} buffered bytes. */
        private void consume(int n) {
            in.flip();
            in.position(n);
            in.compact();
        }

        private void discardBody(long length) throws IOException {
            while (length > 0) {
                if (in.position() == 0 && ch.read(in) < 0) {
                    throw new IOException("end of stream inside a request body");
                }
                int n = (int) Math.min(length, in.position());
                consume(n);
                length -= n;
            }
        }

        private Request parse(int headLength) throws HttpError {
            String head = new String(in.array(), 0, headLength - 4, StandardCharsets.ISO_8859_1);
            String[] lines = head.split("\r\n", -1);
            String[] parts = lines[0].split(" ", -1);
            if (parts.length != 3 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new HttpError(400, "Bad Request");
            }
            String method = parts[0];
            String version = parts[2];
            for (int i = 0; i < method.length(); i++) {
                if (!isTokenChar(method.charAt(i))) {
                    throw new HttpError(400, "Bad Request");
                }
            }
            boolean http11 = version.equals("HTTP/1.1");
            if (!http11 && !version.equals("HTTP/1.0")) {
                throw new HttpError(400, "Bad Request");
            }
            boolean closeAsked = false;
            boolean keepAliveAsked = false;
            boolean host = false;
            long contentLength = -1;
            for (int i = 1; i < lines.length; i++) {
                String line = lines[i];
                int colon = line.indexOf(':');
                if (colon <= 0) {
                    throw new HttpError(400, "Bad Request");
                }
                String name = line.substring(0, colon);
                for (int k = 0; k < name.length(); k++) {
                    if (!isTokenChar(name.charAt(k))) {
                        throw new HttpError(400, "Bad Request"); // also no space before the colon
                    }
                }
                String value = line.substring(colon + 1).strip();
                switch (name.toLowerCase(Locale.ROOT)) {
                    case "host" -> {
                        if (host) {
                            throw new HttpError(400, "Bad Request");
                        }
                        host = true;
                    }
                    case "connection" -> {
                        for (String option : value.split(",")) {
                            String o = option.strip().toLowerCase(Locale.ROOT);
                            closeAsked |= o.equals("close");
                            keepAliveAsked |= o.equals("keep-alive");
                        }
                    }
                    case "content-length" -> {
                        long n = parseLength(value);
                        if (contentLength >= 0 && contentLength != n) {
                            throw new HttpError(400, "Bad Request");
                        }
                        contentLength = n;
                    }
                    case "transfer-encoding" -> throw new HttpError(400, "Bad Request"); // no request bodies here
                    default -> {}
                }
            }
            if (http11 && !host) {
                throw new HttpError(400, "Bad Request");
            }
            // HTTP/1.1 keeps the connection unless asked to close; 1.0 closes unless asked to keep it.
            boolean keepAlive = !closeAsked && (http11 || keepAliveAsked);
            return new Request(method, parts[1], keepAlive, Math.max(0, contentLength));
        }

        private static long parseLength(String value) throws HttpError {
            if (value.isEmpty() || value.length() > 18) {
                throw new HttpError(400, "Bad Request");
            }
            for (int i = 0; i < value.length(); i++) {
                if (value.charAt(i) < '0' || value.charAt(i) > '9') {
                    throw new HttpError(400, "Bad Request");
                }
            }
            return Long.parseLong(value);
        }

        private static boolean isTokenChar(char c) {
            return c > ' ' && c < 127 && "\"(),/:;<=>?@[\\]{}".indexOf(c) < 0;
        }

        /** @return the regular file under the root that {@code target} names */
        private Path resolve(String target) throws HttpError {
            if (!target.startsWith("/")) {
                throw new HttpError(400, "Bad Request");
            }
            int end = target.length();
            int q = target.indexOf('?');
            if (q >= 0) {
                end = q;
            }
            String path = percentDecode(target.substring(1, end));
            List<String> names = new ArrayList<>();
            for (String segment : path.split("/", -1)) {
                if (segment.equals("..") || segment.indexOf('\0') >= 0 || segment.indexOf('\\') >= 0) {
                    throw new HttpError(400, "Bad Request");
                }
                if (!segment.isEmpty() && !segment.equals(".")) {
                    names.add(segment);
                }
            }
            if (names.isEmpty()) {
                throw new HttpError(404, "Not Found");
            }
            Path file;
            try {
                file = root.resolve(String.join("/", names)).normalize();
            } catch (RuntimeException e) { // InvalidPathException
                throw new HttpError(400, "Bad Request");
            }
            if (!file.startsWith(root) || !Files.isRegularFile(file)) {
                throw new HttpError(404, "Not Found");
            }
            try {
                // No way out through a symbolic link either.
                if (!file.toRealPath().startsWith(realRoot)) {
                    throw new HttpError(404, "Not Found");
                }
            } catch (IOException e) {
                throw new HttpError(404, "Not Found");
            }
            return file;
        }

        private static String percentDecode(String s) throws HttpError {
            if (s.indexOf('%') < 0) {
                return s;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c != '%') {
                    out.write(c);
                    continue;
                }
                if (i + 2 >= s.length()) {
                    throw new HttpError(400, "Bad Request");
                }
                int hi = Character.digit(s.charAt(i + 1), 16);
                int lo = Character.digit(s.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    throw new HttpError(400, "Bad Request");
                }
                out.write(hi << 4 | lo);
                i += 2;
            }
            try {
                return StandardCharsets.UTF_8
                        .newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(out.toByteArray()))
                        .toString();
            } catch (CharacterCodingException e) {
                throw new HttpError(400, "Bad Request");
            }
        }

        private void sendFile(ZeroCopyWriter writer, Path file, boolean keepAlive) throws IOException, HttpError {
            long size;
            NativeBuffer first;
            try {
                size = Files.size(file);
                first = alloc.mapFile(file, 0, Math.min(size, CHUNK));
            } catch (NoSuchFileException e) {
                throw new HttpError(404, "Not Found");
            } catch (Exception e) { // the file changed under us, or cannot be read
                throw new HttpError(500, "Internal Server Error");
            }
            CompositeBuffer response;
            try {
                NativeBuffer header = header(200, "OK", size, "application/octet-stream", keepAlive, null);
                response = alloc.composite(header, first);
            } catch (RuntimeException e) {
                first.release();
                throw e;
            }
            writer.writeAndRelease(response);
            // Only files over CHUNK bytes go on here; each piece is mapped when its turn comes.
            for (long offset = CHUNK; offset < size; offset += CHUNK) {
                writer.writeAndRelease(alloc.mapFile(file, offset, Math.min(CHUNK, size - offset)));
            }
        }

        private void sendError(ZeroCopyWriter writer, HttpError e, boolean keepAlive, boolean head)
                throws IOException {
            byte[] body = (e.status + " " + e.reason + "\n").getBytes(StandardCharsets.US_ASCII);
            NativeBuffer response = header(
                    e.status, e.reason, body.length, "text/plain; charset=us-ascii", keepAlive,
                    e.status == 405 ? "Allow: GET\r\n" : null);
            if (!head) {
                // Fits: header() leaves room for a short body.
                response.writeBytes(body);
            }
            writer.writeAndRelease(response);
        }

        /** A response head in a pooled buffer, with {@code 64} spare bytes for a short error body. */
        private NativeBuffer header(
                int status, String reason, long length, String type, boolean keepAlive, String extra) {
            StringBuilder sb = new StringBuilder(160)
                    .append("HTTP/1.1 ").append(status).append(' ').append(reason).append("\r\n")
                    .append("Server: zcbuf-FileServer\r\n")
                    .append("Content-Length: ").append(length).append("\r\n")
                    .append("Content-Type: ").append(type).append("\r\n")
                    .append("Connection: ").append(keepAlive ? "keep-alive" : "close").append("\r\n");
            if (extra != null) {
                sb.append(extra);
            }
            sb.append("\r\n");
            NativeBuffer buf = alloc.allocate(sb.length() + 64);
            for (int i = 0; i < sb.length(); i++) {
                buf.writeByte(sb.charAt(i));
            }
            return buf;
        }
    }

    /**
     * Serves a directory until interrupted (Ctrl-C).
     *
     * @param args the root directory (default {@code .}) and the port (default 8080)
     * @throws Exception when the server cannot start
     */
    public static void main(String[] args) throws Exception {
        if (args.length > 2 || args.length > 0 && (args[0].equals("-h") || args[0].equals("--help"))) {
            System.err.println("usage: FileServer [root-dir] [port]");
            System.exit(2);
        }
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 8080;
        FileServer server = new FileServer(root, FileServer::print);
        server.start(port);
        System.out.printf("zcbuf FileServer: serving %s on http://localhost:%d/%n", server.root(), server.port());
        try (Stream<Path> files = Files.list(server.root())) {
            files.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).sorted().forEach(p -> {
                try {
                    System.out.printf("  /%s  (%d bytes)%n", server.root().relativize(p), Files.size(p));
                } catch (IOException e) {
                    System.out.printf("  /%s  (%s)%n", server.root().relativize(p), e);
                }
            });
        }
        System.out.println("Try: curl -s -o /dev/null -w '%{http_code} %{size_download}\\n' http://localhost:"
                + server.port() + "/<name>   (Ctrl-C stops)");
        Thread stopper = new Thread(() -> {
            server.close();
            System.out.println("closed; live native handles: " + BufferAllocator.liveNativeHandles());
        });
        Runtime.getRuntime().addShutdownHook(stopper);
        Thread.currentThread().join(); // until Ctrl-C
    }

    private static void print(ConnectionReport r) {
        ZeroCopyStats s = r.stats();
        StringBuilder sb = new StringBuilder()
                .append("connection ").append(r.remote()).append(": ").append(r.requests()).append(" request(s)");
        if (s != null) {
            sb.append(String.format(Locale.ROOT,
                    "; writer %s: sends %d (zero-copy %d), bytes %d (zero-copy %d), completions %d,"
                            + " copied share %.0f%%, AUTO: %s",
                    r.nativeWriter() ? "native" : "fallback", s.sends(), s.zeroCopySends(), s.bytes(),
                    s.zeroCopyBytes(), s.completions(), 100 * s.copiedShare(), s.autoDecision()));
        }
        if (r.error() != null) {
            sb.append("; ended by ").append(r.error());
        }
        System.out.println(sb);
    }
}
