*** Settings ***
Documentation     A platform whose capacity is full must push back: it refuses what it cannot hold with a clean,
...               retryable 429 capacity_exhausted (JSON error and Retry-After), never crashes or hangs, leaves no
...               container behind, and serves new sessions again once the load drops. The suite fills a private
...               platform with a small ceiling, so tests running beside it are never disturbed.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    exhaustion    @{EXHAUSTION_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    capacity-exhaustion


*** Test Cases ***
Full Platform Answers With Backpressure And Recovers When Load Drops
    [Documentation]    Expected: of creates sent at ${EXHAUSTION_CREATE_RATE} for ${EXHAUSTION_DURATION} to a platform
    ...    with a small ceiling, exactly its ceiling of ${EXHAUSTION_ACCEPT_MAX} are accepted (no more, and no fewer
    ...    than the ceiling minus ${CAPACITY_FILL_ALLOWANCE}) and the rest get 429
    ...    capacity_exhausted with a JSON error and Retry-After (no 500, no hang); it stays healthy; accepted
    ...    sessions reach RUNNING; once deleted, no container is left and a new session runs again.
    [Tags]    backpressure    catches-no-backpressure    catches-capacity-refuses-early
    When Sessions Are Requested At ${EXHAUSTION_CREATE_RATE} For ${EXHAUSTION_DURATION}
    Then The Platform Refused The Excess With Backpressure
    And The Accepted Sessions Filled The Ceiling Of ${EXHAUSTION_ACCEPT_MAX}
    And The Platform Is Healthy
    And Every Accepted Session Reaches RUNNING
    When The Accepted Sessions Are Deleted
    Then No Orphaned Container Remains
    And A New Session Starts Again
