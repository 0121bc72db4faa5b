*** Settings ***
Documentation     Bad input gets a clear error and changes nothing: a create whose userId or clientId breaks the
...               contract (1-64 characters of letters, digits, '_', '.', '-'), misses one, or carries an unknown
...               field is answered 400 invalid_request with a message, and no session is created for it. So is a
...               create whose body is not what the contract describes: not JSON, not an object, ids that are not
...               strings, a huge body, a Content-Type other than application/json.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags         recovery    bad-requests    catches-unchecked-ids


*** Variables ***
${JSON}         application/json
${FORM}         application/x-www-form-urlencoded
${MARK}         bad-body-${{ time.time_ns() % 10**12 }}
${NUMBER}       ${{ 10**9 + time.time_ns() % 10**9 }}
${LONG_ID}      ${{ "u" * 65 }}
${HUGE_BODY}    ${{ '{"userId":"%s-huge","clientId":"qa","pad":"%s"}' % ($MARK, "x" * 2 * 1024 * 1024) }}


*** Test Cases ***
Creates With Bad Ids Or Fields Are Refused With A Clear Error
    [Documentation]    Expected: each of these bodies is answered 400 invalid_request with a message naming the
    ...    field, and none of them creates a session: a userId with a space, one with '/', one with '..', one
    ...    of 65 characters, a missing clientId, an unknown field.
    When Bodies With Bad Ids Or Fields Are Sent
    Then Each Was Refused As Invalid And Created Nothing

