*** Settings ***
Documentation     Sessions over time on a private platform: created at a steady rate for a sustained period.
...               Every iteration must succeed on schedule and within the latency bounds of the profile.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    sustained-sessions
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    sustained-sessions    measurement


*** Test Cases ***
Sessions Are Created Steadily At The Sustained Rate
    [Documentation]    Expected: at ${SUSTAINED_SESSION_RATE} for ${SUSTAINED_DURATION}, each iteration creates a
    ...    session, sees it RUNNING, writes and reads a file and deletes it; every iteration succeeds, none is
    ...    dropped, and the whole cycle's p95 (from its scheduled start) is below ${SLA_SESSION_CYCLE_P95}.
    [Tags]    sessions-per-minute    catches-slow-at-sustained-rate
    When Sessions Go Through Their Whole Lifecycle At ${SUSTAINED_SESSION_RATE} For ${SUSTAINED_DURATION}
    Then Every Request Was Answered Without Error
    And The Load Meets    p95 below ${SLA_SESSION_CYCLE_P95}
