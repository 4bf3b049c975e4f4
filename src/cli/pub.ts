import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { connect, type MqttClient, type PublishOptions } from '../client/index.js';
import { clientSetup, commonFlags, commonHelp, describeError, flag, has, parseArgs, qosFlag, UsageError, type FlagSpec } from './client-args.js';

const flags: Record<string, FlagSpec> = {
  ...commonFlags,
  '-m': { value: true },
  '-f': { value: true },
  '-l': { value: false },
  '-n': { value: false },
  '-s': { value: false },
  '-r': { value: false },
  '--repeat': { value: true },
  '--repeat-delay': { value: true },
};

const help = `Usage: telemq pub -t TOPIC (-m MESSAGE | -f FILE | -l | -n | -s) [options]

Publish one message (or one per input line with -l).
  -t, --topic TOPIC      topic to publish to
  -m, --message TEXT     the payload
  -f, --file FILE        the payload is the whole file
  -l, --stdin-line       one message per line of standard input
  -s, --stdin-file       the payload is all of standard input
  -n, --null-message     an empty payload
  -q, --qos 0|1|2        quality of service (default 0)
  -r, --retain           retain the message
  --repeat N             publish N times; --repeat-delay SEC between them
${commonHelp}

Exit status: 0 when every message completed its QoS flow, 1 otherwise.`;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function run(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv, flags);
  } catch (err) {
    process.stderr.write(`telemq pub: ${(err as Error).message}\nRun 'telemq pub --help' for the options.\n`);
    return 1;
  }
  if (has(args, '--help')) {
    process.stdout.write(help + '\n');
    return 0;
  }
  const quiet = has(args, '--quiet');
  const json = has(args, '--json');
  const debug = has(args, '-d');
  const fail = (message: string): number => {
    if (!quiet) process.stderr.write(message + '\n');
    return 1;
  };
  let setup;
  let sources = 0;
  let qos;
  try {
    setup = clientSetup(args, 'telemq-pub-');
    qos = qosFlag(args);
    for (const f of ['-m', '-f', '-l', '-n', '-s']) if (has(args, f)) sources++;
    if (sources !== 1) throw new UsageError('give exactly one of -m, -f, -l, -n, -s');
  } catch (err) {
    if (err instanceof UsageError) return fail(`telemq pub: ${err.message}\nRun 'telemq pub --help' for the options.`);
    return fail(`telemq pub: ${(err as Error).message}`);
  }
  const topics = args.flags.get('-t') ?? [];
  const topic = topics[0] ?? setup.topicFromUrl;
  if (topic === undefined) return fail("telemq pub: no topic: give -t TOPIC\nRun 'telemq pub --help' for the options.");
  const repeat = Number(flag(args, '--repeat') ?? 1);
  const repeatDelay = Number(flag(args, '--repeat-delay') ?? 0) * 1000;
  if (!Number.isInteger(repeat) || repeat < 1) return fail('telemq pub: --repeat needs a positive integer');
  if (!Number.isFinite(repeatDelay) || repeatDelay < 0) return fail('telemq pub: --repeat-delay needs a number of seconds');

  let payload: Buffer | undefined;
  try {
    const file = flag(args, '-f');
    if (has(args, '-m')) payload = Buffer.from(flag(args, '-m') ?? '', 'utf8');
    else if (file !== undefined) payload = readFileSync(file);
    else if (has(args, '-n')) payload = Buffer.alloc(0);
    else if (has(args, '-s')) payload = await readStdin();
  } catch (err) {
    return fail(`Error: cannot read ${flag(args, '-f') ?? 'the payload'}: ${(err as Error).message}`);
  }

  let client: MqttClient;
  try {
    client = await connect(setup.url, setup.options);
  } catch (err) {
    return fail(describeError(err, setup.url));
  }
  if (debug) process.stderr.write(`Connected to ${setup.url} as ${client.clientId} (MQTT ${['3.1', '3.1.1', '5.0'][client.protocolVersion - 3] ?? ''})\n`);
  const options: PublishOptions = {
    qos,
    retain: has(args, '-r'),
    ...(args.properties.publish === undefined ? {} : { properties: args.properties.publish }),
  };
  let failures = 0;
  const send = async (body: Buffer): Promise<void> => {
    try {
      const result = await client.publish(topic, body, options);
      if (json) process.stdout.write(JSON.stringify({ topic, qos, packetId: result.packetId ?? null, reasonCode: result.reasonCode }) + '\n');
      if (debug) process.stderr.write(`Published ${body.length} bytes to ${topic} (QoS ${qos}${result.packetId === undefined ? '' : `, packet id ${result.packetId}`})\n`);
    } catch (err) {
      failures++;
      if (!quiet) process.stderr.write(`Error: publish to ${topic} failed: ${(err as Error).message}\n`);
    }
  };
  try {
    if (payload !== undefined) {
      for (let i = 0; i < repeat; i++) {
        await send(payload);
        if (i < repeat - 1 && repeatDelay > 0) await new Promise((resolve) => setTimeout(resolve, repeatDelay));
      }
    } else {
      const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
      const pending: Array<Promise<void>> = [];
      for await (const line of lines) pending.push(send(Buffer.from(line, 'utf8')));
      await Promise.all(pending);
    }
  } finally {
    await client.end(args.properties.disconnect === undefined ? {} : { properties: args.properties.disconnect });
  }
  return failures === 0 ? 0 : 1;
}
