//! Power operations on a VM: what a requested state needs from the current
//! one, and the calls that get there.

use std::time::{Duration, Instant};

use super::client::{Session, VmwareError};
use super::soap::MoRef;

/// A requested power state or operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    On,
    Off,
    Suspend,
    /// Reset a running VM (power on a stopped one).
    Restart,
    /// Ask the guest OS to shut down (VMware Tools), then wait for it.
    ShutdownGuest,
    /// Ask the guest OS to reboot (VMware Tools).
    RebootGuest,
}

/// How long a guest shutdown may take before the task fails.
const GUEST_SHUTDOWN_WAIT: Duration = Duration::from_secs(300);

impl PowerAction {
    /// Whether the VM, in `current` (`poweredOn`, `poweredOff`,
    /// `suspended`), needs the action.
    pub fn needed(self, current: &str) -> bool {
        match self {
            PowerAction::On => current != "poweredOn",
            PowerAction::Off => current != "poweredOff",
            PowerAction::Suspend => current != "suspended",
            PowerAction::Restart | PowerAction::RebootGuest => true,
            PowerAction::ShutdownGuest => current == "poweredOn",
        }
    }

    /// The state the VM is in afterwards, as the diff shows it.
    pub fn resulting_state(self) -> &'static str {
        match self {
            PowerAction::On => "poweredOn",
            PowerAction::Off | PowerAction::ShutdownGuest => "poweredOff",
            PowerAction::Suspend => "suspended",
            PowerAction::Restart => "poweredOn (restarted)",
            PowerAction::RebootGuest => "poweredOn (guest rebooted)",
        }
    }
}

async fn power_state(s: &mut Session, vm: &MoRef) -> Result<String, VmwareError> {
    Ok(s.props(vm, &["runtime.powerState"])
        .await?
        .get("runtime.powerState")
        .map(|n| n.text.clone())
        .unwrap_or_default())
}

/// Perform `action` on `vm`.
pub async fn act(s: &mut Session, vm: &MoRef, action: PowerAction) -> Result<(), VmwareError> {
    match action {
        PowerAction::On => s.run_task("PowerOnVM_Task", vm, "", "powering on").await.map(drop),
        PowerAction::Off => s.run_task("PowerOffVM_Task", vm, "", "powering off").await.map(drop),
        PowerAction::Suspend => s.run_task("SuspendVM_Task", vm, "", "suspending").await.map(drop),
        PowerAction::Restart => {
            if power_state(s, vm).await? == "poweredOn" {
                s.run_task("ResetVM_Task", vm, "", "resetting").await.map(drop)
            } else {
                s.run_task("PowerOnVM_Task", vm, "", "powering on").await.map(drop)
            }
        }
        PowerAction::RebootGuest => {
            if power_state(s, vm).await? != "poweredOn" {
                return Err(VmwareError::NotFound(
                    "rebootguest: the VM is not powered on (a guest reboot needs a running guest)".into(),
                ));
            }
            s.call("RebootGuest", vm, "").await.map(drop)
        }
        PowerAction::ShutdownGuest => {
            s.call("ShutdownGuest", vm, "").await?;
            let start = Instant::now();
            loop {
                if power_state(s, vm).await? == "poweredOff" {
                    return Ok(());
                }
                if start.elapsed() > GUEST_SHUTDOWN_WAIT {
                    return Err(VmwareError::Task {
                        what: "shutting down the guest".into(),
                        fault: "Timeout".into(),
                        message: format!(
                            "the VM is still running {} s after the guest was asked to shut down",
                            GUEST_SHUTDOWN_WAIT.as_secs()
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
