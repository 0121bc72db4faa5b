"""``python -m PlatformLibrary.report results --profile …`` builds the resilience report."""

from .build import main

raise SystemExit(main())
