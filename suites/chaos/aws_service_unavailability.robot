*** Settings ***
Documentation     AWS service unavailability: DynamoDB answers the platform with 500 InternalServerError and
...               503 ServiceUnavailable, forged on its DynamoDB hop in DynamoDB's exact shape. Short bursts must be
...               retried away; a longer outage must give clients clean 503s with Retry-After, create nothing
...               half-way and lose no session.
...
...               Runs on a private platform: the faults hit every DynamoDB call of the platform.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    aws-unavailable    needs-dynamodb-hop


*** Test Cases ***
Short Bursts Of 500 And 503 From DynamoDB Are Retried Away
    [Documentation]    Expected: the next two PutItem requests answer 500 InternalServerError and the next two
    ...    GetItem requests 503 ServiceUnavailable; botocore retries them, the create answers 201, the session
    ...    reaches RUNNING, and each fault met exactly two requests.
    [Tags]    catches-no-throttle-retry
    When DynamoDB Answers The Next 2 PutItem Requests With InternalServerError
    And DynamoDB Answers The Next 2 GetItem Requests With ServiceUnavailable
    Then Creating A Session Succeeds After Each Fault Was Hit 2 Times

A Longer DynamoDB Outage Gives Clean 503s And Loses Nothing
    [Documentation]    Expected: while DynamoDB answers every request with 503 ServiceUnavailable, a create and a
    ...    lookup answer 503 with a JSON error and Retry-After (no 500, no hang); once it is back the platform is
    ...    healthy within ${SLA_RECOVERY_MAX}, the session runs, the refused create left nothing, new ones start.
    Given A Running Session
    When DynamoDB Answers Every Kind Of Request With ServiceUnavailable
    Then Creating A Session And Looking Up Another Are Refused Cleanly
    When The Fault Ends
    Then The Platform Recovers Within The Recovery Bound
    And Nothing Was Lost And Nothing Half-Made
