"""Sends numbered log records to an OTLP/HTTP endpoint with the real
OpenTelemetry Python SDK and its protobuf exporter, as an instrumented
application would: `python3 otel_logs.py ENDPOINT TOKEN WORD COUNT`.

Record n is `WORD seq=n group0`, logged through Python's `logging` at
WARNING when n is odd and ERROR when even, by the service `lkt-checkout`
on the host `otel-host`. Exits 0 once the exporter has flushed everything
and reported success, non-zero otherwise."""

import logging
import sys

from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource


def main() -> int:
    endpoint, token, word, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    provider = LoggerProvider(resource=Resource.create({"service.name": "lkt-checkout", "host.name": "otel-host"}))
    exporter = OTLPLogExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=512))
    set_logger_provider(provider)
    logger = logging.getLogger("lkt.shop")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    for n in range(count):
        level = logging.WARNING if n % 2 else logging.ERROR
        logger.log(level, "%s seq=%d group%d", word, n, n // 5000, extra={"order.id": f"o-{n}"})
    flushed = provider.force_flush(timeout_millis=60_000)
    provider.shutdown()
    return 0 if flushed else 1


if __name__ == "__main__":
    sys.exit(main())
