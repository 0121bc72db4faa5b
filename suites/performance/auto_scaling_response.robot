*** Settings ***
Documentation     How fast auto-scaling reacts: from a step in load (more sessions wanted than there is capacity)
...               until capacity is added, and until every session of the step runs. Runs on a private platform
...               at its minimum capacity.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    scaling-response    @{SCALING_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         performance    scaling    measurement


*** Test Cases ***
Capacity Is Added Within The Scale-Out Bound After A Load Step
    [Documentation]    Expected: after ${SCALING_LOAD_STEP} sessions are requested at once on a platform at its minimum
    ...    capacity, capacity grows within ${SLA_SCALE_OUT_MAX} of the step and every session of the step runs.
    [Tags]    scale-out    catches-no-scale-out
    Given The Platform Runs At Its Minimum Capacity
    When A Load Step Of ${SCALING_LOAD_STEP} Sessions Arrives
    Then Capacity Is Added Within The Scale-Out Bound
    And Every Session Of The Step Runs

CPU Stays Below The Bound While Capacity Scales Out
    [Documentation]    Expected: while ${SCALING_LOAD_STEP} sessions arrive at once on a platform at its minimum
    ...    capacity, capacity scales out to run them all and the new sessions serve their first file operations
    ...    (${SCALING_IO_RATE} for ${SCALING_SETTLE_DURATION}), the containers' CPU (mean) and the platform's share
    ...    of the machine stay below ${CPU_UTILISATION_MAX_PERCENT} %, memory (peak) below
    ...    ${MEMORY_UTILISATION_MAX_PERCENT} %: the seed's "CPU below 70 %" holds through scaling, not only at a
    ...    fixed capacity.
    [Tags]    utilisation-during-scaling    catches-scale-out-busy-wait
    Given The Platform Runs At Its Minimum Capacity
    And The Resources Are Sampled From Now On    interval=0.2 s
    When A Load Step Of ${SCALING_LOAD_STEP} Sessions Arrives
    And Capacity Scales Out And Every Session Of The Step Runs
    And The New Sessions Serve File Operations At ${SCALING_IO_RATE} For ${SCALING_SETTLE_DURATION}
    Then Utilisation Stayed Within Limits And Every Request Was Answered

Workspace Throughput Holds While Sessions Start And Capacity Scales Out
    [Documentation]    Expected: a running session's file operations at ${SCALING_IO_RATE} for ${SCALING_IO_DURATION}
    ...    (1 KiB PUT, fsynced, and GET in turn) are all answered, none dropped, at a throughput of at least
    ...    ${SCALING_IO_THROUGHPUT_MIN} and p95 below ${SLA_FILE_OPS_P95}, while ${SCALING_IO_STEP} more sessions
    ...    start and capacity scales out for them: the workspace file system (EFS) keeps its baseline throughput
    ...    while the platform scales.
    [Tags]    efs-throughput    catches-workspace-io-blocked-while-starting
    Given 1 User With A Running Session
    And The Platform Runs At Its Minimum Capacity
    When File Operations Run In The Background At ${SCALING_IO_RATE} For ${SCALING_IO_DURATION}
    And A Load Step Of ${SCALING_IO_STEP} Sessions Arrives
    And Capacity Scales Out And Every Session Of The Step Runs
    And The Load Finishes
    Then The Load Meets    other errors below 1    dropped below 1
    ...    throughput at least ${SCALING_IO_THROUGHPUT_MIN}    p95 below ${SLA_FILE_OPS_P95}
