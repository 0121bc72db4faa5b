"""A second deployment of the session platform, deliberately minimal, written from the deployment contract alone.

``docs/deployment-contract.md`` says what the suite may assume about a platform on AWS (and points at
``docs/platform-contract.md`` for the API it speaks). This package is a deployment written from those pages and
nothing else: it does not import ``testbed/`` and was not written by reading it. Two implementations of one
contract keep the contract honest: where the suite passes against the embedded platform but fails here, either the
contract promises too little (the suite relies on something only the embedded platform does) or this deployment
breaks a promise.

What it is (``docs/aws.md``, "A minimal deployment written from the contract"):

- one HTTP service on 127.0.0.1 with the contract's required calls (sessions, workspace files, health); the calls
  the contract marks optional (``/admin/reaper``, ``/admin/reaper/run``, ``/capacity``) are left out and answer 404,
  and so are the optional session fields (``workspace``, ``createdAt``, ``expiresAt``, ``version`` ...);
- session records in a DynamoDB table, each session one ECS task started with RunTask (``startedBy`` and tag
  ``sessionId``), both on a moto server it starts in its own process (``moto.server.ThreadedMotoServer``); moto's
  state manager is told to keep tasks RUNNING (by default moto moves a task towards STOPPED each time it is
  described), so a task stops only when someone stops it;
- workspaces in a local folder (the contract's EFS), ``<state>/efs/<clientId>/<userId>/``;
- a task that stops under a live session is a crash: a new task, ``restartCount`` up by one, ``lastFailureReason``
  and ``lastRecoveryMs`` set, within a restart budget; a reaper stops tasks without a live session and ends idle and
  expired sessions.

``python -m minimal_deployment up --state DIR`` starts it, ``down --state DIR`` stops it (``__main__``).
"""
