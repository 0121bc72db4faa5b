*** Settings ***
Documentation     A session's files stay inside its own workspace on EFS: a path that climbs out of it with
...               ``..`` is refused with a clean 400 before anything is written, and the session's own files are
...               untouched by the attempt. Two users of one client are as far apart as two clients: no spelling
...               of a path lets one user's session read, list or write the other's files.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         workspace-isolation    catches-unsafe-paths


*** Test Cases ***
Paths That Climb Out Of The Workspace Are Refused
    [Documentation]    Expected: PUT of ``../../escaped.txt`` and of ``notes/../../../escaped.txt`` each answer 400
    ...    ``invalid_path`` with a JSON message; the file written before the attempts still holds its content.
    Given A Running Session
    And The Workspace Has File "notes/today.txt" Containing "remember the milk"
    When The User Writes To Each Of "../../escaped.txt" And "notes/../../../escaped.txt"
    Then Every Write Is Refused As An Invalid Path
    And The Workspace File "notes/today.txt" Still Contains "remember the milk"

A User Cannot Reach Another User's Files Of The Same Client By Any Path
    [Documentation]    Expected: through the second user's own session, every spelling of the path to the first
    ...    user's file is refused: ``../<userA>/...``, ``notes/../../<userA>/...``, raw ``%2e%2e/...``, encoded
    ...    slashes ``%2e%2e%2F...``, absolute paths (``/<workspace>/...`` and ``%2F...``) answer 400 invalid_path
    ...    to reads and writes (403 or 404 would keep the promise too); ``<userA>/...`` and the file's own path
    ...    find nothing in the second user's workspace (404). No answer shows the file, the second user's
    ...    workspace lists no file at all, and the first user's file holds exactly what it held.
    [Tags]    catches-path-escapes-to-client-folder    catches-shared-workspace
    Given A Running Session
    And The Workspace Has File "notes/secret.txt" Containing "only for the first user"
    And A Second User Of The Same Client Has A Running Session
    When The Second User Tries Every Spelling Of The Path To "notes/secret.txt" Of The First User
    Then Every Attempt Was Refused And None Showed "only for the first user"
    And The Second User's Workspace Lists No File
    And The Workspace File "notes/secret.txt" Still Contains "only for the first user"
