// Builds the /join page into dist/: the bundled script (esbuild), the HTML and CSS, the detector's
// weights (models/yunet/, committed: scripts/yunet_web_weights.py writes them from the agent's ONNX)
// and tfjs's .wasm files copied from node_modules (pinned by package-lock.json).
// The API serves dist/ (JOIN_PAGE_DIR); nothing is fetched at run time.
import { cpSync, mkdirSync, rmSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";

const out = process.argv[2] || "dist";
const assets = join(out, "assets");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(assets, "model"), { recursive: true });
mkdirSync(join(assets, "wasm"), { recursive: true });

buildSync({
  entryPoints: ["src/join.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome100", "firefox100", "safari15"],
  outfile: join(assets, "join.js"),
  legalComments: "linked",
});
cpSync("src/index.html", join(out, "index.html"));
cpSync("src/join.css", join(assets, "join.css"));
cpSync("models/yunet", join(assets, "model", "yunet"), { recursive: true });
const wasm = "node_modules/@tensorflow/tfjs-backend-wasm/dist";
for (const name of ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) {
  cpSync(join(wasm, name), join(assets, "wasm", name));
}

const sizes = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .reduce((sum, f) => sum + statSync(f).size, 0);
console.log(`built ${out}: ${(sizes(out) / 1048576).toFixed(2)} MiB`);
