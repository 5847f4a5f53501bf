package io.zcbuf;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.Execution;
import org.junit.jupiter.api.parallel.ExecutionMode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 10's misuse suite: plain Java against io.zcbuf as a hostile user
 * would write it, every case in its own JVM ({@link ChildJvm}), so that a
 * JVM crash fails the one case naming its hs_err file. Cases run a few at a
 * time ({@code -Dzcbuf.childJvms}); races last {@code -Dzcbuf.raceSeconds}
 * (default 2) each.
 */
@Execution(ExecutionMode.CONCURRENT)
class MisuseSuiteTest {
    private static final String RACE_SECONDS = System.getProperty("zcbuf.raceSeconds", "2");
    private static final Duration TIMEOUT = Duration.ofSeconds(45);
    /** Room for a 40 MiB buffer's NIO copies next to the races' garbage. */
    private static final List<String> HEAP = List.of("-Xmx512m");

    // ---- class 1: release never unmaps what a Java view can reach ----

    @ParameterizedTest(name = "release race, {0}")
    @ValueSource(strings = {"unpooled-small", "unpooled-large", "pooled-small", "pooled-large", "mapfile",
        "composite-mapped"})
    void releaseRacingReadsNeverCrashes(String kind) {
        ChildJvm.run(ReleaseRaceScenario.class, TIMEOUT, HEAP, kind, RACE_SECONDS).assertOk("no crash");
    }

    @ParameterizedTest(name = "stale NIO views, {0}")
    @ValueSource(strings = {"unpooled-small", "unpooled-large", "pooled-small", "pooled-large", "mapfile",
        "composite-mapped"})
    void nioViewsReadAfterReleaseNeverCrash(String kind) {
        ChildJvm.run(StaleViewScenario.class, TIMEOUT, HEAP, kind).assertOk("no crash");
    }

    // ---- class 2: views of a composite keep what they show ----

    @ParameterizedTest(name = "composite views, {0}")
    @ValueSource(strings = {"remove-mapped", "discard-pooled", "consolidate-pooled"})
    void compositeNioViewsKeepTheirBytes(String scenario) {
        ChildJvm.run(CompositeViewScenario.class, TIMEOUT, scenario).assertOk();
    }

    // ---- class 3: one zero-copy owner per socket ----

    @Test
    void twoWritersOnOneSocketLoseNothing() {
        ChildJvm.run(WriterScenario.class, TIMEOUT, "two-writers").assertOk();
    }

    // ---- class 4: over-release never disturbs correct code ----

    @Test
    void overReleaseNeverDisturbsCorrectCounting() {
        ChildJvm.run(MisuseScenario.class, TIMEOUT, "over-release").assertOk();
    }

    // ---- class 5: a write that sent its bytes says so ----

    @Test
    void writeRacingAReleaseReportsExactlyWhatItSent() {
        ChildJvm.run(WriterScenario.class, TIMEOUT, "write-race", RACE_SECONDS).assertOk();
    }

    // ---- class 6: a writer on a closed channel writes nowhere ----

    @Test
    void writerOnAClosedChannelTouchesNoOtherSocket() {
        ChildJvm.run(WriterScenario.class, TIMEOUT, "closed-channel").assertOk();
    }

    // ---- class 7: mapFile of what is not a regular file ----

    @Test
    void mapFileOfAFifoIsRefusedWithoutBlocking() {
        ChildJvm.run(MisuseScenario.class, Duration.ofSeconds(30), "fifo-mapfile").assertOk("refused at once");
    }

    // ---- class 8: capacities near 2^31 ----

    @Test
    void hugeAllocationsGetTheirCapacityOrAClearError() {
        ChildJvm.run(MisuseScenario.class, TIMEOUT, "allocate-max").assertOk();
    }

    // ---- class 9: a composite never holds itself ----

    @Test
    void aCompositeRefusesItself() {
        ChildJvm.run(MisuseScenario.class, TIMEOUT, "self-add").assertOk();
    }

    // ---- follow-up: a hostile user's races and misuse (AttackScenario) ----

    @Test
    void aRetainedSliceRacingReleaseNeverShowsTheBlocksNextOwner() {
        ChildJvm.run(AttackScenario.class, TIMEOUT, "retained-slice-reuse", RACE_SECONDS).assertOk("no foreign bytes");
    }

    @Test
    void aWriteRacingReleaseSendsItsOwnBytesOrThrows() {
        ChildJvm.run(AttackScenario.class, TIMEOUT, "write-reuse", RACE_SECONDS).assertOk("no foreign bytes");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"close-channel-mid-write", "close-writer-mid-write", "interrupt-mid-write",
        "channel-write-after-writer",
        "flush-forever", "fallback-partial", "udp-truncated-mapfile", "forgotten-writers", "socketchannel-subclass"})
    void writerEdgeCases(String which) {
        ChildJvm.run(AttackScenario.class, TIMEOUT, which).assertOk();
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"extreme-indices", "huge-composite", "component-released-behind", "mapfile-truncated"})
    void misuseGetsSpecificExceptions(String which) {
        ChildJvm.run(AttackScenario.class, TIMEOUT, HEAP, which).assertOk();
    }

    @Test
    void paranoidLeakDetectionUnderRacesReportsNoFalseLeak() {
        ChildJvm.run(AttackScenario.class, TIMEOUT, HEAP, "paranoid-races", RACE_SECONDS).assertOk("no false leak");
    }

    @Test
    void aCompositeReleaseRacingItsStructuralChangesLeaksNothing() {
        ChildJvm.run(AttackScenario.class, TIMEOUT, "composite-release-race", RACE_SECONDS).assertOk("nothing leaked");
    }
}
