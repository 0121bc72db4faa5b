*** Settings ***
Documentation     After a container dies, the API, the DynamoDB record and the process table must tell the
...               same story about the session: status, restartCount, task and workspace, and never two
...               containers for one session. Checked after a crash of a running session and after a kill
...               while the session is still starting.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         recovery    data-consistency    catches-double-start


*** Test Cases ***
Views Agree After A Running Container Crashes
    [Documentation]    Expected: after a crash (${CRASH_SIGNAL}) and recovery, API and DynamoDB agree on status RUNNING,
    ...    restartCount 1, taskId and workspace; exactly one container runs the session's task; the files
    ...    the API lists are the files on the workspace volume.
    [Tags]    crash    catches-stale-status
    Given A Running Session
    And The Workspace Has File "notes/today.txt" Containing "remember the milk"
    When The Session Container Is Killed With ${CRASH_SIGNAL}
    And The Platform Restarts The Container Within The Recovery Bound
    Then The API, DynamoDB And The Process Table Agree On The Session
    And The Restart Count Is 1 In The API And In DynamoDB
    And The Workspace File "notes/today.txt" Still Contains "remember the milk"

Views Agree After A Container Is Killed While Starting
    [Documentation]    Expected: a container killed (${CRASH_SIGNAL}) while its session is STARTING is replaced; the
    ...    session ends RUNNING with restartCount 1 in the API and in DynamoDB, exactly one container runs its task,
    ...    and the views agree. The embedded platform's start delay makes the STARTING window.
    [Tags]    kill-during-start
    Given A New Session Has Its Container Killed With ${CRASH_SIGNAL} While Starting
    When The Platform Restarts The Container Within The Recovery Bound
    Then The API, DynamoDB And The Process Table Agree On The Session
    And The Restart Count Is 1 In The API And In DynamoDB
    And The Last Failure Reason Is Set And Says What ${CRASH_SIGNAL} Did
