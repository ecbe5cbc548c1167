// sigstore-js verifies one Sigstore bundle offline against a trusted_root.json.
//
//   node verify.mjs --trusted-root FILE --bundle FILE (--artifact FILE | --digest sha256:HEX)
//                   (--identity SAN | --identity-regexp RE) --issuer URL
//
// --artifact: a message-signature (blob) bundle over that file's bytes.
// --digest: a DSSE bundle whose in-toto statement must name that digest as a subject
// (sigstore-js checks the envelope's signature, not what the statement is about).
// Prints one line, "OK ..." or "FAIL ...", and exits 0 (verified), 1 (refused), 2 (usage).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const options = {
  'trusted-root': { type: 'string' },
  bundle: { type: 'string' },
  artifact: { type: 'string' },
  digest: { type: 'string' },
  identity: { type: 'string' },
  'identity-regexp': { type: 'string' },
  issuer: { type: 'string' },
};

function usage(message) {
  console.log(`USAGE ${message}`);
  process.exit(2);
}

function readJSON(path) {
  return JSON.parse(readFileSync(path, 'utf-8'));
}

// The in-toto subjects of a DSSE bundle must include `digest` (sha256:HEX).
function checkSubject(bundle, digest) {
  const [algorithm, hex] = digest.split(':');
  const envelope = bundle.content.dsseEnvelope;
  const statement = JSON.parse(Buffer.from(envelope.payload).toString('utf-8'));
  const subjects = statement.subject ?? [];
  if (!subjects.some((s) => s.digest?.[algorithm] === hex)) {
    throw new Error(`statement names no subject ${digest}`);
  }
}

function main() {
  const { values: args } = parseArgs({ options, strict: true });
  for (const name of ['trusted-root', 'bundle', 'issuer']) {
    if (!args[name]) usage(`--${name} is required`);
  }
  if (!args.artifact === !args.digest) usage('give one of --artifact, --digest');
  if (!args.identity === !args['identity-regexp']) {
    usage('give one of --identity, --identity-regexp');
  }
  const root = TrustedRoot.fromJSON(readJSON(args['trusted-root']));
  const bundle = bundleFromJSON(readJSON(args.bundle));
  const policy = {
    subjectAlternativeName: args.identity ?? new RegExp(args['identity-regexp']),
    extensions: { issuer: args.issuer },
  };
  try {
    if (args.digest) {
      if (bundle.content.$case !== 'dsseEnvelope') throw new Error('--digest needs a DSSE bundle');
      checkSubject(bundle, args.digest);
    }
    const artifact = args.artifact ? readFileSync(args.artifact) : undefined;
    const verifier = new Verifier(toTrustMaterial(root));
    const signer = verifier.verify(toSignedEntity(bundle, artifact), policy);
    const identity = signer.identity ?? {};
    console.log(`OK ${identity.subjectAlternativeName} ${identity.extensions?.issuer}`);
  } catch (err) {
    const code = err.code ? `${err.code}: ` : '';
    console.log(`FAIL ${code}${err.message}`.replace(/\s+/g, ' '));
    process.exit(1);
  }
}

main();
