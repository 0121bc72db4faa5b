"""``python -m resilience_report results --profile …`` builds the resilience report."""

from .build import main

raise SystemExit(main())
