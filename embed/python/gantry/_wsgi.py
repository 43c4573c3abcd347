"""The pieces of the WSGI environ that are easiest written in Python."""
import threading

import _gantry


class ErrorStream:
    """wsgi.errors: a text stream into the server's error log, one log record per line."""

    def __init__(self):
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._buffer += text
            if "\n" not in self._buffer:
                return len(text)
            *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            _gantry.log_error(line)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        with self._lock:
            rest, self._buffer = self._buffer, ""
        if rest:
            _gantry.log_error(rest)

    def writable(self):
        return True


class FileWrapper:
    """wsgi.file_wrapper (PEP 3333). The server sends a regular file with sendfile(2)."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    # PEP 333's older protocol, still used by some apps.
    def __getitem__(self, key):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise IndexError
