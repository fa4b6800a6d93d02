// testcontainers-node against `berth serve` (crates/cli/tests/api_node.rs):
// a GenericContainer with an environment and an exposed port, waited for
// by its log line and by its port listening (inside, and from the host on
// the mapped port), exec'd into, its mapped port fetched over a real TCP
// connection on 127.0.0.1, stopped (and so removed). Ryuk (the reaper, an
// image from Docker Hub) is off: TESTCONTAINERS_RYUK_DISABLED=true.
'use strict';
const net = require('net');
const { GenericContainer, Wait } = require('testcontainers');

const IMAGE = process.env.IMAGE || 'bb:test';

// An HTTP/1.0 GET on host:port: the body.
function httpGet(host, port, path) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
    let raw = '';
    s.setTimeout(5000, () => s.destroy(new Error('timed out')));
    s.on('data', (c) => (raw += c.toString()));
    s.on('end', () => resolve(raw.split('\r\n\r\n').slice(1).join('\r\n\r\n')));
    s.on('error', reject);
  });
}

async function main() {
  const started = await new GenericContainer(IMAGE)
    .withCommand([
      'sh',
      '-c',
      'mkdir -p /www && echo "hello $GREETING" > /www/index.html && echo ready && exec httpd -f -p 8080 -h /www',
    ])
    .withEnvironment({ GREETING: 'from testcontainers' })
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forAll([Wait.forLogMessage('ready'), Wait.forListeningPorts()]))
    .withStartupTimeout(30000)
    .start();
  const id = started.getId();
  try {
    const r = await started.exec(['sh', '-c', 'echo $GREETING; echo oops >&2; exit 4']);
    if (r.exitCode !== 4 || r.stdout !== 'from testcontainers\n' || r.stderr !== 'oops\n') {
      throw new Error(`exec: ${JSON.stringify(r)}`);
    }
    // TESTCONTAINERS_HOST_OVERRIDE: on a host that has /.dockerenv it
    // would take the bridge's gateway; the test reaches loopback only.
    const host = started.getHost();
    if (host !== '127.0.0.1') throw new Error(`host ${host}`);
    const port = started.getMappedPort(8080);
    if (!(port > 0 && port < 65536)) throw new Error(`mapped port ${port}`);
    const body = await httpGet('127.0.0.1', port, '/');
    if (body !== 'hello from testcontainers\n') throw new Error(`GET 127.0.0.1:${port}: ${JSON.stringify(body)}`);
    console.log(`ok testcontainers ${id} ${host} ${port}`);
  } finally {
    // Killed at once (testcontainers' default timeout, 0 s), then removed.
    await started.stop();
  }
  console.log('ok stopped');
}

main().catch((e) => {
  console.log(`FAILED ${e.stack || e}`);
  process.exitCode = 1;
});
