*** Settings ***
Documentation     Acceptance suites of the session platform.
...
...               The first pabot worker (or plain robot) makes sure a platform runs; on the local profile
...               that starts the embedded platform when none answers. The last worker stops it again, but
...               only if this run started it.

Library           pabot.PabotLib
Resource          ../resources/platform.resource

Suite Setup       Run Setup Only Once    Ensure Platform Is Running
Suite Teardown    Run Teardown Only Once    Stop Embedded Platform If Started By Suite
