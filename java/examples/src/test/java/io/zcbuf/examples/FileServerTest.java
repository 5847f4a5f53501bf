package io.zcbuf.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcbuf.BufferAllocator;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileServerTest {
    @TempDir
    Path tmp;

    private Path root;
    private final Map<String, byte[]> files = new LinkedHashMap<>();
    private final Queue<FileServer.ConnectionReport> reports = new ConcurrentLinkedQueue<>();
    private long baseline;
    private FileServer server;
    private HttpClient client;

    @BeforeEach
    void start() throws IOException {
        root = Files.createDirectory(tmp.resolve("root"));
        Random random = new Random(20240611);
        put("empty.bin", new byte[0]);
        put("one.bin", new byte[] {42});
        put("hundred-k.bin", randomBytes(random, 100 * 1024));
        put("three-m.bin", randomBytes(random, 3 * 1024 * 1024));
        put("sub/nested.bin", randomBytes(random, 12_345));
        Files.writeString(tmp.resolve("secret.txt"), "outside the root");

        baseline = BufferAllocator.liveNativeHandles();
        server = new FileServer(root, reports::add).start(0);
        client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
    }

    @AfterEach
    void closeAndCheckNothingLeaked() {
        server.close();
        assertEquals(baseline, BufferAllocator.liveNativeHandles(),
                "native handles after the server closed (baseline " + baseline + ")");
        for (FileServer.ConnectionReport r : reports) {
            assertNotNull(r.stats(), r.toString());
        }
    }

    private void put(String name, byte[] content) throws IOException {
        Path p = root.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, content);
        files.put(name, content);
    }

    private static byte[] randomBytes(Random random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private HttpResponse<byte[]> get(String path) throws IOException, InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + server.port() + path))
                .timeout(Duration.ofSeconds(20))
                .GET()
                .build();
        return client.send(request, HttpResponse.BodyHandlers.ofByteArray());
    }

    private void assertServes(String name) throws IOException, InterruptedException {
        HttpResponse<byte[]> r = get("/" + name);
        byte[] expected = files.get(name);
        assertEquals(200, r.statusCode(), name);
        assertEquals(String.valueOf(expected.length), r.headers().firstValue("Content-Length").orElse(null), name);
        assertEquals("application/octet-stream", r.headers().firstValue("Content-Type").orElse(null), name);
        assertEquals("keep-alive", r.headers().firstValue("Connection").orElse(null), name);
        assertArrayEquals(expected, r.body(), name);
    }

    @Test
    void servesEverySizeByteForByteOnOneKeptAliveConnection() throws Exception {
        for (int round = 0; round < 3; round++) {
            for (String name : files.keySet()) {
                assertServes(name);
            }
        }
        assertEquals(1, server.connectionsAccepted(), "sequential requests of one client share one connection");
        assertEquals(3L * files.size(), server.requestsServed());
        server.close();
        assertEquals(1, reports.size());
        FileServer.ConnectionReport report = reports.peek();
        assertEquals(3 * files.size(), report.requests());
        assertNull(report.error(), report.error());
        long bodies = files.values().stream().mapToLong(b -> b.length).sum() * 3;
        assertTrue(report.stats().bytes() > bodies, report.stats().toString());
        assertTrue(report.stats().sends() > 0, report.stats().toString());
    }

    @Test
    void servesConcurrentClients() throws Exception {
        List<String> names = new ArrayList<>(files.keySet());
        int threads = 4;
        int perThread = 15;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                done.add(pool.submit(() -> {
                    Random random = new Random(seed);
                    for (int i = 0; i < perThread; i++) {
                        assertServes(names.get(random.nextInt(names.size())));
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals((long) threads * perThread, server.requestsServed());
        assertTrue(server.connectionsAccepted() <= threads, "connections: " + server.connectionsAccepted());
        server.close();
        assertEquals(threads * perThread, reports.stream().mapToInt(FileServer.ConnectionReport::requests).sum());
    }

    @Test
    void answers404ForWhatIsNotAFile() throws Exception {
        for (String path : List.of("/missing.bin", "/sub", "/sub/", "/", "/sub/missing", "/empty.bin/x")) {
            HttpResponse<byte[]> r = get(path);
            assertEquals(404, r.statusCode(), path);
            assertEquals("404 Not Found\n", new String(r.body(), StandardCharsets.US_ASCII), path);
        }
        assertServes("one.bin"); // the connection lives on after a 404
        assertEquals(1, server.connectionsAccepted());
    }

    @Test
    void servesEncodedAndNestedNames() throws Exception {
        assertServes("sub/nested.bin");
        HttpResponse<byte[]> r = get("/sub/%6Eested.bin?x=1");
        assertEquals(200, r.statusCode());
        assertArrayEquals(files.get("sub/nested.bin"), r.body());
    }

    @Test
    void rejectsPathTraversal() throws Exception {
        assertEquals(400, get("/%2e%2e/secret.txt").statusCode());
        assertEquals(400, get("/sub/%2E%2E/%2E%2E/secret.txt").statusCode());
        for (String target : List.of("/../secret.txt", "/sub/../../secret.txt", "/..", "/sub/..%2Fsecret.txt",
                "/%2e%2e%2fsecret.txt", "/..%5csecret.txt")) {
            try (RawConnection c = new RawConnection()) {
                c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
                Raw r = c.read();
                assertEquals(400, r.status, target);
                assertTrue(!new String(r.body, StandardCharsets.ISO_8859_1).contains("outside"), target);
            }
        }
    }

    @Test
    void symbolicLinksOutOfTheRootGet404AlsoWhenMadeAfterTheNameWasServed() throws Exception {
        Path outside = tmp.resolve("secret.txt");
        Files.createSymbolicLink(root.resolve("out.txt"), outside);
        Files.createSymbolicLink(root.resolve("outdir"), tmp);
        Files.createSymbolicLink(root.resolve("in.bin"), root.resolve("one.bin"));
        assertEquals(404, get("/out.txt").statusCode());
        assertEquals(404, get("/outdir/secret.txt").statusCode());
        HttpResponse<byte[]> in = get("/in.bin");
        assertEquals(200, in.statusCode());
        assertArrayEquals(files.get("one.bin"), in.body());

        // A name served once, then swapped for a link out of the root: the resolution is trusted for at most
        // PathResolver.VALID_NANOS, then the link is seen.
        assertServes("sub/nested.bin");
        Path sub = root.resolve("sub");
        Files.move(sub, tmp.resolve("sub-moved"));
        Files.createDirectory(tmp.resolve("evil"));
        Files.writeString(tmp.resolve("evil/nested.bin"), "outside the root");
        Files.createSymbolicLink(sub, tmp.resolve("evil"));
        Thread.sleep(TimeUnit.NANOSECONDS.toMillis(PathResolver.VALID_NANOS) + 100);
        HttpResponse<byte[]> r = get("/sub/nested.bin");
        assertEquals(404, r.statusCode());
        assertTrue(!new String(r.body(), StandardCharsets.ISO_8859_1).contains("outside"));
    }

    @Test
    void honoursConnectionClose() throws Exception {
        try (RawConnection c = new RawConnection()) {
            c.send("GET /one.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            Raw r = c.read();
            assertEquals(200, r.status);
            assertEquals("close", r.headers.get("connection"));
            assertArrayEquals(new byte[] {42}, r.body);
            assertEquals(-1, c.in.read(), "the server closes after the response");
        }
        try (RawConnection c = new RawConnection()) {
            c.send("GET /one.bin HTTP/1.0\r\n\r\n");
            Raw r = c.read();
            assertEquals(200, r.status);
            assertEquals("close", r.headers.get("connection"));
            assertEquals(-1, c.in.read(), "HTTP/1.0 closes unless asked to keep alive");
        }
        try (RawConnection c = new RawConnection()) {
            c.send("GET /one.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            assertEquals("keep-alive", c.read().headers.get("connection"));
            c.send("GET /empty.bin HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
            Raw r = c.read();
            assertEquals(200, r.status);
            assertEquals(0, r.body.length);
        }
    }

    @Test
    void answersPipelinedRequestsInOrder() throws Exception {
        try (RawConnection c = new RawConnection()) {
            c.send("GET /hundred-k.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "\r\nGET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /three-m.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            assertArrayEquals(files.get("hundred-k.bin"), c.read().body);
            assertArrayEquals(files.get("one.bin"), c.read().body);
            Raw last = c.read();
            assertEquals("close", last.headers.get("connection"));
            assertArrayEquals(files.get("three-m.bin"), last.body);
            assertEquals(-1, c.in.read());
        }
        assertEquals(1, server.connectionsAccepted());
    }

    @Test
    void answers405ForOtherMethodsAndKeepsTheConnection() throws Exception {
        try (RawConnection c = new RawConnection()) {
            c.send("POST /one.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
            Raw r = c.read();
            assertEquals(405, r.status);
            assertEquals("GET", r.headers.get("allow"));
            c.send("GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            assertArrayEquals(new byte[] {42}, c.read().body);
            c.send("HEAD /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            assertEquals(405, c.read(false).status); // no body after the head of a HEAD answer
            c.send("GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Raw after = c.read();
            assertEquals(200, after.status);
            assertArrayEquals(new byte[] {42}, after.body);
        }
        HttpResponse<String> r = client.send(
                HttpRequest.newBuilder(URI.create("http://localhost:" + server.port() + "/one.bin"))
                        .DELETE()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(405, r.statusCode());
    }

    @Test
    void answers400ForMalformedRequestsAndCloses() throws Exception {
        for (String request : List.of(
                "GARBAGE\r\n\r\n",
                "GET /one.bin\r\n\r\n",
                "GET /one.bin HTTP/2.0\r\nHost: x\r\n\r\n",
                "GET /one.bin HTTP/1.1\r\n\r\n", // HTTP/1.1 without Host
                "GET /one.bin HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
                "GET /one.bin HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                "GET /one.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                "GET /one.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "GET /one.bin HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")) {
            try (RawConnection c = new RawConnection()) {
                c.send(request);
                Raw r = c.read();
                assertEquals(400, r.status, request);
                assertEquals("close", r.headers.get("connection"), request);
                assertEquals(-1, c.in.read(), request);
            }
        }
        // A well-framed request for a bad name gets 400 and the connection goes on.
        try (RawConnection c = new RawConnection()) {
            for (String target : List.of("one.bin", "/%zz", "/%C3%28", "/a%00b")) {
                c.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
                Raw r = c.read();
                assertEquals(400, r.status, target);
                assertEquals("keep-alive", r.headers.get("connection"), target);
            }
            c.send("GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            assertArrayEquals(new byte[] {42}, c.read().body);
        }
        try (RawConnection c = new RawConnection()) {
            c.send("GET /" + "a".repeat(20_000) + " HTTP/1.1\r\nHost: x\r\n\r\n");
            assertEquals(431, c.read().status);
        }
    }

    @Test
    void closeEndsIdleAndBusyConnections() throws Exception {
        RawConnection idle = new RawConnection();
        RawConnection stalled = new RawConnection();
        try {
            idle.send("GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            idle.read();
            // Never read: the response of 3 MB fills the socket buffers and the writer blocks.
            for (int i = 0; i < 4; i++) {
                stalled.send("GET /three-m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            }
            Thread.sleep(200);
            long t0 = System.nanoTime();
            server.close();
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "close took too long");
            assertEquals(-1, idle.in.read());
        } finally {
            idle.close();
            stalled.close();
        }
    }

    @Test
    void aClientThatStopsReadingStallsNobodyElse() throws Exception {
        // One thread serves every connection: a response waiting for room must not hold it.
        try (RawConnection stalled = new RawConnection()) {
            for (int i = 0; i < 4; i++) {
                stalled.send("GET /three-m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            }
            Thread.sleep(200);
            long t0 = System.nanoTime();
            for (int i = 0; i < 20; i++) {
                assertServes("hundred-k.bin");
            }
            assertTrue(System.nanoTime() - t0 < 10_000_000_000L, "others were held up");
            // And the stalled one gets all its bytes once it reads.
            for (int i = 0; i < 4; i++) {
                Raw r = stalled.read();
                assertEquals(200, r.status);
                assertArrayEquals(files.get("three-m.bin"), r.body);
            }
        }
    }

    @Test
    void idleConnectionsTimeOut() throws Exception {
        server.close();
        reports.clear();
        server = new FileServer(root, reports::add, 4, 200).start(0);
        try (RawConnection c = new RawConnection()) {
            c.send("GET /one.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            assertEquals(200, c.read().status);
            c.socket.setSoTimeout(5000);
            assertEquals(-1, c.in.read(), "an idle connection is closed after the idle timeout");
        }
    }

    /** A response read off a raw socket. */
    private record Raw(int status, Map<String, String> headers, byte[] body) {}

    /** A socket to send exact bytes with, for what HttpClient would not send. */
    private final class RawConnection implements AutoCloseable {
        final Socket socket;
        final InputStream in;
        final OutputStream out;

        RawConnection() throws IOException {
            socket = new Socket(InetAddress.getLoopbackAddress(), server.port());
            socket.setSoTimeout(20_000);
            in = socket.getInputStream();
            out = socket.getOutputStream();
        }

        void send(String s) throws IOException {
            out.write(s.getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
        }

        Raw read() throws IOException {
            return read(true);
        }

        /** @param withBody false for the answer to a HEAD request (a Content-Length but no body) */
        Raw read(boolean withBody) throws IOException {
            ByteArrayOutputStream head = new ByteArrayOutputStream();
            int matched = 0;
            while (matched < 4) {
                int b = in.read();
                if (b < 0) {
                    throw new IOException("end of stream in a response head: " + head);
                }
                head.write(b);
                matched = (b == (matched % 2 == 0 ? '\r' : '\n')) ? matched + 1 : (b == '\r' ? 1 : 0);
            }
            String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
            String[] status = lines[0].split(" ", 3);
            assertEquals("HTTP/1.1", status[0]);
            Map<String, String> headers = new LinkedHashMap<>();
            for (int i = 1; i < lines.length; i++) {
                int colon = lines[i].indexOf(':');
                headers.put(lines[i].substring(0, colon).toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).strip());
            }
            int length = withBody ? Integer.parseInt(headers.get("content-length")) : 0;
            byte[] body = in.readNBytes(length);
            assertEquals(length, body.length, "a short body");
            return new Raw(Integer.parseInt(status[1]), headers, body);
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
