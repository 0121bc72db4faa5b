*** Settings ***
Documentation     Timeout and retry logic on the platform's DynamoDB hop. A call that times out or loses its
...               connection once must be retried by botocore, exactly as against AWS, so that clients never
...               notice; slow but timely answers must only make the API slower; when a share of the connections
...               lose everything, calls are retried on others or refused cleanly, never left hanging.
...
...               Runs on a private platform: the faults hit every DynamoDB call of the platform. On AWS the slow
...               store is FIS latency to DynamoDB on every task of the API service, the lost connections FIS packet
...               loss on a share of their flows (CHAOS_SCOPE=deployment, the deployment held by the test); the single
...               held or dropped call needs the embedded platform.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    timeout-retry


*** Variables ***
${DYNAMODB_DELAY}    300 ms
${CREATES}           5
# Half the connections: the platform pools about as many connections as calls it makes at once (8 here), so with
# half of them lost the calls meet the fault in all but 1 run in 250 (0.5 ** 8), while a retry still finds another.
${LOST_SHARE}        50
${LOST_ROUNDS}       2
${LOST_BURST}        8


*** Test Cases ***
A DynamoDB Call That Times Out Once Is Retried And The Client Never Notices
    [Documentation]    Expected: the next GetItem is held one second past the platform's DynamoDB read timeout;
    ...    botocore times it out and retries, so looking up the session answers 200 RUNNING, and the fault met
    ...    exactly one request.
    [Tags]    catches-no-throttle-retry    needs-dynamodb-hop
    Given A Running Session
    When DynamoDB Holds The Next Session Lookup Past The Platform's Read Timeout
    Then Session Should Have    ${SESSION}    status=RUNNING
    And The Fault Met Exactly One Request

A Dropped DynamoDB Connection Is Retried And The Create Succeeds
    [Documentation]    Expected: the connection carrying the next PutItem is dropped; botocore retries on a new
    ...    connection, the create answers 201 and the session reaches RUNNING; the fault met exactly one request.
    [Tags]    catches-no-throttle-retry    needs-dynamodb-hop
    When DynamoDB Answers The Next 1 PutItem Request With A Dropped Connection
    Then Creating A Session Succeeds After Each Fault Was Hit 1 Time

Slow DynamoDB Answers Slow The API Down But Nothing Fails
    [Documentation]    Expected: with every DynamoDB request ${DYNAMODB_DELAY} late (below the platform's timeouts)
    ...    ${CREATES} creates each answer 201 after at least ${DYNAMODB_DELAY}, their p80 below the p80 of the same
    ...    creates just before the fault plus ${DYNAMODB_DELAY} plus ${CHAOS_SLOW_STORE_ALLOWANCE} (one write before
    ...    the answer, no retry on top), and every session starts and is looked up RUNNING; once DynamoDB is fast
    ...    again the platform is in its steady state.
    [Tags]    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The DynamoDB Route    slow
    Given ${CREATES} Creates Are Timed Before The Fault
    When DynamoDB Answers Everything ${DYNAMODB_DELAY} Late
    Then ${CREATES} Creates Answer Within The Added ${DYNAMODB_DELAY} Plus The Allowance And Their Sessions Run
    When The Fault Ends
    Then The Session Still Exists

Some DynamoDB Calls Time Out But Every Answer Is Clean And In Time
    [Documentation]    Expected: while ${LOST_SHARE} % of the platform's connections to DynamoDB lose everything they
    ...    carry (their calls time out), ${LOST_ROUNDS} rounds of ${LOST_BURST} creates at once and a lookup of every
    ...    session each answer within ${CHAOS_STORE_ANSWER_MAX}: 201 or 200 (the call retried on another
    ...    connection) or a clean 503 or 429 with Retry-After, never a 500 or a hang, some succeed; once the
    ...    connections are healed every session of the test settles, API, DynamoDB and containers agree, no orphan.
    [Tags]    catches-store-no-timeout    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The DynamoDB Route    loss
    Given A Running Session
    When ${LOST_SHARE} Percent Of The Platform's DynamoDB Connections Lose Everything
    Then ${LOST_ROUNDS} Rounds Of ${LOST_BURST} Creates And Their Lookups Answer Cleanly In Time
    When The Fault Ends
    Then Every Session Of The Test Is Consistent
