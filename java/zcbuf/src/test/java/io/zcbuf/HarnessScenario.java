package io.zcbuf;

import java.lang.reflect.Field;

/**
 * What {@link ChildJvm} must tell apart, for its own test: a pass, a crash,
 * a hang, an exception, and a clean exit that checked nothing.
 */
public final class HarnessScenario {
    private HarnessScenario() {}

    /**
     * @param args one of {@code ok}, {@code crash}, {@code hang}, {@code throw}, {@code silent}
     * @throws Exception when asked to
     */
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "ok" -> ChildJvm.ok("all good");
            case "crash" -> {
                Field f = Class.forName("sun.misc.Unsafe").getDeclaredField("theUnsafe");
                f.setAccessible(true);
                sun.misc.Unsafe unsafe = (sun.misc.Unsafe) f.get(null);
                System.out.println("reading address 8, as a use-after-unmap would");
                System.out.flush();
                System.out.println(unsafe.getLong(8L));
            }
            case "hang" -> Thread.sleep(Long.MAX_VALUE);
            case "throw" -> throw new IllegalStateException("scenario threw");
            case "silent" -> System.out.println("exits 0 without saying it checked anything");
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
