*** Settings ***
Documentation     Circuit breaker on the session store: during a DynamoDB outage the API must fail fast with a
...               clear 503 instead of hanging on timeouts and retries, its health check must say so, and the
...               circuit must close again once DynamoDB answers. Both times are measured.
...
...               Runs on a private platform: the outage hits every session of the platform.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    circuit-breaker    needs-dynamodb-hop


*** Test Cases ***
During A DynamoDB Outage The API Fails Fast And The Circuit Closes After Recovery
    [Documentation]    Expected: within ${FAULT_REACTION_TIMEOUT} of the outage lookups answer 503 store_unavailable
    ...    with Retry-After faster than ${CHAOS_FAIL_FAST_MAX} and GET /health says degraded, circuit open; once
    ...    DynamoDB is back the circuit closes within ${SLA_RECOVERY_MAX}, the session runs, new ones start.
    [Tags]    catches-no-circuit-breaker    catches-health-lies
    GROUP    Given a running session on a healthy platform
        Given A Running Session
    END
    GROUP    When DynamoDB stops answering the platform
        When DynamoDB Stops Answering The Platform
        Then The API Fails Fast With A Clear 503 And Its Health Check Says So
    END
    GROUP    Then once DynamoDB answers again the circuit closes and the platform serves as before
        When The Fault Ends
        Then The Circuit Closes Within The Recovery Bound
        And The Session Still Exists
        And A New Session Is Created And Reaches RUNNING
    END
