package io.zcbuf.examples;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * FileServer's HTTP/1.1 request parsing on one connection: buffers what a non-blocking socket delivers (request
 * heads of at most {@link #MAX_HEAD} bytes), finds complete heads, parses them strictly (400 for anything
 * malformed, 431 for a head too long), and skips request bodies. Nothing here waits: the server's event loop
 * calls {@link #fill()} when the socket is readable and {@link #headLength()} to see whether a request is in.
 */
final class HttpRequestReader {
    static final int MAX_HEAD = 16 * 1024;

    /** A parsed request head. */
    record Request(String method, String target, boolean keepAlive, long contentLength) {}

    private final SocketChannel ch;
    private final ByteBuffer in = ByteBuffer.allocate(MAX_HEAD);
    /** Bytes of the buffer already searched for a blank line without finding one. */
    private int scanned;

    HttpRequestReader(SocketChannel ch) {
        this.ch = ch;
    }

    /**
     * Reads what the socket has now into the buffer.
     *
     * @return the bytes read, 0 when none are there (or the buffer is full), -1 at the end of the stream
     */
    int fill() throws IOException {
        return in.hasRemaining() ? ch.read(in) : 0;
    }

    /** @return the bytes buffered and not yet consumed */
    int buffered() {
        return in.position();
    }

    /**
     * @return the length of the buffered request head including its blank line, or -1 when it is not complete
     * @throws HttpError 431 when the buffer is full without a complete head
     */
    int headLength() throws HttpError {
        // Ignore empty lines before a request line (RFC 9112, section 2.2).
        int skip = 0;
        while (skip + 1 < in.position() && in.get(skip) == '\r' && in.get(skip + 1) == '\n') {
            skip += 2;
        }
        if (skip > 0) {
            consume(skip);
        }
        int end = indexOfBlankLine(Math.max(0, scanned - 3), in.position());
        if (end >= 0) {
            return end + 4;
        }
        scanned = in.position();
        if (!in.hasRemaining()) {
            throw new HttpError(431, "Request Header Fields Too Large");
        }
        return -1;
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
    void consume(int n) {
        in.flip();
        in.position(n);
        in.compact();
        scanned = 0;
    }

    /**
     * Drops up to {@code length} buffered bytes of a request body.
     *
     * @return the bytes dropped
     */
    long discard(long length) {
        int n = (int) Math.min(length, in.position());
        if (n > 0) {
            consume(n);
        }
        return n;
    }

    /**
     * Reads and drops what the client sends now (a lingering close).
     *
     * @return the bytes dropped, -1 at the end of the stream
     */
    int drainNow() throws IOException {
        in.clear();
        scanned = 0;
        int n = ch.read(in);
        in.clear();
        return n;
    }

    Request parse(int headLength) throws HttpError {
        String head = new String(in.array(), 0, headLength - 4, StandardCharsets.ISO_8859_1);
        // Lines by hand: String.split of a two-character separator compiles a regular expression every time.
        int lineEnd = head.indexOf("\r\n");
        String[] parts = (lineEnd < 0 ? head : head.substring(0, lineEnd)).split(" ", -1);
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
        for (int start = lineEnd + 2; lineEnd >= 0; start = lineEnd + 2) {
            lineEnd = head.indexOf("\r\n", start);
            String line = lineEnd < 0 ? head.substring(start) : head.substring(start, lineEnd);
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
}
