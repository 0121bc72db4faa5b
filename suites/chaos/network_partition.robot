*** Settings ***
Documentation     Network partition: the API becomes unreachable for its clients, or DynamoDB's answers stop
...               reaching the platform while its requests still arrive (one-way). Clients must see timeouts or
...               clean refusals (not wrong answers) and get through once the partition heals; whatever happened
...               inside the platform meanwhile, every session must be consistent afterwards.
...
...               Runs on a private platform: the partition of the load balancer's hop cuts every client off. On AWS
...               the clients' partition is on this run's own hop in front of the API (a fault proxy on this
...               machine), so it cuts off this run's probing clients and touches nothing of the deployment; the
...               container killed meanwhile is FIS task-kill-process. The one-way partition stays embedded-only:
...               no FIS action drops DynamoDB's answers while its requests get through.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    network-partition


*** Variables ***
${NOTES}         notes/partition.txt
${NOTES_TEXT}    written before the partition


*** Test Cases ***
Clients Time Out And Retry In A Partition, Then Find Every Session Consistent
    [Documentation]    Expected: during the partition requests time out and a retrying client keeps trying; a
    ...    container that crashes meanwhile is restarted; once healed the client gets through within
    ...    ${SLA_RECOVERY_MAX}, API, DynamoDB and process table agree, restartCount 1 and the file intact.
    [Tags]    catches-stale-status    catches-no-restart
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    And A New Session Is Created And Reaches RUNNING
    When The API Is Cut Off From Its Clients
    And The Session Container Is Killed With SIGKILL
    Then Client Requests Time Out While A Retrying Client Keeps Trying
    When The Fault Ends
    Then The Retrying Client Gets Through Within The Recovery Bound
    And Every Session Of The Test Is Consistent
    And The Session Has Restarted Once With "${NOTES}" Still Containing "${NOTES_TEXT}"

A One-Way Partition From DynamoDB Leaves No Create Half-Made
    [Documentation]    Expected: while DynamoDB's answers to the platform vanish (its writes still land, their
    ...    answers never come back), every create of a burst of 4 answers a clean 503/429 with Retry-After or
    ...    201 (no 500, no hang); once healed and after a reaper pass, a refused create left no session for its
    ...    user, every created session settles with matching containers and no container is orphaned.
    [Tags]    dynamodb-partition    catches-keep-refused-creates    needs-one-way-partition
    When DynamoDB's Answers To The Platform Vanish
    And 4 Sessions Are Created At Once
    Then Every Failed Create Was A Clean Rejection
    When The Fault Ends
    And The Platform Recovers Within The Recovery Bound
    And The Reaper Runs
    Then The Refused Creates Left Nothing Behind
    And Every Session Of The Test Is Consistent
