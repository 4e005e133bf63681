//! `get_user` and `get_session`: read the session, no network (the seed guide's "Retrieving
//! the logged-in User" and "Retrieving the Session Data").

use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::session::{Session, StateData, UserClaims};
use crate::time::UnixTime;

/// The `get_user` operation: the session's user claims, or `None` without a session.
#[derive(Debug, Default)]
pub struct GetUser {
    started: bool,
}

/// The `get_session` operation: the session without its `internal` block, or `None`.
#[derive(Debug, Default)]
pub struct GetSession {
    started: bool,
}

fn read<T>(
    started: &mut bool,
    input: Input,
    map: impl FnOnce(&StateData) -> Option<T>,
) -> Step<Option<T>, UnexpectedInput> {
    match (std::mem::replace(started, true), input) {
        (false, Input::Start) => Step::Effect(Effect::LoadSession),
        (true, Input::Session(session)) => Step::Done(Ok(session.as_deref().and_then(map))),
        (false, _) => Step::Done(Err(UnexpectedInput { expected: "Start" })),
        (true, _) => Step::Done(Err(UnexpectedInput {
            expected: "LoadSession",
        })),
    }
}

impl Operation for GetUser {
    type Output = Option<UserClaims>;
    type Error = UnexpectedInput;
    fn step(&mut self, input: Input, _now: UnixTime) -> Step<Self::Output, Self::Error> {
        read(&mut self.started, input, |s| s.user.clone())
    }
}

impl Operation for GetSession {
    type Output = Option<Session>;
    type Error = UnexpectedInput;
    fn step(&mut self, input: Input, _now: UnixTime) -> Step<Self::Output, Self::Error> {
        read(&mut self.started, input, |s| Some(Session::from(s.clone())))
    }
}
