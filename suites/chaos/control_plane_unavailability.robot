*** Settings ***
Documentation     The container control plane (the ECS API: RunTask, StopTask, UpdateService) becomes unavailable
...               while everything else runs. Sessions wait or fail cleanly, nothing leaks, and the platform
...               recovers once the control plane answers again: running sessions keep serving, a warm agent still
...               starts a new session, a create that needs ECS waits PENDING and starts afterwards (or fails
...               cleanly once the platform's start timeout passes), a session deleted meanwhile is stopped
...               afterwards and leaves nothing behind, a crashed container is replaced afterwards.
...
...               Runs on a private platform: the outage hits every session of the platform. Two outages: ECS
...               answering errors (ServiceUnavailable, embedded only: no AWS fault forges ECS's answers), and the
...               platform cut off from ECS, its calls timing out connecting: on the embedded platform its
...               control-plane file, on AWS FIS packet loss to ECS's endpoint on every task of the API service
...               (CHAOS_SCOPE=deployment, the deployment held by the test). The warm pool's tests stay
...               embedded-only (docs/where-tests-run.md says why).

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    control-plane-outage


*** Variables ***
# How long a session is watched waiting for the control plane: longer than the platform's restart policy takes to
# back off through its five restarts (0.1 + 0.2 + 0.4 + 0.8 + 1.6 s), so a platform that counts refused starts as
# crashes gives up within it; shorter than the platform's start timeout (10 s), after which a start fails.
${OUTAGE_WINDOW}    5 s
${NOTES}            notes/outage.txt
${NOTES_TEXT}       written before ECS went away


*** Test Cases ***
A Session Created In The Outage Waits And Starts Once The Control Plane Is Back
    [Documentation]    Expected: while ECS is unavailable the warm pool's agents still start new sessions (no ECS
    ...    call needed); the next create answers 201 and the session waits PENDING with no container for
    ...    ${OUTAGE_WINDOW}; once ECS answers it runs within ${SLA_RECOVERY_MAX}, and the warm pool is refilled.
    [Tags]    catches-control-plane-outage-strands-pending    needs-warm-pool-without-ecs
    Given The Warm Pool Is Full
    When The Container Control Plane Becomes Unavailable
    Then The Warm Pool Still Starts New Sessions
    When Another Session Is Created
    Then The Session Waits PENDING For The Control Plane
    When The Control Plane Comes Back
    Then The Waiting Session Runs Within The Recovery Bound
    And The Warm Pool Is Refilled Within The Recovery Bound

Running Sessions Keep Serving While The Control Plane Is Unavailable
    [Documentation]    Expected: while the platform cannot reach ECS the running session's container keeps serving
    ...    files as fast as before the outage (round-trip p95 within the same-run reference's plus
    ...    ${CHAOS_UNAFFECTED_ROUND_TRIP_ALLOWANCE}) and is left alone (same pid, RUNNING, no restart), GET /health
    ...    stays ok and GET /capacity answers; afterwards the file is intact.
    [Tags]    catches-ecs-in-file-path    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The ECS Route
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    And The Session's File Round Trips Are Timed Before The Fault
    When The Platform Is Cut Off From ECS
    Then The Container Keeps Serving Files As Fast As Before
    And The Platform Leaves The Healthy Container Alone
    And The API Still Answers Health And Capacity
    When The Control Plane Comes Back
    Then The Workspace File "${NOTES}" Still Contains "${NOTES_TEXT}"

A Session Deleted In The Outage Is Stopped Afterwards And Leaves Nothing Behind
    [Documentation]    Expected: while the platform cannot reach ECS a delete answers 204 (within
    ...    ${HTTP_TIMEOUT}) and the API forgets the session, while its container keeps running (ECS cannot be told to
    ...    stop it); once ECS answers the container is stopped within ${SLA_RECOVERY_MAX}, and no container, record or
    ...    mesh hop of it is left, no orphan.
    [Tags]    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The ECS Route
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    When The Platform Is Cut Off From ECS
    And The Session Is Deleted
    Then The API Forgets The Session While Its Container Still Runs
    When The Control Plane Comes Back
    Then The Container Is Stopped Within The Recovery Bound
    And Deleted Sessions Should Leave Nothing Behind
    And No Orphaned Container Remains

A Container Crashing In The Outage Is Restarted Once The Control Plane Is Back
    [Documentation]    Expected: a container killed while the platform cannot reach ECS leaves its session
    ...    RESTARTING with restartCount 1 and no container for ${OUTAGE_WINDOW} (starts that cannot reach ECS are
    ...    retried, not counted as crashes); once ECS answers a new container serves it within ${SLA_RECOVERY_MAX},
    ...    restartCount 1 in the API and in DynamoDB, lastRecoveryMs agrees with the suite's figure, the file is
    ...    intact.
    [Tags]    catches-outage-exhausts-restarts    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The ECS Route
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    When The Platform Is Cut Off From ECS
    And The Session Container Is Killed With SIGKILL
    Then The Session Waits RESTARTING For The Control Plane
    When The Control Plane Comes Back
    Then The Container Is Restarted Within The Recovery Bound
    And The Session Has Restarted Once With "${NOTES}" Still Containing "${NOTES_TEXT}"

A Session Whose Start Waits Past The Start Timeout Fails Cleanly
    [Documentation]    Expected: a session created while ECS stays unavailable (no warm agent left) waits PENDING,
    ...    then becomes FAILED once the platform's start_timeout has passed, with a lastFailureReason naming the
    ...    container control plane and no container; once ECS answers nothing is left and new sessions start.
    [Tags]    catches-control-plane-outage-strands-pending    needs-warm-pool-without-ecs
    Given The Warm Pool Is Full
    When The Container Control Plane Becomes Unavailable
    And The Warm Pool Still Starts New Sessions
    And Another Session Is Created
    Then The Session Fails Once The Start Timeout Has Passed
    And Its Failure Names The Control Plane And No Container Is Left
    When The Control Plane Comes Back
    Then A New Session Is Created And Reaches RUNNING
    And No Orphaned Container Remains


*** Keywords ***
The Warm Pool Is Full
    [Documentation]    The warm pool holds all its agents, and no other unassigned agent runs.
    Wait Until Warm Pool Is Refilled

Begin Chaos Test On The ECS Route
    [Documentation]    For a cut of the platform's route to ECS, which hits the whole platform (on AWS FIS on every
    ...    API task, sources naming ECS's endpoint): checked first, so a refused test creates nothing; then the
    ...    platform to itself, and the steady state.
    VAR    @{FAULTS} =    @{EMPTY}    scope=TEST
    ECS Route Fault Should Be Possible    outage
    Acquire Platform Access    exclusive
    Steady State Should Hold

The Container Control Plane Becomes Unavailable
    [Documentation]    ECS answers every call of the platform (RunTask, StopTask, UpdateService) with
    ...    ServiceUnavailable; running containers keep running.
    ${fault} =    Make Container Control Plane Unavailable    error=ServiceUnavailable
    VAR    ${FAULT} =    ${fault}    scope=TEST

The Platform Is Cut Off From ECS
    [Documentation]    The platform's calls to ECS (RunTask, StopTask, UpdateService) get no answer and fail once
    ...    they time out connecting; running containers keep running.
    ${fault} =    Cut Off ECS From The Platform
    VAR    ${FAULT} =    ${fault}    scope=TEST

The Control Plane Comes Back
    [Documentation]    The outage in \${FAULT} ends; the recovery times that follow count from here.
    Revert Fault    ${FAULT}
    Start Stopwatch    control-plane

The Warm Pool Still Starts New Sessions
    [Documentation]    As many sessions as the pool holds agents are created, and each runs warm: handing out a
    ...    running agent needs no ECS call.
    ${capacity} =    Get Capacity
    FOR    ${_}    IN RANGE    ${capacity}[warmPool]
        ${created} =    Create Session
        Wait Until Session Is Running    ${created}
        Session Should Have    ${created}    startType=warm
    END

Another Session Is Created
    [Documentation]    A create answers 201 with a PENDING session, kept in \${SESSION}.
    ${created} =    Create Session
    Should Be Equal    ${created}[status]    PENDING    msg=A new session should be PENDING: ${created}
    VAR    ${SESSION} =    ${created}    scope=TEST

The Session Waits ${status} For The Control Plane
    [Documentation]    For ${OUTAGE_WINDOW} the session stays ${status} with no container and the same
    ...    restartCount: its start is retried, not dropped or counted as a crash.
    Session Should Wait For The Control Plane    ${SESSION}    ${status}    window=${OUTAGE_WINDOW}

The Waiting Session Runs Within The Recovery Bound
    [Documentation]    The session that waited runs; the time since the control plane came back is recorded as
    ...    control_plane_start_recovery_time.
    TRY
        Wait Until Session Is Running    ${SESSION}    timeout=${RECOVERY_TIMEOUT}
    EXCEPT    AS    ${error}
        Fail    Broken promise: a session created while ECS was unavailable starts once ECS answers again. ${error}
    END
    ${seconds} =    Stop Stopwatch    control-plane
    Record The Recovery    control_plane_start_recovery_time    ${seconds}

The Warm Pool Is Refilled Within The Recovery Bound
    [Documentation]    The warm pool holds all its agents again; the time since the control plane came back is
    ...    recorded as warm_pool_refill_time.
    Start Stopwatch    warm-pool
    Wait Until Warm Pool Is Refilled
    ${seconds} =    Stop Stopwatch    warm-pool
    Record The Recovery    warm_pool_refill_time    ${seconds}

The API Still Answers Health And Capacity
    [Documentation]    GET /health is ok (ECS is not the session store) and GET /capacity answers.
    Platform Should Be Healthy
    Get Capacity

The API Forgets The Session While Its Container Still Runs
    [Documentation]    GET answers 404, yet the session's one container still runs: ECS could not stop it.
    Session Should Answer With    ${SESSION}    404    not_found
    Session Should Have Exactly One Container    ${SESSION}

The Container Is Stopped Within The Recovery Bound
    [Documentation]    No container serves the deleted session any more; the time since the control plane came
    ...    back is recorded as control_plane_stop_recovery_time.
    Wait Until Session Has No Container    ${SESSION}
    ${seconds} =    Stop Stopwatch    control-plane
    Record The Recovery    control_plane_stop_recovery_time    ${seconds}

The Container Is Restarted Within The Recovery Bound
    [Documentation]    A new container serves the session; the time since the control plane came back is recorded as
    ...    control_plane_restart_recovery_time, and the platform's lastRecoveryMs agrees with the time since the kill.
    ${since_kill} =    Wait Until Container Restarted    ${SESSION}    ${OLD_PID}
    ${seconds} =    Stop Stopwatch    control-plane
    Record The Recovery    control_plane_restart_recovery_time    ${seconds}
    Recovery Time Should Agree With Platform Record    ${SESSION}    ${since_kill}

The Session Fails Once The Start Timeout Has Passed
    [Documentation]    The session becomes FAILED, not before the platform's start_timeout has passed since its
    ...    create and within ${FAULT_REACTION_TIMEOUT} after that; the time is shown in the test message.
    ${start_timeout} =    Get Embedded Platform Setting    start_timeout
    ${reaction} =    Evaluate    robot.utils.timestr_to_secs($FAULT_REACTION_TIMEOUT)    modules=robot.utils
    TRY
        ${status} =    Wait Until Session Settles    ${SESSION}    timeout=${{$start_timeout + $reaction}}
    EXCEPT    AS    ${error}
        Fail    Broken promise: a start ECS keeps refusing fails cleanly once start_timeout passes. ${error}
    END
    ${failed} =    Get Session    ${SESSION}
    VAR    ${waited: float} =    ${{round($failed["updatedAt"] - $failed["createdAt"], 3)}}
    Should Be Equal    ${status}    FAILED
    ...    msg=Broken promise: a start ECS keeps refusing ends FAILED once start_timeout passes, not ${status}.
    Should Be True    ${waited} >= ${start_timeout}
    ...    msg=Broken promise: a start ECS refuses waits start_timeout (${start_timeout} s); it failed at ${waited} s.
    Set Test Message    FAILED ${waited} s after its create (start_timeout ${start_timeout} s).    append=${True}

Its Failure Names The Control Plane And No Container Is Left
    [Documentation]    lastFailureReason says the container control plane was unavailable; no container serves it.
    The Last Failure Reason Mentions "container control plane unavailable"
    Wait Until Session Has No Container    ${SESSION}
