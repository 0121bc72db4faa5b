*** Settings ***
Documentation     Service-mesh failure between the platform and a session's container (the fault proxy's hop
...               mesh-<sessionId>; on AWS the FIS network actions on the session's task). The API must answer
...               file operations with clean, retryable errors instead of hanging or answering 500, must not
...               restart a healthy container because the mesh failed, and must reach the container again (a
...               replacement too) once the mesh heals, with the workspace intact.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    service-mesh


*** Variables ***
${APP}           src/app.py
${APP_TEXT}      print('hello')
${SLOW_FILE}     slow_mesh_request/0.txt
${MESH_DELAY}    600 ms


*** Test Cases ***
A Broken Mesh Gives Clean 503s And The Healthy Container Is Left Alone
    [Documentation]    Expected: while every connection from the API to the container is reset, reads and writes
    ...    answer 503 container_unavailable with Retry-After at once and the session stays RUNNING in the same
    ...    container; once healed the files are reachable within ${SLA_RECOVERY_MAX} and intact.
    Given A Running Session With The File "${APP}" Containing "${APP_TEXT}"
    When The Service Mesh To The Session's Container Breaks
    Then File Operations Of The Session Fail Cleanly
    And The Platform Leaves The Healthy Container Alone
    When The Fault Ends
    Then The Session's Files Are Reachable Again Within The Recovery Bound
    And The Workspace File "${APP}" Still Contains "${APP_TEXT}"

A Mesh That Drops Every Request Gives 503s Within The Container Timeout
    [Documentation]    Expected: while requests from the API to the container vanish (a black hole: nothing is
    ...    refused, nothing answers), reads and writes still answer 503 container_unavailable with Retry-After
    ...    within the client's timeout (the platform gives up on a silent container once, not once per retry), the
    ...    session stays RUNNING in the same container, and once healed its files are reachable and intact.
    [Tags]    catches-container-timeout-retried
    Given A Running Session With The File "${APP}" Containing "${APP_TEXT}"
    When The Service Mesh To The Session's Container Drops Every Request
    Then File Operations Of The Session Fail Cleanly
    And The Platform Leaves The Healthy Container Alone
    When The Fault Ends
    Then The Session's Files Are Reachable Again Within The Recovery Bound
    And The Workspace File "${APP}" Still Contains "${APP_TEXT}"

A Container Restarted Behind A Broken Mesh Is Reached On Its Hop Once Healed
    [Documentation]    Expected: the container crashes behind a broken mesh and is restarted within
    ...    ${SLA_RECOVERY_MAX}; the fault stays on the session's hop, so file operations still fail cleanly; once
    ...    healed the API reaches the replacement through the same hop, workspace intact, views agreeing.
    [Tags]    catches-workspace-lost-on-restart    needs-mesh-hop
    Given A Running Session With The File "${APP}" Containing "${APP_TEXT}"
    When The Service Mesh To The Session's Container Breaks
    And The Session Container Is Killed With SIGKILL
    Then The Platform Restarts The Container Within The Recovery Bound
    And File Operations Of The Session Fail Cleanly
    When The Fault Ends
    Then The Session's Files Are Reachable Again Within The Recovery Bound
    And The Workspace File "${APP}" Still Contains "${APP_TEXT}"
    And The API, DynamoDB And The Process Table Agree On The Session

A Slow Mesh Slows File Operations Down But Loses Nothing
    [Documentation]    Expected: with ${MESH_DELAY} added to every answer on the mesh, every write and read still
    ...    succeeds, each taking at least ${MESH_DELAY} (the fault acted) and their p95 below the p95 of the same
    ...    requests just before the fault plus ${MESH_DELAY} plus ${CHAOS_SLOW_MESH_ALLOWANCE} (one delay per request,
    ...    no retry or timeout on top); once the mesh is fast again the file is intact.
    Given A Running Session
    And The Session's Writes And Reads Are Timed Before The Fault
    When The Service Mesh To The Session's Container Slows Down By ${MESH_DELAY}
    Then Every Write And Read Takes The Added ${MESH_DELAY} But No More Than The Allowance
    When The Fault Ends
    Then The Workspace File "${SLOW_FILE}" Still Contains "slow but safe"
