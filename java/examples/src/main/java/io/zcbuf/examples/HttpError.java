package io.zcbuf.examples;

/** A response status that ends request handling early (FileServer). */
final class HttpError extends Exception {
    private static final long serialVersionUID = 1L;
    final int status;
    final String reason;

    HttpError(int status, String reason) {
        super(status + " " + reason, null, false, false);
        this.status = status;
        this.reason = reason;
    }
}
