*** Settings ***
Documentation     Cost per session below the budget (seed: "cost per session < $0.25"), from a session's measured
...               billed time. A user's typical session is created, used and deleted; what its containers were billed
...               for is measured as Fargate bills it: each task from its start (ECS pullStartedAt; on the embedded
...               platform the session's create, then its process's create time) to its stop (ECS stoppedAt; on the
...               embedded platform the first look that finds the process gone), per second rounded up, at least a
...               minute per task. The test's few seconds of use are then replaced by ${TYPICAL_SESSION_DURATION} (how
...               long a user keeps a session), everything else billed stays as measured (start-up, the tail after the
...               delete), and it is priced at ${TASK_VCPU} vCPU and ${TASK_MEMORY_GB} GB (the task size) with today's
...               prices from ${PRICING_FILE}. A container still running past ${ORPHAN_GRACE_TIMEOUT} after the delete
...               makes the bill open: not within budget, whatever it cost so far.
...
...               What the cost leaves out, and why: the ALB (an hourly charge per load balancer shared by every
...               session, and LCUs by traffic: a deployment's cost, not one session's); EFS (storage by GB-month of
...               what users keep in their workspaces, which outlive their sessions, and throughput: it depends on the
...               user, not on how the platform runs a session); CloudWatch Logs (ingestion by GB of whatever the
...               containers log, in shared log groups: not measurable per session from here); NAT gateways (hourly
...               per gateway, shared, and per GB processed, e.g. image pulls); data transfer (per GB a user moves);
...               DynamoDB on-demand requests (a few units per create, delete and activity flush: about a thousandth
...               of the budget per typical hour, estimated in the resilience report, not measured per session).
...               None is a cost of how the platform starts, bills and stops a session's task, which is what this
...               test can measure and what a platform defect changes.
...
...               Runs on both targets: on the embedded platform (a private one without warm pool, so the session's
...               task is its own) the suite watches the session's processes; on AWS it reads the session's ECS tasks,
...               which ECS keeps for about an hour after they stop.

Resource          ../../resources/load.resource

Suite Setup       Start A Private Platform For This Suite    session-cost    @{COST_PLATFORM}
Suite Teardown    Stop The Private Platform
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         performance    cost


*** Test Cases ***
A Typical Session Costs Less Than The Budget
    [Documentation]    Expected: a session created, used (a few file operations) and deleted has every container
    ...    stopped within ${ORPHAN_GRACE_TIMEOUT} of its delete, and a typical session (${TYPICAL_SESSION_DURATION}
    ...    of use plus what this one was billed beyond its use) costs less than ${COST_BUDGET_PER_SESSION} USD.
    ...    The cost is recorded as metric session_cost (USD) for the report.
    [Tags]    billing    catches-billed-after-delete
    Given A Running Session Whose Billing Is Watched
    When The User Works With 3 Files
    And The Session Is Deleted
    Then The Session's Billing Ends
    And A Typical Session Costs Less Than ${COST_BUDGET_PER_SESSION} USD
