"""Relay's JSON answers end with a newline, as command-line tools print theirs: after
`curl`, the shell's prompt starts on its own line (issue 22 #8). Every JSON answer (routes,
errors, the postback fast path) is rendered by this class."""

from typing import Any

from fastapi.responses import JSONResponse


class JSONAnswer(JSONResponse):
    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"
