*** Settings ***
Documentation     What the platform promises over a session's whole life: a container that keeps crashing ends
...               FAILED after the restart policy's budget instead of crashing forever, a user's workspace outlives
...               the session (the next session of that user finds its files), one user sees nothing of
...               another's sessions or files, and a session's fields say what each transition did and nothing else.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         recovery    session-lifecycle


*** Variables ***
${NOTES}         notes/plan.txt
${NOTES_TEXT}    kept across sessions


*** Test Cases ***
A Container That Keeps Crashing Ends FAILED After The Restart Budget
    [Documentation]    Expected: the platform restarts a crashed container ${RESTART_MAX} times in a row; the next
    ...    crash within the restart window makes the session FAILED with stoppedReason "restart policy exhausted",
    ...    lastFailureReason naming the crash, and no container left; a file call then answers 409
    ...    session_not_running (final, no retry).
    [Tags]    catches-endless-restarts    catches-ended-session-retryable
    Given A Running Session
    When The Container Crashes ${RESTART_MAX} Times And Is Restarted Each Time
    And The Session Container Is Killed With ${CRASH_SIGNAL}
    Then The Session Ends FAILED Because The Restart Policy Is Exhausted
    And The Session Has No Container Left
    And Its Files Are Refused Because It Is Not Running

A User's Workspace Outlives The Session
    [Documentation]    Expected: after a session is deleted, the next session of the same user and client finds the
    ...    file written in the first one, unchanged (workspaces live on EFS and outlive sessions).
    [Tags]    catches-workspace-deleted-with-session
    Given A Running Session
    And The Workspace Has File "${NOTES}" Containing "${NOTES_TEXT}"
    When The Session Is Deleted
    And The Same User Starts A New Session
    Then The New Session Finds "${NOTES}" Containing "${NOTES_TEXT}"

One User Sees Nothing Of Another User's Sessions Or Files
    [Documentation]    Expected: two users of one client each have a session; neither user's list of sessions
    ...    shows the other's, their workspaces differ, and the second user's workspace neither lists nor serves
    ...    the first user's file.
    [Tags]    workspace-isolation    catches-shared-workspace
    Given A Running Session
    And The Workspace Has File "${NOTES}" Containing "${NOTES_TEXT}"
    When Another User Of The Same Client Starts A Session
    Then Neither User Lists The Other's Session
    And The Second User Sees None Of The First User's Files

A Session's Fields Say What Each Transition Did
    [Documentation]    Expected: sessionId, userId, clientId, workspace, createdAt and expiresAt never change (a
    ...    restart does not renew the session); the start and the restart each move version and updatedAt on; the
    ...    start leaves a task, a start type and duration, and no failure; a file call moves lastActivityAt on and
    ...    nothing else; a restart raises restartCount by one, in a new task, with lastFailureReason and
    ...    lastRecoveryMs set. The fields judged are the profile's \${SESSION_FIELDS_PROMISED}.
    [Tags]    catches-restart-renews-session    catches-updated-at-frozen
    Given A Session Just Created
    When It Starts
    And Its User Writes A File
    And Its Container Crashes And Is Restarted
    Then The Start Changed What A Start Does
    And The File Call Changed Only The Activity
    And The Restart Changed What A Restart Does


*** Keywords ***
A Session Just Created
    [Documentation]    Creates a session; its create answer is \${SESSION} and \${CREATED}.
    ${created} =    Create Session
    VAR    ${SESSION} =    ${created}    scope=TEST
    VAR    ${CREATED} =    ${created}    scope=TEST

It Starts
    [Documentation]    Waits until \${SESSION} runs; its answer then goes to \${RUNNING}.
    Wait Until Session Is Running    ${SESSION}
    ${running} =    Get Session    ${SESSION}
    VAR    ${RUNNING} =    ${running}    scope=TEST

Its User Writes A File
    [Documentation]    Writes a file and waits until the session records the activity: \${ACTIVE}.
    Write Workspace File    ${SESSION}    ${NOTES}    ${NOTES_TEXT}
    ${active} =    Wait Until Session Records Activity    ${SESSION}    ${RUNNING}
    VAR    ${ACTIVE} =    ${active}    scope=TEST

Its Container Crashes And Is Restarted
    [Documentation]    Crashes the container (\${CRASH_SIGNAL}) and waits until the platform restarted it:
    ...    \${RESTARTED}.
    The Session Container Is Killed With ${CRASH_SIGNAL}
    Wait Until Container Restarted    ${SESSION}    ${OLD_PID}
    ${restarted} =    Get Session    ${SESSION}
    VAR    ${RESTARTED} =    ${restarted}    scope=TEST

The Start Changed What A Start Does
    [Documentation]    From the create answer to RUNNING (see `Session Fields Should Follow The Transition`).
    Session Fields Should Follow The Transition    ${CREATED}    ${RUNNING}    start

The File Call Changed Only The Activity
    [Documentation]    From RUNNING to RUNNING with the file call recorded.
    Session Fields Should Follow The Transition    ${RUNNING}    ${ACTIVE}    activity

