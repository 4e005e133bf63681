//! Authorization request parameters: which ones the SDK sets itself and a caller or the
//! configuration may not override. Shared by the configuration's validation and the login.

/// Parameters the SDK sets itself; a call may not override them.
pub const RESERVED_PARAMS: [&str; 6] = [
    "client_id",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "nonce",
];
