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

/// Whether `address` reads as an email address: at most 320 bytes, no whitespace or control
/// characters, one `@` with something on each side. (Passwordless and MFA enrolment check it
/// before anything is sent; the server decides whether it exists.)
pub fn is_email_address(address: &str) -> bool {
    address.len() <= 320
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
}

/// Whether `number` is an E.164 phone number: `+`, then 7 to 15 digits, the first not 0.
pub fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}
