# rigger's plugin bridge: runs the filter, test and lookup plugins that rigger
# has no native implementation for, with the controller's ansible-core.
# One process per run, started on first use. Requests and answers are JSON
# lines: requests on stdin, answers on the original stdout (fd 1 is pointed
# at stderr so that what plugins and Ansible's Display print reaches the
# user's terminal instead of the protocol).
#
# request:  {"kind": "filter"|"test"|"lookup", "name": str, "args": [..],
#            "kwargs": {..}, "dirs": [plugin-holding dirs], "collections": [roots],
#            "variables": {..} (lookup), "basedir": str (lookup)}
# answer:   {"ok": value} | {"missing": true} | {"error": "message"}
from __future__ import annotations

import json
import os
import sys

_proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def _answer(obj):
    _proto.write(json.dumps(obj, default=_plain) + "\n")
    _proto.flush()


def _plain(o):
    """Values JSON has no type for, as Ansible's JSON encoder turns them."""
    import collections.abc as c
    import datetime

    if isinstance(o, (datetime.date, datetime.datetime, datetime.time)):
        return o.isoformat()
    if isinstance(o, c.Mapping):
        return dict(o)
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "surrogateescape")
    if isinstance(o, c.Iterable):
        return list(o)
    # Ansible's worker sends results to the controller pickled: what cannot
    # be pickled fails as it does there, with pickle's reason.
    import pickle

    try:
        pickle.dumps(o)
    except Exception as ex:
        raise TypeError(_message(ex)) from ex
    raise TypeError(f"the plugin returned a value of type {type(o).__name__!r}, which is not JSON data")


_state = {"init": False, "dirs": set()}


def _setup(req):
    from ansible.plugins import loader as pl

    if not _state["init"]:
        from ansible.utils.collection_loader import AnsibleCollectionConfig

        pl.init_plugin_loader(req.get("collections") or [])
        _state["init"] = True
        _state["pl"] = pl
        _state["acc"] = AnsibleCollectionConfig
    for d in req.get("dirs") or []:
        if d not in _state["dirs"] and os.path.isdir(d):
            _state["dirs"].add(d)
            pl.add_all_plugin_dirs(d)
    return pl


def _message(ex):
    msg = str(ex) or type(ex).__name__
    cause = ex.__cause__ or ex.__context__
    if cause is not None and str(cause) and str(cause) not in msg:
        msg = f"{msg}: {cause}"
    return msg


def _jinja(pl, kind, req):
    loader = pl.filter_loader if kind == "filter" else pl.test_loader
    name = req["name"]
    try:
        inst = loader.get(name)
    except KeyError:
        inst = None
    if inst is None:
        return {"missing": True}
    if req.get("probe"):
        return {"ok": None}
    try:
        result = inst.j2_function(*req.get("args", []), **req.get("kwargs", {}))
    except Exception as ex:
        return {"error": f"The {kind} plugin {name!r} failed: {_message(ex)}"}
    if kind == "test":
        result = bool(result)
    return {"ok": result}


def _lookup(pl, req):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    name = req["name"]
    variables = req.get("variables") or {}
    dl = DataLoader()
    if req.get("basedir"):
        dl.set_basedir(req["basedir"])
    templar = Templar(loader=dl, variables=variables)
    try:
        inst = pl.lookup_loader.get(name, loader=dl, templar=templar)
    except Exception as ex:
        return {"error": f"The lookup plugin {name!r} could not be loaded: {_message(ex)}"}
    if inst is None:
        return {"missing": True}
    try:
        result = inst.run(req.get("args", []), variables=variables, **req.get("kwargs", {}))
    except Exception as ex:
        return {"error": _message(ex)}
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        return {"error": f"The lookup plugin {name!r} failed: returned {type(result)} instead of {list}"}
    return {"ok": list(result)}


