*** Settings ***
Documentation     AWS service unavailability. Short bursts of 500 InternalServerError and 503 ServiceUnavailable
...               from DynamoDB, forged on its DynamoDB hop in DynamoDB's exact shape, must be retried away; a longer
...               outage, DynamoDB unreachable for the platform, must give clients clean 503s with Retry-After in
...               time, create nothing half-way and lose no session.
...
...               Runs on a private platform: the faults hit every DynamoDB call of the platform. On AWS the outage is
...               FIS packet loss to DynamoDB on every task of the API service (CHAOS_SCOPE=deployment, the deployment
...               held by the test); the bursts need forged answers, which only the embedded platform has.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    aws-unavailable


*** Test Cases ***
Short Bursts Of 500 And 503 From DynamoDB Are Retried Away
    [Documentation]    Expected: the next two PutItem requests answer 500 InternalServerError and the next two
    ...    GetItem requests 503 ServiceUnavailable; botocore retries them, the create answers 201, the session
    ...    reaches RUNNING, and each fault met exactly two requests.
    [Tags]    catches-no-throttle-retry    needs-dynamodb-hop
    When DynamoDB Answers The Next 2 PutItem Requests With InternalServerError
    And DynamoDB Answers The Next 2 GetItem Requests With ServiceUnavailable
    Then Creating A Session Succeeds After Each Fault Was Hit 2 Times

A Longer DynamoDB Outage Gives Clean 503s And Loses Nothing
    [Documentation]    Expected: while DynamoDB is unreachable for the platform, a create and a lookup answer 503
    ...    with a JSON error and Retry-After within ${CHAOS_STORE_ANSWER_MAX} (no 500, no hang); once it is back the
    ...    platform is healthy within ${SLA_RECOVERY_MAX}, the session runs, the refused create left nothing, new
    ...    ones start.
    [Tags]    catches-store-no-timeout    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The DynamoDB Route    outage
    Given A Running Session
    When DynamoDB Becomes Unreachable For The Platform
    Then Creating A Session And Looking Up Another Are Refused Cleanly
    When The Fault Ends
    Then The Platform Recovers Within The Recovery Bound
    And Nothing Was Lost And Nothing Half-Made
