// Reads one image file's C2PA manifest store with the reference
// implementation (c2pa-rs as WebAssembly) and prints its JSON report:
// the manifests, validation_results and validation_state.
// Usage: node reader.mjs FILE (PNG or WebP)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initSync, WasmReader } from '@contentauth/c2pa-wasm';

const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve('@contentauth/c2pa-wasm/c2pa.wasm')) });

const file = process.argv[2];
const format = file.endsWith('.webp') ? 'image/webp' : 'image/png';
try {
  const reader = await WasmReader.fromBytes(format, new Uint8Array(readFileSync(file)));
  process.stdout.write(reader.json());
} catch (err) {
  process.stdout.write(JSON.stringify({ error: String(err) }));
}
