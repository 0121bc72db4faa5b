"""Load: the open/closed-model engine (``engine``) and the keywords that run it against the platform (``keywords``)."""
