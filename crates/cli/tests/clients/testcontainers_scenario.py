"""testcontainers-python against berth serve: a generic container with an
environment and a published port, waited for by its logs, exec'd into,
its port looked up, stopped and removed on leaving the block. Ryuk (the
reaper, an image from Docker Hub) is off: the block's exit removes it."""
import os

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

image = os.environ["IMAGE"]
with (
    DockerContainer(image)
    .with_command(["sh", "-c", "echo ready; exec sleep 60"])
    .with_env("GREETING", "hi")
    .with_exposed_ports(80)
) as c:
    wait_for_logs(c, "ready", timeout=20)
    code, out = c.exec(["sh", "-c", "echo $GREETING from $(hostname)"])
    assert code == 0, (code, out)
    assert out.decode().startswith("hi from "), out
    port = int(c.get_exposed_port(80))
    assert 0 < port < 65536, port
    print("ok testcontainers", c.get_wrapped_container().id)
