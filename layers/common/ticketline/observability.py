"""Powertools Logger, Tracer and Metrics, set up once and shared by every function."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# No auto-patching: patching everything X-Ray supports (requests, httplib, sqlite3, ...) costs cold start for
# libraries we never call. The one client we use, botocore, is patched with the DynamoDB client (ticketline.db).
tracer = Tracer(auto_patch=False)
metrics = Metrics()
