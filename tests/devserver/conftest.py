"""A small synthetic template (tmp_path) that exercises what Ticketline's own template does not yet use."""

import textwrap
from pathlib import Path

import pytest

ECHO_HANDLER = """
import json
import os
import time


def lambda_handler(event, context):
    if event.get("path") == "/echo/crash":
        raise RuntimeError("boom")
    if event.get("path") == "/slow":
        time.sleep(float(event["queryStringParameters"]["seconds"]))
        return {"statusCode": 200, "body": "late"}
    if event.get("path") == "/echo/huge":  # past Lambda's 6 MB result limit
        return {"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 200)}
    if event.get("path") == "/echo/malformed":
        return "not a proxy response"
    if "httpMethod" not in event:  # a scheduled event
        return {"scheduled": event, "greeting": os.environ["GREETING"]}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Single": "one"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps(
            {
                "event": event,
                "greeting": os.environ["GREETING"],
                "echoOnly": os.environ.get("ECHO_ONLY"),
                "function": context.function_name,
            }
        ),
    }
"""

SYNTHETIC_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Greeting:
    Type: String
    Default: hello
  Capacity:
    Type: Number
    Default: 5
  TickRate:
    Type: String
    Default: rate(2 hours)
  StageRate:
    Type: Number
    Default: 1000
Globals:
  Function:
    Handler: app.lambda_handler
    Timeout: 7
    Environment:
      Variables:
        GREETING: !Ref Greeting
        TABLE: !Ref ThingsTable
        SIMPLE: !Ref SimpleThings
        SUBBED: !Sub "${AWS::StackName}-${Greeting}"
        JOINED: !Join ["/", [!Ref Greeting, !Ref Capacity]]
        ARN: !GetAtt ThingsTable.Arn
  Api:
    Cors: "'https://example.com'"
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: dev
      MethodSettings:
        - {ResourcePath: "/*", HttpMethod: "*", ThrottlingRateLimit: !Ref StageRate, ThrottlingBurstLimit: 3}
        - {ResourcePath: "/~1echo~1fixed", HttpMethod: GET, ThrottlingBurstLimit: 1}
      GatewayResponses:
        UNAUTHORIZED:
          StatusCode: "401"
          ResponseParameters:
            Headers:
              Access-Control-Allow-Origin: "'https://example.com'"
          ResponseTemplates:
            application/json: '{"error": {"code": "UNAUTHENTICATED", "message": "Sign in.", "details": []}}'
        MISSING_AUTHENTICATION_TOKEN:
          StatusCode: "404"
          ResponseTemplates:
            application/json: '{"error": {"code": "NOT_FOUND", "message": "No such route.", "details": []}}'
        THROTTLED:
          StatusCode: "429"
          ResponseParameters:
            Headers:
              Retry-After: "'1'"
              Access-Control-Allow-Origin: "'https://example.com'"
          ResponseTemplates:
            application/json: '{"error": {"code": "THROTTLED", "message": "Slow down.", "details": []}}'
        DEFAULT_5XX:
          ResponseParameters:
            Headers:
              Access-Control-Allow-Origin: "'https://example.com'"
          ResponseTemplates:
            application/json: '{"error": {"code": "FAILED", "message": $context.error.messageString, "details": []}}'
      Auth:
        DefaultAuthorizer: Users
        Authorizers:
          Users:
            UserPoolArn: !GetAtt Pool.Arn
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      MemorySize: 256
      Environment:
        Variables:
          GREETING: overridden-per-function
          ECHO_ONLY: "yes"
      Events:
        Echo:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /echo/{name}
            Method: ANY
        Fixed:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /echo/fixed
            Method: GET
            Auth:
              Authorizer: NONE
        Anything:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /files/{proxy+}
            Method: GET
        Tick:
          Type: Schedule
          Properties:
            Schedule: !Ref TickRate
            Input: '{"task": "tick"}'
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
        Paused:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
            Enabled: false
  ImplicitFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      Events:
        Open:
          Type: Api
          Properties:
            Path: /open
            Method: post
        Slow:
          Type: Api
          Properties:
            Path: /slow
            Method: get
            TimeoutInMillis: 300
  ThingsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${Greeting}-things"
      BillingMode: PROVISIONED
      ProvisionedThroughput:
        ReadCapacityUnits: !Ref Capacity
        WriteCapacityUnits: 2
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: byDate, AttributeType: N}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: ByDate
          KeySchema:
            - {AttributeName: byDate, KeyType: HASH}
          Projection: {ProjectionType: KEYS_ONLY}
          ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: !Ref Capacity}
      StreamSpecification:
        StreamViewType: NEW_IMAGE
      TimeToLiveSpecification:
        AttributeName: expiresAt
        Enabled: true
      SSESpecification:
        SSEEnabled: true
        KMSMasterKeyId: !GetAtt Key.Arn
  SimpleThings:
    Type: AWS::Serverless::SimpleTable
"""


@pytest.fixture
def synthetic_template(tmp_path: Path) -> Path:
    function_dir = tmp_path / "functions" / "echo"
    function_dir.mkdir(parents=True)
    (function_dir / "app.py").write_text(ECHO_HANDLER)
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(SYNTHETIC_TEMPLATE))
    return template
