package io.zcbuf.examples;

import io.zcbuf.BufferAllocator;
import io.zcbuf.ZeroCopyStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Locale;
import java.util.stream.Stream;

/** The command line of {@link FileServer}: serves a directory and prints a line per closed connection. */
public final class FileServerCli {
    private FileServerCli() {}

    /**
     * Serves a directory until interrupted (Ctrl-C).
     *
     * @param args the root directory (default {@code .}) and the port (default 8080)
     * @throws Exception when the server cannot start
     */
    public static void main(String[] args) throws Exception {
        if (args.length > 2 || args.length > 0 && (args[0].equals("-h") || args[0].equals("--help"))) {
            System.err.println("usage: FileServerCli [root-dir] [port]");
            System.exit(2);
        }
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 8080;
        FileServer server = new FileServer(root, FileServerCli::print);
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

    private static void print(FileServer.ConnectionReport r) {
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
