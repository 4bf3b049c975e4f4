// What Node itself costs, as a yardstick for telemq (not a broker): a bare net.Server that parses MQTT frames just
// enough to answer CONNECT/SUBSCRIBE/PINGREQ/PUBREL, acknowledges QoS 1/2 PUBLISH, and forwards each PUBLISH's bytes
// unchanged to the subscribers of that exact topic, one write per socket per event-loop turn. No sessions, no
// validation, no QoS guarantees. Run it as a peer:
//   ../shared/bench/run-peers.sh --peers extra --extra-name node-floor --extra 'node bench/node-floor.mjs --port {PORT}'
// Its S7 RSS per connection is Node's own per-socket cost; its S6 p99 is the best a Node process gets here.
import { createServer } from 'node:net';

const argv = process.argv;
const port = Number(argv[argv.indexOf('--port') + 1]);
const host = argv.includes('--host') ? argv[argv.indexOf('--host') + 1] : '127.0.0.1';

/** topic -> subscribed sockets */
const subscribers = new Map();
const pending = new Set();
let scheduled = false;

function send(socket, bytes) {
  (socket.outQueue ??= []).push(bytes);
  pending.add(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll() {
  scheduled = false;
  for (const s of pending) {
    const q = s.outQueue;
    s.outQueue = [];
    if (!s.destroyed) s.write(q.length === 1 ? q[0] : Buffer.concat(q));
  }
  pending.clear();
}

function onData(chunk) {
  const buf = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
  let o = 0;
  for (;;) {
    if (buf.length - o < 2) break;
    let rem = 0;
    let mul = 1;
    let i = o + 1;
    let byte = 0;
    do {
      if (i >= buf.length) return keep(this, buf, o);
      byte = buf[i++];
      rem += (byte & 127) * mul;
      mul *= 128;
    } while (byte & 128);
    if (buf.length - i < rem) break;
    const type = buf[o] >> 4;
    const body = buf.subarray(i, i + rem);
    if (type === 1) send(this, Buffer.from([0x20, 2, 0, 0]));
    else if (type === 8) {
      const n = body.readUInt16BE(2);
      const topic = body.toString('latin1', 4, 4 + n);
      let list = subscribers.get(topic);
      if (list === undefined) subscribers.set(topic, (list = []));
      list.push(this);
      send(this, Buffer.from([0x90, 3, body[0], body[1], body[4 + n] & 3]));
    } else if (type === 3) {
      const qos = (buf[o] >> 1) & 3;
      const n = body.readUInt16BE(0);
      const list = subscribers.get(body.toString('latin1', 2, 2 + n));
      if (list !== undefined) {
        const bytes = Buffer.from(buf.subarray(o, i + rem));
        for (const s of list) send(s, bytes);
      }
      if (qos > 0) send(this, Buffer.from([qos === 1 ? 0x40 : 0x50, 2, body[2 + n], body[3 + n]]));
    } else if (type === 6) send(this, Buffer.from([0x70, 2, body[0], body[1]]));
    else if (type === 5) send(this, Buffer.from([0x62, 2, body[0], body[1]]));
    else if (type === 12) send(this, Buffer.from([0xd0, 0]));
    o = i + rem;
  }
  keep(this, buf, o);
}

function keep(socket, buf, o) {
  socket.rest = o < buf.length ? Buffer.from(buf.subarray(o)) : undefined;
}

function onClose() {
  for (const list of subscribers.values()) {
    const k = list.indexOf(this);
    if (k >= 0) list.splice(k, 1);
  }
}

function ignore() {}

createServer({ noDelay: true }, (s) => {
  s.on('data', onData);
  s.on('error', ignore);
  s.on('close', onClose);
}).listen(port, host);
