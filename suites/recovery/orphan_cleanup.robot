*** Settings ***
Documentation     A session that goes away while its container is still starting must not leave that
...               container behind: after the reaper has run, every container of the platform belongs to a
...               live session. These tests have the platform to themselves: one of them cuts DynamoDB.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test With The Platform To Itself
Test Teardown     Clean Up The Test And Revert Faults

Test Tags         recovery    orphan-cleanup


*** Test Cases ***
Session Deleted While Its Container Starts Leaves No Container
    [Documentation]    Expected: a session deleted while STARTING is gone from the API, its container stops,
    ...    and after a reaper pass no orphaned container remains. Where every start goes RUNNING before it can be
    ...    seen STARTING (all starts warm), the test is skipped with the figures: no window, nothing to judge.
    [Tags]    delete-during-start
    Given A New Session Is Caught While Its Container Starts
    When The Session Is Deleted
    And The Reaper Runs
    Then Session Should Not Exist    ${SESSION}
    And The Session Has No Container Left
    And No Orphaned Container Remains

A Deleted Session Leaves No Container, Live Record Or Network Hop Behind
    [Documentation]    Expected: once a running session is deleted, within ${ORPHAN_GRACE_TIMEOUT} its container
    ...    (ECS task on AWS) has stopped, its record is gone or not live, and on the embedded platform its
    ...    service-mesh hop is removed from the fault proxy.
    [Tags]    delete    catches-mesh-hop-leak
    Given A Running Session
    When The Session Is Deleted
    Then Session Should Not Exist    ${SESSION}
    And Deleted Sessions Should Leave Nothing Behind

Container Whose Session Record Vanished Is Stopped By The Reaper
    [Documentation]    Expected: when a running session's record is removed from DynamoDB behind the platform's
    ...    back (an operator's clean-up, a table restore), its container is an orphan; the next reaper pass
    ...    stops it and records what it did (on a deployment that keeps a record: GET /admin/reaper is optional),
    ...    and no container of the platform is left without a live session.
    [Tags]    reaper    catches-no-reaper    catches-reaper-forgets
    Given A Running Session
    When Its Record Is Deleted From DynamoDB Behind The Platform's Back
    When The Reaper Runs
    Then The Session Has No Container Left
    And No Orphaned Container Remains
    And The Reaper Recorded Stopping The Orphaned Container

Create Aborted Half-Way By A DynamoDB Outage Leaves No Orphan
    [Documentation]    Expected: when the platform loses DynamoDB while a session's container starts, the
    ...    create is abandoned or completed, never half-kept: once DynamoDB is back and the reaper has run,
    ...    the session is RUNNING with exactly one container or not live with none, and no container of the
    ...    platform is without a live session. During the outage the API answers 503 store_unavailable with
    ...    Retry-After within ${CHAOS_STORE_ANSWER_MAX}. The outage is always reverted in the teardown (on AWS FIS
    ...    packet loss to DynamoDB on every API task, with CHAOS_SCOPE=deployment).
    [Tags]    store-outage    chaos-scope-deployment
    [Setup]    Begin Test On The DynamoDB Route    outage
    Given A New Session Is Caught While Its Container Starts
    When DynamoDB Becomes Unreachable For The Platform
    Then The API Answers A Session Lookup With A Clean Store Error
    When DynamoDB Comes Back Once The Platform Has Given Up On The Start
    And The Reaper Runs
    Then The Session Settles Without A Stray Container
    And The Reaper Runs
    And No Orphaned Container Remains

A Start Nobody Carries Out Ends FAILED After The Start Timeout
    [Documentation]    Expected: a session record left STARTING with no start behind it (the API target that wrote
    ...    it died) never runs and is not left hanging: the reaper ends it FAILED, no task, stoppedReason and
    ...    lastFailureReason set, no sooner than ${STUCK_START_TIMEOUT} after its last change and no later than
    ...    ${STUCK_END_ALLOWANCE} after that (both on the platform's own stamps); the API, the record and the
    ...    process table agree (no container runs for it).
    [Tags]    reaper    needs-record-writes    catches-stuck-sessions-kept    catches-stuck-ended-early
    Given A Running Session
    And A Session Record Nobody Starts
    When The Platform Ends The Stuck Session
    Then The Stuck Session Ended As A Stuck Start Does
    And The API, DynamoDB And The Process Table Agree On The Stuck Session


*** Keywords ***
A Session Record Nobody Starts
    [Documentation]    Writes a copy of \${SESSION}'s record as a new session in STARTING with no task:
    ...    \${STUCK} (the record as written).
    ${stuck} =    Put Session Record Nobody Starts    ${SESSION}    status=STARTING
    VAR    ${STUCK} =    ${stuck}    scope=TEST

The Platform Ends The Stuck Session
    [Documentation]    Waits until the API answers \${STUCK} FAILED (the reaper ends a start nobody carries out),
    ...    within \${SESSION_SETTLE_TIMEOUT}; its answer then is \${ENDED}. How long it took is judged on the
    ...    platform's own stamps.
    TRY
        Wait Until Session Has Status    ${STUCK}    FAILED
    EXCEPT    AS    ${error}
        Fail    Broken promise, a start nobody carries out ends (docs/platform-contract.md): ${error}
    END
    ${ended} =    Get Session    ${STUCK}
    VAR    ${ENDED} =    ${ended}    scope=TEST

The API, DynamoDB And The Process Table Agree On The Stuck Session
    [Documentation]    The record says FAILED too, and no container runs for \${STUCK}.
    Session Views Should Agree    ${STUCK}    timeout=${VIEWS_SETTLE_TIMEOUT}

The Stuck Session Ended As A Stuck Start Does
    [Documentation]    From the record as written to FAILED (see `Session Fields Should Follow The Transition`).
    Session Fields Should Follow The Transition    ${STUCK}    ${ENDED}    stuck
