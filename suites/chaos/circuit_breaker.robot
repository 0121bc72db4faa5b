*** Settings ***
Documentation     Circuit breaker on the session store: during a DynamoDB outage the API must fail fast with a
...               clear 503 instead of hanging on timeouts and retries, its health check must say so, and the
...               circuit must close again once DynamoDB answers. Both times are measured.
...
...               Runs on a private platform: the outage hits every session of the platform. On AWS the outage is FIS
...               packet loss to DynamoDB on every task of the API service (CHAOS_SCOPE=deployment, the deployment held
...               by the test); the busy store needs forged per-read delays, which only the embedded platform has.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    circuit-breaker


*** Variables ***
# Eight store calls in flight (store_max_concurrency) at 400 ms each serve 20 reads/s: 60/s is three times that.
${SLOW_READ}            400 ms
${OVERLOAD_RATE}        60/s
${OVERLOAD_DURATION}    3 s


*** Test Cases ***
The API Fails Fast In A DynamoDB Outage And The Circuit Closes After Recovery
    [Documentation]    Expected: within ${FAULT_REACTION_TIMEOUT} of the outage lookups answer 503 store_unavailable
    ...    with Retry-After faster than ${CHAOS_FAIL_FAST_MAX} and GET /health says degraded, circuit open; once
    ...    DynamoDB is back the circuit closes within ${SLA_RECOVERY_MAX}, the session runs, new ones start.
    [Tags]    catches-no-circuit-breaker    catches-health-lies    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The DynamoDB Route    outage
    Given A Running Session
    When DynamoDB Becomes Unreachable For The Platform
    Then The API Fails Fast With A Clear 503 And Its Health Check Says So
    When The Fault Ends
    Then The Circuit Closes Within The Recovery Bound
    And The Session Still Exists
    And A New Session Is Created And Reaches RUNNING

A Busy Store Is Overload, Not An Outage
    [Documentation]    Expected: with every DynamoDB read of the platform taking ${SLOW_READ}, session reads at
    ...    ${OVERLOAD_RATE} for ${OVERLOAD_DURATION} get only 200 and 429 overloaded (some of each, never 503 or
    ...    500), and GET /health stays ok with the circuit closed: overload is not an outage.
    [Tags]    overload    catches-overload-as-outage    needs-dynamodb-hop
    Given A Running Session
    When Every DynamoDB Read Of The Platform Takes ${SLOW_READ}
    And The Session Is Read At ${OVERLOAD_RATE} For ${OVERLOAD_DURATION}
    Then A Busy Store Should Have Been Answered As Overload    ${LOAD}
    And Platform Should Be Healthy


*** Keywords ***
Every DynamoDB Read Of The Platform Takes ${latency}
    [Documentation]    Each GetItem the platform sends is held ${latency} on the dynamodb hop (the store is busy).
    ${fault} =    Inject AWS Fault    latency    target=GetItem    latency=${latency}
    VAR    ${FAULT} =    ${fault}    scope=TEST

The Session Is Read At ${rate} For ${duration}
    [Documentation]    GET /sessions/{id} of \${SESSION} at ${rate} (open model); the result goes to \${LOAD}.
    ${result} =    Run Constant Arrival Rate Load    get-session    ${rate}    ${duration}    session=${SESSION}
    ...    name=store-overload
    VAR    ${LOAD} =    ${result}    scope=TEST
