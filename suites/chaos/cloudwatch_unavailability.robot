*** Settings ***
Documentation     CloudWatch becomes unreachable for the platform (the fault proxy's cloudwatch hop, its route for
...               the metrics it publishes). Metrics may be dropped, but nothing else may suffer: sessions are
...               created and served as before, the platform stays healthy, and once CloudWatch is back the
...               platform publishes its metrics again. Runs on a private platform that publishes every 0.5 s.

Resource          ../../resources/chaos.resource

Suite Setup       Start The Chaos Suite On A Private Platform    --set    metrics_interval=0.5
Suite Teardown    End The Chaos Suite
Test Setup        Begin Chaos Test
Test Teardown     End Chaos Test

Test Tags         chaos    cloudwatch-outage    needs-private-platform


*** Variables ***
${NOTES}         notes/metrics.txt
${NOTES_TEXT}    written before CloudWatch went away


*** Test Cases ***
Sessions Still Start Without CloudWatch And Metrics Resume When It Returns
    [Documentation]    Expected: while the platform cannot reach CloudWatch, new sessions are created and reach
    ...    RUNNING within ${SESSION_START_TIMEOUT}, the running session serves its files, GET /health stays ok;
    ...    once CloudWatch is back the platform publishes metrics again within ${SLA_RECOVERY_MAX}.
    [Tags]    catches-metrics-in-request-path
    Given A Running Session With The File "${NOTES}" Containing "${NOTES_TEXT}"
    When CloudWatch Becomes Unreachable For The Platform
    Then New Sessions Are Created And Reach RUNNING    3
    And The Workspace File "${NOTES}" Still Contains "${NOTES_TEXT}"
    And Platform Should Be Healthy
    When The Fault Ends
    Then The Platform Publishes Its Metrics Again Within The Recovery Bound
