// dockerode 4 against `berth serve` (crates/cli/tests/api_node.rs).
//
// Run with DOCKER_HOST=unix://… (docker-modem reads it), IMAGE naming a
// busybox image in berth and NODE_PATH the node_modules scripts/deps
// made. Each step prints `ok STEP`; the first failure prints it and exits 1
// after removing what the scenario made.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { PassThrough } = require('stream');
const Docker = require('dockerode');

const IMAGE = process.env.IMAGE || 'bb:test';
const docker = new Docker();
const made = { containers: [], networks: [], volumes: [], images: [] };

function ok(step) {
  console.log(`ok ${step}`);
}

function assertEq(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

// A multiplexed stream split with docker-modem's demuxer, read to its end.
function demux(stream) {
  return new Promise((resolve, reject) => {
    const out = new PassThrough();
    const err = new PassThrough();
    const o = [];
    const e = [];
    out.on('data', (c) => o.push(c));
    err.on('data', (c) => e.push(c));
    docker.modem.demuxStream(stream, out, err);
    stream.on('end', () => resolve([Buffer.concat(o).toString(), Buffer.concat(e).toString()]));
    stream.on('close', () => resolve([Buffer.concat(o).toString(), Buffer.concat(e).toString()]));
    stream.on('error', reject);
  });
}

async function create(opts) {
  const c = await docker.createContainer({ Image: IMAGE, ...opts });
  made.containers.push(c.id);
  console.log(`made ${c.id}`);
  return c;
}

// Build/pull progress to its end: the messages, or the error it ended with.
function progress(stream) {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err, output) => (err ? reject(err) : resolve(output)));
  });
}

// A `docker events` stream read until `until` ends it: the parsed events.
function readEvents(stream) {
  return new Promise((resolve, reject) => {
    let buf = '';
    stream.on('data', (c) => (buf += c.toString()));
    stream.on('end', () => {
      resolve(buf.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)));
    });
    stream.on('error', reject);
  });
}

