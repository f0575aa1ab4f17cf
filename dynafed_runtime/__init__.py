"""The runtime every function shares: configuration, stores, S3 access, the
exception tree and problem+json, CloudEvents, health, metrics, JSON logs, the
digest engine and the base app factory. It never imports a function."""
