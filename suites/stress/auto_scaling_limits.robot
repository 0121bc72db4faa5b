*** Settings ***
Documentation     Auto-scaling adds capacity under load, but never beyond its ceiling: demand above the ceiling
...               is refused cleanly while everything accepted runs. Runs on a private platform with a low ceiling.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    scaling-limits    @{SCALING_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    scaling    ceiling    catches-capacity-refuses-early


*** Test Cases ***
Scale-Out Stops At The Ceiling And Refuses The Rest Cleanly
    [Documentation]    Expected: when ${SCALING_CEILING + 2} sessions are requested one after another at
    ...    ${SCALING_STEP_RATE} (two more than the ceiling of ${SCALING_CEILING}), the platform scales out, accepts
    ...    exactly ${SCALING_CEILING} (no fewer than the ceiling minus ${CAPACITY_FILL_ALLOWANCE}), every accepted
    ...    session reaches RUNNING, the rest get clean 429 or 503 refusals with Retry-After, and the capacity
    ...    reaches the ceiling while neither it nor any scaling activity goes above it.
    [Tags]    sequential-arrival
    When ${SCALING_CEILING + 2} Sessions Are Requested One After Another
    Then Every Refusal Was Clean
    And The Accepted Sessions Filled The Ceiling Of ${SCALING_CEILING}
    And Every Accepted Session Reaches RUNNING
    And Capacity Reached But Never Went Above The Ceiling Of ${SCALING_CEILING}

Creates Arriving At The Same Moment Never Exceed The Ceiling
    [Documentation]    Expected: when ${SCALING_CEILING + 2} creates arrive at the same moment, the platform still
    ...    accepts exactly ${SCALING_CEILING} (no fewer than the ceiling minus ${CAPACITY_FILL_ALLOWANCE}) and
    ...    refuses the rest cleanly: an admitted create holds its slot from the admission check on, so simultaneous
    ...    creates cannot all pass the check, and none is refused while a slot is free.
    [Tags]    admission-race    catches-no-backpressure
    When A Load Step Of ${SCALING_CEILING + 2} Sessions Arrives
    Then Requests Beyond The Ceiling Were Refused Cleanly
    And The Step Filled The Ceiling Of ${SCALING_CEILING}


*** Keywords ***
The Step Filled The Ceiling Of ${ceiling: int}
    [Documentation]    The concurrent step in ${BURST} created no more sessions than ${ceiling} (more: admission is
    ...    not atomic) and no fewer than ${ceiling} minus \${CAPACITY_FILL_ALLOWANCE} (fewer: refused with room).
    Accepted Creates Should Fill The Ceiling    ${BURST.success_count}    ${ceiling}    at the same moment