async function main() {
  const v = await docker.version();
  assertEq(v.ApiVersion, '1.44', 'ApiVersion');
  assertEq((await docker.ping()).toString(), 'OK', 'ping');
  ok('ping and version');
  const since = Math.floor(Date.now() / 1000);

  // create, attach, start: stdout and stderr apart; wait's exit code.
  const talker = await create({
    name: 'node-talker',
    Cmd: ['sh', '-c', 'echo out; echo err >&2; echo more; exit 3'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const attached = await talker.attach({ stream: true, stdout: true, stderr: true });
  const reading = demux(attached);
  await talker.start();
  const [out, err] = await reading;
  assertEq([out, err], ['out\nmore\n', 'err\n'], 'attached output');
  assertEq((await talker.wait()).StatusCode, 3, 'wait');
  assertEq((await talker.inspect()).State.ExitCode, 3, 'inspect ExitCode');
  ok('create, attach, start and wait');

  // logs: all of them, demultiplexed; followed while a container runs,
  // ending when it does.
  const logs = await talker.logs({ stdout: true, stderr: true, follow: true });
  assertEq(await demux(logs), ['out\nmore\n', 'err\n'], 'logs');
  const ticker = await create({
    name: 'node-ticker',
    Cmd: ['sh', '-c', 'for i in 1 2 3 4; do echo tick $i; sleep 0.2; done'],
  });
  await ticker.start();
  const followed = await ticker.logs({ stdout: true, stderr: true, follow: true });
  assertEq(await demux(followed), ['tick 1\ntick 2\ntick 3\ntick 4\n', ''], 'logs followed');
  ok('logs and logs followed');

  // exec: output and exit code; stdin.
  const sleeper = await create({ name: 'node-sleeper', Cmd: ['sleep', '300'] });
  await sleeper.start();
  const ex = await sleeper.exec({
    Cmd: ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 7'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const exStream = await ex.start({ hijack: true, stdin: false });
  assertEq(await demux(exStream), ['exec-out\n', 'exec-err\n'], 'exec output');
  let info = await ex.inspect();
  for (let i = 0; info.Running && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    info = await ex.inspect();
  }
  assertEq([info.Running, info.ExitCode], [false, 7], 'exec inspect');
  const cat = await sleeper.exec({
    Cmd: ['tr', 'a-z', 'A-Z'],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const catStream = await cat.start({ hijack: true, stdin: true });
  const catReading = demux(catStream);
  catStream.end('piped in\n');
  assertEq(await catReading, ['PIPED IN\n', ''], 'exec stdin');
  ok('exec with output, exit code and stdin');

  // A network and a volume: a server writes into the volume and serves it;
  // a client on the network finds it by name.
  const net = await docker.createNetwork({ Name: 'node-net', Driver: 'bridge' });
  made.networks.push(net.id);
  await docker.createVolume({ Name: 'node-vol', Labels: { by: 'dockerode' } });
  made.volumes.push('node-vol');
  const server = await create({
    name: 'node-server',
    Cmd: ['sh', '-c', 'echo from-volume > /data/index.html; exec httpd -f -p 8080 -h /data'],
    HostConfig: { NetworkMode: 'node-net', Binds: ['node-vol:/data'] },
  });
  await server.start();
  const client = await create({
    name: 'node-client',
    Cmd: ['sh', '-c', 'for i in $(seq 50); do wget -qO- http://node-server:8080/ && exit 0; sleep 0.1; done; exit 1'],
    HostConfig: { NetworkMode: 'node-net' },
  });
  const clientLogs = client.attach({ stream: true, stdout: true, stderr: true });
  const clientReading = demux(await clientLogs);
  await client.start();
  assertEq((await client.wait()).StatusCode, 0, 'client exit');
  assertEq((await clientReading)[0], 'from-volume\n', 'fetched by name');
  const netInfo = await net.inspect();
  assert(Object.keys(netInfo.Containers).includes(server.id), 'server in network inspect');
  const volInfo = await docker.getVolume('node-vol').inspect();
  assertEq([volInfo.Name, volInfo.Driver, volInfo.Labels], ['node-vol', 'local', { by: 'dockerode' }], 'volume inspect');
  ok('network and volume');

  // Build from a tar context (dockerode packs the files with tar-fs).
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'dockerode-ctx-'));
  try {
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${IMAGE}\nCOPY greeting.txt /greeting.txt\nRUN echo built > /built.txt\nCMD ["sh", "-c", "cat /greeting.txt /built.txt"]\n`,
    );
    fs.writeFileSync(path.join(ctx, 'greeting.txt'), 'hello from node\n');
    const build = await docker.buildImage({ context: ctx, src: ['Dockerfile', 'greeting.txt'] }, { t: 'node/app:1', rm: true });
    const steps = await progress(build);
    const text = steps.map((s) => s.stream || '').join('');
    assert(text.includes('Successfully tagged node/app:1'), `build output: ${text}`);
    made.images.push('node/app:1');
    // A failing step: the stream carries dockerd's error.
    fs.writeFileSync(path.join(ctx, 'Dockerfile.bad'), `FROM ${IMAGE}\nRUN exit 4\n`);
    const bad = await docker.buildImage({ context: ctx, src: ['Dockerfile.bad'] }, { t: 'node/bad:1', dockerfile: 'Dockerfile.bad' });
    const failed = (await progress(bad)).filter((s) => s.error).map((s) => s.error);
    assert(failed.length === 1 && failed[0].includes('returned a non-zero code: 4'), `failed build: ${JSON.stringify(failed)}`);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
  const built = await create({ name: 'node-built', Image: 'node/app:1' });
  const builtReading = demux(await built.attach({ stream: true, stdout: true, stderr: true }));
  await built.start();
  assertEq((await built.wait()).StatusCode, 0, 'built image run');
  assertEq(await builtReading, ['hello from node\nbuilt\n', ''], 'built image output');
  ok('build from a tar context');

  // Images: list by reference, inspect, remove.
  const listed = await docker.listImages({ filters: { reference: ['node/app'] } });
  assertEq(listed.map((i) => i.RepoTags), [['node/app:1']], 'listImages');
  const img = await docker.getImage('node/app:1').inspect();
  assertEq(img.Config.Cmd, ['sh', '-c', 'cat /greeting.txt /built.txt'], 'image Cmd');
  assertEq(img.Id, listed[0].Id, 'image id');
  await built.remove();
  made.containers = made.containers.filter((id) => id !== built.id);
  const removed = await docker.getImage('node/app:1').remove();
  assert(removed.some((r) => r.Untagged === 'node/app:1'), `remove: ${JSON.stringify(removed)}`);
  assert(removed.some((r) => r.Deleted === img.Id), `remove: ${JSON.stringify(removed)}`);
  made.images = made.images.filter((i) => i !== 'node/app:1');
  try {
    await docker.getImage('node/app:1').inspect();
    throw new Error('a removed image still inspects');
  } catch (e) {
    assertEq(e.statusCode, 404, `inspect of a removed image: ${e.message}`);
  }
  const noBad = await docker.listImages({ filters: { reference: ['node/bad'] } });
  assertEq(noBad, [], 'a failed build tagged nothing');
  ok('image list, inspect and remove');

  // Everything removed, then the events from `since` to `until`.
  for (const id of made.containers) {
    await docker.getContainer(id).remove({ force: true });
  }
  made.containers = [];
  await docker.getVolume('node-vol').remove();
  made.volumes = [];
  await net.remove();
  made.networks = [];
  const until = Math.floor(Date.now() / 1000) + 1;
  const events = await readEvents(await docker.getEvents({ since, until }));
  const seen = events.map((e) => `${e.Type} ${e.Action} ${(e.Actor.Attributes || {}).name || e.Actor.ID}`);
  const want = [
    'container create node-talker',
    'container start node-talker',
    'container die node-talker',
    'network create node-net',
    'volume create node-vol',
    'container start node-server',
    'container destroy node-server',
    'volume destroy node-vol',
    'network destroy node-net',
  ];
  let at = -1;
  for (const w of want) {
    const i = seen.indexOf(w, at + 1);
    assert(i > at, `event "${w}" missing or out of order in:\n${seen.join('\n')}`);
    at = i;
  }
  const die = events.find((e) => e.Action === 'die' && e.Actor.Attributes.name === 'node-talker');
  assertEq(die.Actor.Attributes.exitCode, '3', 'die exitCode');
  ok('getEvents with since and until');
}

main()
  .catch(async (e) => {
    console.log(`FAILED ${e.stack || e}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const id of made.containers) await docker.getContainer(id).remove({ force: true }).catch(() => {});
    for (const v of made.volumes) await docker.getVolume(v).remove().catch(() => {});
    for (const n of made.networks) await docker.getNetwork(n).remove().catch(() => {});
    for (const i of made.images) await docker.getImage(i).remove().catch(() => {});
  });
