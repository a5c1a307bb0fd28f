// Reads image files' C2PA manifest stores with the reference
// implementation (c2pa-rs as WebAssembly) and prints a JSON array with
// one report per file, in order: the manifests, validation_results and
// validation_state, or {"error": ...} when the reader refused the file.
// Usage: node reader.mjs FILE... (WebP or JPEG when the name ends .webp or
// .jpg, else PNG)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initSync, WasmReader } from '@contentauth/c2pa-wasm';

const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve('@contentauth/c2pa-wasm/c2pa.wasm')) });

const reports = [];
for (const file of process.argv.slice(2)) {
  const format = file.endsWith('.webp') ? 'image/webp' : file.endsWith('.jpg') ? 'image/jpeg' : 'image/png';
  try {
    const reader = await WasmReader.fromBytes(format, new Uint8Array(readFileSync(file)));
    reports.push(JSON.parse(reader.json()));
  } catch (err) {
    reports.push({ error: String(err) });
  }
}
process.stdout.write(JSON.stringify(reports));
