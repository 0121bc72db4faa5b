*** Settings ***
Documentation     CloudWatch becomes unreachable for the platform (the fault proxy's cloudwatch hop, its route for
...               the metrics it publishes). Metrics may be dropped, but nothing else may suffer: sessions are
...               created and served as before, the platform stays healthy, and once CloudWatch is back the
...               platform publishes its metrics again. Runs on a private platform that publishes every 0.5 s.
...
...               On AWS: FIS packet loss to CloudWatch's endpoint on every task that publishes the platform's metrics
...               (the API service's unless the profile says otherwise), with CHAOS_SCOPE=deployment and the
...               deployment held by the test; the metric that shows them flowing again is the profile's
...               (docs/deployment-contract.md, "The route to CloudWatch"): without one the test is skipped.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform    --set    metrics_interval=0.5
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    cloudwatch-outage


*** Variables ***
${NOTES}         notes/metrics.txt
${NOTES_TEXT}    written before CloudWatch went away


*** Test Cases ***
Sessions Still Start Without CloudWatch And Metrics Resume When It Returns
    [Documentation]    Expected: while the platform cannot reach CloudWatch, new sessions are created and reach
    ...    RUNNING within ${SESSION_START_TIMEOUT}, the running session serves its files, GET /health stays ok;
    ...    once CloudWatch is back the platform publishes metrics again within ${SLA_RECOVERY_MAX}.
    [Tags]    catches-metrics-in-request-path    chaos-scope-deployment
    [Setup]    Begin Chaos Test On The CloudWatch Route
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    When CloudWatch Becomes Unreachable For The Platform
    Then New Sessions Are Created And Reach RUNNING    3
    And The Workspace File "${NOTES}" Still Contains "${NOTES_TEXT}"
    And Platform Should Be Healthy
    When The Fault Ends
    Then The Platform Publishes Its Metrics Again Within The Recovery Bound
