#!/usr/bin/python
# A collection module for rigger's test of Ansible modules
# (tests/it/ansible_modules.rs): sets KEY=VALUE in a file, with check mode,
# diff and a no_log option; its helpers come from the collection's
# module_utils, imported the two ways Ansible resolves.
from __future__ import annotations

DOCUMENTATION = r"""
module: kv_set
short_description: Set a KEY=VALUE line in a file
options:
  path: {type: path, required: true, description: The file.}
  key: {type: str, required: true, description: The key.}
  value: {type: str, required: true, no_log: true, description: The value (never logged).}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rigger_test.util.plugins.module_utils.kvfile import read_pairs
from ansible_collections.rigger_test.util.plugins.module_utils import kvfile


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            key=dict(type='str', required=True, no_log=False),
            value=dict(type='str', required=True, no_log=True),
        ),
        supports_check_mode=True,
    )
    path, key, value = module.params['path'], module.params['key'], module.params['value']
    pairs = read_pairs(path)
    before = kvfile.render(pairs)
    if (key, value) in pairs:
        module.exit_json(changed=False, path=path, previous='set')
    previous = dict(pairs).get(key)
    pairs = [(k, v) for k, v in pairs if k != key] + [(key, value)]
    after = kvfile.render(pairs)
    result = dict(changed=True, path=path, previous='set' if previous is not None else 'unset')
    if module._diff:
        result['diff'] = dict(before=before, after=after, before_header=path, after_header=path)
    if not module.check_mode:
        with open(path, 'w') as f:
            f.write(after)
    module.warn('kv_set changed %s' % path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
