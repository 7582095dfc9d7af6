"""What services share: settings, Kafka clients and workers, PostgreSQL, tokens, personal keys.

Also the operator-actions log (`actions/`) and the no-Docker local stack (`localstack/`).
"""
