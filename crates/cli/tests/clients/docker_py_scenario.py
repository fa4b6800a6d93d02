"""docker-py 7 against `berth serve` (crates/cli/tests/api_clients.rs).

Run with DOCKER_HOST set and IMAGE naming a busybox image in berth. Each
step prints `ok STEP`; the first failure raises (exit status 1).
"""
import io
import os
import sys
import tarfile
import time

import docker

IMAGE = os.environ.get("IMAGE", "bb:test")
client = docker.from_env(version="auto", timeout=60)
made = []


def ok(step):
    print(f"ok {step}", flush=True)


def tar_of(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


try:
    assert client.ping()
    v = client.version()
    assert v["ApiVersion"] and v["Version"], v
    ok("ping and version")

    # containers.run in the foreground: the output, then (with remove) gone.
    out = client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"], remove=True)
    assert out == b"out\n", out
    out = client.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"],
                                stdout=False, stderr=True, remove=True)
    assert out == b"err\n", out
    try:
        client.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
        raise AssertionError("a failing run raised nothing")
    except docker.errors.ContainerError as e:
        assert e.exit_status == 3 and b"bad" in e.stderr, (e.exit_status, e.stderr)
    ok("containers.run in the foreground")

    # containers.run detached, with labels, env, a name; list and get.
    c = client.containers.run(IMAGE, ["sh", "-c", "echo started; echo $GREETING; exec sleep 300"],
                              detach=True, name="pyweb", labels={"app": "py"},
                              environment={"GREETING": "hi"})
    made.append(c)
    assert c.name == "pyweb"
    c.reload()
    assert c.status == "running", c.status
    assert c.labels["app"] == "py"
    assert [x.id for x in client.containers.list(filters={"label": "app=py"})] == [c.id]
    assert client.containers.get("pyweb").id == c.id
    assert c.image.id == client.images.get(IMAGE).id
    ok("containers.run detached, list, get")

    # logs: whole, with timestamps, streamed (follow until the container
    # ends is tested on another container below).
    for _ in range(50):
        if c.logs() == b"started\nhi\n":
            break
        time.sleep(0.1)
    assert c.logs() == b"started\nhi\n", c.logs()
    assert c.logs(stdout=False) == b""
    ts = c.logs(timestamps=True).decode().splitlines()
    assert len(ts) == 2 and ts[0].endswith(" started") and "T" in ts[0], ts
    ok("logs")

    # exec_run: plain, demuxed, streamed, streamed and demuxed, tty, env,
    # workdir, user, the exit code.
    r = c.exec_run(["sh", "-c", "echo o; sleep 0.2; echo e >&2; exit 4"])
    assert r.exit_code == 4 and r.output == b"o\ne\n", r
    r = c.exec_run(["sh", "-c", "echo o; sleep 0.2; echo e >&2"], demux=True)
    assert r.exit_code == 0 and r.output == (b"o\n", b"e\n"), r
    r = c.exec_run(["sh", "-c", "echo one; sleep 0.2; echo two"], stream=True)
    assert r.exit_code is None
    assert b"".join(r.output) == b"one\ntwo\n"
    r = c.exec_run(["sh", "-c", "echo o; sleep 0.2; echo e >&2"], stream=True, demux=True)
    chunks = list(r.output)
    assert (b"o\n", None) in chunks and (None, b"e\n") in chunks, chunks
    r = c.exec_run(["sh", "-c", "tty >/dev/null && echo tty"], tty=True)
    assert r.exit_code == 0 and r.output == b"tty\r\n", r
    r = c.exec_run(["sh", "-c", "echo $A:$(pwd):$(id -u)"], environment={"A": "b"},
                   workdir="/tmp", user="1000")
    assert r.output == b"b:/tmp:1000\n", r
    ok("exec_run")

    # put_archive / get_archive, and stat.
    assert c.put_archive("/tmp", tar_of("hello.txt", b"hello archive\n"))
    stream, stat = c.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == 14, stat
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
        assert t.extractfile("hello.txt").read() == b"hello archive\n"
    assert c.exec_run(["cat", "/tmp/hello.txt"]).output == b"hello archive\n"
    try:
        c.get_archive("/nonexistent")
        raise AssertionError("get_archive of a missing path raised nothing")
    except docker.errors.NotFound:
        pass
    ok("put_archive and get_archive")

    # attach (a stream of the container's output) and wait.
    a = client.containers.create(IMAGE, ["sh", "-c", "sleep 1; echo one; echo two >&2; exit 7"])
    made.append(a)
    a.start()
    got = b"".join(a.attach(stream=True, logs=True))
    assert got == b"one\ntwo\n", got
    res = a.wait()
    assert res["StatusCode"] == 7, res
    a.reload()
    assert a.status == "exited" and a.attrs["State"]["ExitCode"] == 7
    ok("attach and wait")

    # stop, restart, kill, top, stats.
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited"
    c.restart(timeout=1)
    c.reload()
    assert c.status == "running"
    top = c.top()
    assert any("sleep" in " ".join(p) for p in top["Processes"]), top
    st = c.stats(stream=False)
    assert "memory_stats" in st and "cpu_stats" in st, st.keys()
    c.kill()
    c.reload()
    assert c.status == "exited"
    ok("stop, restart, top, stats, kill")

    # networks: create, a container on it reached by its name, connect,
    # list, remove.
    net = client.networks.create("pynet", labels={"by": "py"})
    made.append(net)
    assert client.networks.get(net.id).name == "pynet"
    assert [n.id for n in client.networks.list(filters={"label": "by=py"})] == [net.id]
    srv = client.containers.run(IMAGE, ["sleep", "300"], detach=True, name="pysrv", network="pynet")
    made.append(srv)
    out = client.containers.run(IMAGE, ["ping", "-c1", "-W2", "pysrv"], network="pynet", remove=True)
    assert b"1 packets received" in out, out
    net.reload()
    assert srv.id in [x.id for x in net.containers], net.attrs
    other = client.containers.create(IMAGE, ["sleep", "300"])
    made.append(other)
    net.connect(other)
    other.reload()
    assert "pynet" in other.attrs["NetworkSettings"]["Networks"]
    net.disconnect(other)
    ok("networks")

    # volumes: create, use, inspect, remove.
    vol = client.volumes.create("pyvol", labels={"by": "py"})
    made.append(vol)
    client.containers.run(IMAGE, ["sh", "-c", "echo kept > /data/f"], remove=True,
                          volumes={"pyvol": {"bind": "/data", "mode": "rw"}})
    out = client.containers.run(IMAGE, ["cat", "/data/f"], remove=True,
                                volumes=["pyvol:/data:ro"])
    assert out == b"kept\n", out
    assert client.volumes.get("pyvol").attrs["Labels"] == {"by": "py"}
    assert "pyvol" in [v.name for v in client.volumes.list(filters={"label": "by=py"})]
    ok("volumes")

    # images.list / get / tag / remove.
    img = client.images.get(IMAGE)
    assert IMAGE in img.tags or IMAGE + ":latest" in img.tags, img.tags
    assert img.id in [i.id for i in client.images.list()]
    assert img.tag("pytag", "v1")
    assert "pytag:v1" in client.images.get("pytag:v1").tags
    assert [i.id for i in client.images.list(name="pytag")] == [img.id]
    client.images.remove("pytag:v1")
    try:
        client.images.get("pytag:v1")
        raise AssertionError("a removed tag is still there")
    except docker.errors.ImageNotFound:
        pass
    ok("images")

    # images.build (the classic builder's stream): docker-py finds the id in
    # `Successfully built`; every step ends in ` ---> <id>`, each stage's
    # image comes as an `aux`; a failed RUN raises BuildError.
    df = (f"FROM {IMAGE} AS base\nENV A=1\nRUN echo hello > /x\n"
          f"FROM {IMAGE}\nCOPY --from=base /x /y\nCMD [\"cat\", \"/y\"]\n")
    built, logs = client.images.build(fileobj=io.BytesIO(df.encode()), tag="pybuilt:1", rm=True)
    logs = list(logs)
    streams = "".join(l.get("stream", "") for l in logs)
    auxes = [l["aux"]["ID"] for l in logs if "aux" in l]
    assert len(auxes) == 2 and auxes[-1] == built.id, (auxes, built.id)
    assert streams.count("Step ") == 6, streams
    assert streams.count(" ---> ") >= 6, streams
    assert " ---> Running in " in streams and "Removing intermediate container " in streams, streams
    assert f"Successfully built {built.short_id[7:]}\n" in streams, streams
    assert "pybuilt:1" in built.tags, built.tags
    assert client.containers.run(built.id, remove=True) == b"hello\n"
    again, logs = client.images.build(fileobj=io.BytesIO(df.encode()), rm=True)
    assert again.id == built.id
    assert "".join(l.get("stream", "") for l in logs).count(" ---> Using cache") == 4
    try:
        client.images.build(fileobj=io.BytesIO(f"FROM {IMAGE}\nRUN exit 3\n".encode()))
        raise AssertionError("a failing build raised nothing")
    except docker.errors.BuildError as e:
        assert "returned a non-zero code: 3" in e.msg, e.msg
    client.images.remove("pybuilt:1")
    ok("images.build")

    # events between two times: the container's whole life, in order.
    since = time.time()
    e = client.containers.run(IMAGE, ["true"], detach=True, name="pyevents")
    e.wait()
    e.remove()
    time.sleep(0.5)
    until = time.time()
    events = list(client.events(since=since, until=until, decode=True,
                                filters={"container": "pyevents"}))
    actions = [ev["Action"] for ev in events if ev.get("Type") == "container"]
    for want in ["create", "start", "die", "destroy"]:
        assert want in actions, actions
    assert actions.index("create") < actions.index("start") < actions.index("die") < actions.index("destroy"), actions
    ok("events with until")
finally:
    for m in reversed(made):
        try:
            if isinstance(m, docker.models.containers.Container):
                m.remove(force=True)
            else:
                m.remove()
        except docker.errors.APIError:
            pass
