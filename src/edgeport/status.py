"""One status vocabulary for every result edgeport records (worker results, conversion attempts,
validate rows, bench rows, quantize variants), so a reader of any report or manifest sees the same words:

- ``ok`` / ``pass``: it ran (``ok``) and, where there is a check, met it (``pass``); ``fail``: it ran and
  missed the check (parity, a threshold);
- ``error``: it did not complete and said why (an exception, a converter's refusal);
- ``crash``: its process died (a signal, an abort); ``timeout``: it was killed at its time limit;
- ``skipped``: not run, for a reason given beside it (a runtime not installed, an input it cannot take);
- conversion attempts also say ``kept`` (its artifact is in the manifest) or ``rejected`` (it ran and its
  artifact failed a check, or a faster passing one was kept).
"""

OK, PASS, FAIL, ERROR, CRASH, TIMEOUT, SKIPPED = "ok", "pass", "fail", "error", "crash", "timeout", "skipped"
KEPT, REJECTED = "kept", "rejected"
FAILED_TO_RUN = (ERROR, CRASH, TIMEOUT)
