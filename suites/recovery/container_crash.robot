*** Settings ***
Documentation     A session's container dies. The platform must start a new container for the same session,
...               count the restart in the API and in DynamoDB, say why the old one stopped, and keep the
...               user's workspace, all within the recovery bound of the profile.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         recovery    container-crash    catches-no-restart    catches-workspace-lost-on-restart


*** Variables ***
${MANIFEST_PATH}    project/package.json
${MANIFEST}         {"name": "demo-app", "version": "1.0.0", "private": true}


*** Test Cases ***
Container Killed With SIGKILL Is Restarted With The Workspace Intact
    [Documentation]    Expected: after SIGKILL a new container (new pid) serves the same session, restartCount
    ...    is 1 in the API and in the DynamoDB record, lastFailureReason is set (and names SIGKILL where the profile
    ...    knows the platform's wording: ${SIGKILL_FAILURE_REASON}), the session still exists,
    ...    project/package.json is unchanged, and recovery is faster than ${SLA_RECOVERY_MAX}.
    [Tags]    sigkill    catches-stale-status
    Given A Running Session
    And The Workspace Has File "${MANIFEST_PATH}" Containing "${MANIFEST}"
    When The Session Container Is Killed With SIGKILL
    Then The Platform Restarts The Container Within The Recovery Bound
    And The Restart Count Is 1 In The API And In DynamoDB
    And The Last Failure Reason Is Set And Says What SIGKILL Did
    And The Session Still Exists
    And The Workspace File "${MANIFEST_PATH}" Still Contains "${MANIFEST}"

Container Stopped With SIGTERM Is Restarted With The Workspace Intact
    [Documentation]    Expected: a container that stops on SIGTERM is replaced by a new one for the same session,
    ...    restartCount is 1 in the API and in the DynamoDB record, lastFailureReason is set (and says it exited
    ...    where the profile knows the platform's wording: ${SIGTERM_FAILURE_REASON}), project/package.json is
    ...    unchanged, and recovery is faster than ${SLA_RECOVERY_MAX}.
    [Tags]    sigterm
    Given A Running Session
    And The Workspace Has File "${MANIFEST_PATH}" Containing "${MANIFEST}"
    When The Session Container Is Killed With SIGTERM
    Then The Platform Restarts The Container Within The Recovery Bound
    And The Restart Count Is 1 In The API And In DynamoDB
    And The Last Failure Reason Is Set And Says What SIGTERM Did
    And The Session Still Exists
    And The Workspace File "${MANIFEST_PATH}" Still Contains "${MANIFEST}"
