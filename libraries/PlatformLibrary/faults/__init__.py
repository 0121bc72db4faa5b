"""Faults: the one fault-proxy client, the injector (guard, ledger, record / undo), and the fault keywords by kind."""
