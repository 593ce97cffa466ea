# rigger: runs one Ansible module from the zip this file is the __main__ of
# (`python3 PAYLOAD.zip`, the module's arguments as JSON on stdin:
# {"ANSIBLE_MODULE_ARGS": {...}}). The module prints its JSON result and
# exits, as under Ansible.
import json
import os
import sys

MODULE = '@RIGGER_MODULE_FQN@'


def main():
    try:
        os.getcwd()
    except OSError:
        # A cwd that is gone (or not readable after become) breaks modules
        # that look at it; Ansible moves to the home directory or /.
        try:
            os.chdir(os.path.expanduser('~'))
        except OSError:
            os.chdir('/')
    payload = os.path.realpath(sys.argv[0])
    here = os.path.dirname(payload)
    sys.path = [payload] + [p for p in sys.path if p not in ('', '.', here, payload)]
    params = json.loads(sys.stdin.buffer.read().decode('utf-8'))
    args = params['ANSIBLE_MODULE_ARGS']
    try:
        # Only the internal keys this ansible-core knows: an older one
        # rejects the others as unsupported parameters.
        from ansible.module_utils.common.parameters import PASS_VARS
        for key in [k for k in args if k.startswith('_ansible_') and k[len('_ansible_'):] not in PASS_VARS]:
            del args[key]
    except ImportError:
        pass
    raw = json.dumps(params).encode('utf-8')
    from ansible.module_utils import basic
    basic._ANSIBLE_ARGS = raw
    if hasattr(basic, '_ANSIBLE_PROFILE'):
        basic._ANSIBLE_PROFILE = 'legacy'
    try:
        from ansible.module_utils._internal._ansiballz import _loader
    except ImportError:
        _loader = None
    if _loader is not None and hasattr(_loader, 'run_module'):
        # ansible-core 2.19+: its runner turns an exception into a result.
        _loader.run_module(json_params=raw, profile='legacy', module_fqn=MODULE, modlib_path=payload, extensions={})
    else:
        import runpy
        runpy.run_module(MODULE, init_globals=dict(_module_fqn=MODULE, _modlib_path=payload),
                         run_name='__main__', alter_sys=True)
    raise RuntimeError('module %s returned without exiting (it must call exit_json or fail_json)' % MODULE)


main()