Create Bodies The Contract Excludes Are Refused And Leave Nothing Behind    # robocop: off=LEN04,LEN06
    [Documentation]    Expected: each body below is answered with the status its row allows (400 invalid_request;
    ...    a 2 MiB body 400 or 413; a wrong or missing Content-Type 400 or 415) and a JSON error body with a
    ...    message, at once (not after a hang), and afterwards the user the body names has no session, so no
    ...    record and no container either. Ids with every character class the pattern excludes are among them.
    [Tags]    catches-lenient-create-body
    [Template]    A Create With This Body Is Refused And Leaves Nothing
    # what    body    Content-Type    allowed statuses    user to look up
    not JSON    {not json    ${JSON}    400    ${NONE}
    an empty body    ${EMPTY}    ${JSON}    400    ${NONE}
    a JSON array    [{"userId":"${MARK}-array","clientId":"qa"}]    ${JSON}    400    ${MARK}-array
    a JSON string    "${MARK}-string"    ${JSON}    400    ${NONE}
    JSON null    null    ${JSON}    400    ${NONE}
    an empty object    {}    ${JSON}    400    ${NONE}
    no userId    {"clientId":"qa"}    ${JSON}    400    ${NONE}
    an unknown field    {"userId":"${MARK}-extra","clientId":"qa","role":"admin"}    ${JSON}    400    ${MARK}-extra
    userId a number    {"userId":${NUMBER},"clientId":"qa"}    ${JSON}    400    ${NUMBER}
    userId a decimal    {"userId":1.5,"clientId":"qa"}    ${JSON}    400    1.5
    clientId a number    {"userId":"${MARK}-client","clientId":42}    ${JSON}    400    ${MARK}-client
    userId a list    {"userId":["${MARK}-list"],"clientId":"qa"}    ${JSON}    400    ${MARK}-list
    userId an object    {"userId":{"id":"${MARK}-obj"},"clientId":"qa"}    ${JSON}    400    ${NONE}
    userId null    {"userId":null,"clientId":"qa"}    ${JSON}    400    ${NONE}
    userId true    {"userId":true,"clientId":"qa"}    ${JSON}    400    ${NONE}
    userId empty    {"userId":"","clientId":"qa"}    ${JSON}    400    ${NONE}
    userId of 65 characters    {"userId":"${LONG_ID}","clientId":"qa"}    ${JSON}    400    ${LONG_ID}
    userId with a space    {"userId":"${MARK} x","clientId":"qa"}    ${JSON}    400    ${MARK} x
    userId with a slash    {"userId":"${MARK}/x","clientId":"qa"}    ${JSON}    400    ${MARK}/x
    userId with a backslash    {"userId":"${MARK}\\\\x","clientId":"qa"}    ${JSON}    400    ${MARK}\\x
    userId with a final newline    {"userId":"${MARK}-nl\\n","clientId":"qa"}    ${JSON}    400    ${MARK}-nl\n
    userId with a tab    {"userId":"${MARK}\\tx","clientId":"qa"}    ${JSON}    400    ${MARK}\tx
    userId with a NUL    {"userId":"${MARK}\\u0000","clientId":"qa"}    ${JSON}    400    ${MARK}\x00
    userId with a non-ASCII letter    {"userId":"${MARK}-\\u00e9","clientId":"qa"}    ${JSON}    400    ${MARK}-\u00e9
    userId with a full-width digit    {"userId":"${MARK}-\\uff11","clientId":"qa"}    ${JSON}    400    ${MARK}-\uff11
    userId with punctuation    {"userId":"${MARK}:*@~+%","clientId":"qa"}    ${JSON}    400    ${MARK}:*@~+%
    userId '.'    {"userId":".","clientId":"qa"}    ${JSON}    400    ${NONE}
    clientId '..'    {"userId":"${MARK}-dots","clientId":".."}    ${JSON}    400    ${MARK}-dots
    clientId with a final newline    {"userId":"${MARK}-cnl","clientId":"qa\\n"}    ${JSON}    400    ${MARK}-cnl
    a 2 MiB body    ${HUGE_BODY}    ${JSON}    400 413    ${MARK}-huge
    Content-Type text/plain    {"userId":"${MARK}-text","clientId":"qa"}    text/plain    400 415    ${MARK}-text
    a form-encoded body    userId=${MARK}-form&clientId=qa    ${FORM}    400 415    ${MARK}-form
    no Content-Type    {"userId":"${MARK}-bare","clientId":"qa"}    ${NONE}    400 415    ${MARK}-bare


*** Keywords ***
Bodies With Bad Ids Or Fields Are Sent
    [Documentation]    The bodies of the test, in \${BAD_BODIES}: a userId with a space, '/', '..', 65 characters, no
    ...    clientId, an unknown field.
    VAR    ${long} =    ${{ "u" * 65 }}
    VAR    &{space} =    userId=bad id    clientId=qa
    VAR    &{slash} =    userId=a/b    clientId=qa
    VAR    &{dots} =    userId=..    clientId=qa
    VAR    &{too_long} =    userId=${long}    clientId=qa
    VAR    &{no_client} =    userId=someone
    VAR    &{extra} =    userId=someone    clientId=qa    admin=${True}
    VAR    @{BAD_BODIES} =    ${space}    ${slash}    ${dots}    ${too_long}    ${no_client}    ${extra}    scope=TEST

Each Was Refused As Invalid And Created Nothing
    [Documentation]    Each body of \${BAD_BODIES} is answered 400 invalid_request naming the field, creates nothing.
    FOR    ${body}    IN    @{BAD_BODIES}
        The Create Is Refused As Invalid And Creates Nothing    ${body}
    END

A Create With This Body Is Refused And Leaves Nothing
    [Documentation]    POST /sessions with ``body`` and ``content_type`` (None: no header) answers one of the
    ...    ``statuses`` (space-separated) with a JSON error and a message; then ``user`` (unless None) has no
    ...    session. ``what`` names the body in the failure message.
    [Arguments]    ${what}    ${body}    ${content_type}    ${statuses}    ${user}
    ${answer} =    Try To Create Session With Raw Body    ${body}    ${content_type}
    VAR    @{allowed} =    @{{ [int(s) for s in $statuses.split()] }}
    Should Be True    $answer["status"] in $allowed
    ...    msg=Broken promise: a create with ${what} is refused with ${statuses}; got ${answer}[status] ${answer}[body]
    VAR    ${error} =    ${answer}[body]
    Should Be True    isinstance($error, dict) and $error.get("error") and $error.get("message")
    ...    msg=Broken promise: errors are JSON {"error", "message"}; a create with ${what} got ${error}
    IF    $user is not None    User Should Have No Sessions    ${user}

The Create Is Refused As Invalid And Creates Nothing
    [Documentation]    POST /sessions with ${body} answers 400 invalid_request with a message; no session exists.
    [Arguments]    ${body}
    ${answer} =    Try To Create Session    body=${body}
    Should Be Equal As Integers    ${answer}[status]    400
    ...    msg=Broken promise: a bad create is refused with 400 invalid_request; ${body} got ${answer}[status]
    Should Be Equal    ${answer}[error]    invalid_request
    Should Not Be Empty    ${answer}[body][message]    msg=The 400 for ${body} has no message saying what is wrong
