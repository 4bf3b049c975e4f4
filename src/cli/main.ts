#!/usr/bin/env node
// The `telemq` command: each subcommand lives in its own module, loaded only when used.
const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  broker: () => import('./broker.js'),
  pub: () => import('./pub.js'),
  sub: () => import('./sub.js'),
  passwd: () => import('./passwd.js'),
  certs: () => import('./certs.js'),
};

const usage = `Usage: telemq <command> [options]

Commands:
  broker   run the MQTT broker (default port 1883)
  pub      publish a message
  sub      subscribe and print messages
  passwd   manage the password file
  certs    create a CA, server and client certificates

Run 'telemq <command> --help' for the options of a command.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(usage + '\n');
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-V') {
    const { version } = await import('../shared/version.js');
    process.stdout.write(version + '\n');
    return 0;
  }
  const load = commands[name];
  if (load === undefined) {
    process.stderr.write(`telemq: unknown command '${name}'\n\n${usage}\n`);
    return 1;
  }
  let mod: { run(argv: string[]): Promise<number> };
  try {
    mod = await load();
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      process.stderr.write(`telemq: '${name}' is not available in this build\n`);
      return 1;
    }
    throw err;
  }
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`telemq: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
