"""The local SQS event source (devserver/queues.py) on moto's SQS server: the template's queues as written, Lambda's
record shape, partial batch responses honoured, a raised error redelivering the batch, the dead-letter queue after
maxReceiveCount, a FIFO group in order."""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devserver.dynamodb_local import use_local_credentials
from devserver.lambda_host import LambdaHost
from devserver.queues import QueuePoller, running_queues
from devserver.template import Template, TemplateError, load_template

VISIBILITY_SECONDS = 1

# Answers by body: "ok" succeeds; "fail-once" is named in batchItemFailures on its first receive; "always-fail" on
# every receive; "raise-once" makes the invocation raise on its first receive.
WORKER = """
import json
import os


def handler(event, context):
    with open(os.environ["SEEN_FILE"], "a") as seen:
        seen.write(json.dumps({"event": event, "jobsUrl": os.environ["JOBS_URL"]}) + "\\n")
    failures = []
    for record in event["Records"]:
        first = record["attributes"]["ApproximateReceiveCount"] == "1"
        if record["body"].startswith("raise-once") and first:
            raise RuntimeError("the whole batch fails")
        if record["body"].startswith("always-fail") or (record["body"].startswith("fail-once") and first):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""

TEMPLATE = f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  SeenFile:
    Type: String
  BatchSize:
    Type: Number
    Default: 3
  Window:
    Type: Number
    Default: 0
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
      SqsManagedSseEnabled: true
      VisibilityTimeout: {VISIBILITY_SECONDS}
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDeadLetters.Arn
        maxReceiveCount: 2
  JobsDeadLetters:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.handler
      Runtime: python3.13
      Environment:
        Variables:
          SEEN_FILE: !Ref SeenFile
          JOBS_URL: !Ref Jobs
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: !Ref BatchSize
            MaximumBatchingWindowInSeconds: !Ref Window
            FunctionResponseTypes: [ReportBatchItemFailures]
"""


class Local:
    def __init__(self, template: Template, endpoint: str, seen_file: Path) -> None:
        self.template = template
        self.seen_file = seen_file
        self.sqs: Any = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        self.jobs = template.queue("Jobs")
        self.dead_letters = template.queue("JobsDeadLetters")
        self.poller = QueuePoller(template, LambdaHost("", template.environment_names, endpoint), endpoint)

    def send(self, body: str, group: str) -> None:
        # An explicit deduplication id: moto numbers (SequenceNumber) only the messages sent with one.
        self.sqs.send_message(
            QueueUrl=self.jobs.url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=f"{group}/{body}"
        )

    def invocations(self) -> list[dict[str, Any]]:
        lines = self.seen_file.read_text().splitlines() if self.seen_file.exists() else []
        return [json.loads(line) for line in lines]

    def bodies_delivered(self) -> list[list[str]]:
        return [[record["body"] for record in seen["event"]["Records"]] for seen in self.invocations()]

    def left_in(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def drain_after_visibility_timeout(self) -> int:
        time.sleep(VISIBILITY_SECONDS + 0.2)
        return self.poller.drain()


@contextlib.contextmanager
def started(tmp_path: Path, **overrides: str) -> Iterator[Local]:
    use_local_credentials()
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(textwrap.dedent(WORKER))
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    seen_file = tmp_path / "seen.jsonl"
    template = load_template(tmp_path / "template.yaml", {"SeenFile": str(seen_file), **overrides})
    with running_queues(template) as endpoint:
        yield Local(template, endpoint, seen_file)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    with started(tmp_path) as running:
        yield running


def test_the_queues_are_created_as_the_template_writes_them(local: Local) -> None:
    attributes = local.sqs.get_queue_attributes(QueueUrl=local.jobs.url, AttributeNames=["All"])["Attributes"]
    assert local.jobs.name == "ticketline-local-Jobs.fifo"
    assert (attributes["FifoQueue"], attributes["ContentBasedDeduplication"]) == ("true", "true")
    assert attributes["VisibilityTimeout"] == str(VISIBILITY_SECONDS)
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": local.dead_letters.arn,
        "maxReceiveCount": 2,
    }
    assert attributes["QueueArn"] == local.jobs.arn
    # As on AWS, a message over the queue's MaximumMessageSize (SQS's default: 1 MiB) is refused when sent.
    with pytest.raises(ClientError, match="shorter than 1048576 bytes"):
        local.send("x" * (1_048_576 + 1), "big")


