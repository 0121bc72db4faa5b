"""Core of the library: the component base and its context (profile, run ids, endpoints, tracker, API client),
waiting and the quiet-machine check.
"""
