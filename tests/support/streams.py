"""Delivers the table stream's records to the template's stream consumers, in-process on moto: what Lambda's
event source mapping does on AWS and the local server's stream process does locally (devserver/streams.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from devserver import DEFAULT_TEMPLATE
from devserver.lambda_host import LambdaHost
from devserver.streams import StreamPoller
from devserver.template import load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def deliver_stream_records() -> int:
    """Every record written so far, filtered as the template says, through the consumers' handlers (a fresh
    reader starts at TRIM_HORIZON, so records already delivered are delivered again: consumers are idempotent)."""
    return StreamPoller(load_template(DEFAULT_TEMPLATE), LambdaHost(""), "").drain()


def settle_hint(client: DynamoDBClient, table_name: str, schedule_id: str, timeout: float = 20.0) -> int:
    """Waits until the date's availableSeats hint equals its FREE seats, as the local server's stream consumer
    makes it a second or two after the last change; returns the drift left (0 unless `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        free = sum(
            page["Count"]
            for page in client.get_paginator("query").paginate(
                TableName=table_name,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :seat)",
                FilterExpression="#status = :free",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pk": {"S": f"SCHEDULE#{schedule_id}"},
                    ":seat": {"S": "SEAT#"},
                    ":free": {"S": "FREE"},
                },
                Select="COUNT",
                ConsistentRead=True,
            )
        )
        meta = client.get_item(TableName=table_name, Key={"PK": {"S": f"SCHEDULE#{schedule_id}"}, "SK": {"S": "META"}})
        entry_key = {
            "PK": {"S": f"CONCERT#{meta['Item']['concertId']['S']}"},
            "SK": {"S": f"SCHEDULE#{meta['Item']['startsAt']['S']}#{schedule_id}"},
        }
        entry = client.get_item(TableName=table_name, Key=entry_key, ConsistentRead=True)["Item"]
        drift = int(entry["availableSeats"]["N"]) - free
        if drift == 0 or time.monotonic() > deadline:
            return drift
        time.sleep(0.25)