def test_records_are_in_lambdas_shape_and_the_function_gets_the_templates_queue_url(local: Local) -> None:
    local.send("ok", "g1")

    assert local.poller.drain() == 1
    (seen,) = local.invocations()
    (record,) = seen["event"]["Records"]
    assert seen["jobsUrl"] == local.jobs.url
    assert record["eventSource"] == "aws:sqs"
    assert (record["eventSourceARN"], record["awsRegion"]) == (local.jobs.arn, "us-east-1")
    assert record["attributes"]["MessageGroupId"] == "g1"
    assert record["attributes"]["SequenceNumber"].isdigit()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"messageId", "receiptHandle", "body", "md5OfBody", "messageAttributes"} <= record.keys()
    assert local.left_in(local.jobs.url) == 0


def test_only_the_messages_named_in_batch_item_failures_come_back(local: Local) -> None:
    for body, group in (("ok-1", "a"), ("fail-once", "b"), ("ok-2", "c")):
        local.send(body, group)

    assert local.poller.drain() == 3
    assert local.left_in(local.jobs.url) == 1  # in flight until its visibility timeout
    assert local.drain_after_visibility_timeout() == 1

    first, again = local.bodies_delivered()
    assert sorted(first) == ["fail-once", "ok-1", "ok-2"] and again == ["fail-once"]
    assert local.invocations()[1]["event"]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert local.left_in(local.jobs.url) == 0


def test_a_raised_error_brings_the_whole_batch_back(local: Local) -> None:
    local.send("ok-1", "a")
    local.send("raise-once", "b")

    assert local.poller.drain() == 2
    assert local.left_in(local.jobs.url) == 2
    assert local.drain_after_visibility_timeout() == 2
    assert [sorted(bodies) for bodies in local.bodies_delivered()] == [["ok-1", "raise-once"]] * 2
    assert local.left_in(local.jobs.url) == 0


def test_a_message_failing_max_receive_count_times_goes_to_the_dead_letter_queue(local: Local) -> None:
    local.send("always-fail", "a")

    assert local.poller.drain() == 1
    assert local.drain_after_visibility_timeout() == 1
    assert local.drain_after_visibility_timeout() == 0  # received twice: SQS moves it on the third receive
    assert local.bodies_delivered() == [["always-fail"]] * 2
    assert local.left_in(local.jobs.url) == 0
    (dead,) = local.sqs.receive_message(QueueUrl=local.dead_letters.url)["Messages"]
    assert dead["Body"] == "always-fail"


def test_a_fifo_group_is_delivered_in_order_and_waits_for_its_failed_message(local: Local) -> None:
    for n in range(5):
        local.send(f"{'fail-once' if n == 1 else 'ok'}-{n}", "one-group")

    local.poller.drain()
    # Batches of 3 in order; the failed message holds its group back until its visibility timeout...
    assert local.bodies_delivered() == [["ok-0", "fail-once-1", "ok-2"]]
    local.drain_after_visibility_timeout()
    # ...then the group goes on from it, in order (the worker, unlike Powertools' FIFO processor, let ok-2 through).
    assert local.bodies_delivered()[1:] == [["fail-once-1", "ok-3", "ok-4"]]


def test_a_batch_past_ten_messages_is_gathered_within_the_batching_window(tmp_path: Path) -> None:
    with started(tmp_path, BatchSize="25", Window="1") as local:
        for n in range(25):
            local.send(f"ok-{n}", f"g{n}")

        assert local.poller.poll_once() == 25
        (bodies,) = local.bodies_delivered()
        assert sorted(bodies) == sorted(f"ok-{n}" for n in range(25))
        assert local.left_in(local.jobs.url) == 0


@pytest.mark.parametrize(
    ("written", "refusal"),
    [
        ("Queue: !GetAtt Jobs.Arn", "Worker.Jobs: Queue must be !GetAtt <queue>.Arn"),
        ("deadLetterTargetArn: !GetAtt JobsDeadLetters.Arn", "Jobs: deadLetterTargetArn must be !GetAtt <queue>.Arn"),
    ],
)
def test_a_queue_outside_the_template_is_refused_at_start_up(tmp_path: Path, written: str, refusal: str) -> None:
    key = written.partition(":")[0]
    (tmp_path / "template.yaml").write_text(TEMPLATE.replace(written, f"{key}: arn:aws:sqs:us-east-1:1:elsewhere"))

    with pytest.raises(TemplateError, match=re.escape(refusal)):
        load_template(tmp_path / "template.yaml", {"SeenFile": "unused"})


def test_the_ticketline_template_maps_the_publish_queue() -> None:
    template = load_template(Path(__file__).parents[2] / "template.yaml")
    (event,) = template.queue_events
    queue = template.queue(event.queue_id)
    assert (event.function_id, event.batch_size, event.reports_item_failures) == ("PublishSeatsFunction", 10, True)
    assert queue.fifo and queue.dead_letter_queue_id == "PublishSeatsDeadLetterQueue"
    assert template.function("AdminFunction").environment["PUBLISH_SEATS_QUEUE_URL"] == queue.url
