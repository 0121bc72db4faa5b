*** Settings ***
Documentation     Under load the platform must keep headroom: CPU below ${CPU_UTILISATION_MAX_PERCENT} % and memory
...               below ${MEMORY_UTILISATION_MAX_PERCENT} %. On the embedded platform psutil samples its processes
...               (a private platform, so only this load counts); on AWS CloudWatch's ECS metrics are read.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    utilisation
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         performance    resource-utilisation    measurement


*** Test Cases ***
CPU And Memory Stay Within Limits Under Load
    [Documentation]    Expected: while ${CONCURRENT_USERS} sessions serve file operations at ${FILE_OPS_RATE} for
    ...    ${FILE_OPS_DURATION}, the containers' CPU (mean) stays below ${CPU_UTILISATION_MAX_PERCENT} % and memory
    ...    (peak) below ${MEMORY_UTILISATION_MAX_PERCENT} % of what they reserve, and so does the whole platform's
    ...    share of the machine; every request is answered.
    [Tags]    utilisation    catches-cpu-hog    catches-memory-hog
    Given ${CONCURRENT_USERS} Users With Running Sessions
    And The Resources Are Sampled From Now On
    When File Operations Run At ${FILE_OPS_RATE} For ${FILE_OPS_DURATION}
    Then CPU And Memory Stayed Below Their Limits
    And Every Request Was Answered Without Error
