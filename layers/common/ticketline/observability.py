"""Powertools Logger, Tracer and Metrics, set up once and shared by every function."""

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# No auto-patching: patching everything X-Ray supports (requests, httplib, sqlite3, ...) costs cold start for
# libraries we never call. The one client we use, botocore, is patched with the DynamoDB client (ticketline.db).
tracer = Tracer(auto_patch=False)
metrics = Metrics()
# The tracer logs every exception that leaves a captured method with its traceback, at ERROR: each 402, 409 or 410
# of a service entry point (tracer.capture_method) would be an error line. The exception is in the method's X-Ray
# subsegment anyway, and ticketline/api.py logs the unexpected ones (500) itself.
logging.getLogger("aws_lambda_powertools.tracing.tracer").setLevel(logging.CRITICAL)
