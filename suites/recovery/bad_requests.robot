*** Settings ***
Documentation     Bad input gets a clear error and changes nothing: a create whose userId or clientId breaks the
...               contract (1-64 characters of letters, digits, '_', '.', '-'), misses one, or carries an unknown
...               field is answered 400 invalid_request with a message, and no session is created for it.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         recovery    bad-requests


*** Test Cases ***
Creates With Bad Ids Or Fields Are Refused With A Clear Error
    [Documentation]    Expected: each of these bodies is answered 400 invalid_request with a message naming the
    ...    field, and none of them creates a session: a userId with a space, one with '/', one with '..', one
    ...    of 65 characters, a missing clientId, an unknown field.
    [Tags]    catches-unchecked-ids
    VAR    ${long} =    ${{ "u" * 65 }}
    VAR    &{space} =    userId=bad id    clientId=qa
    VAR    &{slash} =    userId=a/b    clientId=qa
    VAR    &{dots} =    userId=..    clientId=qa
    VAR    &{too_long} =    userId=${long}    clientId=qa
    VAR    &{no_client} =    userId=someone
    VAR    &{extra} =    userId=someone    clientId=qa    admin=${True}
    FOR    ${body}    IN    ${space}    ${slash}    ${dots}    ${too_long}    ${no_client}    ${extra}
        The Create Is Refused As Invalid And Creates Nothing    ${body}
    END


*** Keywords ***
The Create Is Refused As Invalid And Creates Nothing
    [Documentation]    POST /sessions with ${body} answers 400 invalid_request with a message; no session exists.
    [Arguments]    ${body}
    ${answer} =    Try To Create Session    body=${body}
    Should Be Equal As Integers    ${answer}[status]    400
    ...    msg=Broken promise: a bad create is refused with 400 invalid_request; ${body} got ${answer}[status]
    Should Be Equal    ${answer}[error]    invalid_request
    Should Not Be Empty    ${answer}[body][message]    msg=The 400 for ${body} has no message saying what is wrong
