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


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            pl = _setup(req)
            kind = req["kind"]
            out = _lookup(pl, req) if kind == "lookup" else _jinja(pl, kind, req)
        except Exception as ex:  # a broken request or ansible-core itself
            out = {"error": f"{type(ex).__name__}: {_message(ex)}"}
        try:
            _answer(out)
        except TypeError as ex:
            _answer({"error": f"The {req.get('kind')} plugin {req.get('name')!r} failed: {ex}"})


main()