The Restart Changed What A Restart Does
    [Documentation]    From the active session to its replacement running.
    Session Fields Should Follow The Transition    ${ACTIVE}    ${RESTARTED}    restart

The Container Crashes ${times: int} Times And Is Restarted Each Time
    [Documentation]    Kills the container of \${SESSION} ${times} times, each time after the platform restarted it.
    FOR    ${crash}    IN RANGE    1    ${times} + 1
        The Session Container Is Killed With ${CRASH_SIGNAL}
        Wait Until Container Restarted    ${SESSION}    ${OLD_PID}
        Session Should Have    ${SESSION}    status=RUNNING    restartCount=${crash}
    END

The Session Ends FAILED Because The Restart Policy Is Exhausted
    [Documentation]    The session settles FAILED (not restarted again) with the reasons in the API and DynamoDB.
    TRY
        Wait Until Session Has Status    ${SESSION}    FAILED
    EXCEPT    AS    ${error}
        Fail    The restart policy allows ${RESTART_MAX} restarts; one more crash must end the session FAILED: ${error}
    END
    IF    $RESTART_BUDGET_STOPPED_REASON
        Session Should Have    ${SESSION}    stoppedReason=${RESTART_BUDGET_STOPPED_REASON}    match=contain
    ELSE
        Log    RESTART_BUDGET_STOPPED_REASON is empty: docs/deployment-contract.md names no stoppedReason wording.
    END
    The Last Failure Reason Is Set And Says What ${CRASH_SIGNAL} Did

Its Files Are Refused Because It Is Not Running
    [Documentation]    A file write to the ended \${SESSION} answers 409 session_not_running: final, no retry.
    ${answer} =    Try To Write Workspace File    ${SESSION}    after-the-end.txt    late
    Should Be Equal As Integers    ${answer}[status]    409
    ...    msg=Broken promise: an ended session's files answer 409 session_not_running; got ${answer}[status]
    Should Be Equal    ${answer}[error]    session_not_running

The Same User Starts A New Session
    [Documentation]    Waits until the deleted \${SESSION} is gone, then starts the same user's next session in
    ...    \${SESSION}.
    Wait Until Session Is Gone    ${SESSION}
    ${next} =    Create Session    user_id=${SESSION}[userId]    client_id=${SESSION}[clientId]
    Wait Until Session Is Running    ${next}
    VAR    ${SESSION} =    ${next}    scope=TEST

The New Session Finds "${path}" Containing "${content}"
    [Documentation]    The file written in the user's last session is in the new one, unchanged.
    TRY
        Workspace File Should Have Content    ${SESSION}    ${path}    ${content}
    EXCEPT    AS    ${error}
        Fail
        ...    The user's workspace did not outlive the session (a workspace is kept for the user's next one): ${error}
    END

Another User Of The Same Client Starts A Session
    [Documentation]    A second user of \${SESSION}'s client gets a running session, kept in \${SESSION}; the first
    ...    user's session is kept in \${FIRST}.
    VAR    ${FIRST} =    ${SESSION}    scope=TEST
    ${other} =    Create Session    user_id=${FIRST}[userId]-other    client_id=${FIRST}[clientId]
    Wait Until Session Is Running    ${other}
    VAR    ${SESSION} =    ${other}    scope=TEST

Neither User Lists The Other's Session
    [Documentation]    GET /sessions?userId=... of each user lists its own session and not the other's.
    ${first_list} =    List Sessions Of User    ${FIRST}[userId]
    ${second_list} =    List Sessions Of User    ${SESSION}[userId]
    ${first_ids} =    Evaluate    [s["sessionId"] for s in $first_list]
    ${second_ids} =    Evaluate    [s["sessionId"] for s in $second_list]
    Should Not Contain    ${first_ids}    ${SESSION}[sessionId]
    ...    msg=User ${FIRST}[userId] is shown another user's session
    Should Not Contain    ${second_ids}    ${FIRST}[sessionId]
    ...    msg=User ${SESSION}[userId] is shown another user's session

The Second User Sees None Of The First User's Files
    [Documentation]    The two sessions have different workspaces where the API names them (``workspace`` is
    ...    optional, docs/deployment-contract.md); the second one's file list is empty of the first user's file, and
    ...    reading it there answers 404.
    ${first} =    Get Session    ${FIRST}
    ${second} =    Get Session    ${SESSION}
    IF    'workspace' in $first and 'workspace' in $second
        Should Not Be Equal    ${first}[workspace]    ${second}[workspace]
        ...    msg=Two users share one workspace (${second}[workspace]): each user's files must be private
    ELSE
        Log    The API names no workspace (optional, docs/deployment-contract.md): judged by the files alone.
    END
    ${files} =    List Workspace Files    ${SESSION}
    ${paths} =    Evaluate    [f["path"] for f in $files]
    Should Not Contain    ${paths}    ${NOTES}    msg=User ${SESSION}[userId] can list another user's file ${NOTES}
    Workspace File Should Not Exist    ${SESSION}    ${NOTES}
