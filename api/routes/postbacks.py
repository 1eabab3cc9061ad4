"""The postback endpoint networks call: GET or POST, query string, form or JSON."""

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import RuntimeDep
from relay.errors import BadParameter
from relay.ingest import accept_postback
from relay.postback_params import parse_postback

router = APIRouter(tags=["postbacks"])

_MAX_BODY = 16 * 1024
_MAX_PARAMS = 64


class PostbackOut(BaseModel):
    conversion_id: str = Field(examples=["conv_3q2-7wEvtpGh2ZeyQ1bKCoSx"])
    status: str = Field(examples=["accepted"], description="accepted | existing")
    is_duplicate: bool
    attributed: bool


async def _raw_params(request: Request) -> dict[str, str]:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise BadParameter(f"the body is larger than {_MAX_BODY} bytes", "body")
        content_type = request.headers.get("content-type", "")
        if body and "json" in content_type:
            try:
                parsed = json.loads(body)
            except ValueError:
                raise BadParameter("the body is not valid JSON", "body") from None
            if not isinstance(parsed, dict):
                raise BadParameter("the JSON body must be an object", "body")
            params.update(parsed)
        elif body:
            params.update((await request.form()).items())
    if len(params) > _MAX_PARAMS:
        raise BadParameter(f"more than {_MAX_PARAMS} parameters", "body")
    raw: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            raw[str(name)] = str(value)
        elif value is not None:
            raise BadParameter(f"{name} must be a string or a number", str(name))
    return raw


@router.get("/postback", response_model=PostbackOut, operation_id="postback_get")
@router.post("/postback", response_model=PostbackOut, operation_id="postback_post")
async def postback(request: Request, runtime: RuntimeDep) -> PostbackOut:
    """Record a conversion; answered only once Temporal has durably recorded its workflow.

    Parameters (query string, form or JSON): `key`, `click_id` (clickid, cid, subid),
    `event` (status, goal, type; default sale), `payout` (sum, amount), `currency`,
    `txid` (transaction_id, tid), `email`, `phone`, `external_id`.
    """
    params = parse_postback(await _raw_params(request))
    answer = await accept_postback(runtime, params)
    return PostbackOut(
        conversion_id=answer.conversion_id,
        status=answer.status,
        is_duplicate=answer.is_duplicate,
        attributed=answer.attributed,
    )
