"""(b)'s reference: a bare FastAPI endpoint answering a constant JSON on GET /postback.

Run as `python -m bench.bare_app --port P`. It is served through `relay.process.cli._uvicorn`, the
very function that configures `relay up`'s server, so both use the same uvicorn options.
"""

import argparse
import asyncio

from fastapi import FastAPI

from relay.core.settings import Settings
from relay.process.cli import _uvicorn

ANSWER = {
    "conversion_id": "conv_3q2-7wEvtpGh2ZeyQ1bKCoSx",
    "status": "accepted",
    "is_duplicate": False,
    "attributed": True,
}

app = FastAPI()


@app.get("/postback")
async def postback() -> dict[str, object]:
    return ANSWER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    settings = Settings(http_host="127.0.0.1", http_port=parser.parse_args().port)
    asyncio.run(_uvicorn(app, settings).serve())


if __name__ == "__main__":
    main()
