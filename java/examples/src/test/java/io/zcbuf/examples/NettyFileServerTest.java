package io.zcbuf.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.zcbuf.BufferAllocator;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NettyFileServerTest {
    private static final int CONNECTIONS = 100;

    @TempDir
    Path root;

    /** 100 clients at once, each on its own connection, each body checked byte for byte. */
    @Test
    void hundredConcurrentClientsGetEveryByte() throws Exception {
        int[] sizes = {1, 4096, 100_000, 1 << 20, 3_000_001};
        List<byte[]> files = new ArrayList<>();
        for (int i = 0; i < sizes.length; i++) {
            byte[] b = new byte[sizes[i]];
            new Random(i).nextBytes(b);
            Files.write(root.resolve("f" + i + ".bin"), b);
            files.add(b);
        }
        Files.writeString(root.resolve("secret.txt"), "not under the served dir");
        Path served = Files.createDirectory(root.resolve("www"));
        for (int i = 0; i < sizes.length; i++) {
            Files.move(root.resolve("f" + i + ".bin"), served.resolve("f" + i + ".bin"));
        }
        long handlesBefore = BufferAllocator.liveNativeHandles();
        try (NettyFileServer server = new NettyFileServer(served, 0)) {
            String base = "http://127.0.0.1:" + server.port() + "/";
            List<CompletableFuture<HttpResponse<byte[]>>> replies = new ArrayList<>();
            List<HttpClient> clients = new ArrayList<>();
            for (int c = 0; c < CONNECTIONS; c++) {
                // A client each: a connection each, all open at once.
                HttpClient client = HttpClient.newBuilder()
                        .version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(Duration.ofSeconds(10))
                        .build();
                clients.add(client);
                HttpRequest get = HttpRequest.newBuilder(URI.create(base + "f" + (c % sizes.length) + ".bin"))
                        .timeout(Duration.ofSeconds(60))
                        .build();
                replies.add(client.sendAsync(get, HttpResponse.BodyHandlers.ofByteArray()));
            }
            for (int c = 0; c < CONNECTIONS; c++) {
                HttpResponse<byte[]> r = replies.get(c).get(90, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode(), "client " + c);
                assertArrayEquals(files.get(c % sizes.length), r.body(), "client " + c + "'s body");
            }
            // Keep-alive: a second request on a connection still gets every byte.
            HttpResponse<byte[]> again = clients.get(3).send(
                    HttpRequest.newBuilder(URI.create(base + "f3.bin")).build(), HttpResponse.BodyHandlers.ofByteArray());
            assertArrayEquals(files.get(3), again.body());

            HttpClient one = clients.get(0);
            assertEquals(404, status(one, base + "missing.bin"));
            assertEquals(404, status(one, base + "..%2Fsecret.txt"));
            assertEquals(404, status(one, base + "%2e%2e/secret.txt"));
            assertEquals(405, one.send(HttpRequest.newBuilder(URI.create(base + "f0.bin"))
                            .DELETE()
                            .build(), HttpResponse.BodyHandlers.discarding())
                    .statusCode());
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (BufferAllocator.liveNativeHandles() != handlesBefore && System.nanoTime() < deadline) {
            System.gc(); // pool blocks the event loop threads kept go back once their (gone) threads' caches do
            Thread.sleep(10);
        }
        assertEquals(handlesBefore, BufferAllocator.liveNativeHandles(), "buffers or writers left behind");
    }

    private static int status(HttpClient client, String uri) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create(uri)).build(), HttpResponse.BodyHandlers.discarding())
                .statusCode();
    }
}
