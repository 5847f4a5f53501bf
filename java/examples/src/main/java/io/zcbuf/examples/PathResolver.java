package io.zcbuf.examples;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * FileServer's path resolution: a request target names a file under the root (its real path, symbolic links
 * resolved), or the request gets 400 (a {@code ..} segment, also percent-encoded; a backslash; a NUL; malformed
 * percent-encoding or UTF-8) or 404 (nothing there, or symbolic links leading out of the root). Whether it is a
 * regular file is checked when {@link Responses} opens it. Not thread-safe: one per event loop.
 */
final class PathResolver {
    /**
     * How long a resolved target is trusted. Resolving the real path costs a {@code readlink} per path component
     * (under {@code wrk}, a tenth of the server's time at 1 KiB); a symbolic link made or changed under the root
     * is seen within this, as nginx's {@code open_file_cache_valid} does. Targets that failed are not kept: a new
     * file is served at once, and a removed one gets 404 from the open.
     */
    static final long VALID_NANOS = TimeUnit.SECONDS.toNanos(1);

    private static final int CACHE_MAX = 4096;

    private record Resolved(Path real, long at) {}

    private final Path root;
    private final Path realRoot;
    /** Resolved targets; a PathResolver serves one event loop, so no lock. */
    private final HashMap<String, Resolved> cache = new HashMap<>();

    /**
     * @param root the served directory, absolute and normalized
     * @param realRoot the same with symbolic links resolved
     */
    PathResolver(Path root, Path realRoot) {
        this.root = root;
        this.realRoot = realRoot;
    }

    /** @return the file under the root that {@code target} names, as its real path */
    Path resolve(String target) throws HttpError {
        long now = System.nanoTime();
        Resolved known = cache.get(target);
        if (known != null && now - known.at < VALID_NANOS) {
            return known.real;
        }
        Path real = resolveNow(target);
        if (cache.size() >= CACHE_MAX) {
            cache.clear(); // crude, and enough: a server this small serves few distinct names
        }
        cache.put(target, new Resolved(real, now));
        return real;
    }

    private Path resolveNow(String target) throws HttpError {
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
        if (!file.startsWith(root)) {
            throw new HttpError(404, "Not Found");
        }
        try {
            // No way out through a symbolic link either. What is not a regular file (a directory, a FIFO) is
            // refused when it is opened, by the same open that serves it: a stat here would be a system call
            // per request that the open repeats.
            Path real = file.toRealPath();
            if (!real.startsWith(realRoot)) {
                throw new HttpError(404, "Not Found");
            }
            return real;
        } catch (IOException e) {
            throw new HttpError(404, "Not Found");
        }
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
}
