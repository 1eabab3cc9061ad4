"""Log setup: plain text (the default) or one JSON object per line (`RELAY_LOG_FORMAT=json`).

A JSON line carries a fixed set of fields, never a record's other attributes, so no extra
that a library attaches (a request, an activity's input) can carry personal data or a
secret into the logs: `time`, `level`, `logger`, `message`, then where known
`conversion_id`, `click_id` (IDs only), `workflow_id`, `workflow_type`, `activity_type`,
`attempt`, and `exception` (a traceback; Relay's error reasons quote no secret).

`conversion_id` and `click_id` are bound while a workflow or an activity of Relay's runs:
the worker's interceptor (`BindIds`) reads them off the run's input, and a log call in
workflow or activity code (`workflow.logger`, `activity.logger` or a module logger) gets
them. An `extra={"conversion_id": ..., "click_id": ...}` given to a log call wins.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

_IDS = ("conversion_id", "click_id")
_TEMPORAL_FIELDS = ("workflow_id", "workflow_type", "activity_type", "attempt")
_bound: ContextVar[dict[str, str]] = ContextVar("relay_log_ids", default={})  # noqa: B039


def bind_ids(value: object) -> None:
    """Bind the conversion and click IDs `value` (a workflow or activity input) holds,
    directly or on its `conversion`, for the rest of this task's log lines."""
    conversion = getattr(value, "conversion", None)
    ids = {}
    for name in _IDS:
        found = getattr(value, name, None) or getattr(conversion, name, None)
        if isinstance(found, str) and found:
            ids[name] = found
    if ids:
        _bound.set(ids)


class _BindActivityIds(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if input.args:
            bind_ids(input.args[0])  # each activity runs in a task of its own
        return await self.next.execute_activity(input)


class _BindWorkflowIds(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if input.args:
            bind_ids(input.args[0])  # a log field only: no command, replay is unchanged
        return await self.next.execute_workflow(input)


class BindIds(Interceptor):
    """Worker interceptor binding each run's conversion and click IDs to its log lines."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityIds(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _BindWorkflowIds


class _AddIds(logging.Filter):
    """Adds the bound IDs, and the conversion ID of the Temporal SDK's own lines about a
    conversion's run (its workflow ID is the conversion ID)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _bound.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        info = _temporal_info(record)
        if (
            not hasattr(record, "conversion_id")
            and info.get("workflow_type") == "ConversionWorkflow"
            and isinstance(info.get("workflow_id"), str)
        ):
            record.conversion_id = info["workflow_id"]
        return True


def _temporal_info(record: logging.LogRecord) -> dict[str, Any]:
    info = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None)
    return info if isinstance(info, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _IDS:
            value = getattr(record, name, None)
            if isinstance(value, str) and value:
                line[name] = value
        info = _temporal_info(record)
        for name in _TEMPORAL_FIELDS:
            if info.get(name) is not None:
                line[name] = info[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_AddIds())
    return handler


def configure_logging(log_format: str) -> None:
    """The root logger at INFO in the chosen format; httpx kept at WARNING (it logs every
    request URL, and outbound postback URLs may carry secrets)."""
    if log_format == "json":
        logging.basicConfig(level=logging.INFO, handlers=[json_handler()], force=True)
        # The run's details are fields of the line, not appended to its message.
        activity.logger.activity_info_on_message = False
        workflow.logger.workflow_info_on_message = False
    else:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    logging.getLogger("httpx").setLevel(logging.WARNING)
