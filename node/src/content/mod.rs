//! Content: turning a video into signed, hashed segments, keeping them, and describing them to players.

pub mod buffers;
pub mod catalogue;
pub mod playlist;
pub mod publish;
pub mod store;
