*** Settings ***
Documentation     Acceptance suites of the session platform.
...
...               The first pabot worker (or plain robot) makes sure a platform runs; on the local profile
...               that starts the embedded platform when none answers. The last worker stops it again, but
...               only if this run started it. Before anything else, faults that a run killed with SIGKILL left
...               behind (recorded in the fault ledger) are reverted, so every run starts on a clean platform.
Metadata          Profile    ${PROFILE}
Metadata          Target    ${TARGET}
Metadata          Run id    %{PLATFORM_SUITE_RUN_ID=one per process (set PLATFORM_SUITE_RUN_ID to share one)}

Library           pabot.PabotLib
Resource          ../resources/platform.resource

Suite Setup       Run Setup Only Once    Prepare A Clean Platform
Suite Teardown    Run Teardown Only Once    Stop Embedded Platform If Started By Suite
