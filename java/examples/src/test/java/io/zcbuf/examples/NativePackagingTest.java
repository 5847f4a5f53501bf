package io.zcbuf.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.zcbuf.BufferAllocator;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The build packs the native library where the loader looks, and a missing platform gets a clear error. */
class NativePackagingTest {
    @Test
    void loaderAndBuildShareOneNamingScheme() throws Exception {
        BufferAllocator.unpooled().allocate(1).release(); // loads the library
        Class<?> nativeClass = Class.forName("io.zcbuf.Native");
        Method platform = nativeClass.getDeclaredMethod("platform");
        Method file = nativeClass.getDeclaredMethod("libraryFile");
        Method resource = nativeClass.getDeclaredMethod("resource", String.class, String.class);
        platform.setAccessible(true);
        file.setAccessible(true);
        resource.setAccessible(true);
        String p = (String) platform.invoke(null);
        if (System.getProperty("os.name").equals("Linux") && System.getProperty("os.arch").equals("amd64")) {
            assertEquals("linux-x86_64", p);
        }
        String path = (String) resource.invoke(null, p, file.invoke(null));
        assertEquals("/META-INF/native/" + p + "/libzcbuf_jni.so", path);
        assertNotNull(nativeClass.getResource(path), "the build did not pack the library at " + path);
    }

    /** Run in a child JVM that claims another architecture and has no library path. */
    public static final class Probe {
        public static void main(String[] args) {
            try {
                BufferAllocator.unpooled().allocate(1);
                System.out.println("LOADED");
            } catch (Throwable t) {
                Throwable e = t instanceof ExceptionInInitializerError && t.getCause() != null ? t.getCause() : t;
                System.out.println(e.getClass().getName() + ": " + e.getMessage());
            }
        }
    }

    @Test
    void aPlatformWithoutALibraryIsNamed() throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(List.of(java, "-Dos.arch=sparcv9", "-Djava.library.path=/nonexistent",
                        "-cp", System.getProperty("java.class.path"), Probe.class.getName()))
                .redirectErrorStream(true)
                .start();
        assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child JVM hung");
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(out.contains("UnsatisfiedLinkError"), out);
        assertTrue(out.contains("linux-sparcv9"), "the error does not name the platform: " + out);
        assertTrue(out.contains("this jar carries linux-x86_64") || !System.getProperty("os.arch").equals("amd64"),
                "the error does not say what the jar carries: " + out);
    }
}
