//! Output: events and their single renderer.