# What an action plugin may use of ActionBase: everything that runs on the
# controller. These talk to the host through Ansible's connection, which
# rigger does not give the bridge: calling one fails, naming it.
_HOST_METHODS = (
    "_execute_module", "_low_level_execute_command", "_transfer_file", "_transfer_data",
    "_make_tmp_path", "_remove_tmp_path", "_fixup_perms2", "_remote_chmod", "_remote_chown",
    "_remote_chgrp", "_remote_set_user_facl", "_execute_remote_stat", "_remote_file_exists",
    "_remote_expand_user", "_configure_module",
)


class _Connection:
    """The connection an action plugin sees: its shell, no transport."""

    def __init__(self, path):
        from ansible.plugins.loader import shell_loader

        self._shell = shell_loader.get("sh")
        self.has_native_async = False
        self.become = None
        self.transport = "rigger"
        self._path = path

    def __getattr__(self, name):
        raise NotImplementedError(
            f"the action plugin {self._path} uses its connection's {name!r}, which rigger's plugin bridge "
            "does not provide (rigger runs action plugins on the controller without Ansible's connection)"
        )


def _action(pl, req):
    from ansible.errors import AnsibleAction
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play_context import PlayContext
    from ansible.playbook.task import Task
    from ansible.template import Templar

    name, path = req["name"], req["path"]
    d = os.path.dirname(path)
    # A collection's action is found by its FQCN; a legacy name by its directory.
    fqcn = name.count(".") == 2 and not name.startswith(("ansible.legacy.", "ansible.builtin."))
    if not fqcn and ("action", d) not in _state["dirs"]:
        _state["dirs"].add(("action", d))
        pl.action_loader.add_directory(d)
    variables = req.get("variables") or {}
    dl = DataLoader()
    if req.get("basedir"):
        dl.set_basedir(req["basedir"])
    templar = Templar(loader=dl, variables=variables)
    task = Task()
    task.action = name
    task._resolved_action = name
    task.args = req.get("args") or {}
    task.check_mode = bool(req.get("check_mode"))
    task.diff = bool(req.get("diff"))
    pc = PlayContext()
    pc.check_mode = task.check_mode
    pc.diff = task.diff
    try:
        action = pl.action_loader.get(name, task=task, connection=_Connection(path), play_context=pc,
                                      loader=dl, templar=templar, shared_loader_obj=pl)
    except Exception as ex:
        return {"error": f"the action plugin {path} could not be loaded: {_message(ex)}"}
    if action is None:
        return {"error": f"the action plugin {path} was not found by ansible-core's plugin loader"}

    def refuse(method):
        def call(*_a, **_k):
            raise NotImplementedError(
                f"the action plugin {path} calls ActionBase.{method}, which rigger's plugin bridge does not "
                "provide (it would act on the host through Ansible's connection)"
            )
        return call

    for m in _HOST_METHODS:
        setattr(action, m, refuse(m))
    try:
        result = action.run(task_vars=variables)
    except AnsibleAction as ex:
        result = dict(getattr(ex, "result", {}) or {})
        result.setdefault("msg", str(ex))
    except Exception as ex:
        return {"ok": {"failed": True, "msg": f"Task failed: {_message(ex)}"}}
    return {"ok": result}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            pl = _setup(req)
            kind = req["kind"]
            if kind == "lookup":
                out = _lookup(pl, req)
            elif kind == "action":
                out = _action(pl, req)
            else:
                out = _jinja(pl, kind, req)
        except Exception as ex:  # a broken request or ansible-core itself
            out = {"error": f"{type(ex).__name__}: {_message(ex)}"}
        try:
            _answer(out)
        except TypeError as ex:
            if req.get("kind") == "action":
                # As Ansible's worker: the result is replaced by a failure.
                _answer({"ok": {"failed": True, "msg": f"Task result omitted due to queue send failure: {ex}"}})
            else:
                _answer({"error": f"The {req.get('kind')} plugin {req.get('name')!r} failed: {ex}"})


main()
