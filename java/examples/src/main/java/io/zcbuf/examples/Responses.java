package io.zcbuf.examples;

import io.zcbuf.Buffer;
import io.zcbuf.BufferAllocator;
import io.zcbuf.NativeBuffer;
import io.zcbuf.NotRegularFileException;
import io.zcbuf.ZeroCopyWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * FileServer's responses, built for its event loop to send: a file as a pooled header and a file region (never
 * mapped) in one composite, which the connection's {@link ZeroCopyWriter} sends as the header with
 * {@code MSG_MORE} and the file by {@code sendfile} (files over 2^31 - 1 bytes in pieces of {@link #CHUNK}, each opened when its
 * turn comes; a writer without the native sender gets the file mapped instead); errors as a header and a short
 * text body in one pooled buffer.
 */
final class Responses {
    /** Files too large for one buffer (at most 2^31 - 1 bytes) are sent in pieces of this size. */
    static final long CHUNK = 1L << 30;

    /**
     * A file response: the first buffer to send, and the file and its size for the pieces after {@link #CHUNK}.
     *
     * @param first the header and the file's first piece
     * @param file the file
     * @param size the file's size when the response was made
     * @param firstLength the bytes of the file in {@code first}: the next piece starts there
     */
    record FileResponse(Buffer first, Path file, long size, long firstLength) {}

    private final BufferAllocator alloc;

    Responses(BufferAllocator alloc) {
        this.alloc = alloc;
    }

    FileResponse file(Path file, boolean keepAlive, boolean nativeWriter) throws HttpError {
        long size;
        NativeBuffer first;
        try {
            try {
                // The whole file in one region: its length is the file's size, without a stat of its own.
                first = piece(file, 0, -1, nativeWriter);
                size = first.readableBytes();
            } catch (IllegalArgumentException tooLarge) { // over 2^31 - 1 bytes: pieces of CHUNK
                size = Files.size(file);
                first = piece(file, 0, Math.min(size, CHUNK), nativeWriter);
            }
        } catch (UncheckedIOException e) {
            if (e.getCause() instanceof NoSuchFileException || e.getCause() instanceof NotRegularFileException) {
                throw new HttpError(404, "Not Found"); // gone since it was resolved, or a directory, a FIFO...
            }
            throw new HttpError(500, "Internal Server Error");
        } catch (Exception e) { // the file changed under us, or cannot be read
            throw new HttpError(500, "Internal Server Error");
        }
        try {
            NativeBuffer header = header(200, "OK", size, "application/octet-stream", keepAlive, null);
            long firstLength = first.readableBytes();
            return new FileResponse(alloc.composite(header, first), file, size, firstLength);
        } catch (RuntimeException e) {
            first.release();
            throw e;
        }
    }

    /**
     * A piece of the file to send: a file region (sendfile, nothing mapped) for the native writer, which alone can
     * send one; the mapped file for a writer on its fallback path.
     */
    NativeBuffer piece(Path file, long offset, long length, boolean nativeWriter) {
        return nativeWriter ? alloc.fileRegion(file, offset, length) : alloc.mapFile(file, offset, length);
    }

    Buffer error(HttpError e, boolean keepAlive, boolean head) {
        byte[] body = (e.status + " " + e.reason + "\n").getBytes(StandardCharsets.US_ASCII);
        NativeBuffer response = header(
                e.status, e.reason, body.length, "text/plain; charset=us-ascii", keepAlive,
                e.status == 405 ? "Allow: GET\r\n" : null);
        if (!head) {
            // Fits: header() leaves room for a short body.
            response.writeBytes(body);
        }
        return response;
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
