*** Settings ***
Documentation     Many sessions are requested at the same moment. The platform may refuse some, but every
...               refusal must be a clean, retryable error (429 or 503 with a JSON body and Retry-After), never
...               a 500 and never a hang; what it accepts must start; and nothing may be left behind.

Resource          ../../resources/platform.resource
Resource          ../../resources/chaos.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test With The Platform To Itself
Test Teardown     Clean Up The Test And Revert Faults

Test Tags         recovery    dynamodb-throttling


*** Test Cases ***
Burst Of Creates Gets Clean Answers And Leaves No Orphans
    [Documentation]    Expected: with forged throttles on a share of DynamoDB writes, of ${CONCURRENT_SESSIONS}
    ...    creates sent at once some succeed; each failure is 429 or 503 with a JSON error and Retry-After (no
    ...    500, no hang); the throttles were met, and more of them than creates were refused (the platform
    ...    retried); every created session reaches RUNNING; after delete and a reaper pass no orphan remains.
    [Tags]    burst    forged-throttles    needs-dynamodb-hop    catches-no-throttle-retry
    Given DynamoDB Throttles A Share Of The Platform's Session Writes
    When ${CONCURRENT_SESSIONS} Sessions Are Created At Once
    Then Some Sessions Were Created
    And The Platform Met The Forged Throttles And Retried Past Them
    And Every Failed Create Was A Clean Rejection
    And Every Created Session Reaches RUNNING
    When Every Created Session Is Deleted
    And The Reaper Runs
    Then No Orphaned Container Remains
