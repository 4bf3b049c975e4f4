/**
 * Model-based test of QoS 1/2 delivery: random publishes, acknowledgements, dropped connections and reconnects of
 * persistent sessions with small Receive Maximums. Whatever the interleaving, every subscriber ends up with every
 * message, QoS 2 subscribers exactly once, and resends carry DUP=1 and the original packet id [MQTT-4.4.0-1].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Packet, QoS } from '../../../src/protocol/index.js';
import { setup, type TestClient } from './harness.js';

type Cmd = { kind: 'publish'; qos: 1 | 2 } | { kind: 'ack' | 'drop' | 'reconnect'; sub: number };

interface SubModel {
  id: string;
  qos: QoS;
  receiveMaximum: number;
  client: TestClient | undefined;
  /** Unfinished packet ids in the order the broker sent them: 'publish' awaits PUBACK/PUBREC, 'pubrel' PUBCOMP. */
  pending: Map<number, { stage: 'publish' | 'pubrel'; payload: string; qos: QoS }>;
  delivered: string[];
}

const command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ kind: fc.constant('publish' as const), qos: fc.constantFrom(1 as const, 2 as const) }),
  fc.record({ kind: fc.constantFrom('ack' as const, 'drop' as const, 'reconnect' as const), sub: fc.nat(2) }),
);

test('QoS 1/2 with drops and reconnects: nothing lost, QoS 2 exactly once, resends with DUP', () => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 60 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 3, maxLength: 3 }), (cmds, rms) => {
      const { client } = setup({ limits: { maximumQueuedMessages: 10_000 } });
      const publisher = client(5);
      publisher.connect({ clientId: 'pub' });
      const subs: SubModel[] = [0, 1, 2].map((i) => ({
        id: `s${i}`,
        qos: i === 0 ? 1 : 2,
        receiveMaximum: rms[i] ?? 1,
        client: undefined,
        pending: new Map(),
        delivered: [],
      }));
      const absorb = (s: SubModel, packets: Packet[]): void => {
        for (const p of packets) {
          if (p.type === 'publish') {
            const id = p.packetId as number;
            const known = s.pending.get(id);
            if (known !== undefined) {
              // A resend: only of a message still awaiting its first acknowledgement, flagged DUP.
              assert.equal(p.dup, true);
              assert.equal(known.stage, 'publish');
              assert.equal(p.payload.toString(), known.payload);
              continue;
            }
            assert.equal(p.dup, false);
            s.delivered.push(p.payload.toString());
            s.pending.set(id, { stage: 'publish', payload: p.payload.toString(), qos: p.qos });
            const inFlight = [...s.pending.values()].filter((x) => x.stage === 'publish' || x.stage === 'pubrel').length;
            assert.ok(inFlight <= s.receiveMaximum, 'Receive Maximum respected [MQTT-3.3.4-9]');
          } else if (p.type === 'pubrel') {
            const known = s.pending.get(p.packetId);
            assert.ok(known !== undefined, 'PUBREL for a known id');
            known.stage = 'pubrel';
          }
        }
      };
      const connectSub = (s: SubModel, cleanStart: boolean): void => {
        const c = client(5);
        s.client = c;
        absorb(s, c.connect({ clientId: s.id, cleanStart, properties: { sessionExpiryInterval: 3600, receiveMaximum: s.receiveMaximum } }));
      };
      for (const s of subs) {
        connectSub(s, true);
        absorb(s, (s.client as TestClient).subscribe('t', s.qos));
      }
      const ack = (s: SubModel): void => {
        const c = s.client;
        const first = [...s.pending.entries()][0];
        if (c === undefined || first === undefined) return;
        const [id, entry] = first;
        if (entry.stage === 'pubrel') {
          s.pending.delete(id);
          c.in({ type: 'pubcomp', packetId: id });
        } else if (entry.qos === 1) {
          s.pending.delete(id);
          c.in({ type: 'puback', packetId: id });
        } else {
          c.in({ type: 'pubrec', packetId: id });
        }
        absorb(s, c.sent());
      };
      let n = 0;
      let packetId = 0;
      for (const cmd of cmds) {
        if (cmd.kind === 'publish') {
          packetId = (packetId % 65_535) + 1;
          const out = publisher.publish('t', `m${n++}`, cmd.qos, { packetId });
          if (cmd.qos === 2) {
            publisher.in({ type: 'pubrel', packetId });
            publisher.sent();
          }
          assert.equal(out[0]?.type, cmd.qos === 1 ? 'puback' : 'pubrec');
          for (const s of subs) if (s.client !== undefined) absorb(s, s.client.sent());
          continue;
        }
        const s = subs[cmd.sub] as SubModel;
        if (cmd.kind === 'ack') ack(s);
        else if (cmd.kind === 'drop' && s.client !== undefined) {
          s.client.drop();
          s.client = undefined;
        } else if (cmd.kind === 'reconnect' && s.client === undefined) connectSub(s, false);
      }
      for (const s of subs) {
        if (s.client === undefined) connectSub(s, false);
        let guard = 0;
        while (s.pending.size > 0 && guard++ < 10_000) ack(s);
        const want = Array.from({ length: n }, (_, i) => `m${i}`);
        assert.deepEqual([...new Set(s.delivered)].sort(), [...want].sort(), `${s.id} got every message`);
        // Messages published at QoS 2 to a QoS 2 subscription arrive exactly once.
        if (s.qos === 2) assert.equal(s.delivered.length, new Set(s.delivered).size, `${s.id}: no message twice`);
      }
    }),
    { numRuns: 150 },
  );
});
