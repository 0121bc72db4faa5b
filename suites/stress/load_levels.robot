*** Settings ***
Documentation     Load levels on a private platform: a hundred file operations per second, and three times the
...               normal API load. Every request must be answered on schedule, without errors and within the
...               latency bounds of the profile, and the platform must stay healthy with its data intact.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    load-levels
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    load-levels    measurement


*** Test Cases ***
A Hundred File Operations Per Second Are Served On Time
    [Documentation]    Expected: file operations (1 KiB PUT, fsynced, and GET in turn) at ${FILE_OPS_RATE} for
    ...    ${FILE_OPS_DURATION} are all answered without error, fewer than ${LOAD_DROPPED_MAX} of the sends are
    ...    dropped, and p95 latency from the scheduled send is below ${SLA_FILE_OPS_P95}: the seed's "file
    ...    operations p95 < 1 s at 100 ops/s" as one requirement (its bound on this profile).
    [Tags]    file-ops-rate    catches-slow-file-ops
    Given 1 User With A Running Session
    When File Operations Run At ${FILE_OPS_RATE} For ${FILE_OPS_DURATION}
    Then The Load Meets    other errors below ${LOAD_ERROR_RATE_MAX}    refused below ${LOAD_ERROR_RATE_MAX}
    ...    dropped below ${LOAD_DROPPED_MAX}    p95 below ${SLA_FILE_OPS_P95}

Platform Stays Stable Under Three Times The Normal Load
    [Documentation]    Expected: with reads, file operations and session lifecycles all at ${STRESS_LOAD_FACTOR} times
    ...    their normal rates for ${STRESS_DURATION}, under ${LOAD_ERROR_RATE_MAX} of each fail or are dropped; p95
    ...    stays below ${SLA_STRESS_API_P95} (reads), ${SLA_STRESS_MIX_FILE_OPS_P95} (files: ${STRESS_SLA_FACTOR} x
    ...    the normal SLAs) and ${SLA_SESSION_CYCLE_P95} (lifecycles); the platform stays healthy, data intact.
    [Tags]    three-times-load    catches-collapse-under-load
    Given 2 Users With Running Sessions
    And The First Of Them Has File "stress/keep.txt" Containing "still here"
    When The Normal Mix Runs At ${STRESS_LOAD_FACTOR} Times Its Rate For ${STRESS_DURATION}
    Then Each Part Of The Mix Stays Within Its Bounds
    And The Platform Is Healthy
    And Every Session Still Runs With One Container
    And The Workspace File "stress/keep.txt" Still Contains "still here"
