*** Settings ***
Documentation     The API runs as several targets behind a load balancer (an ALB on AWS; on the embedded platform
...               testbed/loadbalancer.py in front of API target processes, health-checked on GET /health). One
...               target dies, one hangs, the load balancer itself fails: the API must keep or regain its address,
...               route only to healthy targets, get back to its full count of targets, and keep every session.
...               On AWS the targets are the tasks of the API's ECS service behind its ALB target group (the optional
...               API_ECS_SERVICE of docs/deployment-contract.md): a target dies by FIS aws:ecs:stop-task and hangs by
...               FIS aws:ecs:task-network-blackhole-port on its port. Those faults hit the deployment, so they run only
...               with CHAOS_SCOPE=deployment, the FIS stop alarm, and the deployment held by the test alone. The load
...               balancer itself fails only on the embedded platform: an ALB node cannot be killed.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    load-balancer


*** Variables ***
${NOTES}         notes/balancer.txt
${NOTES_TEXT}    written before the API tier failed


*** Test Cases ***
When One API Target Dies The API Keeps Answering And The Target Is Replaced
    [Documentation]    Expected: after one of the API targets is SIGKILLed, it leaves rotation within
    ...    ${LB_DETECTION_TIMEOUT}, the platform replaces it and the load balancer has its full count of healthy
    ...    targets again within ${SLA_RECOVERY_MAX}; then every request
    ...    through the load balancer is answered, and the session with its file is intact.
    [Tags]    recovery    catches-api-target-not-replaced    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The API Tier    kill
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    And All API Targets Are Healthy
    When One API Target Is Killed
    Then The Failed Target Leaves Rotation Within The Detection Bound
    Then The Load Balancer Has All Its Targets Healthy Again Within The Recovery Bound
    And Every API Request Should Be Answered    ${SESSION}
    And The Workspace File "${NOTES}" Still Contains "${NOTES_TEXT}"

A Hung API Target Leaves Rotation And The API Keeps Answering
    [Documentation]    Expected: an API target that stops answering (SIGSTOP; on AWS its port black-holed) fails its
    ...    health checks and leaves
    ...    rotation within ${LB_DETECTION_TIMEOUT}; from then on every request is answered within 1 s by the
    ...    healthy targets. Once it answers again it returns to rotation within ${SLA_RECOVERY_MAX}.
    [Tags]    catches-lb-no-health-check    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The API Tier    hang
    Given A Running Session
    And All API Targets Are Healthy
    When One API Target Hangs
    Then The Failed Target Leaves Rotation Within The Detection Bound
    And Every API Request Should Be Answered    ${SESSION}
    When The Fault Ends
    Then The Load Balancer Has All Its Targets Healthy Again Within The Recovery Bound

When The Load Balancer Fails The API Comes Back On Its Address
    [Documentation]    Expected: after the load balancer is SIGKILLed, the API answers on the same address again
    ...    within ${SLA_RECOVERY_MAX}, with its full count of healthy targets, and the session with its file is intact.
    [Tags]    recovery    catches-lb-not-restarted    needs-load-balancer-process
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    And All API Targets Are Healthy
    When The Load Balancer Is Killed
    Then The API Answers On Its Address Again Within The Recovery Bound
    And The Load Balancer Has All Its Targets Healthy Again Within The Recovery Bound
    And The Workspace File "${NOTES}" Still Contains "${NOTES_TEXT}"


*** Keywords ***
All API Targets Are Healthy
    [Documentation]    Every API target in rotation is healthy (at least two; one still draining from an earlier
    ...    stop does not count); their count goes to \${TARGETS}.
    ${registered} =    Get Load Balancer Targets
    ${targets} =    Evaluate    [t for t in $registered if t["state"] not in ("draining", "unused")]
    ${count} =    Get Length    ${targets}
    Should Be True    ${count} >= 2    The API must run on at least two targets behind its load balancer: ${targets}
    Wait Until Load Balancer Has Healthy Targets    ${count}    timeout=${LB_DETECTION_TIMEOUT}
    VAR    ${TARGETS} =    ${count}    scope=TEST

One API Target Is Killed
    [Documentation]    A healthy API target dies (SIGKILL; on AWS FIS stop-task on its task).
    ${name} =    Kill API Target
    VAR    ${TARGET_ID} =    ${name}    scope=TEST

One API Target Hangs
    [Documentation]    A healthy API target stops answering (SIGSTOP; on AWS its port black-holed by FIS), until the
    ...    fault ends.
    ${name} =    Pick Healthy API Target
    ${fault} =    Hang API Target    ${name}
    VAR    ${TARGET_ID} =    ${name}    scope=TEST
    VAR    ${FAULT} =    ${fault}    scope=TEST

The Load Balancer Is Killed
    [Documentation]    SIGKILLs the load balancer in front of the API targets.
    Kill Load Balancer

The Failed Target Leaves Rotation Within The Detection Bound
    [Documentation]    The load balancer takes the failed target out of rotation (unhealthy, draining, or replaced)
    ...    within \${LB_DETECTION_TIMEOUT}.
    ${seconds} =    Wait Until API Target Leaves Rotation    ${TARGET_ID}    timeout=${LB_DETECTION_TIMEOUT}
    Record Metric    lb_target_detection_time    ${seconds}    unit=s

The Load Balancer Has All Its Targets Healthy Again Within The Recovery Bound
    [Documentation]    \${TARGETS} targets healthy within the recovery deadline, the time held to the recovery SLA.
    ${seconds} =    Wait Until Load Balancer Has Healthy Targets    ${TARGETS}    timeout=${RECOVERY_TIMEOUT}
    Record The Recovery    api_target_recovery_time    ${seconds}

The API Answers On Its Address Again Within The Recovery Bound
    [Documentation]    GET /health answers at the API's address again; the time held to the recovery SLA.
    ${seconds} =    Wait Until The API Answers Through The Load Balancer    timeout=${RECOVERY_TIMEOUT}
    Record The Recovery    load_balancer_recovery_time    ${seconds}
