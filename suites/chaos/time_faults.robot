*** Settings ***
Documentation     Time-based faults: the platform's clock (and its containers') skewed by minutes either way,
...               TTL edges, idle-timeout boundaries, and scale-in while sessions are being created.
...
...               The clock is moved through the platform's clock-skew file, so the platform decides with the
...               time it believes. Runs on a private platform (the clock is the whole platform's) with an idle
...               timeout shorter than the clock skew of the first test (so the skew crosses it), and small scaling
...               steps.

Resource          ../../resources/time.resource

Suite Setup       Start The Chaos Suite On A Private Platform
...                   --set    idle_timeout=${IDLE_TIMEOUT}
...                   --set    min_capacity=${MIN_CAPACITY}    --set    max_capacity=${MAX_CAPACITY}
...                   --set    scale_out_step=${SCALE_STEP}    --set    scale_out_delay=${SCALE_OUT_DELAY}
...                   --set    scale_in_delay=${SCALE_IN_DELAY}
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    time-faults    needs-platform-clock


*** Variables ***
# Settings of this suite's private platform (`python -m testbed up --set`; testbed/config.py has them all).
# The platform's idle timeout in seconds: 4 min, shorter than CHAOS_CLOCK_SKEW (5 min), so that the first test's skew
# crosses it (a platform judging idleness on two clocks stops a session in use), longer than the clock steps the
# tests take while a session is used (half of it) and than any test's real duration.
${IDLE_TIMEOUT}            240
# The fewest containers the platform scales in to: below the scale-in test's burst of 6, so there is room to scale in.
${MIN_CAPACITY}            2
# The ceiling (most containers at once): above the burst of 6, so the burst is accepted whole.
${MAX_CAPACITY}            8
# Containers added or removed per scaling step: small, so the platform scales in step by step while sessions end.
${SCALE_STEP}              2
# Seconds demand must exceed capacity before a scale-out step: short, so the burst is covered quickly.
${SCALE_OUT_DELAY}         0.3
# Seconds a surplus (capacity above demand by more than a step) must last before a scale-in step: short, so a
# scale-in falls inside the scale-in test's window of creates.
${SCALE_IN_DELAY}          1
# Past the suite's idle timeout (4 min) and the TTL (1 h), so a platform that read a container's clock would act.
${CONTAINER_CLOCK_SKEW}    2 h
${FILE}                    skew/a.txt
${FILE_TEXT}               written before the skew


*** Test Cases ***
Sessions Stay Live With The Platform Clock Minutes Ahead
    [Documentation]    Expected: with the clock run ${CHAOS_CLOCK_SKEW} ahead (longer than the idle timeout of
    ...    ${IDLE_TIMEOUT} s) while the session is used, a reaper pass stops nothing (idleness is judged on one
    ...    clock, the platform's), a new session gets createdAt on the skewed clock and expiresAt createdAt + TTL,
    ...    and the file is intact.
    [Tags]    clock-skew    catches-idle-from-skewed-clock
    Given A Running Session With The File "${FILE}" Containing "${FILE_TEXT}"
    When The Platform Clock Runs ${CHAOS_CLOCK_SKEW} Ahead While The Session Is Used
    Then Sessions Stay Live Through A Reaper Pass And New Ones Follow The Clock
    And The Workspace File "${FILE}" Still Contains "${FILE_TEXT}"

Sessions Stay Live With The Platform Clock Minutes Behind
    [Documentation]    Expected: with the clock set ${CHAOS_CLOCK_SKEW} behind (the session's activity now lies in
    ...    the platform's future), a reaper pass stops nothing, a new session gets createdAt on the skewed clock
    ...    and expiresAt createdAt + TTL, and the file is intact.
    [Tags]    clock-skew
    Given A Running Session With The File "${FILE}" Containing "${FILE_TEXT}"
    When The Platform Clock Runs ${CHAOS_CLOCK_SKEW} Behind
    Then Sessions Stay Live Through A Reaper Pass And New Ones Follow The Clock
    And The Workspace File "${FILE}" Still Contains "${FILE_TEXT}"

A Container Crashing Under A Clock Skew Is Restarted In Time
    [Documentation]    Expected: with the platform clock ${CHAOS_CLOCK_SKEW} behind (earlier than the container's
    ...    start), a container killed with SIGKILL is restarted within ${SLA_RECOVERY_MAX}: restarts are timed on
    ...    the monotonic clock, not on wall-clock differences that went negative.
    [Tags]    clock-skew
    Given A Running Session
    And The Platform Clock Runs ${CHAOS_CLOCK_SKEW} Behind
    When The Session Container Is Killed With SIGKILL
    Then The Platform Restarts The Container Within The Recovery Bound

Container Clocks Hours Apart From The Platform's Change Nothing It Decides
    [Documentation]    Expected: with every container's clock ${CONTAINER_CLOCK_SKEW} ahead of the platform's (past the
    ...    idle timeout and the TTL), then ${CONTAINER_CLOCK_SKEW} behind, a reaper pass stops nothing, the session
    ...    runs on in the same container with its file, and new sessions get the platform's times: idleness,
    ...    expiry and timestamps are decided on the platform's clock, never a container's.
    [Tags]    clock-skew    catches-idle-from-container-clock
    Given A Running Session With The File "${FILE}" Containing "${FILE_TEXT}"
    When The Containers' Clocks Run ${CONTAINER_CLOCK_SKEW} Ahead Of The Platform's
    Then The Platform Still Decides On Its Own Clock
    When The Containers' Clocks Run ${CONTAINER_CLOCK_SKEW} Behind Of The Platform's
    Then The Platform Still Decides On Its Own Clock

A Session Is Live Just Before Its TTL And Expired On Every Route Just After
    [Documentation]    Expected: a session used until ${CHAOS_TIME_MARGIN} before expiresAt is served as RUNNING;
    ...    ${CHAOS_TIME_MARGIN} after expiresAt GET and file routes answer 410, the user's list leaves it out, and a
    ...    reaper pass stops its container and marks its record STOPPED (stoppedReason expired), leaving no orphan.
    [Tags]    ttl    catches-serve-expired    catches-expired-record-left-running
    Given A Running Session
    When The User Keeps Working Until ${CHAOS_TIME_MARGIN} Before The Session's TTL
    Then The Session Is Still Live
    When The Platform Clock Passes The Session's TTL By ${CHAOS_TIME_MARGIN}
    Then The Session Is Expired On Every Route

A Session Is Stopped For Idleness Only Once The Idle Timeout Has Passed
    [Documentation]    Expected: a session idle ${CHAOS_TIME_MARGIN} less than the platform's idle timeout stays
    ...    RUNNING through a reaper pass and the observation window; idle ${CHAOS_TIME_MARGIN} longer than the
    ...    timeout, a reaper pass stops it (STOPPED, stoppedReason idle) and its container is gone.
    [Tags]    idle-timeout    catches-no-idle-shutdown
    Given A Running Session
    When The Session Has Been Idle For ${CHAOS_TIME_MARGIN} Less Than The Idle Timeout
    Then The Session Stays RUNNING Through A Reaper Pass
    When The Clock Moves On To ${CHAOS_TIME_MARGIN} Past The Idle Timeout
    Then The Reaper Stops The Session As Idle

Sessions Created While The Platform Scales In All Start
    [Documentation]    Expected: after scaling out for 6 sessions, they end while 5 new sessions are created one by
    ...    one; the platform scales in during that window, every create answers 201 or a clean rejection, every
    ...    new session runs, capacity never falls below the running containers (sampled every poll interval through
    ...    the window) and nothing is orphaned.
    [Tags]    scaling    catches-no-scale-out    catches-scale-in-below-load
    Given The Platform Has Scaled Out For A Burst Of 6 Sessions
    When 5 Sessions Are Created One By One While Those Sessions End
    Then The Platform Scaled In Meanwhile And Every New Session Starts
