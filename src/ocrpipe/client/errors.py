"""The upload client's errors. Codes are stable strings (logs, spool rows, exit messages):

``spool_locked``      another client process uses the same spool directory
``insecure_remote``   ``--insecure`` (plaintext) asked for a server that is not on this machine
``bad_option``        contradictory or incomplete options (e.g. a client certificate without its key)
``unreadable_file``   the file to send cannot be read

Server answers keep the gRPC status name in lower case (``unavailable``, ``invalid_argument`` …).
"""

from __future__ import annotations


class ClientError(Exception):
    """A problem the client reports and stops on; ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
