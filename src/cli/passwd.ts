/**
 * `telemq passwd`: add, change and remove users in a password file, in the manner of mosquitto_passwd.
 *
 *   telemq passwd [-c] <file> <user>           prompt for the password (twice, without echo)
 *   telemq passwd [-c] -b <file> <user> <pw>   password on the command line (visible in `ps`: scripts only)
 *   telemq passwd -D <file> <user>             remove a user
 *
 * The file is rewritten atomically with mode 0600; lines it cannot parse are kept as they were.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { hashPassword, parseHash, usernameProblem, writeFileAtomic, type HashParams } from '../broker/auth/password-file.js';

const usage = `Usage: telemq passwd [-c] <file> <user>
       telemq passwd [-c] -b <file> <user> <password>
       telemq passwd -D <file> <user>

  -c, --create     create the file, replacing an existing one
  -b, --batch      take the password from the command line
  -D, --delete     remove the user
      --pbkdf2     hash with PBKDF2-SHA512 (210,000 iterations) instead of scrypt
  -h, --help       show this help

Without -b the password is read twice from the terminal without echo, or one line from standard input when it
is not a terminal.`;

function fail(msg: string): number {
  process.stderr.write(`telemq passwd: ${msg}\n`);
  return 1;
}

/** Reads one line from a terminal without echoing it. */
function readHiddenLine(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo goes off before the prompt appears, so a password typed ahead of it is never shown.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let line = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u0004') return done(new Error('no password given'));
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** Reads all of a non-terminal standard input and returns its first line. */
async function readPipedLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const nl = text.search(/\r?\n/);
  return nl === -1 ? text : text.slice(0, nl);
}

async function askPassword(): Promise<string> {
  if (!process.stdin.isTTY) return readPipedLine();
  const first = await readHiddenLine('Password: ');
  const second = await readHiddenLine('Reenter password: ');
  if (first !== second) throw new Error('the passwords do not match');
  return first;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        create: { type: 'boolean', short: 'c' },
        batch: { type: 'boolean', short: 'b' },
        delete: { type: 'boolean', short: 'D' },
        pbkdf2: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${usage}`);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (values.delete === true && (values.create === true || values.batch === true)) {
    return fail('-D cannot be combined with -c or -b');
  }
  const want = values.batch === true ? 3 : 2;
  if (positionals.length !== want) return fail(`expected ${want} arguments\n\n${usage}`);
  const [file, user] = positionals as [string, string];
  const bad = usernameProblem(user);
  if (bad !== undefined) return fail(bad);

  // Keep every line we do not touch, comments and unparsable ones included, in order.
  let lines: string[] = [];
  if (values.create !== true) {
    try {
      lines = (await readFile(file, 'utf8')).split(/\r?\n/);
      if (lines.at(-1) === '') lines.pop();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return fail(`${file} does not exist (use -c to create it)`);
      }
      return fail(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const isUserLine = (l: string) => {
    const t = l.trim();
    const colon = t.lastIndexOf(':');
    return colon > 0 && t.slice(0, colon) === user && parseHash(t.slice(colon + 1)) !== undefined;
  };
  const at = lines.findIndex(isUserLine);

  if (values.delete === true) {
    if (at === -1) return fail(`user '${user}' is not in ${file}`);
    lines = lines.filter((l) => !isUserLine(l));
  } else {
    let password: string;
    try {
      password = values.batch === true ? positionals[2]! : await askPassword();
    } catch (err) {
      return fail((err as Error).message);
    }
    if (password.length === 0) return fail('the password is empty');
    const params: HashParams | undefined = values.pbkdf2 === true ? { algorithm: 'pbkdf2-sha512', iterations: 210_000 } : undefined;
    const line = `${user}:${await hashPassword(password, params)}`;
    if (at === -1) lines.push(line);
    else lines = lines.flatMap((l, i) => (i === at ? [line] : isUserLine(l) ? [] : [l]));
  }
  try {
    await writeFileAtomic(file, lines.map((l) => l + '\n').join(''));
  } catch (err) {
    return fail(`cannot write ${file}: ${(err as Error).message}`);
  }
  return 0;
}
