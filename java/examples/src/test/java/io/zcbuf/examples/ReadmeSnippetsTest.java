package io.zcbuf.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.zcbuf.BufferAllocator;
import io.zcbuf.NativeBuffer;
import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java snippets are {@link ReadmeSnippets}' code, line for line, and they do what they say. */
class ReadmeSnippetsTest {
    private static final Path README = Path.of("..", "..", "README.md");
    private static final Path SNIPPETS = Path.of("src", "test", "java", "io", "zcbuf", "examples", "ReadmeSnippets.java");

    @TempDir
    Path dir;

    @Test
    void readmeHoldsTheCompiledSnippets() throws Exception {
        assertEquals(sourceBlock("java"), readmeBlock("## Using it from Java"),
                "README's Java snippet differs from ReadmeSnippets.usingItFromJava");
        assertEquals(sourceBlock("netty"), readmeBlock("## Netty"),
                "README's Netty snippet differs from ReadmeSnippets.netty");
    }

    @Test
    void javaSnippetSendsHeaderAndFile() throws Exception {
        byte[] file = new byte[1 << 20];
        new Random(1).nextBytes(file);
        Path path = Files.write(dir.resolve("body.bin"), file);
        byte[] head = "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        try (ServerSocketChannel server =
                        ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                SocketChannel client = SocketChannel.open(server.getLocalAddress());
                SocketChannel peer = server.accept()) {
            int n = head.length + file.length;
            CompletableFuture<byte[]> got = CompletableFuture.supplyAsync(() -> {
                ByteBuffer into = ByteBuffer.allocate(n);
                try {
                    while (into.hasRemaining() && peer.read(into) >= 0) {
                        // until all arrived
                    }
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
                return into.array();
            });
            ReadmeSnippets.usingItFromJava(client, path);
            ByteArrayOutputStream expected = new ByteArrayOutputStream();
            expected.write(head);
            expected.write(file);
            assertArrayEquals(expected.toByteArray(), got.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void nettySnippetWritesInOrder() throws Exception {
        byte[] file = new byte[100_000];
        new Random(2).nextBytes(file);
        Path path = Files.write(dir.resolve("body.bin"), file);
        byte[] prefix = {1, 2, 3};
        BufferAllocator alloc = BufferAllocator.pooled();
        NativeBuffer header = alloc.copyOf(new byte[] {4, 5});
        EmbeddedChannel ch = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
        ReadmeSnippets.netty(ch, ch.pipeline().lastContext(), prefix, alloc, header, path);
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        for (Object msg; (msg = ch.readOutbound()) != null; ) {
            ByteBuf b = (ByteBuf) msg; // the embedded transport gets Netty's gather write of the same memory
            got.write(ByteBufUtil.getBytes(b));
            b.release();
        }
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        expected.write(prefix);
        expected.write(new byte[] {4, 5});
        expected.write(file);
        assertArrayEquals(expected.toByteArray(), got.toByteArray());
        ch.finishAndReleaseAll();
    }

    /** The lines between {@code // README <name> begin} and {@code end}, without their common indentation. */
    private static List<String> sourceBlock(String name) throws Exception {
        List<String> lines = Files.readAllLines(SNIPPETS);
        int from = lines.indexOf(marker(lines, "// README " + name + " begin")) + 1;
        int to = lines.indexOf(marker(lines, "// README " + name + " end"));
        return dedent(lines.subList(from, to));
    }

    private static String marker(List<String> lines, String text) {
        return lines.stream().filter(l -> l.strip().equals(text)).findFirst()
                .orElseThrow(() -> new AssertionError("no marker " + text + " in " + SNIPPETS));
    }

    /** The first {@code ```java} block after {@code heading}, without its import lines and the blank after. */
    private static List<String> readmeBlock(String heading) throws Exception {
        List<String> lines = Files.readAllLines(README);
        int at = lines.indexOf(heading);
        assertTrue(at >= 0, "README has no section " + heading);
        while (!lines.get(at).equals("```java")) {
            at++;
        }
        List<String> block = new ArrayList<>();
        for (at++; !lines.get(at).equals("```"); at++) {
            block.add(lines.get(at));
        }
        while (!block.isEmpty() && (block.get(0).startsWith("import ") || block.get(0).isBlank())) {
            block.remove(0);
        }
        return dedent(block);
    }

    private static List<String> dedent(List<String> lines) {
        int indent = lines.stream().filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
        List<String> out = new ArrayList<>();
        for (String l : lines) {
            out.add(l.isBlank() ? "" : l.substring(indent).stripTrailing());
        }
        return out;
    }
}
