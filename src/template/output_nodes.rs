//! Ansible 2.19's native concatenation: a template whose rendering output
//! exactly one node — one `{{ }}` value and no literal text, even from inside
//! a loop or condition — yields that value with its type
//! (`{% for x in [1] %}{{ x }}{% endfor %}` is the integer 1); two or more
//! nodes are joined as text (`AnsibleEnvironment.concat`).
//!
//! minijinja writes literal text straight to its output and passes each
//! `{{ }}` value through the environment's formatter, so the formatter
//! counts values here and the caller compares the text with the one value.
//! Renders nest (a lookup may render a template while an expression is
//! evaluated), so each render records into its own frame on a stack.

use std::cell::RefCell;

use minijinja::Value;

#[derive(Default)]
struct Frame {
    count: usize,
    first: Option<Value>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Called by the formatter for every value a template outputs.
pub(super) fn record(value: &Value) {
    FRAMES.with(|f| {
        if let Some(frame) = f.borrow_mut().last_mut() {
            frame.count += 1;
            if frame.count == 1 {
                frame.first = Some(value.clone());
            }
        }
    });
}

/// One render's frame; dropping it pops the frame.
pub(super) struct Recorder(());

impl Recorder {
    pub(super) fn start() -> Self {
        FRAMES.with(|f| f.borrow_mut().push(Frame::default()));
        Recorder(())
    }

    /// Forget what was recorded (before rendering again).
    pub(super) fn reset(&self) {
        FRAMES.with(|f| {
            if let Some(frame) = f.borrow_mut().last_mut() {
                *frame = Frame::default();
            }
        });
    }

    /// The value, when exactly one was output.
    pub(super) fn single_node(&self) -> Option<Value> {
        FRAMES.with(|f| match f.borrow().last() {
            Some(Frame { count: 1, first }) => first.clone(),
            _ => None,
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        FRAMES.with(|f| {
            f.borrow_mut().pop();
        });
    }
}
