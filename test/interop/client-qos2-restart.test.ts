import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message } from '../../src/client/index.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { Proxy, PUBCOMP, PUBREC, PUBREL } from './client-proxy.js';

const fastReconnect = { initialDelay: 20, maxDelay: 200 };

for (const protocolVersion of [4, 5] as const) {
  test(`v${protocolVersion}: QoS 2 publish is exactly once while the broker is stopped and restarted mid-flow [MQTT-4.3.3-10] [MQTT-4.4.0-1]`, async (t) => {
    const broker = await startMosquitto(t);
    const session = protocolVersion === 5 ? { sessionExpiryInterval: 300, cleanStart: false } : { cleanStart: false };
    // The subscriber keeps a persistent session and is offline during the restart, so what it finally
    // receives is exactly what the broker accepted from the publisher.
    const subOptions = { protocolVersion, clientId: `qos2-sub-${protocolVersion}`, ...session, reconnect: false } as const;
    const first = await connect(broker.url, subOptions);
    await first.subscribe('x/#', { qos: 2 });
    await first.end();

    const proxy = await Proxy.start(broker.port);
    t.after(() => proxy.close());
    const pub = await connect(proxy.url, { protocolVersion, clientId: `qos2-pub-${protocolVersion}`, ...session, reconnect: fastReconnect });
    t.after(() => pub.end());

    // Mid-flow: messages 1-5 reach the PUBREL state (their PUBCOMP is lost), 6-10 never see their PUBREC.
    let droppedPubrec = 0;
    proxy.passDown = (p) => {
      if (p.type === PUBCOMP) return false;
      if (p.type === PUBREC && p.bytes.readUInt16BE(2) > 5) {
        droppedPubrec++;
        return false;
      }
      return true;
    };
    const flows = Array.from({ length: 10 }, (_, i) => pub.publish(`x/${i + 1}`, `m${i + 1}`, { qos: 2 }));
    const conn = proxy.connections[0];
    assert.ok(conn);
    await proxy.until(() => conn.up.filter((p) => p.type === PUBREL).length === 5 && droppedPubrec === 5);
    assert.deepEqual(pub.pending().map((p) => p.state), [...Array<string>(5).fill('pubrel'), ...Array<string>(5).fill('publish')]);

    // SIGTERM: mosquitto writes its persistence file on the way down, as on a service restart.
    await broker.kill('SIGTERM');
    proxy.passDown = () => true;
    proxy.cut();
    await broker.start();

    const results = await Promise.all(flows);
    assert.deepEqual(results.map((r) => r.packetId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(pub.pending(), []);
    await pub.publish('x/end', 'end', { qos: 2 });

    const sub = await connect(broker.url, { ...subOptions, cleanStart: false });
    t.after(() => sub.end());
    const received: Message[] = [];
    for await (const m of sub.messages()) {
      received.push(m);
      if (m.topic === 'x/end') break;
    }
    const counts = new Map<string, number>();
    for (const m of received) counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    for (let i = 1; i <= 10; i++) assert.equal(counts.get(`x/${i}`), 1, `x/${i} delivered exactly once`);
  });
}
