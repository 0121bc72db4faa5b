*** Settings ***
Documentation     Throttling with forged throttles: DynamoDB answers the platform with
...               ProvisionedThroughputExceededException and ThrottlingException, forged on its DynamoDB hop in
...               DynamoDB's exact shape. Retries must succeed, or failures must be clean with nothing left
...               half-made: no session record without a container, no container without a live session.
...
...               Runs on a private platform without a warm pool and with a one-second application start, so a
...               create can be caught half-way.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
...                   --set    warm_pool_size=0    --set    app_init_delay=1
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    throttling    needs-dynamodb-hop


*** Test Cases ***
Forged Throttles Are Retried Until The Create Succeeds
    [Documentation]    Expected: the next two PutItem requests are throttled (ProvisionedThroughputExceededException)
    ...    and the next two GetItem requests too (ThrottlingException); botocore retries them, the create answers
    ...    201, the session reaches RUNNING and each fault met exactly two requests.
    [Tags]    catches-no-throttle-retry
    When DynamoDB Answers The Next 2 PutItem Requests With ProvisionedThroughputExceededException
    And DynamoDB Answers The Next 2 GetItem Requests With ThrottlingException
    Then Creating A Session Succeeds After Each Fault Was Hit 2 Times

Sustained Throttling Gives Clean 503s And Creates Nothing
    [Documentation]    Expected: while every PutItem is throttled a burst of 4 creates gets 4 clean 503s with a JSON
    ...    error and Retry-After; once the throttling ends the platform is healthy within ${SLA_RECOVERY_MAX},
    ...    none of those users has a session, no container is orphaned and new sessions start.
    When DynamoDB Answers Every PutItem Request With ProvisionedThroughputExceededException
    Then A Burst Of 4 Creates Is Refused Cleanly
    When The Fault Ends
    Then The Refused Creates Left Nothing Behind

A Create Throttled Half-Way Stops Its Container And Leaves No Orphan
    [Documentation]    Expected: a session is caught STARTING, then every UpdateItem is throttled so it cannot be
    ...    recorded RUNNING; the platform stops its container within ${FAULT_REACTION_TIMEOUT}; once the throttling
    ...    ends and the reaper has run the session is settled and no container is orphaned.
    [Tags]    catches-orphan-on-create-failure
    Given A New Session Is Caught While Its Container Starts
    When DynamoDB Answers Every UpdateItem Request With ProvisionedThroughputExceededException
    Then The Platform Gives Up The Start And Stops The Container
    Then The Session Is Settled And Nothing Is Orphaned Once The Fault Ends
