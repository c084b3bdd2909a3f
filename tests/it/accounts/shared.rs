//! Two gateways on one PostgreSQL and one Redis.
