"""A Docker-free local stack: AWS data resources on an embedded moto server."""
