*** Settings ***
Documentation     Latency of the API as a client sees it, measured from each request's scheduled send time
...               (corrected for coordinated omission) at a steady rate: session creation, file operations and
...               API reads, each against the SLA of the profile. Runs on a private platform.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    api-latency
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         performance    api-latency    measurement


*** Test Cases ***
Session Creation Latency Is Within The SLA
    [Documentation]    Expected: creates at ${CREATE_RATE} for ${CREATE_DURATION} are all answered 201, their
    ...    mean latency is below ${SLA_CREATE_MEAN} and every single one is below ${SLA_CREATE_MAX} (the per-call
    ...    bound: a few slow creates must not hide in a good mean).
    [Tags]    session-creation    catches-slow-create    catches-slow-create-outliers
    When Sessions Are Requested At ${CREATE_RATE} For ${CREATE_DURATION}
    Then Every Request Was Answered Without Error
    And The Load Meets    mean below ${SLA_CREATE_MEAN}    max below ${SLA_CREATE_MAX}

File Operation Latency Is Within The SLA
    [Documentation]    Expected: file operations at ${NORMAL_API_RATE} for ${LATENCY_RUN_DURATION} are all answered
    ...    and p95 is below ${SLA_FILE_OPS_P95}.
    [Tags]    file-ops    catches-slow-file-ops
    Given 1 User With A Running Session
    When File Operations Run At ${NORMAL_API_RATE} For ${LATENCY_RUN_DURATION}
    Then Every Request Was Answered Without Error
    And The Load Meets    p95 below ${SLA_FILE_OPS_P95}

API Response Time Is Within The SLA
    [Documentation]    Expected: GET /health and GET /sessions/{id} at ${NORMAL_API_RATE} for ${LATENCY_RUN_DURATION}
    ...    are all answered and p95 is below ${SLA_API_P95}.
    [Tags]    api-response    catches-slow-api
    Given 1 User With A Running Session
    When The API Is Read At The Normal Rate For ${LATENCY_RUN_DURATION}
    Then Every Request Was Answered Without Error
    And The Load Meets    p95 below ${SLA_API_P95}
