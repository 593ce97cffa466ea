# rigger's payload builder for Ansible modules, run with the controller's
# Python (the one that has ansible-core). Reads a JSON request on stdin and
# writes the payload, a zip file the target's Python runs directly
# (`python3 payload.zip`), to stdout. On error: a message on stderr, exit 2.
#
# The zip holds the module under its Python name (ansible/modules/NAME.py,
# ansible_collections/NS/COLL/plugins/modules/NAME.py, ansible/legacy/NAME.py
# for a library/ module), every module_utils file it imports (directly or
# through other module_utils: ansible.module_utils.* and
# ansible_collections.NS.COLL.plugins.module_utils.*), the packages above
# them, and __main__.py: rigger's runner (wrapper.py).
#
# An import nested in a block (try/except, if, a function) is optional, as
# in Ansible: it is shipped when found and skipped when not. A top-level
# import that is found nowhere fails the build, naming where it looked.
import ast
import io
import json
import os
import re
import sys
import zipfile

# Fixed, so that the same module gives the same bytes (and checksum) on
# every run: a host that has the payload already is not sent it again.
STAMP = (1980, 1, 1, 0, 0, 0)
OLD_COMMON = b'#<<INCLUDE_ANSIBLE_MODULE_COMMON>>'


class BuildError(Exception):
    pass


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def is_module_utils(parts):
    if parts[:2] == ('ansible', 'module_utils'):
        return True
    return len(parts) >= 5 and parts[0] == 'ansible_collections' and parts[3:5] == ('plugins', 'module_utils')


def imports_of(source, name, fqn, is_pkg):
    """(name parts, maybe an attribute, optional) of each module_utils import."""
    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as e:
        raise BuildError('%s does not compile: %s (line %s)' % (name, e.msg, e.lineno))
    found = []

    def absolute(node):
        if not node.level:
            return node.module or ''
        pkg = fqn.split('.')
        if not is_pkg:
            pkg = pkg[:-1]
        if node.level > 1:
            pkg = pkg[:-(node.level - 1)]
        return '.'.join(pkg + ([node.module] if node.module else []))

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    parts = tuple(alias.name.split('.'))
                    if is_module_utils(parts):
                        found.append((parts, False, not top))
            elif isinstance(child, ast.ImportFrom):
                base = tuple(absolute(child).split('.'))
                if is_module_utils(base) or base == ('ansible_collections',) + base[1:3] + ('plugins', 'module_utils'):
                    for alias in child.names:
                        found.append((base + (alias.name,), True, not top))
            else:
                visit(child, False)

    visit(tree, True)
    return found


class Builder:
    def __init__(self, req):
        self.ansible_dir = req['ansible_dir']
        self.roots = req['collection_roots']
        self.mu_dirs = req.get('module_utils_dirs', []) + [os.path.join(self.ansible_dir, 'module_utils')]
        self.files = {}  # zip path -> bytes
        self.done = set()  # name parts already shipped (modules and packages)
        version = re.search(br"__version__\s*=\s*['\"]([^'\"]+)", read(os.path.join(self.ansible_dir, 'release.py')))
        self.version = version.group(1).decode() if version else 'unknown'
        namespace = 'from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n'
        self.files['ansible/__init__.py'] = (namespace + '__version__ = %r\n' % self.version).encode()
        self.files['ansible/module_utils/__init__.py'] = namespace.encode()
        self.done.update([('ansible',), ('ansible', 'module_utils')])

    def locate(self, parts):
        """(file, is_package) of the Python module `parts`, or None."""
        if parts[:3] == ('ansible', 'module_utils', 'six'):
            # six makes its submodules (six.moves...) at run time.
            parts = parts[:3]
        if parts[:2] == ('ansible', 'module_utils'):
            bases, rest = self.mu_dirs, parts[2:]
        elif parts[0] == 'ansible_collections':
            bases, rest = [os.path.join(r, 'ansible_collections') for r in self.roots], parts[1:]
        else:
            return None
        if not rest:
            return None
        for base in bases:
            stem = os.path.join(base, *rest)
            if os.path.isfile(stem + '.py'):
                return stem + '.py', False
            if os.path.isfile(os.path.join(stem, '__init__.py')):
                return os.path.join(stem, '__init__.py'), True
        return None

    def add_packages(self, parts):
        for i in range(1, len(parts)):
            pkg = parts[:i]
            if pkg in self.done:
                continue
            self.done.add(pkg)
            hit = self.locate(pkg)
            data = read(hit[0]) if hit and hit[1] else b''
            self.files['/'.join(pkg) + '/__init__.py'] = data
            if data:
                self.scan(data, '/'.join(pkg) + '/__init__.py', '.'.join(pkg), True)

    def scan(self, source, name, fqn, is_pkg):
        for parts, maybe_attr, optional in imports_of(source, name, fqn, is_pkg):
            self.queue.append((parts, maybe_attr, optional, name))

    def ship_utils(self):
        while self.queue:
            parts, maybe_attr, optional, importer = self.queue.pop(0)
            if parts in self.done or (maybe_attr and parts[:-1] in self.done and self.locate(parts) is None):
                continue
            hit = self.locate(parts)
            if hit is None and maybe_attr:
                parts = parts[:-1]
                if parts in self.done:
                    continue
                hit = self.locate(parts)
            if hit is None:
                if optional:
                    continue
                where = self.mu_dirs if parts[:2] == ('ansible', 'module_utils') else self.roots
                raise BuildError('%s imports %s, which is found nowhere (looked in %s)'
                                 % (importer, '.'.join(parts), ', '.join(where)))
            path, is_pkg = hit
            if parts[:3] == ('ansible', 'module_utils', 'six'):
                parts = parts[:3]
                if parts in self.done:
                    continue
            self.done.add(parts)
            data = read(path)
            zname = '/'.join(parts) + ('/__init__.py' if is_pkg else '.py')
            self.files[zname] = data
            self.add_packages(parts)
            self.scan(data, path, '.'.join(parts), is_pkg)

    def build(self, module_path, fqn, main):
        source = read(module_path)
        if OLD_COMMON in source:
            source = source.replace(OLD_COMMON, b'from ansible.module_utils.basic import *')
        self.queue = []
        self.scan(source, module_path, fqn, False)
        always = [
            ('ansible', 'module_utils', 'basic'),
            ('ansible', 'module_utils', '_internal', '_ansiballz', '_loader'),
            ('ansible', 'module_utils', '_internal', '_json', '_profiles', '_module_legacy_c2m'),
            ('ansible', 'module_utils', '_internal', '_json', '_profiles', '_module_legacy_m2c'),
        ]
        for parts in always:
            self.queue.append((parts, False, parts[2] == '_internal', 'the module runner'))
        self.ship_utils()
        parts = tuple(fqn.split('.'))
        for i in range(1, len(parts)):
            self.files.setdefault('/'.join(parts[:i]) + '/__init__.py', b'')
        self.files['/'.join(parts) + '.py'] = source
        self.files['__main__.py'] = main.encode()
        out = io.BytesIO()
        with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
            for name in sorted(self.files):
                info = zipfile.ZipInfo(name, STAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, self.files[name])
        return out.getvalue()


def main():
    req = json.load(sys.stdin)
    try:
        data = Builder(req).build(req['module'], req['fqn'], req['main'])
    except (BuildError, OSError) as e:
        sys.stderr.write('%s\n' % e)
        sys.exit(2)
    out = getattr(sys.stdout, 'buffer', sys.stdout)
    out.write(data)
    out.flush()


main()
