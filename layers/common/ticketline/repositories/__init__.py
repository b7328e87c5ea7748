"""All DynamoDB access lives here: keys, expressions and transactions."""
