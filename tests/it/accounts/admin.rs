//! The admin users API.
