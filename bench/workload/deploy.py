"""Workload W as a pyinfra deploy (the same tasks as site.yml).

pyinfra has no `creates:`: the guarded command is `test -e X || touch X`.
The template gets its five variables passed explicitly (pyinfra templates see
only what the operation is given): bench_id, bench_root (host data),
bench_env, bench_tier (group data), bench_version (a deploy-level constant).
"""

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

BENCH_VERSION = "1.2.3"
app = f"{host.data.bench_root}/app"

kernel = server.shell(name="kernel", commands=["uname -a"])
files.directory(name="directory", path=app, mode="755")
files.put(name="copy a 4 KB file", src="files/blob4k.bin", dest=f"{app}/blob.bin", mode="644")
files.template(
    name="template",
    src="templates/app.conf.j2",
    dest=f"{app}/app.conf",
    mode="644",
    bench_id=host.data.bench_id,
    bench_root=host.data.bench_root,
    bench_env=host.data.bench_env,
    bench_tier=host.data.bench_tier,
    bench_version=BENCH_VERSION,
)
files.line(name="lineinfile with create", path=f"{app}/settings.ini", line="threads=8")
files.file(name="mode change", path=f"{app}/settings.ini", mode="600")
server.shell(name="command with creates", commands=[f"test -e {app}/marker || touch {app}/marker"])
listing = server.shell(name="shell pipeline", commands=[f"ls {app} | sort | wc -l"])
conf = host.get_fact(File, path=f"{app}/app.conf")
files.put(name="the same copy again", src="files/blob4k.bin", dest=f"{app}/blob.bin", mode="644")
