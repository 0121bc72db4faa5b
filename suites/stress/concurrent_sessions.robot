*** Settings ***
Documentation     Several users working in their own sessions at the same time, on a private platform. Every
...               request must succeed within the latency bounds of the profile, and every session must keep
...               exactly one container.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    concurrent-sessions
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    concurrent-sessions    measurement


*** Test Cases ***
Several Users Work In Their Own Sessions At Once
    [Documentation]    Expected: ${CONCURRENT_USERS} sessions (at least three) run at the same time; their users
    ...    do file operations concurrently for ${CONCURRENT_DURATION} without a single error, with p95 below
    ...    ${SLA_STRESS_FILE_OPS_P95}; afterwards every session still runs with exactly one container.
    [Tags]    catches-collapse-under-concurrency
    Given ${CONCURRENT_USERS} Users With Running Sessions
    When Every User Works In Their Own Session At Once For ${CONCURRENT_DURATION}
    Then Every Request Was Answered Without Error
    And The Load Meets    p95 below ${SLA_STRESS_FILE_OPS_P95}
    And Every Session Still Runs With One Container
