"""Powertools Logger, Tracer and Metrics, set up once and shared by every function."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
