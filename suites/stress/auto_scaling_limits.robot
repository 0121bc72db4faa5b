*** Settings ***
Documentation     Auto-scaling adds capacity under load, but never beyond its ceiling: demand above the ceiling
...               is refused cleanly while everything accepted runs. Runs on a private platform with a low ceiling.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    scaling-limits    @{SCALING_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test On The Suite's Own Platform
Test Teardown     Clean Up The Test

Test Tags         stress    scaling    ceiling


*** Test Cases ***
Scale-Out Stops At The Ceiling And Refuses The Rest Cleanly
    [Documentation]    Expected: when ${SCALING_CEILING + 2} sessions are requested one after another at
    ...    ${SCALING_STEP_RATE} (two more than the ceiling of ${SCALING_CEILING}), the platform scales out, accepts
    ...    at most ${SCALING_CEILING}, every accepted session reaches RUNNING, the rest get clean 429 or 503 refusals
    ...    with Retry-After, and neither the capacity nor any scaling activity goes above the ceiling.
    [Tags]    sequential-arrival
    GROUP    When more sessions than the ceiling are requested
        When ${SCALING_CEILING + 2} Sessions Are Requested One After Another
    END
    GROUP    Then it scales out up to the ceiling and no further
        Then Every Refusal Was Clean
        And At Most ${SCALING_CEILING} Sessions Were Accepted
        And Every Accepted Session Reaches RUNNING
        And Capacity Never Went Above The Ceiling Of ${SCALING_CEILING}
    END

Creates Arriving At The Same Moment Never Exceed The Ceiling
    [Documentation]    Expected: when ${SCALING_CEILING + 2} creates arrive at the same moment, the platform still
    ...    accepts at most ${SCALING_CEILING} and refuses the rest cleanly: an admitted create holds its slot
    ...    from the admission check on, so simultaneous creates cannot all pass the check.
    [Tags]    admission-race    catches-no-backpressure
    GROUP    When more sessions than the ceiling are requested at once
        When A Load Step Of ${SCALING_CEILING + 2} Sessions Arrives
    END
    GROUP    Then no more than the ceiling is accepted
        Then Requests Beyond The Ceiling Were Refused Cleanly
        And The Step Accepted At Most ${SCALING_CEILING} Sessions
    END


*** Keywords ***
The Step Accepted At Most ${limit: int} Sessions
    [Documentation]    The concurrent step in ${BURST} created no more sessions than ${limit}.
    Should Be True    ${BURST.success_count} <= ${limit}
    ...    msg=${BURST.success_count} sessions were accepted at once, the ceiling is ${limit}: admission is not atomic.
