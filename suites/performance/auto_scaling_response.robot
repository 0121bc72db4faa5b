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
    GROUP    Given a platform at its minimum capacity
        Given The Platform Runs At Its Minimum Capacity
    END
    GROUP    When the load steps up
        When A Load Step Of ${SCALING_LOAD_STEP} Sessions Arrives
    END
    GROUP    Then capacity follows in time
        Then Capacity Is Added Within The Scale-Out Bound
        And Every Session Of The Step Runs
    END
