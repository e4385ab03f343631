//! WebSocket framing (RFC 6455 §5), server side, written for streaming: client frames are
//! decoded in whatever pieces the socket delivers them, their payload unmasked in place and
//! handed on without ever gathering a whole message, and server frames are a header put in
//! front of a payload that is already in its buffer. Nothing here allocates per message
//! except a control frame's payload (at most 125 bytes).

pub mod close;
pub mod header;
pub mod mask;
pub mod pings;
pub mod reader;
pub mod utf8;

pub use header::{MAX_SERVER_HEADER, OpCode};
pub use pings::UnansweredPings;
pub use reader::{FrameLimits, FrameReader};
