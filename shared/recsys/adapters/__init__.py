"""Storage adapters: the ports of :mod:`recsys.ports` implemented on DynamoDB and S3.

Every adapter takes a low-level boto3 client and the names of its table or bucket from
the caller, so handlers decide configuration and tests point them at moto. Nothing else in
the package calls boto3.
"""

from recsys.adapters.dynamodb import DynamoDBUserStateStore
from recsys.adapters.s3 import S3CatalogSource, S3EventArchive, S3ModelStore

__all__ = [
    "DynamoDBUserStateStore",
    "S3CatalogSource",
    "S3EventArchive",
    "S3ModelStore",
]
