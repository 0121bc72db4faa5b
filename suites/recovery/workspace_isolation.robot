*** Settings ***
Documentation     A session's files stay inside its own workspace on EFS: a path that climbs out of it with
...               ``..`` is refused with a clean 400 before anything is written, and the session's own files are
...               untouched by the attempt.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         workspace-isolation


*** Test Cases ***
Paths That Climb Out Of The Workspace Are Refused
    [Documentation]    Expected: PUT of ``../../escaped.txt`` and of ``notes/../../../escaped.txt`` each answer 400
    ...    ``invalid_path`` with a JSON message; the file written before the attempts still holds its content.
    [Tags]    catches-unsafe-paths
    GROUP    Given a running session with a file
        Given A Running Session
        And The Workspace Has File "notes/today.txt" Containing "remember the milk"
    END
    GROUP    When the user tries to write outside the workspace
        When The User Writes To "../../escaped.txt"
        Then The Write Is Refused As An Invalid Path
        When The User Writes To "notes/../../../escaped.txt"
        Then The Write Is Refused As An Invalid Path
    END
    GROUP    Then the workspace is as it was
        Then The Workspace File "notes/today.txt" Still Contains "remember the milk"
    END
