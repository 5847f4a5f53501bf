package io.zcbuf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/** The child-JVM harness tells a pass from a crash, a hang, an exception and a scenario that checked nothing. */
class ChildJvmTest {
    @Test
    void aPassIsAPass() {
        ChildJvm.Result r = ChildJvm.run(HarnessScenario.class, Duration.ofSeconds(60), "ok").assertOk("all good");
        assertEquals(0, r.exitCode());
        assertNull(r.hsErr());
        assertThrows(AssertionFailedError.class, () -> r.assertOk("something else"));
    }

    @Test
    void aCrashFailsNamingItsHsErrFile() throws java.io.IOException {
        ChildJvm.Result r = ChildJvm.run(HarnessScenario.class, Duration.ofSeconds(60), "crash");
        assertNotNull(r.hsErr(), "a SIGSEGV leaves an hs_err file: " + r.stdout() + r.stderr());
        assertTrue(Files.isRegularFile(r.hsErr()));
        AssertionFailedError e = assertThrows(AssertionFailedError.class, r::assertOk);
        assertTrue(e.getMessage().contains("CRASHED") && e.getMessage().contains(r.hsErr().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("SIGSEGV"), "the summary shows the signal: " + e.getMessage());
        r.deleteFiles(); // a crash the test asked for: leave nothing behind
        assertTrue(Files.notExists(r.hsErr().getParent()));
    }

    @Test
    void aHangFailsWithATimeoutAndAThreadDump() {
        ChildJvm.Result r = ChildJvm.run(HarnessScenario.class, Duration.ofSeconds(3), "hang");
        assertTrue(r.timedOut());
        AssertionFailedError e = assertThrows(AssertionFailedError.class, r::assertOk);
        assertTrue(e.getMessage().contains("HUNG"), e.getMessage());
        assertTrue(r.stdout().contains("HarnessScenario.main"), "the thread dump shows where: " + r.stdout());
    }

    @Test
    void anExceptionOrASilentExitFails() {
        ChildJvm.Result thrown = ChildJvm.run(HarnessScenario.class, Duration.ofSeconds(60), "throw");
        assertEquals(1, thrown.exitCode());
        AssertionFailedError e = assertThrows(AssertionFailedError.class, thrown::assertOk);
        assertTrue(e.getMessage().contains("scenario threw"), e.getMessage());
        ChildJvm.Result silent = ChildJvm.run(HarnessScenario.class, Duration.ofSeconds(60), "silent");
        assertEquals(0, silent.exitCode());
        assertThrows(AssertionFailedError.class, silent::assertOk);
    }
}
