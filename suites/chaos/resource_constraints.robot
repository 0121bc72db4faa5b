*** Settings ***
Documentation     Resource constraints on a session's container: memory pressure past its limit (the kernel
...               kills it, the platform restarts it and the session survives), CPU throttling, a busy CPU and a
...               busy disk (slower, never restarted; on AWS FIS aws:ecs:task-cpu-stress and task-io-stress), EFS
...               mount failure (clear errors, no corruption, recovery when it returns) and a DynamoDB connection
...               limit (clean answers, nothing half-made).
...
...               Memory and CPU act through the container's cgroup; where the platform cannot use cgroups those
...               tests are skipped with the reason. Runs on a private platform.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    resource-constraints


*** Variables ***
${WEIGHTS}         model/weights.txt
${WEIGHTS_TEXT}    0.1 0.2 0.3
${REPORT}          report.md
${REPORT_TEXT}     draft 1
${NEW_NOTES}       new-notes.md


*** Test Cases ***
A Container Over Its Memory Limit Is Killed And Restarted, Session Intact
    [Documentation]    Expected: when the container's memory cgroup is filled past its limit the kernel kills the
    ...    container within ${FAULT_REACTION_TIMEOUT}; the platform restarts it within ${SLA_RECOVERY_MAX}, says
    ...    OOMKilled, counts restartCount 1 in the API and in DynamoDB, and the workspace file is intact.
    [Tags]    memory    catches-no-memory-limit    needs-container-limits
    Given Containers Are Limited With Cgroups
    And A Running Session With The File "${WEIGHTS}" Containing "${WEIGHTS_TEXT}"
    When The Session's Container Is Pushed Past Its Memory Limit
    Then The Kernel Kills The Container For Memory And The Platform Restarts It
    And The Session Has Restarted Once With "${WEIGHTS}" Still Containing "${WEIGHTS_TEXT}"

A CPU-Throttled Container Keeps Serving And Is Not Restarted
    [Documentation]    Expected: with the container's CPU quota at a tenth of a CPU and a busy process sharing it,
    ...    the kernel throttles it (throttled periods grow while it serves), yet the p95 of its file round trips
    ...    stays below the p95 of the same round trips just before the fault plus
    ...    ${CHAOS_THROTTLED_ROUND_TRIP_ALLOWANCE}, and it is not restarted; after the fault its quota is back to the
    ...    old value.
    [Tags]    cpu    needs-container-limits
    Given Containers Are Limited With Cgroups
    And A Running Session With The File "${REPORT}" Containing "${REPORT_TEXT}"
    And The Session's File Round Trips Are Timed Before The Fault
    When The Session's Container Is Throttled To 0.1 CPU
    Then The Throttled Container Keeps Serving Files Within Its Reference Plus The Allowance
    And The Platform Leaves The Healthy Container Alone
    When The CPU Quota Is Restored
    Then The Workspace File "${REPORT}" Still Contains "${REPORT_TEXT}"

A Container Whose CPU Is Kept Busy Keeps Serving And Is Not Restarted
    [Documentation]    Expected: while a busy process inside the session's container keeps its CPU at 100 %, the
    ...    p95 of its file round trips stays below the p95 of the same round trips just before the fault plus
    ...    ${CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE}, and the platform leaves it running in the same container; once the
    ...    stress ends the file is intact.
    [Tags]    cpu    cpu-stress
    Given A Running Session With The File "${REPORT}" Containing "${REPORT_TEXT}"
    And The Session's File Round Trips Are Timed Before The Fault
    When The CPU Of The Session's Container Is Kept Busy
    Then The Container Keeps Serving Files Within Its Reference Plus The Allowance
    And The Platform Leaves The Healthy Container Alone
    When The Fault Ends
    Then The Workspace File "${REPORT}" Still Contains "${REPORT_TEXT}"

A Container Whose Disk Is Kept Busy Keeps Serving And Loses Nothing
    [Documentation]    Expected: while a writer inside the session's container keeps the workspace's disk busy with
    ...    fsynced writes, the p95 of its file round trips stays below the p95 of the same round trips just before
    ...    the fault plus ${CHAOS_STRESSED_ROUND_TRIP_ALLOWANCE}, the platform leaves the container running, and once
    ...    the stress ends the file is intact.
    [Tags]    io-stress
    Given A Running Session With The File "${REPORT}" Containing "${REPORT_TEXT}"
    And The Session's File Round Trips Are Timed Before The Fault
    When The Disk Of The Session's Workspace Is Kept Busy
    Then The Container Keeps Serving Files Within Its Reference Plus The Allowance
    And The Platform Leaves The Healthy Container Alone
    When The Fault Ends
    Then The Workspace File "${REPORT}" Still Contains "${REPORT_TEXT}"

When EFS Fails The Workspace Gives Clear Errors, Keeps Its Data And Comes Back
    [Documentation]    Expected: while the user's EFS folder is unavailable writes and reads answer 503
    ...    workspace_unavailable with a JSON body (never 201) and the container is left alone; once EFS is back
    ...    the files are reachable within ${SLA_RECOVERY_MAX}, the old content intact, refused writes absent.
    [Tags]    efs    catches-efs-silent-fallback    needs-container-limits
    Given A Running Session With The File "${REPORT}" Containing "${REPORT_TEXT}"
    When The Session's Workspace Becomes Unavailable
    Then Writing "${REPORT}" And "${NEW_NOTES}" And Reading "${REPORT}" Fail With Clear Errors
    And The Platform Leaves The Healthy Container Alone
    When The Fault Ends
    Then The Session's Files Are Reachable Again Within The Recovery Bound
    And "${REPORT}" Still Contains "${REPORT_TEXT}" And The Refused "${NEW_NOTES}" Does Not Exist

At A DynamoDB Connection Limit Every Answer Is Clean And Nothing Is Half-Made
    [Documentation]    Expected: while DynamoDB takes at most 2 connections from the platform (the cap is reached:
    ...    it refuses some), every create of a burst of 6 answers 201 or a clean 503/429 with Retry-After (no 500,
    ...    no hang), at least 2 of them (one per connection the cap leaves) are created, every created session
    ...    settles with matching containers, and once the cap is gone nothing is orphaned.
    [Tags]    dynamodb-connections    needs-dynamodb-hop
    When DynamoDB Takes At Most 2 Connections From The Platform
    And 6 Sessions Are Created At Once
    Then Every Answer Was Clean And Every Created Session Settles
    And At Least 2 Creates Of The Burst Succeeded Through 2 Connections
    When The Fault Ends
    Then No Orphaned Container Remains


*** Keywords ***
At Least ${count: int} Creates Of The Burst Succeeded Through ${connections: int} Connections
    [Documentation]    A connection cap slows DynamoDB down for the platform, it does not stop it: the ${connections}
    ...    connections it keeps still serve creates (the platform retries the calls the cap resets), so at least
    ...    ${count} creates of \${BURST} succeed. Only refusals pass the clean-answer check, so without this bound a
    ...    platform that refused every create would pass.
    VAR    ${refusals} =    ${{ [(f["status"], f["error"]) for f in $BURST.failures] }}
    VAR    ${broken} =    Broken promise: a platform whose DynamoDB takes only ${connections} connections keeps
    ...    creating sessions through them. Only ${BURST.success_count} of ${BURST.requested} creates succeeded, at
    ...    least ${count} expected; the others were answered (status, error): ${refusals}
    Should Be True    ${BURST.success_count} >= ${count}    msg=${broken}
