*** Settings ***
Documentation     A workspace file reads back exactly as it was last written, byte for byte: after an overwrite
...               with shorter content, after one with longer binary content (every byte value), at sizes from
...               0 bytes to 1 MiB + 1, and after its container was killed and replaced. Length and SHA-256 of
...               what is read are compared with what was written, and so is the size the listing shows.

Resource          ../../resources/platform.resource

Suite Setup       Ensure Platform Is Running
Suite Teardown    Stop Embedded Platform If Started By Suite
Test Setup        Begin Test Sharing The Platform
Test Teardown     Clean Up The Test

Test Tags    recovery
...          file-contents
...          catches-overwrite-keeps-tail
...          catches-stale-read-cache
...          catches-binary-mangled


*** Test Cases ***
A File Reads Back As Last Written After Shorter Overwrites
    [Documentation]    Expected: "data/blob.bin" written with 64 KiB of text, then 1 byte, then 0 bytes reads back
    ...    after each write with exactly the length and SHA-256 last written, and GET /files lists that size.
    Given A Running Session
    And The File "data/blob.bin" Is Written With 65536 Bytes Of Text
    And The File "data/blob.bin" Reads Back As Last Written
    When The File "data/blob.bin" Is Written With 1 Byte Of Text
    Then The File "data/blob.bin" Reads Back As Last Written
    When The File "data/blob.bin" Is Written With 0 Bytes Of Text
    Then The File "data/blob.bin" Reads Back As Last Written

A File Reads Back As Last Written After Longer Binary Overwrites
    [Documentation]    Expected: "data/blob.bin" written with 1 byte of text, then 1 MiB + 1 of binary content (all
    ...    256 byte values), then 64 KiB of other binary content reads back after each write with exactly the length
    ...    and SHA-256 last written, and GET /files lists that size.
    Given A Running Session
    And The File "data/blob.bin" Is Written With 1 Byte Of Text
    When The File "data/blob.bin" Is Written With 1048577 Bytes Of Binary Content
    Then The File "data/blob.bin" Reads Back As Last Written
    When The File "data/blob.bin" Is Written With 65536 Bytes Of Binary Content
    Then The File "data/blob.bin" Reads Back As Last Written

A File Reads Back As Last Written After Its Container Is Replaced
    [Documentation]    Expected: "data/blob.bin" written with 1 MiB + 1 of binary content, then overwritten with
    ...    64 KiB of other binary content, reads back as last written before and after its container is killed
    ...    (${CRASH_SIGNAL}) and replaced: same length, same SHA-256, the listed size too.
    [Tags]    crash    catches-workspace-lost-on-restart
    Given A Running Session
    And The File "data/blob.bin" Is Written With 1048577 Bytes Of Binary Content
    And The File "data/blob.bin" Reads Back As Last Written
    And The File "data/blob.bin" Is Written With 65536 Bytes Of Binary Content
    And The File "data/blob.bin" Reads Back As Last Written
    When The Session Container Is Killed With ${CRASH_SIGNAL}
    And The Platform Restarts The Container Within The Recovery Bound
    Then The File "data/blob.bin" Reads Back As Last Written
