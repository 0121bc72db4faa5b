*** Settings ***
Documentation     Idle sessions cost money: the platform must stop a session that nobody uses once its idle timeout
...               has passed, and stop its container. Measures the time from a session's last activity until it is
...               stopped, on a private platform with a short idle timeout.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    auto-shutdown    @{IDLE_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         performance    auto-shutdown    measurement


*** Test Cases ***
Idle Sessions Are Shut Down Within The Bound
    [Documentation]    Expected: ${IDLE_SESSIONS} sessions that nobody touches after writing one file are each stopped
    ...    as idle (stoppedReason idle) within ${SLA_AUTO_SHUTDOWN_MAX} of their last activity, and their
    ...    containers are gone.
    [Tags]    idle-shutdown    catches-no-idle-shutdown
    Given ${IDLE_SESSIONS} Running Sessions Go Idle
    Then Each Idle Session Is Shut Down Within The Bound
