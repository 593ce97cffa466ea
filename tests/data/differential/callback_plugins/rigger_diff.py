# A stdout callback for the differential test (tests/it/differential.rs).
#
# ansible-core ships no `json` callback (it lives in the ansible.posix
# collection, which comes from Galaxy, not PyPI), so this plugin writes what the
# test compares as JSON lines shaped like rigger's `--output json` events:
#   {"event": "play_start", "play": NAME}
#   {"event": "task_start", "task": NAME, "handler": BOOL}
#   {"event": "host_result", "host": H, "task": NAME, "status": S, "item": ITEM?, "result": {...}}
# with S one of ok, changed, failed, skipped, unreachable. The lines go to the
# file named by RIGGER_DIFF_EVENTS (stdout keeps ansible's warnings apart).
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: rigger_diff
    type: stdout
    short_description: JSON lines of task starts and host results for rigger's differential test
    description: Writes one JSON object a line to the file named by RIGGER_DIFF_EVENTS.
"""

# Result keys the test compares (others, like timestamps or invocation, vary by tool).
# `debug` results are kept whole: the test compares what they print.
KEPT = ("msg", "rc", "stdout", "stderr", "stat", "changed", "skipped", "failed", "ansible_facts")
DEBUG = ("debug", "ansible.builtin.debug")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "rigger_diff"

    def __init__(self):
        super().__init__()
        path = os.environ.get("RIGGER_DIFF_EVENTS")
        if not path:
            raise RuntimeError("rigger_diff callback: RIGGER_DIFF_EVENTS is not set")
        self._path = path

    def _emit(self, obj):
        # Opened per event: one ansible-playbook run may hold several playbooks.
        with open(self._path, "a", encoding="utf-8") as out:
            out.write(json.dumps(obj, sort_keys=True, default=str) + "\n")

    def _task(self, task, handler):
        self._emit({"event": "task_start", "task": task.get_name().strip(), "handler": handler})

    def v2_playbook_on_play_start(self, play):
        self._emit({"event": "play_start", "play": play.get_name().strip()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task(task, True)

    def _result(self, result, status, item=False):
        r = result._result
        if status == "ok" and r.get("changed"):
            status = "changed"
        ev = {
            "event": "host_result",
            "host": result._host.get_name(),
            "task": result._task.get_name().strip(),
            "status": status,
            "action": result._task.action,
            "result": {k: v for k, v in r.items() if k in KEPT or result._task.action in DEBUG},
        }
        if item:
            loop_var = r.get("ansible_loop_var", "item")
            ev["item"] = r.get("_ansible_item_label", r.get(loop_var))
        self._emit(ev)

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_runner_item_on_ok(self, result):
        self._result(result, "ok", item=True)

    def v2_runner_item_on_failed(self, result):
        self._result(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result):
        self._result(result, "skipped", item=True)
